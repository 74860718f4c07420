// The model hotlap score loads: a one-output ResNet from a hotlap checkpoint or a PyTorch state_dict,
// computing what was saved, with its input settings from the file's metadata or from --resize and
// --size (never a silent default); classifiers, non-ResNets, broken files and bad settings are errors
// that name the file, bad options errors that name the options.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "apps/cli_util.h"
#include "apps/data/image.h"
#include "apps/score/scoring_model.h"
#include "kernels/error.h"
#include "nn/runtime/autograd.h"
#include "nn/files/checkpoint.h"
#include "nn/runtime/random.h"
#include "nn/files/safetensors.h"
#include "nn/files/torch_format.h"
#include "resnet/resnet.h"
#include "test_util.h"

namespace hotlap {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

const std::string kTorchClassifier = std::string(HOTLAP_TEST_DATA_DIR) + "/tv_resnet18_w8_f32.safetensors";

// A narrow ResNet-18 whose batch norms have seen one batch, so their running statistics are not the
// defaults and a load that missed them would show.
std::shared_ptr<resnet::ResNet> tiny_resnet(int64_t outputs) {
  manual_seed(3);
  auto net = resnet::make_resnet({18, outputs, 8});
  NoGradGuard no_grad;
  net->train();
  net->forward(Tensor::from_vector({2, 32, 32, 3}, test::random_floats(2 * 32 * 32 * 3, 11)));
  net->eval();
  return net;
}

std::vector<float> outputs_of(resnet::ResNet& net) {
  NoGradGuard no_grad;
  return net.forward(Tensor::from_vector({2, 64, 64, 3}, test::random_floats(2 * 64 * 64 * 3, 12))).to_vector();
}

// A scoring model runs its network with batch norm folded in: it computes exactly what the folded
// original does (so every tensor was loaded), and the original's function to rounding.
// (1e-4: folding rounds each weight once more, as in resnet's own folding test.)
void check_computes(resnet::ResNet& loaded, resnet::ResNet& original) {
  CHECK(loaded.batch_norm_folded());
  const std::vector<float> got = outputs_of(loaded);
  CHECK(got == outputs_of(*original.fuse_batch_norm()));
  CHECK(test::max_rel_error(got, outputs_of(original)) < 1e-4);
}

std::string save(const TempDir& dir, const std::string& name, const resnet::ResNet& net,
                 const std::map<std::string, std::string>& extra, int64_t step = 123) {
  CheckpointInfo info;
  info.step = step;
  info.arch = "resnet18-w8";
  info.extra = extra;
  const std::string path = dir.file(name);
  save_checkpoint(path, net, nullptr, info);
  return path;
}

TEST_CASE("scoring model: a hotlap checkpoint loads with its input settings, in eval mode") {
  TempDir dir;
  auto net = tiny_resnet(1);
  const std::string path =
      save(dir, "best.safetensors", *net, {{"input.resize", "300"}, {"input.crop", "256"}, {"input.whole_image", "0"}});
  ScoringModel m = load_scoring_model(path);
  REQUIRE(m.net);
  CHECK_FALSE(m.net->is_training());
  CHECK(m.config.depth == 18);
  CHECK(m.config.width == 8);
  CHECK(m.config.num_outputs == 1);
  CHECK(m.resize == 300);
  CHECK(m.crop == 256);
  CHECK_FALSE(m.whole_image);
  CHECK(m.source_kind == "hotlap checkpoint");
  CHECK_FALSE(m.input_overridden);
  CHECK(m.description == "ResNet-18 (width 8), hotlap checkpoint, step 123, input 300->256 (from the file)");
  check_computes(*m.net, *net);

  // --resize/--size win over the file, and the description says so.
  ScoringModel o = load_scoring_model(path, {128, 96});
  CHECK(o.resize == 128);
  CHECK(o.crop == 96);
  CHECK(o.input_overridden);
  CHECK(o.description ==
        "ResNet-18 (width 8), hotlap checkpoint, step 123, input 128->96 (from --resize/--size; the file says 300->256)");
}

TEST_CASE("scoring model: without input settings there is no default, --resize and --size give them") {
  TempDir dir;
  auto net = tiny_resnet(1);
  const std::string plain = save(dir, "plain.safetensors", *net, {{"pearson", "0.9"}}, 2000);
  const std::string message = plain +
                              " does not say how photos must be prepared for it (no input.resize and input.crop in "
                              "its checkpoint metadata): give --resize and --size (e.g. --resize 256 --size 224 for "
                              "a torchvision-style model)";
  CHECK_THROWS_WITH_AS(load_scoring_model(plain), message.c_str(), Error);
  ScoringModel m = load_scoring_model(plain, {256, 224});
  CHECK(m.resize == 256);
  CHECK(m.crop == 224);
  CHECK_FALSE(m.whole_image);
  CHECK(m.description == "ResNet-18 (width 8), hotlap checkpoint, step 2000, input 256->224 (from --resize/--size)");
  check_computes(*m.net, *net);

  // The whole image at 350: the crop may exceed the (unused, absent) resize.
  ScoringModel whole = load_scoring_model(
      save(dir, "whole.safetensors", *net, {{"input.crop", "350"}, {"input.whole_image", "1"}}, 7));
  CHECK(whole.whole_image);
  CHECK(whole.crop == 350);
  CHECK(whole.description == "ResNet-18 (width 8), hotlap checkpoint, step 7, input whole image at 350 (from the file)");
}

TEST_CASE("scoring model: a PyTorch state_dict written by export_torch_state loads") {
  TempDir dir;
  auto net = tiny_resnet(1);

  SUBCASE("without hotlap metadata it needs --resize and --size") {
    const std::string path = dir.file("regressor_pt.safetensors");
    export_torch_state(*net, path, {{"arch", "resnet18-w8"}}, 5);
    const std::string message = path +
                                " does not say how photos must be prepared for it (no hotlap.input.resize and "
                                "hotlap.input.crop in its metadata): give --resize and --size (e.g. --resize 256 "
                                "--size 224 for a torchvision-style model)";
    CHECK_THROWS_WITH_AS(load_scoring_model(path), message.c_str(), Error);
    ScoringModel m = load_scoring_model(path, {256, 224});
    CHECK(m.source_kind == "PyTorch state_dict");
    CHECK(m.description == "ResNet-18 (width 8), PyTorch state_dict, input 256->224 (from --resize/--size)");
    CHECK(m.resize == 256);
    CHECK(m.crop == 224);
    CHECK_FALSE(m.net->is_training());
    check_computes(*m.net, *net);
  }
  SUBCASE("with the transform hotlap convert writes, it reads it, and the step") {
    CheckpointInfo info;
    info.step = 123;
    info.extra = {{"input.resize", "300"}, {"input.crop", "256"}, {"input.whole_image", "0"}, {"pearson", "0.9"}};
    const std::string path = dir.file("exported.safetensors");
    export_torch_state(*net, path, torch_provenance_metadata(info, "best.safetensors"), 123);
    ScoringModel m = load_scoring_model(path);
    CHECK(m.resize == 300);
    CHECK(m.crop == 256);
    CHECK_FALSE(m.whole_image);
    CHECK(m.description == "ResNet-18 (width 8), PyTorch state_dict, step 123, input 300->256 (from the file)");
    check_computes(*m.net, *net);
    ScoringModel o = load_scoring_model(path, {256, 224});
    CHECK(o.crop == 224);
    CHECK(o.description ==
          "ResNet-18 (width 8), PyTorch state_dict, step 123, input 256->224 (from --resize/--size; the file says "
          "300->256)");
  }
  SUBCASE("bad hotlap.input metadata is refused like a checkpoint's, naming the file and the key") {
    const std::vector<std::pair<std::map<std::string, std::string>, std::string>> bad = {
        {{{"hotlap.input.resize", "abc"}, {"hotlap.input.crop", "224"}}, "metadata \"hotlap.input.resize\" is \"abc\""},
        {{{"hotlap.input.resize", "256"}, {"hotlap.input.crop", "8"}}, "metadata \"hotlap.input.crop\" is \"8\""},
        {{{"hotlap.input.resize", "256"}, {"hotlap.input.crop", "224"}, {"hotlap.input.whole_image", "yes"}},
         "metadata \"hotlap.input.whole_image\" is \"yes\""},
        {{{"hotlap.input.resize", "200"}, {"hotlap.input.crop", "224"}},
         "metadata says hotlap.input.crop 224 but hotlap.input.resize 200"},
        {{{"hotlap.input.resize", "256"}}, "metadata has hotlap.input.resize but no hotlap.input.crop"},
        {{{"hotlap.input.crop", "224"}}, "metadata has hotlap.input.crop but no hotlap.input.resize"}};
    for (const auto& [metadata, expected] : bad) {
      CAPTURE(expected);
      const std::string path = dir.file("bad_pt.safetensors");
      export_torch_state(*net, path, metadata);
      CHECK_THROWS_WITH_AS(load_scoring_model(path), doctest::Contains((path + ": " + expected).c_str()), Error);
    }
  }
}

TEST_CASE("scoring model: a classifier is refused, naming the file and what to do") {
  TempDir dir;
  auto net = tiny_resnet(3);
  const std::string path = save(dir, "classifier.safetensors", *net, {});
  const std::string message = path +
                              ": a ResNet-18 classifier with 3 outputs, not a score regressor (train one with "
                              "hotlap train, or convert with --new-head and fine-tune; hotlap predict runs a "
                              "classifier)";
  CHECK_THROWS_WITH_AS(load_scoring_model(path), message.c_str(), Error);
  // A torchvision file with a 10-class head.
  CHECK_THROWS_WITH_AS(load_scoring_model(kTorchClassifier),
                       doctest::Contains("tv_resnet18_w8_f32.safetensors: a ResNet-18 classifier with 10 outputs"),
                       Error);
}

TEST_CASE("scoring model: missing, truncated and non-ResNet files are errors naming the file") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(load_scoring_model(dir.file("missing.safetensors")), doctest::Contains("missing.safetensors"),
                       Error);

  auto net = tiny_resnet(1);
  const std::string good = save(dir, "good.safetensors", *net, {{"input.resize", "72"}, {"input.crop", "64"}});
  for (double fraction : {0.5, 0.999}) {
    CAPTURE(fraction);
    const std::string truncated = dir.file("truncated.safetensors");
    fs::remove(truncated);
    fs::copy_file(good, truncated);
    fs::resize_file(truncated, static_cast<uintmax_t>(static_cast<double>(fs::file_size(good)) * fraction));
    CHECK_THROWS_WITH_AS(load_scoring_model(truncated), doctest::Contains("truncated.safetensors"), Error);
  }
  // Cut inside the header.
  const std::string stub = dir.file("stub.safetensors");
  fs::copy_file(good, stub);
  fs::resize_file(stub, 20);
  CHECK_THROWS_WITH_AS(load_scoring_model(stub), doctest::Contains("stub.safetensors"), Error);

  // Not a ResNet: the small CNN of the PyTorch goldens, and a file of two unrelated tensors.
  const std::string golden = std::string(HOTLAP_TEST_DATA_DIR) + "/golden_small_cnn.safetensors";
  CHECK_THROWS_WITH_AS(load_scoring_model(golden), doctest::Contains("golden_small_cnn.safetensors: not a ResNet"),
                       Error);
  safetensors::File other;
  const std::vector<float> values(6, 1.0f);
  other.records.push_back(safetensors::make_f32("encoder.weight", {2, 3}, values.data()));
  other.records.push_back(safetensors::make_f32("decoder.weight", {3, 2}, values.data()));
  const std::string not_resnet = dir.file("autoencoder.safetensors");
  safetensors::write_file(not_resnet, other);
  CHECK_THROWS_WITH_AS(load_scoring_model(not_resnet), doctest::Contains("autoencoder.safetensors: not a ResNet"),
                       Error);

  // Not a safetensors file at all.
  const std::string text = dir.file("notes.safetensors");
  std::ofstream(text) << "these are not the tensors you are looking for\n";
  CHECK_THROWS_WITH_AS(load_scoring_model(text), doctest::Contains("notes.safetensors"), Error);

  // A hotlap checkpoint whose weights do not fit the architecture its names describe.
  safetensors::File mixed = safetensors::read_file(good);
  for (auto& r : mixed.records)
    if (r.name == "model.layer1.0.bn1.running_var") r = safetensors::make_f32(r.name, {2}, values.data());
  const std::string misfit = dir.file("misfit.safetensors");
  safetensors::write_file(misfit, mixed);
  CHECK_THROWS_WITH_AS(load_scoring_model(misfit), doctest::Contains("misfit.safetensors"), Error);
}

TEST_CASE("scoring model: bad input settings are refused, naming the file and the key") {
  TempDir dir;
  auto net = tiny_resnet(1);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"input.resize", "abc"}, {"input.resize", "16"},  {"input.resize", "0"},        {"input.resize", "-256"},
      {"input.resize", ""},    {"input.crop", "224.5"}, {"input.crop", "99999"},      {"input.crop", " 224"},
      {"input.whole_image", "yes"}, {"input.whole_image", "2"}, {"input.whole_image", ""}};
  for (const auto& [key, value] : bad) {
    CAPTURE(key);
    CAPTURE(value);
    const std::string path = save(dir, "bad.safetensors", *net, {{key, value}});
    const std::string expected = path + ": checkpoint metadata \"" + key + "\"";
    CHECK_THROWS_WITH_AS(load_scoring_model(path), doctest::Contains(expected.c_str()), Error);
  }
  // A centre crop larger than the resized image.
  const std::string path = save(dir, "crop.safetensors", *net, {{"input.resize", "200"}, {"input.crop", "224"}});
  CHECK_THROWS_WITH_AS(load_scoring_model(path), doctest::Contains("crop.safetensors"), Error);
  CHECK_THROWS_WITH_AS(load_scoring_model(path), doctest::Contains("input.crop 224 but input.resize 200"), Error);
  // Half a transform.
  const std::string half = save(dir, "half.safetensors", *net, {{"input.crop", "224"}});
  CHECK_THROWS_WITH_AS(load_scoring_model(half),
                       doctest::Contains((half + ": checkpoint metadata has input.crop but no input.resize").c_str()),
                       Error);
}

TEST_CASE("scoring model: bad --resize/--size values are refused, naming the options") {
  TempDir dir;
  auto net = tiny_resnet(1);
  const std::string path = save(dir, "best.safetensors", *net, {{"input.resize", "72"}, {"input.crop", "64"}});
  CHECK_THROWS_WITH_AS(load_scoring_model(path, {256, 0}),
                       "--resize and --size go together: give both (only --resize was given)", Error);
  CHECK_THROWS_WITH_AS(load_scoring_model(path, {0, 224}),
                       "--resize and --size go together: give both (only --size was given)", Error);
  CHECK_THROWS_WITH_AS(load_scoring_model(path, {16, 16}),
                       "--resize 16 is out of range: a whole number of pixels from 32 to 4096", Error);
  CHECK_THROWS_WITH_AS(load_scoring_model(path, {256, 5000}),
                       "--size 5000 is out of range: a whole number of pixels from 32 to 4096", Error);
  CHECK_THROWS_WITH_AS(load_scoring_model(path, {-256, 224}), doctest::Contains("--resize -256 is out of range"), Error);
  CHECK_THROWS_WITH_AS(load_scoring_model(path, {200, 224}),
                       "--size 224 is larger than --resize 200: the centre crop cannot be larger than the resized "
                       "image",
                       Error);
  // The options are checked before the file is read.
  CHECK_THROWS_WITH_AS(load_scoring_model(dir.file("missing.safetensors"), {200, 224}),
                       doctest::Contains("--size 224 is larger than --resize 200"), Error);
}

TEST_CASE("scoring model: hotlap score with a PyTorch file without a transform needs --resize and --size") {
  TempDir dir;
  auto net = tiny_resnet(1);
  const std::string checkpoint =
      save(dir, "best.safetensors", *net, {{"input.resize", "72"}, {"input.crop", "64"}, {"input.whole_image", "0"}});
  const std::string pt = dir.file("from_elsewhere.safetensors");
  export_torch_state(*net, pt, {{"arch", "resnet18"}});  // no hotlap.* metadata, as torchvision writes
  Image photo = make_image(90, 120);
  for (size_t i = 0; i < photo.pixels.size(); ++i) photo.pixels[i] = static_cast<float>((i * 37) % 101) / 100.0f;
  const std::string png = dir.file("photo.png");
  write_png(png, photo);
  const std::string out = dir.file("scores.csv");
  const std::string args = "score --quiet --no-face-crop --format csv --model ";

  test::Run r = test::run(args + pt + " " + png + " --out " + out);
  CAPTURE(r.output);
  CHECK(r.status != 0);
  CHECK(r.output.find("from_elsewhere.safetensors does not say how photos must be prepared for it") !=
        std::string::npos);
  CHECK(r.output.find("give --resize and --size") != std::string::npos);
  CHECK_FALSE(fs::exists(out));

  // With them it scores, exactly as the checkpoint that records the same transform.
  r = test::run(args + pt + " " + png + " --resize 72 --size 64 --out " + out);
  REQUIRE(r.status == 0);
  const std::vector<uint8_t> scored = test::read_bytes(out);
  r = test::run(args + checkpoint + " " + png + " --out " + out);
  REQUIRE(r.status == 0);
  CHECK(test::read_bytes(out) == scored);
  CHECK(std::string(scored.begin(), scored.end()).find(",photo,") != std::string::npos);

  SUBCASE("bad values are refused before anything is written") {
    fs::remove(out);
    for (const char* options : {"--resize 16 --size 16", "--resize 256 --size 0", "--resize abc --size 224",
                                "--resize 256", "--size 224", "--resize 200 --size 224"}) {
      CAPTURE(options);
      const test::Run bad = test::run(args + pt + " " + png + " " + options + " --out " + out);
      CAPTURE(bad.output);
      CHECK(bad.status != 0);
      CHECK((bad.output.find("--resize") != std::string::npos || bad.output.find("--size") != std::string::npos));
      CHECK_FALSE(fs::exists(out));
    }
    const test::Run larger = test::run(args + pt + " " + png + " --resize 200 --size 224 --out " + out);
    CHECK(larger.output.find("--size 224 is larger than --resize 200") != std::string::npos);
  }
}

}  // namespace
}  // namespace hotlap
