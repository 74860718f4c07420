#include "resnet/resnet.h"

#include <cmath>
#include <new>
#include <string>

#include "nn/runtime/autograd.h"
#include "nn/layers/ops.h"
#include "nn/runtime/random.h"

namespace hotlap::resnet {

std::vector<int> stage_blocks(int depth) {
  switch (depth) {
    case 18: return {2, 2, 2, 2};
    case 34: return {3, 4, 6, 3};
    case 50: return {3, 4, 6, 3};
    case 101: return {3, 4, 23, 3};
    default: throw_error("resnet: depth ", depth, " is not one of 18, 34, 50, 101");
  }
}

bool uses_bottleneck(int depth) { return depth >= 50; }

// torchvision's initialisation: convolutions kaiming_normal(fan_out, relu), i.e. normal with
// sd = sqrt(2 / (out_channels * k * k)); batch norm gamma 1, beta 0 (the BatchNorm2d default).
static std::shared_ptr<Conv2d> make_conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  auto conv = std::make_shared<Conv2d>(in, out, k, stride, pad, false);
  if (!SkipParameterInit::active()) fill_normal(conv->weight, 0.0, std::sqrt(2.0 / static_cast<double>(out * k * k)));
  return conv;
}

namespace {

// torchvision's downsample is nn.Sequential(conv, bn): children named "0" and "1".
class Downsample : public Module {
 public:
  Tensor forward(const Tensor& x) override { throw_error("Downsample: called through its Block"); }
  void add(const std::string& name, std::shared_ptr<Module> m) { register_module(name, std::move(m)); }
  using Module::remove_module;
};

}  // namespace

Block::Block(bool bottleneck, int64_t in, int64_t planes, int64_t stride) {
  const int64_t expansion = bottleneck ? 4 : 1;
  out_channels_ = planes * expansion;
  auto stage = [&](int index, int64_t cin, int64_t cout, int64_t k, int64_t s) {
    const std::string n = std::to_string(index);
    Stage st{register_module("conv" + n, make_conv(cin, cout, k, s, k / 2)),
             register_module("bn" + n, std::make_shared<BatchNorm2d>(cout))};
    main_.push_back(st);
  };
  if (bottleneck) {
    stage(1, in, planes, 1, 1);
    stage(2, planes, planes, 3, stride);  // v1.5: the stride is on the 3x3
    stage(3, planes, out_channels_, 1, 1);
  } else {
    stage(1, in, planes, 3, stride);
    stage(2, planes, planes, 3, 1);
  }
  if (stride != 1 || in != out_channels_) {
    auto down = std::make_shared<Downsample>();
    shortcut_.conv = make_conv(in, out_channels_, 1, stride, 0);
    shortcut_.bn = std::make_shared<BatchNorm2d>(out_channels_);
    down->add("0", shortcut_.conv);
    down->add("1", shortcut_.bn);
    downsample_ = register_module("downsample", down);
  }
}

// conv, then batch norm with the epilogue fused into it (residual add, ReLU). Once the batch norm
// has been folded into the convolution (fuse_batch_norm), the convolution stores its output through
// the epilogue itself (ops::conv2d with a residual): one pass over the output instead of two.
static Tensor conv_bn(const Block::Stage& st, const Tensor& in, const Tensor& residual, bool relu) {
  if (st.bn) return st.bn->forward(st.conv->forward(in), residual, relu);
  return st.conv->forward(in, residual, relu);
}

Tensor Block::forward(const Tensor& x) {
  const Tensor identity = shortcut_.conv ? conv_bn(shortcut_, x, Tensor(), false) : x;
  Tensor y = x;
  for (size_t i = 0; i + 1 < main_.size(); ++i) y = conv_bn(main_[i], y, Tensor(), true);
  return conv_bn(main_.back(), y, identity, true);  // relu(bn3(conv3(y)) + identity)
}

void Block::fold_batch_norm() {
  for (size_t i = 0; i < main_.size(); ++i) {
    if (!main_[i].bn) continue;
    main_[i].conv->fold_batch_norm(*main_[i].bn);
    remove_module("bn" + std::to_string(i + 1));
    main_[i].bn = nullptr;
  }
  if (shortcut_.bn) {
    shortcut_.conv->fold_batch_norm(*shortcut_.bn);
    std::static_pointer_cast<Downsample>(downsample_)->remove_module("1");
    shortcut_.bn = nullptr;
  }
}

ResNet::ResNet(const ResNetConfig& config) : config_(config) {
  const std::vector<int> blocks = stage_blocks(config.depth);
  const bool bottleneck = uses_bottleneck(config.depth);
  HOTLAP_CHECK(config.num_outputs >= 1 && config.width >= 1, "resnet: num_outputs (", config.num_outputs,
               ") and width (", config.width, ") must be positive");
  const int64_t w = config.width;
  conv1_ = register_module("conv1", make_conv(3, w, 7, 2, 3));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(w));
  int64_t channels = w;
  for (int stage = 0; stage < 4; ++stage) {
    auto layer = std::make_shared<Sequential>();
    const int64_t planes = w << stage;
    for (int b = 0; b < blocks[stage]; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      auto block = std::make_shared<Block>(bottleneck, channels, planes, stride);
      channels = block->out_channels();
      layer->add(block);
      blocks_.push_back(block);
    }
    register_module("layer" + std::to_string(stage + 1), layer);
  }
  fc_ = register_module("fc", std::make_shared<Linear>(channels, config.num_outputs));
}

Tensor ResNet::features(const Tensor& x) {
  HOTLAP_CHECK(x.ndim() == 4 && x.dim(3) == 3, "resnet: input must be NHWC [N, H, W, 3], got ",
               x.describe());
  HOTLAP_CHECK(x.dim(1) >= 32 && x.dim(2) >= 32, "resnet: input ", x.dim(1), "x", x.dim(2),
               " is smaller than 32x32, the least a ResNet can take (it halves the size five times)");
  Tensor y = bn1_ ? bn1_->forward(conv1_->forward(x), Tensor(), true) : conv1_->forward(x, Tensor(), true);
  y = ops::max_pool2d(y, 3, 2, 1);
  for (auto& block : blocks_) y = block->forward(y);
  return y;
}

Tensor ResNet::head(const Tensor& features) {
  HOTLAP_CHECK(features.ndim() == 4 && features.dim(3) == feature_channels(),
               "resnet: head input must be NHWC [N, h, w, ", feature_channels(), "], got ",
               features.describe());
  return fc_->forward(ops::global_avg_pool(features));
}

Tensor ResNet::forward(const Tensor& x) { return head(features(x)); }

void ResNet::fold_batch_norm() {
  HOTLAP_CHECK(!is_training(), "fold_batch_norm: the network must be in eval mode (folding uses the running "
               "statistics, which training updates)");
  if (batch_norm_folded()) return;
  conv1_->fold_batch_norm(*bn1_);
  remove_module("bn1");
  bn1_ = nullptr;
  for (auto& block : blocks_) block->fold_batch_norm();
}

std::shared_ptr<ResNet> ResNet::fuse_batch_norm() const {
  auto fused = std::make_shared<ResNet>(config_);
  std::map<std::string, Tensor> values;
  for (auto& [name, t] : state()) values.emplace(name, t);
  fused->load_state(values);
  fused->eval();
  fused->fold_batch_norm();
  return fused;
}

std::shared_ptr<ResNet> make_resnet(const ResNetConfig& config) {
  // A wide network's weights alone can be more than the memory left: say which network it was.
  const auto fail = [&](const std::string& why) {
    throw OutOfMemory("out of memory building a ResNet-" + std::to_string(config.depth) + " of width " +
                      std::to_string(config.width) + " with " + std::to_string(config.num_outputs) + " output" +
                      (config.num_outputs == 1 ? "" : "s") + " (its parameters grow as the width squared; " +
                      "width 64 is torchvision's): " + why);
  };
  try {
    return std::make_shared<ResNet>(config);
  } catch (const OutOfMemory& e) {
    fail(e.what());
  } catch (const std::bad_alloc&) {
    fail("the system refused an allocation");
  }
  return nullptr;  // not reached
}

ResNetConfig config_from_state(const std::map<std::string, Shape>& shapes, const std::string& origin) {
  auto shape_of = [&](const std::string& name) -> const Shape& {
    auto it = shapes.find(name);
    HOTLAP_CHECK(it != shapes.end(), origin, ": not a ResNet state (no tensor ", name, ")");
    return it->second;
  };
  ResNetConfig c;
  // A ResNet has no empty tensor; an empty one needs no bytes in a file, so a tiny file could claim
  // any shape with it.
  for (const auto& [name, shape] : shapes)
    for (int64_t d : shape)
      HOTLAP_CHECK(d > 0, origin, ": tensor ", name, " has shape ", shape_str(shape),
                   ", with an empty dimension: not a ResNet's");
  const Shape& conv1 = shape_of("conv1.weight");
  const Shape& fc = shape_of("fc.weight");
  HOTLAP_CHECK(conv1.size() == 4 && fc.size() == 2, origin, ": conv1.weight ", shape_str(conv1),
               " and fc.weight ", shape_str(fc), " are not a ResNet's");
  c.width = conv1[0];
  c.num_outputs = fc[0];
  HOTLAP_CHECK(c.width <= kMaxWidth, origin, ": conv1.weight ", shape_str(conv1), " makes a ResNet of width ",
               c.width, "; hotlap builds widths up to ", kMaxWidth, " (torchvision's are 64)");
  HOTLAP_CHECK(c.num_outputs <= kMaxOutputs, origin, ": fc.weight ", shape_str(fc), " has ", c.num_outputs,
               " outputs; hotlap builds up to ", kMaxOutputs, " (ImageNet-21k has 21841)");
  int layer3_blocks = 0;
  while (shapes.count("layer3." + std::to_string(layer3_blocks) + ".conv1.weight")) ++layer3_blocks;
  const bool bottleneck = shapes.count("layer1.0.conv3.weight") > 0;
  if (!bottleneck && layer3_blocks == 2) c.depth = 18;
  else if (!bottleneck && layer3_blocks == 6) c.depth = 34;
  else if (bottleneck && layer3_blocks == 6) c.depth = 50;
  else if (bottleneck && layer3_blocks == 23) c.depth = 101;
  else
    throw_error(origin, ": a ResNet with ", layer3_blocks, (bottleneck ? " bottleneck" : " basic"),
                " blocks in layer3 is not one of ResNet-18/34/50/101");

  // Before anyone builds the network (gigabytes at a large width), the file must hold at least as
  // many values as its parameters: the tensors' data is in the file, so a small file cannot make a
  // large network. A ResNet's parameter count is quadratic in its width (every channel count is a
  // multiple of it; convolutions grow as width^2, batch norms and the head as width), so three tiny
  // networks of widths 1, 2 and 3 give it exactly, for any width.
  double held = 0;
  for (const auto& [name, shape] : shapes) {
    double n = 1;
    for (int64_t d : shape) n *= static_cast<double>(d);
    held += n;
  }
  // The tiny networks have one output (with c.num_outputs, 100,000 would make them slow to build); the
  // head's other outputs add (features + 1) parameters each, features being linear in the width.
  const SkipParameterInit no_draws;  // only their sizes count (and the random stream stays as it was)
  double p[4] = {0, 0, 0, 0}, features_at_width_1 = 0;
  for (int w = 1; w <= 3; ++w) {
    const auto tiny = make_resnet({c.depth, 1, w});
    p[w] = static_cast<double>(tiny->parameter_count());
    if (w == 1) features_at_width_1 = static_cast<double>(tiny->feature_channels());
  }
  const double a2 = (p[3] - 2 * p[2] + p[1]) / 2, b1 = p[2] - p[1] - 3 * a2, c0 = p[1] - a2 - b1;
  const auto wd = static_cast<double>(c.width);
  const double needed = a2 * wd * wd + b1 * wd + c0 +
                        static_cast<double>(c.num_outputs - 1) * (features_at_width_1 * wd + 1);
  HOTLAP_CHECK(held >= needed, origin, ": holds ", static_cast<int64_t>(held), " values, and a ResNet-", c.depth,
               " of width ", c.width, " with ", c.num_outputs, " outputs has ", static_cast<int64_t>(needed),
               " parameters: tensors are missing or truncated");
  return c;
}

}  // namespace hotlap::resnet
