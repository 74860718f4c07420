// Fuzz target: from a state file to a network, the way `hotlap score`, `hotlap convert` and
// `hotlap train --resume` go from one to the other.
//
// The input is a safetensors file (a hotlap checkpoint or a PyTorch state_dict), written to a scratch
// file since the loaders take paths. Four loads, each allowed to refuse the file with a hotlap::Error:
//   1. load_scoring_model(path): the architecture from the tensor names and shapes, the evaluation
//      transform from the metadata, then the weights (apps/score/scoring_model.h);
//   2. the same with the caller's transform (score --resize 256 --size 224), which reaches the network
//      for files that record none;
//   3. load_classifier(path), as `hotlap predict` loads a model: a classifier, its class names from the
//      metadata (a JSON list) or numbered;
//   4. what convert and resume do: config_from_state, make_resnet, then load_checkpoint (with an
//      optimizer of the kind the file records, so its state is loaded too) or import_torch_state
//      (not strict, a new head: the lenient path that reports rather than refuses).
// The network is built as the file describes it, and nothing runs it. config_from_state promises that
// a small file cannot make a large network, so an input that makes a load take gigabytes or seconds is
// a finding (libFuzzer's -rss_limit_mb and -timeout), like a crash.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "apps/score/scoring_model.h"
#include "fuzz/fuzz_util.h"
#include "nn/files/checkpoint.h"
#include "nn/layers/optim.h"
#include "nn/runtime/random.h"
#include "nn/files/safetensors.h"
#include "nn/files/torch_format.h"
#include "resnet/resnet.h"

namespace fz = hotlap::fuzz;

namespace {

void check_classifier(const hotlap::ScoringModel& m) {
  const char* what = "load_classifier";
  HOTLAP_FUZZ_REQUIRE(m.net != nullptr && m.config.num_outputs >= 2, what, "returned no network or not a classifier");
  HOTLAP_FUZZ_REQUIRE(static_cast<int64_t>(m.classes.size()) == m.config.num_outputs, what,
                      "returned " + std::to_string(m.classes.size()) + " class names for " +
                          std::to_string(m.config.num_outputs) + " outputs");
}

void check_scoring_model(const hotlap::ScoringModel& m, bool overridden) {
  const char* what = "load_scoring_model";
  HOTLAP_FUZZ_REQUIRE(m.net != nullptr && m.config.num_outputs == 1, what,
                      "returned no network or not a regressor");
  HOTLAP_FUZZ_REQUIRE(m.input_overridden == overridden, what, "input_overridden is wrong");
  HOTLAP_FUZZ_REQUIRE(
      m.crop >= 32 && m.crop <= 4096 && (m.whole_image || (m.crop <= m.resize && m.resize <= 4096)), what,
      "returned the transform " + std::to_string(m.resize) + "->" + std::to_string(m.crop) +
          " outside what the metadata may say");
}

// hotlap convert's and train --resume's way: the network the names describe, then the weights.
void build_and_load(const std::string& path) {
  const hotlap::safetensors::File file = hotlap::safetensors::read_header(path);  // the weights: below
  const bool hotlap_checkpoint = file.metadata.count("hotlap.format") > 0;
  std::map<std::string, hotlap::Shape> shapes;
  for (const auto& r : file.records) {
    if (!hotlap_checkpoint)
      shapes[r.name] = hotlap::Shape(r.shape);
    else if (r.name.rfind("model.", 0) == 0)
      shapes[r.name.substr(6)] = hotlap::Shape(r.shape);
  }
  const hotlap::resnet::ResNetConfig config = hotlap::resnet::config_from_state(shapes, path);
  auto model = hotlap::resnet::make_resnet(config);
  if (!hotlap_checkpoint) {
    hotlap::ImportOptions options;
    options.strict = false;
    options.skip_prefixes = {"fc."};
    const hotlap::ImportReport report = hotlap::import_torch_state(*model, path, options);
    (void)report.summary();
    return;
  }
  std::unique_ptr<hotlap::Optimizer> optimizer;
  const auto kind = file.metadata.find("optimizer");
  if (kind != file.metadata.end() && kind->second == "sgd") {
    hotlap::SgdOptions sgd;
    sgd.momentum = 0.9;  // as hotlap train's SGD has it, so that momentum buffers are loaded, not refused
    optimizer = std::make_unique<hotlap::SGD>(model->named_parameters(), sgd);
  }
  if (kind != file.metadata.end() && kind->second == "adamw")
    optimizer = std::make_unique<hotlap::AdamW>(model->named_parameters(), hotlap::AdamWOptions{});
  hotlap::load_checkpoint(path, *model, optimizer.get());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fz::single_threaded();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fz::ScratchDir scratch("checkpoint");
  const std::string path = scratch / "model.safetensors";
  fz::write_bytes(path, data, size);
  hotlap::manual_seed(0);  // the networks' initial weights, so that a rerun of an input is the same run

  fz::refuses_cleanly("load_scoring_model",
                      [&] { check_scoring_model(hotlap::load_scoring_model(path), false); });
  fz::refuses_cleanly("load_scoring_model", [&] {
    check_scoring_model(hotlap::load_scoring_model(path, hotlap::InputOverride{256, 224}), true);
  });
  fz::refuses_cleanly("load_classifier",
                      [&] { check_classifier(hotlap::load_classifier(path, hotlap::InputOverride{256, 224})); });
  fz::refuses_cleanly("config_from_state + load_checkpoint / import_torch_state",
                      [&] { build_and_load(path); });

  std::filesystem::remove(path);
  return 0;
}
