// What a 2-D convolution is, as every kernel, backend and choice of hotlap names it: the shape
// (NHWC activations, OHWI weights, groups = 1, dilation = 1), the three passes, and what the forward
// pass does to its output on the way out (bias, residual, ReLU). The kernels: kernels/conv.h.
#pragma once

#include <cstdint>

namespace hotlap::kernels {

struct ConvShape {
  int64_t n = 0, h = 0, w = 0, c = 0;  // input
  int64_t k = 0, r = 0, s = 0;         // filters: K outputs, R x S window
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;

  int64_t p() const { return (h + 2 * pad_h - r) / stride_h + 1; }
  int64_t q() const { return (w + 2 * pad_w - s) / stride_w + 1; }
  int64_t flops() const { return 2 * n * p() * q() * k * r * s * c; }
  bool is_pointwise() const {  // 1x1, stride 1, no padding: a plain GEMM
    return r == 1 && s == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

// The layer family of a shape, as the profiler groups a network's convolutions ("conv 3x3 stride 2",
// "conv 1x1", ...): square filters of 1, 3 and 7 at stride 1 or 2, and "conv other". A string literal.
inline const char* conv_family(const ConvShape& c) {
  const bool square = c.r == c.s && c.stride_h == c.stride_w;
  const bool one = c.stride_h == 1, two = c.stride_h == 2;
  if (square && c.r == 1 && one) return "conv 1x1";
  if (square && c.r == 1 && two) return "conv 1x1 stride 2";
  if (square && c.r == 3 && one) return "conv 3x3";
  if (square && c.r == 3 && two) return "conv 3x3 stride 2";
  if (square && c.r == 7 && two) return "conv 7x7 stride 2";
  return "conv other";
}

// The three passes of a convolution, as the GPU backends name their algorithms and workspaces.
enum class ConvPass { forward, backward_data, backward_filter };
inline const char* conv_pass_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::forward:
      return "forward";
    case ConvPass::backward_data:
      return "backward_data";
    case ConvPass::backward_filter:
      return "backward_filter";
  }
  return "unknown";
}

// What the forward pass does to each output value as it stores it, so that what follows a
// convolution in a network costs no pass of its own over the output:
//   y = relu?( (conv(x, w) + bias[k]) + residual[n, p, q, k] )
// the additions rounded in that order and the ReLU keeping NaN, so the result is bit-identical to
// the convolution with its bias followed by separate add and ReLU ops. In a ResNet at inference
// the batch norm folded into the convolution becomes the bias, and a block's residual add and ReLU
// ride along. The GEMMs apply it as they store each register tile (kernels/gemm.h: GemmEpilogue)
// and Winograd as it writes each output tile; only a GEMM run by OpenBLAS takes a pass afterwards.
struct ConvEpilogue {
  const float* bias = nullptr;      // [K]; null for none
  const float* residual = nullptr;  // laid out as y, [N, P, Q, K], not overlapping it; null for none
  bool relu = false;
};

}  // namespace hotlap::kernels
