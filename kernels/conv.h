// 2-D convolution, NHWC activations and OHWI weights (groups = 1, dilation = 1).
//
//   x[N,H,W,C] * w[K,R,S,C] -> y[N,P,Q,K],  P = (H + 2*pad_h - R) / stride_h + 1 (Q likewise)
//   FLOPs per pass: 2 * N*P*Q * K * R*S*C.
//
// The CPU version is im2col + GEMM, one image (or, for small outputs, a few images) at a time: the
// im2col row of output pixel (p,q) is the R*S*C input values under the filter, and in NHWC each
// filter row (r, all s, all c) is contiguous when stride and padding allow. 1x1 stride-1
// convolutions skip im2col: x is already the [N*H*W, C] matrix.
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

namespace cpu {

// Scratch floats the CPU convolution needs (the im2col buffers of the images one GEMM takes, one per
// OpenMP thread when a batch is shared out over the threads); 0 for pointwise. Depends on
// omp_get_max_threads(): query it under the same thread setting as the calls.
int64_t conv2d_workspace_floats(const ConvShape& s);

// y = conv(x, w) (+ bias[k] when bias is not null). y is overwritten.
void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                    float* workspace);
// dx = conv_transpose(dy, w). dx is overwritten.
void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx,
                          float* workspace);
// dw += correlation of x with dy; dbias += sum of dy over N,P,Q (dbias may be null).
void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw,
                            float* dbias, float* workspace);

}  // namespace cpu
}  // namespace hotlap::kernels
