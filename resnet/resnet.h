// ResNet-18/34/50/101 built from nn modules, in the v1.5 layout torchvision uses (in a bottleneck the
// stride sits on the 3x3 convolution), with torchvision's parameter and buffer names:
//   conv1.weight, bn1.*, layer1.0.conv1.weight, layer1.0.downsample.0.weight, ..., fc.weight, fc.bias
// so torchvision and timm checkpoints load by name (nn/files/torch_format.h converts their layout).
//
// Input: NHWC [N, H, W, 3], H and W at least 32 (the network halves the size five times).
// Output: [N, num_outputs]; num_outputs = 1 is the regression head used for SCUT-FBP5500 scores,
// 1000 the ImageNet classifier.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/layers/module.h"

namespace hotlap::resnet {

struct ResNetConfig {
  int depth = 50;             // 18, 34, 50 or 101
  int64_t num_outputs = 1;    // width of the final linear layer
  int64_t width = 64;         // channels of the stem; torchvision's networks use 64. Smaller widths
                              // give the same topology and names with fewer parameters (tests).
};

// One residual block. BasicBlock (ResNet-18/34): two 3x3 convolutions. Bottleneck (ResNet-50/101):
// 1x1 down, 3x3 (with the stride), 1x1 up by 4. Both end in relu(main path + shortcut), where the
// shortcut is the input or, when the shape changes, downsample = a strided 1x1 conv and batch norm.
class Block : public Module {
 public:
  Block(bool bottleneck, int64_t in_channels, int64_t planes, int64_t stride);
  Tensor forward(const Tensor& x) override;
  int64_t out_channels() const { return out_channels_; }
  void fold_batch_norm();  // see ResNet::fuse_batch_norm

  struct Stage {
    std::shared_ptr<Conv2d> conv;
    std::shared_ptr<BatchNorm2d> bn;  // null once folded into conv
  };

 private:
  std::vector<Stage> main_;            // conv1/bn1, conv2/bn2 (, conv3/bn3)
  std::shared_ptr<Module> downsample_; // holds "0" (conv) and "1" (bn); null for the identity
  Stage shortcut_;
  int64_t out_channels_;
};

class ResNet : public Module {
 public:
  explicit ResNet(const ResNetConfig& config);
  Tensor forward(const Tensor& x) override;  // head(features(x))

  // The network in two parts, for callers that need the last convolutional activation (class
  // activation maps, feature extraction):
  //   features: stem (conv1, bn1, ReLU, max pool) and layer1..layer4: [N, H, W, 3] -> [N, h, w, C],
  //             h = ceil(H / 32), w = ceil(W / 32), C = feature_channels() = width * 8 (* 4 with
  //             bottlenecks)
  //   head:     global average pool and fc: [N, h, w, C] -> [N, num_outputs]
  Tensor features(const Tensor& x);
  Tensor head(const Tensor& features);
  int64_t feature_channels() const { return fc_->weight.dim(1); }
  const ResNetConfig& config() const { return config_; }

  // Folds every batch norm into the convolution before it, in place, for inference (eval mode only):
  // w' = w * gamma / sqrt(var + eps) per output channel, b' = beta - mean * gamma / sqrt(var + eps).
  // The names lose the bn tensors and gain conv biases; the network computes the eval-mode function
  // (to rounding), each convolution then adding its bias, the residual and the ReLU as it stores its
  // output (kernels/conv_shape.h: ConvEpilogue) where a batch norm pass did before. `hotlap score` runs its
  // model folded.
  void fold_batch_norm();
  bool batch_norm_folded() const { return bn1_ == nullptr; }
  // A folded copy; this network is left as it is.
  std::shared_ptr<ResNet> fuse_batch_norm() const;

 private:
  ResNetConfig config_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::vector<std::shared_ptr<Block>> blocks_;
  std::shared_ptr<Linear> fc_;
};

// Blocks per stage for each depth, and whether it uses bottlenecks.
std::vector<int> stage_blocks(int depth);
bool uses_bottleneck(int depth);

std::shared_ptr<ResNet> make_resnet(const ResNetConfig& config);

// The ResNet a state belongs to, from its tensor names and shapes (torchvision names; either
// layout): depth from the blocks in layer3 and whether blocks have a conv3, width from conv1,
// num_outputs from fc. Throws an Error naming `origin` when the names are not a ResNet's, when a
// tensor has an empty dimension, when the width or the outputs exceed kMaxWidth / kMaxOutputs, or when
// the state holds fewer values than the network has parameters (so that a small or hostile file is
// refused before a large network is built for it).
inline constexpr int64_t kMaxWidth = 1024, kMaxOutputs = 100000;
ResNetConfig config_from_state(const std::map<std::string, Shape>& shapes, const std::string& origin);

}  // namespace hotlap::resnet
