// hotlap convert: a torchvision-format file (written by PyTorch, tools/make_resnet_goldens.py) goes
// into a hotlap checkpoint and back out unchanged; bad inputs are clear errors.
#include <doctest/doctest.h>

#include <filesystem>

#include "apps/convert.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "resnet/resnet.h"
#include "test_util.h"

namespace hotlap {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

const std::string kFixture = std::string(HOTLAP_TEST_DATA_DIR) + "/tv_resnet18_w8_f32.safetensors";

TEST_CASE("convert: torchvision -> hotlap -> torchvision gives back the same tensors") {
  TempDir dir;
  ConvertOptions in;
  in.input = kFixture;
  in.output = dir.file("model.safetensors");
  CHECK(run_convert(in) == 0);
  safetensors::File ckpt = safetensors::read_file(in.output);
  CHECK(ckpt.metadata.at("hotlap.format") == "checkpoint-v1");
  CHECK(ckpt.metadata.at("arch") == "resnet18-w8");
  CHECK(ckpt.at("model.conv1.weight").shape == std::vector<int64_t>{8, 7, 7, 3});  // OHWI

  ConvertOptions out;
  out.input = in.output;
  out.output = dir.file("back.safetensors");
  CHECK(run_convert(out) == 0);
  safetensors::File original = safetensors::read_file(kFixture);
  safetensors::File back = safetensors::read_file(out.output);
  REQUIRE(back.records.size() == original.records.size());
  for (const auto& r : original.records) {
    INFO(r.name);
    const safetensors::Record& b = back.at(r.name);
    CHECK(b.shape == r.shape);
    if (r.dtype == safetensors::DType::F32) CHECK(b.bytes == r.bytes);  // bit-exact
  }
}

TEST_CASE("convert: a new regression head replaces the classifier") {
  TempDir dir;
  ConvertOptions o;
  o.input = kFixture;
  o.output = dir.file("regression.safetensors");
  o.new_head = true;
  o.outputs = 1;
  CHECK(run_convert(o) == 0);
  safetensors::File ckpt = safetensors::read_file(o.output);
  CHECK(ckpt.at("model.fc.weight").shape == std::vector<int64_t>{1, 64});
  CHECK(ckpt.metadata.at("extra.head") == "new, 1 outputs");
}

TEST_CASE("convert: bad inputs name the file and leave no output") {
  TempDir dir;
  ConvertOptions o;
  o.output = dir.file("out.safetensors");
  o.input = dir.file("missing.safetensors");
  CHECK_THROWS_WITH_AS(run_convert(o), doctest::Contains("missing.safetensors"), Error);
  o.input = std::string(HOTLAP_TEST_DATA_DIR) + "/golden_small_cnn.safetensors";  // not a ResNet
  CHECK_THROWS_WITH_AS(run_convert(o), doctest::Contains("not a ResNet"), Error);
  // A truncated copy of a real checkpoint.
  const std::string truncated = dir.file("truncated.safetensors");
  fs::copy_file(kFixture, truncated);
  fs::resize_file(truncated, fs::file_size(truncated) / 2);
  o.input = truncated;
  CHECK_THROWS_WITH_AS(run_convert(o), doctest::Contains("truncated.safetensors"), Error);
  o.input = kFixture;
  o.output = o.input;
  CHECK_THROWS_WITH_AS(run_convert(o), doctest::Contains("overwrite the input"), Error);
  CHECK_FALSE(fs::exists(dir.file("out.safetensors")));
}

TEST_CASE("resnet: the architecture is read from a state's names and shapes") {
  for (int depth : {18, 34, 50, 101}) {
    CAPTURE(depth);
    auto net = resnet::make_resnet({depth, 7, 16});
    std::map<std::string, Shape> shapes;
    for (auto& [name, t] : net->state()) shapes[name] = t.shape();
    resnet::ResNetConfig c = resnet::config_from_state(shapes, "test");
    CHECK(c.depth == depth);
    CHECK(c.width == 16);
    CHECK(c.num_outputs == 7);
  }
}

}  // namespace
}  // namespace hotlap
