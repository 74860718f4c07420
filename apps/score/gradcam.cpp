// Grad-CAM over ResNet's last residual stage, and the heat-map drawing the score report uses.
#include "apps/score/gradcam.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "kernels/error.h"
#include "nn/runtime/autograd.h"

namespace hotlap {
namespace {

// Turns gradient recording on for its lifetime (a caller may be evaluating under a NoGradGuard).
class GradModeOn {
 public:
  GradModeOn() : previous_(Autograd::grad_enabled()) { Autograd::set_grad_enabled(true); }
  ~GradModeOn() { Autograd::set_grad_enabled(previous_); }
  GradModeOn(const GradModeOn&) = delete;
  GradModeOn& operator=(const GradModeOn&) = delete;

 private:
  bool previous_;
};

// Switches every parameter of a module off for gradients for its lifetime, restoring each one's flag
// afterwards: the backward pass then computes only what the caller's own leaves need.
class ParametersFrozen {
 public:
  explicit ParametersFrozen(const Module& module) : parameters_(module.parameters()) {
    for (auto& p : parameters_) {
      was_on_.push_back(p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~ParametersFrozen() {
    for (size_t i = 0; i < parameters_.size(); ++i) parameters_[i].set_requires_grad(was_on_[i]);
  }
  ParametersFrozen(const ParametersFrozen&) = delete;
  ParametersFrozen& operator=(const ParametersFrozen&) = delete;

 private:
  std::vector<Tensor> parameters_;
  std::vector<bool> was_on_;
};

// Empties the tape on the way out, so a failure half-way through a backward pass leaves none behind.
struct TapeCleared {
  ~TapeCleared() { Autograd::clear_tape(); }
};

}  // namespace

GradCam grad_cam(resnet::ResNet& net, const Tensor& input) {
  HOTLAP_CHECK(input.ndim() == 4 && input.dim(0) == 1 && input.dim(3) == 3,
               "grad_cam: input must be one NHWC image [1, H, W, 3], got ", input.describe());
  HOTLAP_CHECK(!net.is_training(), "grad_cam: the network must be in eval mode (batch norm would use "
               "and update batch statistics)");
  HOTLAP_CHECK(net.config().num_outputs == 1, "grad_cam: needs a network with one output, this one has ",
               net.config().num_outputs);
  HOTLAP_CHECK(Autograd::tape_size() == 0, "grad_cam: the autograd tape holds ", Autograd::tape_size(),
               " entries; finish or clear that backward pass first");

  Tensor activation;
  {
    NoGradGuard no_grad;
    activation = net.features(input);
  }
  const int64_t h = activation.dim(1), w = activation.dim(2), channels = activation.dim(3);
  Tensor leaf = activation.clone();
  leaf.set_requires_grad(true);

  GradCam cam;
  cam.height = h;
  cam.width = w;
  {
    TapeCleared tape_cleared;
    ParametersFrozen frozen(net);
    GradModeOn grad_on;
    Tensor score = net.head(leaf);
    cam.score = score.item();
    score.backward();
  }
  const Tensor grad = leaf.grad();
  HOTLAP_CHECK(grad.defined(), "grad_cam: the score did not depend on the feature map");

  // Both [h, w, C] row-major: position p's channel c at p * C + c.
  const std::vector<float> a = activation.to_vector(), g = grad.to_vector();
  const size_t positions = static_cast<size_t>(h * w), depth = static_cast<size_t>(channels);
  std::vector<double> alpha(depth, 0.0);
  for (size_t p = 0; p < positions; ++p)
    for (size_t c = 0; c < depth; ++c) alpha[c] += g[p * depth + c];
  cam.channel_weights.resize(depth);
  for (size_t c = 0; c < depth; ++c) {
    alpha[c] /= static_cast<double>(positions);
    cam.channel_weights[c] = static_cast<float>(alpha[c]);
  }

  std::vector<double> map(positions);
  double peak = 0;
  for (size_t p = 0; p < positions; ++p) {
    double sum = 0;
    for (size_t c = 0; c < depth; ++c) sum += alpha[c] * a[p * depth + c];
    HOTLAP_CHECK(std::isfinite(sum), "grad_cam: the feature map or its gradient is not finite");
    map[p] = std::max(sum, 0.0);
    peak = std::max(peak, map[p]);
  }
  cam.heat.resize(map.size());
  for (size_t p = 0; p < map.size(); ++p) cam.heat[p] = peak > 0 ? static_cast<float>(map[p] / peak) : 0.0f;
  return cam;
}

std::vector<float> upsample_heat(const std::vector<float>& heat, int64_t height, int64_t width,
                                 int64_t out_height, int64_t out_width) {
  HOTLAP_CHECK(height > 0 && width > 0 && static_cast<int64_t>(heat.size()) == height * width,
               "upsample_heat: ", heat.size(), " values are not a ", height, "x", width, " map");
  // The map as a grey image, so the image resampler does the interpolation.
  Image grey = make_image(height, width);
  for (size_t p = 0; p < heat.size(); ++p)
    for (int c = 0; c < 3; ++c) grey.pixels[p * 3 + static_cast<size_t>(c)] = heat[p];
  const Image big = resize(grey, out_height, out_width);
  std::vector<float> out(static_cast<size_t>(out_height * out_width));
  for (size_t p = 0; p < out.size(); ++p) out[p] = std::clamp(big.pixels[p * 3], 0.0f, 1.0f);
  return out;
}

std::array<float, 3> inferno(float t) {
  // matplotlib's 'inferno' at t = 0, 0.1, ..., 1 (sRGB); linear in between.
  static constexpr uint32_t kStops[] = {0x000004, 0x160b39, 0x420a68, 0x6a176e, 0x932667, 0xbc3754,
                                        0xdd513a, 0xf37819, 0xfca50a, 0xf6d746, 0xfcffa4};
  constexpr int kLast = static_cast<int>(std::size(kStops)) - 1;
  if (!std::isfinite(t)) t = 0;
  const float x = std::clamp(t, 0.0f, 1.0f) * static_cast<float>(kLast);
  const int i = std::min(static_cast<int>(x), kLast - 1);
  const float f = x - static_cast<float>(i);
  std::array<float, 3> rgb{};
  for (int c = 0; c < 3; ++c) {
    const int shift = 16 - 8 * c;
    const float lo = static_cast<float>((kStops[i] >> shift) & 0xff) / 255.0f;
    const float hi = static_cast<float>((kStops[i + 1] >> shift) & 0xff) / 255.0f;
    rgb[static_cast<size_t>(c)] = lo + f * (hi - lo);
  }
  return rgb;
}

Image heat_overlay(const Image& crop, const std::vector<float>& heat, int64_t height, int64_t width,
                   float alpha) {
  HOTLAP_CHECK(crop.height > 0 && crop.width > 0, "heat_overlay: the crop is empty");
  const std::vector<float> up = upsample_heat(heat, height, width, crop.height, crop.width);
  Image out = crop;
  for (size_t p = 0; p < up.size(); ++p) {
    const std::array<float, 3> colour = inferno(up[p]);
    for (size_t c = 0; c < 3; ++c) {
      float& v = out.pixels[p * 3 + c];
      v = (1.0f - alpha) * v + alpha * colour[c];
    }
  }
  return out;
}

}  // namespace hotlap
