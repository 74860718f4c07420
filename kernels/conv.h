// 2-D convolution, NHWC activations and OHWI weights (groups = 1, dilation = 1).
//
//   x[N,H,W,C] * w[K,R,S,C] -> y[N,P,Q,K],  P = (H + 2*pad_h - R) / stride_h + 1 (Q likewise)
//   FLOPs per pass: 2 * N*P*Q * K * R*S*C.
//
// The CPU version is im2col + GEMM, one image (or, for small outputs, a few images) at a time: the
// im2col row of output pixel (p,q) is the R*S*C input values under the filter, and in NHWC each
// filter row (r, all s, all c) is contiguous when stride and padding allow. 1x1 stride-1
// convolutions skip im2col: x is already the [N*H*W, C] matrix. 3x3 stride-1 pad-1 convolutions with
// enough output pixels per weight use Winograd instead (kernels/cpu/conv_winograd.cpp): F(2x2, 3x3)
// forward (2.25x fewer multiplies), F(4x4, 3x3) backward data (4x fewer). Env
// HOTLAP_CONV_CPU=auto|im2col|winograd|direct (or set_cpu_conv) overrides the choice, and
// HOTLAP_REFERENCE=1 runs the direct loops everywhere (kernels/choice.h).
//
// Test: hotlap_kernel_tests -tc='conv2d*,cuda conv*'; benchmark: hotlap_bench --benchmark_filter='^conv|ops/conv2d'.
#pragma once

#include <cstdint>

#include "kernels/cast.h"
#include "kernels/conv_shape.h"
#include "kernels/conv_variant.h"

namespace hotlap::kernels {

namespace cpu {

// 3x3, stride 1, padding 1: the shapes the Winograd kernels implement.
bool winograd_supported(const ConvShape& s);
// Whether forward and backward data of this shape run Winograd under the current choice.
bool conv2d_uses_winograd(const ConvShape& s);

// Scratch floats the CPU convolution needs (the im2col buffers of the images one GEMM takes, one per
// OpenMP thread when a batch is shared out over the threads); 0 for pointwise. Depends on
// omp_get_max_threads() and on the algorithm choice (Winograd needs room for its transformed
// weights and tiles): query it under the same thread count and choice as the calls.
int64_t conv2d_workspace_floats(const ConvShape& s);

// y = conv(x, w) through the epilogue. y is overwritten.
void conv2d_forward(const ConvShape& s, const float* x, const float* w, const ConvEpilogue& epilogue, float* y,
                    float* workspace);
// y = conv(x, w) (+ bias[k] when bias is not null). y is overwritten.
inline void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                           float* workspace) {
  conv2d_forward(s, x, w, ConvEpilogue{bias}, y, workspace);
}
// dx = conv_transpose(dy, w). dx is overwritten.
void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx,
                          float* workspace);
// dw += correlation of x with dy; dbias += sum of dy over N,P,Q (dbias may be null).
void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw,
                            float* dbias, float* workspace);

// bf16 activations and weights (bfloat16), bias, dw and dbias fp32: an emulation
// (kernels/cpu/bf16_emulation.h), the fp32 convolution on widened inputs, y and dx rounded to bf16
// (dw and dbias accumulate in fp32). For correctness and tests, not speed. Same workspace.
void conv2d_forward(const ConvShape& s, const bfloat16* x, const bfloat16* w, const float* bias,
                         bfloat16* y, float* workspace);
void conv2d_backward_data(const ConvShape& s, const bfloat16* dy, const bfloat16* w, bfloat16* dx,
                               float* workspace);
void conv2d_backward_filter(const ConvShape& s, const bfloat16* x, const bfloat16* dy, float* dw,
                                 float* dbias, float* workspace);

}  // namespace cpu
}  // namespace hotlap::kernels

// ---- the hand-written CUDA convolution (kernels/cuda/conv*.cu) -------------------------------------
// Implicit GEMM in NHWC/OHWI with no im2col buffer (the three passes as GEMMs: kernels/cuda/
// conv_math.h). The same contracts as the CPU versions above, on device pointers, queued on the
// compute stream (kernels/cuda_memory.h); shapes are checked at once and throw hotlap::Error. In a
// build without CUDA every call throws (kernels/cuda_none.cpp); the workspace queries work in both.
#include <cstddef>

namespace hotlap::kernels::cuda {

// The three passes, as the workspace query and the variant choice name them (kernels::ConvPass).
using kernels::ConvPass;

// Workspace bytes a call needs (only the tiled variants' backward filter uses one: split-K partial
// products and dbias partial sums, in fp32); 0 otherwise. Host arithmetic on the shape alone,
// exact. The plain query is for the variant the plain fp32 entry point picks under the current
// math mode; the bf16 one for the bf16 entry points.
size_t conv2d_workspace_bytes(const ConvShape& s, ConvPass pass);
size_t conv2d_bf16_workspace_bytes(const ConvShape& s, ConvPass pass);
size_t conv2d_workspace_bytes(const ConvShape& s, ConvPass pass, ConvVariant variant);

// y = conv(x, w) (+ bias[k] when bias is not null). y is overwritten.
void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                    void* workspace, size_t workspace_bytes);
// dx = conv_transpose(dy, w). dx is overwritten.
void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx,
                          void* workspace, size_t workspace_bytes);
// dw += correlation of x with dy; dbias += sum of dy over N,P,Q (dbias may be null).
void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw,
                            float* dbias, void* workspace, size_t workspace_bytes);

// The same, running the named variant (tests and benchmarks); a bf16 variant throws here.
void conv2d_forward_variant(const ConvShape& s, const float* x, const float* w, const float* bias,
                            float* y, void* workspace, size_t workspace_bytes, ConvVariant variant);
void conv2d_backward_data_variant(const ConvShape& s, const float* dy, const float* w, float* dx,
                                  void* workspace, size_t workspace_bytes, ConvVariant variant);
void conv2d_backward_filter_variant(const ConvShape& s, const float* x, const float* dy, float* dw,
                                    float* dbias, void* workspace, size_t workspace_bytes,
                                    ConvVariant variant);

// bf16 tensors (the bits of each value as bfloat16; kernels/cast.h), products on the tensor cores,
// sums in fp32; y and dx rounded once to bf16 (to nearest even). The bias, dw and dbias are fp32:
// backward filter adds its fp32 sums into them, split-K summed in order (deterministic).
void conv2d_forward(const ConvShape& s, const bfloat16* x, const bfloat16* w, const float* bias,
                         bfloat16* y, void* workspace, size_t workspace_bytes);
void conv2d_backward_data(const ConvShape& s, const bfloat16* dy, const bfloat16* w,
                               bfloat16* dx, void* workspace, size_t workspace_bytes);
void conv2d_backward_filter(const ConvShape& s, const bfloat16* x, const bfloat16* dy,
                                 float* dw, float* dbias, void* workspace, size_t workspace_bytes);

// The same, running the named bf16 variant (bf16_simple, bf16, bf16_1x1); another variant throws.
void conv2d_forward_variant(const ConvShape& s, const bfloat16* x, const bfloat16* w,
                                 const float* bias, bfloat16* y, void* workspace,
                                 size_t workspace_bytes, ConvVariant variant);
void conv2d_backward_data_variant(const ConvShape& s, const bfloat16* dy, const bfloat16* w,
                                       bfloat16* dx, void* workspace, size_t workspace_bytes,
                                       ConvVariant variant);
void conv2d_backward_filter_variant(const ConvShape& s, const bfloat16* x, const bfloat16* dy,
                                         float* dw, float* dbias, void* workspace,
                                         size_t workspace_bytes, ConvVariant variant);

}  // namespace hotlap::kernels::cuda
