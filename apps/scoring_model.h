// The model `hotlap score` scores with: a ResNet regressor with one output (the SCUT-FBP5500 score),
// loaded from either
//   a hotlap checkpoint (nn/checkpoint.h), as `hotlap train` writes RUN/best.safetensors, or
//   a PyTorch-layout state_dict in safetensors (torchvision/timm names; nn/torch_format.h).
// The architecture (depth, width, outputs) is read from the file's tensor names and shapes
// (resnet::config_from_state), from the header alone before any weight is read.
//
// How photos must be prepared for it comes from the checkpoint's metadata, as `hotlap train` records
// it (CheckpointInfo::extra):
//   "input.resize"       shorter side before the centre crop    decimal integer, 32..4096 (default 256)
//   "input.crop"         network input size                      decimal integer, 32..4096 (default 224)
//   "input.whole_image"  "1": the whole image resized to crop x crop, no crop; "0" (default)
// A PyTorch file has none of these and gets the defaults.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "resnet/resnet.h"

namespace hotlap {

struct ScoringModel {
  std::shared_ptr<resnet::ResNet> net;  // in eval mode, on the cpu
  resnet::ResNetConfig config;
  std::string description;  // "ResNet-50 (width 64), hotlap checkpoint, step 2000, input 256->224"
  int64_t resize = 256, crop = 224;
  bool whole_image = false;
  std::string source_kind;  // "hotlap checkpoint" or "PyTorch state_dict"
};

// Loads the model in `path`. A file that is missing, truncated, not a ResNet, a classifier rather than
// a one-output regressor, or has bad input.* metadata is an Error whose message names the file.
ScoringModel load_scoring_model(const std::string& path);

}  // namespace hotlap
