// hotlap convert: a torchvision-format file (written by PyTorch, tools/make_resnet_goldens.py) goes
// into a hotlap checkpoint and back out unchanged; bad inputs are clear errors.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "apps/cli_util.h"
#include "apps/cli/convert.h"
#include "apps/data/image.h"
#include "nn/runtime/autograd.h"
#include "nn/files/checkpoint.h"
#include "nn/runtime/random.h"
#include "nn/files/safetensors.h"
#include "nn/files/serialize.h"
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

// A narrow ResNet-18 regressor saved as hotlap train saves one: batch norms that have seen a batch,
// the evaluation transform 72 -> 64, a step, an epoch and metrics.
CheckpointInfo trained_info() {
  CheckpointInfo info;
  info.step = 321;
  info.epoch = 4;
  info.arch = "resnet18";
  info.extra = {{"input.resize", "72"},          {"input.crop", "64"},    {"input.whole_image", "0"},
                {"pearson", "0.87654321012345678"}, {"mae", "0.2345"},     {"rmse", "0.3456"},
                {"protocol", "60/40 split"},        {"compute_threads", "2"}};
  return info;
}

std::string save_regressor(const TempDir& dir, const std::string& name = "model.safetensors") {
  manual_seed(5);
  auto net = resnet::make_resnet({18, 1, 8});
  {
    NoGradGuard no_grad;
    net->train();
    net->forward(Tensor::from_vector({2, 32, 32, 3}, test::random_floats(2 * 32 * 32 * 3, 21)));
  }
  net->eval();
  const std::string path = dir.file(name);
  save_checkpoint(path, *net, nullptr, trained_info());
  return path;
}

TEST_CASE("convert: export then import keeps the input transform, the step, the epoch and the metrics") {
  TempDir dir;
  const std::string model = save_regressor(dir);
  ConvertOptions out;
  out.input = model;
  out.output = dir.file("model_pt.safetensors");
  CHECK(run_convert(out) == 0);
  const safetensors::File pt = safetensors::read_file(out.output);
  CHECK(pt.metadata.count("hotlap.format") == 0);  // a PyTorch-format file, not a checkpoint
  CHECK(pt.metadata.at("format") == "pt");
  CHECK(pt.metadata.at("generator") == "hotlap convert");
  CHECK(pt.metadata.at("arch") == "resnet18-w8");
  CHECK(pt.metadata.at("hotlap.input.resize") == "72");
  CHECK(pt.metadata.at("hotlap.input.crop") == "64");
  CHECK(pt.metadata.at("hotlap.input.whole_image") == "0");
  CHECK(pt.metadata.at("hotlap.step") == "321");
  CHECK(pt.metadata.at("hotlap.epoch") == "4");
  CHECK(pt.metadata.at("hotlap.source") == "model.safetensors");
  CHECK(pt.metadata.at("hotlap.extra.pearson") == "0.87654321012345678");
  CHECK(pt.metadata.at("hotlap.extra.protocol") == "60/40 split");
  CHECK(pt.at("conv1.weight").shape == std::vector<int64_t>{8, 3, 7, 7});  // OIHW

  ConvertOptions in;
  in.input = out.output;
  in.output = dir.file("back.safetensors");
  CHECK(run_convert(in) == 0);
  auto net = resnet::make_resnet({18, 1, 8});
  const CheckpointInfo back = load_checkpoint(in.output, *net, nullptr);
  const CheckpointInfo want = trained_info();
  CHECK(back.step == want.step);
  CHECK(back.epoch == want.epoch);
  for (const auto& [key, value] : want.extra) {
    CAPTURE(key);
    REQUIRE(back.extra.count(key) == 1);
    CHECK(back.extra.at(key) == value);
  }
  CHECK(back.extra.at("source") == in.input);
  CHECK(back.extra.at("exported_from") == "model.safetensors");
  CHECK(back.extra.size() == want.extra.size() + 2);
  // The weights too, bit for bit.
  const safetensors::File original = safetensors::read_file(model), again = safetensors::read_file(in.output);
  REQUIRE(again.records.size() == original.records.size());
  for (const auto& r : original.records) {
    CAPTURE(r.name);
    CHECK(again.at(r.name).bytes == r.bytes);
  }

  SUBCASE("a new head keeps the transform and the step, not the old head's metrics") {
    ConvertOptions head = in;
    head.output = dir.file("new_head.safetensors");
    head.new_head = true;
    head.outputs = 3;
    CHECK(run_convert(head) == 0);
    auto classifier = resnet::make_resnet({18, 3, 8});
    const CheckpointInfo h = load_checkpoint(head.output, *classifier, nullptr);
    CHECK(h.step == 321);
    CHECK(h.extra.at("input.resize") == "72");
    CHECK(h.extra.at("input.crop") == "64");
    CHECK(h.extra.at("head") == "new, 3 outputs");
    CHECK(h.extra.count("pearson") == 0);
    CHECK(h.extra.count("protocol") == 0);
  }
}

TEST_CASE("convert: a PyTorch file from elsewhere imports without a transform, step or metrics") {
  TempDir dir;
  ConvertOptions in;
  in.input = kFixture;
  in.output = dir.file("model.safetensors");
  CHECK(run_convert(in) == 0);
  auto net = resnet::make_resnet({18, 10, 8});
  const CheckpointInfo info = load_checkpoint(in.output, *net, nullptr);
  CHECK(info.step == 0);
  CHECK(info.epoch == 0);
  CHECK(info.extra == std::map<std::string, std::string>{{"source", kFixture}});
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

// The two-face picture of the face-detection golden, as a PNG.
std::string write_picture(const TempDir& dir) {
  const Tensor t = read_tensors(std::string(HOTLAP_TEST_DATA_DIR) + "/mtcnn_detect_golden.safetensors").at("image");
  Image img = make_image(t.dim(0), t.dim(1));
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = t.f32()[i] / 255.0f;
  const std::string path = dir.file("two_faces.png");
  write_png(path, img);
  return path;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

TEST_CASE("convert: a model exported to PyTorch format and imported back scores a photo exactly as before") {
  TempDir dir;
  const std::string model = save_regressor(dir), pt = dir.file("model_pt.safetensors"),
                    back = dir.file("back.safetensors"), photo = write_picture(dir);
  test::Run r = test::run("convert " + model + " " + pt);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("input 72->64") != std::string::npos);
  r = test::run("convert " + pt + " " + back);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("step 321, input 72->64") != std::string::npos);

  // Each file through hotlap score: CSV on stdout (the same bytes), and JSON with the description.
  std::vector<nlohmann::json> results;
  std::vector<std::string> tables;
  for (const std::string& file : {model, pt, back}) {
    CAPTURE(file);
    const std::string json = file + ".json";
    test::Run s = test::run("score --quiet --model " + file + " " + photo + " --format json --out " + json);
    CAPTURE(s.output);
    REQUIRE(s.status == 0);
    results.push_back(read_json(json));
    test::Run csv = test::run("score --quiet --model " + file + " " + photo + " --format csv");
    REQUIRE(csv.status == 0);
    tables.push_back(csv.output);
  }
  REQUIRE(results[0]["photos"].size() == 1);
  CHECK(results[0]["photos"][0]["error"].is_null());
  for (size_t i = 1; i < results.size(); ++i) {
    CAPTURE(i);
    CHECK(results[i]["photos"] == results[0]["photos"]);
    CHECK(tables[i] == tables[0]);
  }
  CHECK(results[0]["model_description"] == "ResNet-18 (width 8), hotlap checkpoint, step 321, input 72->64 (from the file)");
  CHECK(results[1]["model_description"] == "ResNet-18 (width 8), PyTorch state_dict, step 321, input 72->64 (from the file)");
  CHECK(results[2]["model_description"] == "ResNet-18 (width 8), hotlap checkpoint, step 321, input 72->64 (from the file)");

  // The transform decides the score: prepared as a torchvision model would be, the same photo scores
  // differently, so the equality above is not an accident of this model.
  const std::string other = dir.file("other.json");
  r = test::run("score --quiet --model " + pt + " " + photo + " --format json --out " + other + " --resize 256 --size 224");
  REQUIRE(r.status == 0);
  const nlohmann::json j = read_json(other);
  CHECK(j["photos"][0]["score"] != results[0]["photos"][0]["score"]);
  CHECK(j["model_description"] ==
        "ResNet-18 (width 8), PyTorch state_dict, step 321, input 256->224 (from --resize/--size; the file says 72->64)");
}

TEST_CASE("convert: an output that is the input by another spelling is refused, the input untouched") {
  TempDir dir;
  ConvertOptions o;
  o.input = dir.file("model.safetensors");
  ConvertOptions first;
  first.input = kFixture;
  first.output = o.input;
  REQUIRE(run_convert(first) == 0);
  const std::vector<uint8_t> before = test::read_bytes(o.input);
  o.output = dir.path.string() + "/./model.safetensors";
  o.new_head = true;
  CHECK_THROWS_WITH_AS(run_convert(o), doctest::Contains("would overwrite the input"), Error);
  CHECK(test::read_bytes(o.input) == before);
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

TEST_CASE("resnet: a state that claims a network it does not hold is refused before anything is built") {
  auto net = resnet::make_resnet({50, 3, 8});
  std::map<std::string, Shape> shapes;
  for (auto& [name, t] : net->state()) shapes[name] = t.shape();
  const Rng before = global_rng();
  CHECK(resnet::config_from_state(shapes, "ok.safetensors").width == 8);
  CHECK(std::equal(std::begin(before.state), std::end(before.state), std::begin(global_rng().state)));

  SUBCASE("a wide conv1 over the tensors of a narrow network: too few values for its parameters") {
    shapes["conv1.weight"] = {512, 7, 7, 3};
    CHECK_THROWS_WITH_AS(resnet::config_from_state(shapes, "small.safetensors"),
                         doctest::Contains("a ResNet-50 of width 512 with 3 outputs has"), Error);
  }
  SUBCASE("one value fewer than the network's parameters is refused, at every depth and head size") {
    for (int depth : {18, 50}) {
      for (int64_t outputs : {1, 1000}) {
        CAPTURE(depth);
        CAPTURE(outputs);
        auto exact = resnet::make_resnet({depth, outputs, 8});
        std::map<std::string, Shape> all;  // the parameters alone: as many values as it has parameters
        for (auto& [name, t] : exact->named_parameters()) all[name] = t.shape();
        CHECK(resnet::config_from_state(all, "exact.safetensors").num_outputs == outputs);
        all["bn1.bias"] = {7};  // 8 channels: one value short
        CHECK_THROWS_WITH_AS(resnet::config_from_state(all, "short.safetensors"),
                             doctest::Contains("tensors are missing or truncated"), Error);
      }
    }
  }
  SUBCASE("a head of 100,000 outputs over a narrow network's tensors is refused at once") {
    // (The tiny networks it builds to count parameters have one output: with 100,000 they took seconds
    // each, which the checkpoint fuzz target's time limit reported.)
    shapes["fc.weight"] = {100000, 256};
    CHECK_THROWS_WITH_AS(resnet::config_from_state(shapes, "head.safetensors"),
                         doctest::Contains("with 100000 outputs has"), Error);
  }
  SUBCASE("an empty dimension, which needs no data in a file") {
    shapes["layer2.0.conv2.weight"] = {0, 3, 3, 16};
    CHECK_THROWS_WITH_AS(resnet::config_from_state(shapes, "empty.safetensors"),
                         doctest::Contains("empty.safetensors: tensor layer2.0.conv2.weight has shape"), Error);
  }
  SUBCASE("a width or an output count beyond what hotlap builds") {
    shapes["conv1.weight"] = {4096, 7, 7, 3};
    CHECK_THROWS_WITH_AS(resnet::config_from_state(shapes, "wide.safetensors"),
                         doctest::Contains("widths up to 1024"), Error);
    shapes["conv1.weight"] = {8, 7, 7, 3};
    shapes["fc.weight"] = {1000000, 256};
    CHECK_THROWS_WITH_AS(resnet::config_from_state(shapes, "head.safetensors"),
                         doctest::Contains("1000000 outputs"), Error);
  }
}

}  // namespace
}  // namespace hotlap
