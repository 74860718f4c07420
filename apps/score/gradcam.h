// Grad-CAM for the score regressor: which parts of the face the predicted score came from.
//
// Grad-CAM (Selvaraju et al., 2017) weighs each channel of the last convolutional activation
// A = net.features(x), shape [h, w, C] (7x7 for a 224x224 crop), by how much the score rises with it:
//   alpha_c = mean over (i, j) of d score / d A[i, j, c]
//   cam[i, j] = relu(sum_c alpha_c * A[i, j, c])
// then divides the map by its maximum, so it lies in [0, 1] (a map with no positive value stays all
// zero). With ResNet's head (global average pool, then a linear layer) the gradient is the same at
// every position, alpha_c = fc.weight[0, c] / (h * w); it is computed by backpropagation all the same,
// so the code does not depend on that.
//
// The activation is computed without recording; only the head runs on the tape, from a copy of A made
// a leaf. The network's parameters are switched off for gradients while it runs (and restored), so
// their gradients are neither created nor changed, and the tape is empty afterwards.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "apps/data/image.h"
#include "nn/runtime/tensor.h"
#include "resnet/resnet.h"

namespace hotlap {

struct GradCam {
  std::vector<float> heat;             // height x width, row-major, in [0, 1]
  int64_t height = 0, width = 0;       // the feature map's size (input size / 32, rounded up)
  double score = 0;                    // the network's output for the input, as forward() gives it
  std::vector<float> channel_weights;  // alpha_c, one per feature channel
};

// `input` is one normalised image, NHWC [1, H, W, 3]; `net` must be in eval mode and have one output.
// The autograd tape must be empty on entry (a pending backward pass would be run by this one).
// Throws hotlap::Error otherwise, or if the activation or its gradient is not finite.
GradCam grad_cam(resnet::ResNet& net, const Tensor& input);

// The map resampled to out_height x out_width with bilinear interpolation (apps/data/image.h's resize),
// for drawing over the crop it was computed from. Values stay in [0, 1].
std::vector<float> upsample_heat(const std::vector<float>& heat, int64_t height, int64_t width,
                                 int64_t out_height, int64_t out_width);

// An RGB colour for t in [0, 1] (clamped) from the 'inferno' colour map (black, purple, orange,
// pale yellow): perceptually uniform and readable in grey.
std::array<float, 3> inferno(float t);

// The crop with the heat map drawn over it: each pixel (1 - alpha) * crop + alpha * inferno(heat),
// the map upsampled to the crop's size. Throws hotlap::Error if heat does not hold height x width
// values or the crop is empty.
Image heat_overlay(const Image& crop, const std::vector<float>& heat, int64_t height, int64_t width,
                   float alpha = 0.45f);

}  // namespace hotlap
