// What the scoring tests share: the face detector's weights, and a narrow random regressor saved as
// `hotlap train` saves one (the pipeline is under test, not the model's quality).
#pragma once

#include <cstdint>
#include <string>

#include "nn/files/checkpoint.h"
#include "nn/runtime/random.h"
#include "resnet/resnet.h"
#include "test_util.h"

namespace hotlap::test {

inline const std::string kMtcnnWeights = std::string(HOTLAP_TEST_DATA_DIR) + "/../../models/mtcnn.safetensors";

// A ResNet-18 of width 8 with `outputs` outputs (1: a regressor, model.safetensors; more: a classifier,
// classifier.safetensors), preparing photos as 72 -> 64.
inline std::string save_model(const TempDir& dir, int64_t outputs = 1) {
  manual_seed(5);
  auto net = resnet::make_resnet({18, outputs, 8});
  net->eval();
  CheckpointInfo info;
  info.arch = "resnet18";
  info.extra = {{"input.resize", "72"}, {"input.crop", "64"}, {"input.whole_image", "0"}};
  const std::string path = dir.file(outputs == 1 ? "model.safetensors" : "classifier.safetensors");
  save_checkpoint(path, *net, nullptr, info);
  return path;
}

}  // namespace hotlap::test
