// The model `hotlap score` scores with: a ResNet regressor with one output (the SCUT-FBP5500 score);
// and the one `hotlap predict` classifies with: a ResNet classifier (load_classifier). Either is loaded
// from
//   a hotlap checkpoint (nn/files/checkpoint.h), as `hotlap train` writes RUN/best.safetensors, or
//   a PyTorch-layout state_dict in safetensors (torchvision/timm names; nn/files/torch_format.h).
// The architecture (depth, width, outputs) is read from the file's tensor names and shapes
// (resnet::config_from_state), from the header alone before any weight is read.
//
// How photos must be prepared for it (the evaluation transform) comes from the file's metadata:
//   a hotlap checkpoint's extra entries, as `hotlap train` records them (CheckpointInfo::extra),
//   "input.resize"       shorter side before the centre crop    decimal integer, 32..4096
//   "input.crop"         network input size                      decimal integer, 32..4096, <= resize
//   "input.whole_image"  "1": the whole image resized to crop x crop, no crop (resize may then be
//                        absent); "0" or absent: resize, then centre crop
// or the same entries under "hotlap.input." in a PyTorch file that `hotlap convert` exported
// (nn/files/torch_format.h). A file with neither (a PyTorch file from elsewhere, a checkpoint imported from
// one) does not say how photos must be prepared, and there is no default: the caller gives the
// transform (hotlap score's --resize and --size), and loading without it is an Error. A transform
// the caller gives wins over the file's; the description says which was used.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/data/image.h"
#include "resnet/resnet.h"

namespace hotlap {

struct ScoringModel {
  std::shared_ptr<resnet::ResNet> net;  // in eval mode, batch norm folded (ResNet::fold_batch_norm), on the cpu
  resnet::ResNetConfig config;
  // "ResNet-50 (width 64), hotlap checkpoint, step 2000, input 256->224 (from the file)", or
  // "..., input 256->224 (from --resize/--size)" when the caller's transform was used.
  std::string description;
  int64_t resize = 0, crop = 0;  // the evaluation transform used (resize unused with whole_image)
  bool whole_image = false;
  bool input_overridden = false;  // the transform is the caller's (InputOverride), not the file's
  std::string source_kind;        // "hotlap checkpoint" or "PyTorch state_dict"
  // The held-out Pearson correlation `hotlap train` recorded for this model ("pearson" in the
  // checkpoint's extra entries, "hotlap.extra.pearson" in a converted file); NaN when not recorded.
  double pearson = NAN;
  // A classifier's class names by output index: the checkpoint's "classes" entry (hotlap train --task
  // classify records it); "0", "1", ... for a file without one (torchvision's ImageNet weights). Empty
  // for a regressor.
  std::vector<std::string> classes;
  bool class_names_known = false;  // the names came from the file
  double top1 = NAN;               // the held-out top-1 accuracy train recorded ("top1"); NaN when not recorded
};

// The caller's evaluation transform, as hotlap score's --resize and --size give it: shorter side to
// `resize`, centre crop `crop`. Both 0: use the file's. Otherwise both must be given, each from 32 to
// 4096 pixels, crop <= resize; it then wins over the file's.
struct InputOverride {
  int64_t resize = 0, crop = 0;
};

// Loads the model in `path`. A file that is missing, truncated, not a ResNet, a classifier rather than
// a one-output regressor, or has bad input metadata is an Error whose message names the file; so is
// a file without a transform when `input` gives none. A bad `input` is an Error naming the options.
ScoringModel load_scoring_model(const std::string& path, const InputOverride& input = {});

// The same for a classifier: a ResNet with two or more outputs (a regressor is an Error naming the
// file), its class names from the file when it has them.
ScoringModel load_classifier(const std::string& path, const InputOverride& input = {});

// What the network sees of a photo: the model's evaluation transform (evaluation_view, apps/data/loader.h:
// the shorter side to `resize` and the centre crop, or the whole image at `crop`).
Image model_view(const ScoringModel& model, const Image& photo);
// A view as the network's input: normalised with ImageNet's statistics, NHWC, a batch of one, on the
// model's device.
Tensor network_input(const ScoringModel& model, const Image& view);

// How photos are prepared, as the descriptions say it: "256->224", or "whole image at 350".
std::string input_transform_text(const std::string& resize, const std::string& crop, bool whole_image);

}  // namespace hotlap
