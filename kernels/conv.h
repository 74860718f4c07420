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
#include "kernels/gemm.h"

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

// The CPU convolution's algorithm for the shapes that Winograd can take (3x3, stride 1, padding 1):
//   automatic - by shape class: Winograd when the batch has enough output pixels to pay for
//               transforming the weights on every call (kernels/cpu/conv.cpp), else im2col
//   im2col    - im2col + GEMM everywhere (the reference path)
//   winograd  - Winograd wherever the shape allows it
//   direct    - the definition as loops, every pass, every shape (kernels/cpu/conv_direct.cpp)
// Backward filter is im2col + GEMM in every case; 1x1 stride-1 convolutions are one GEMM.
enum class CpuConv { automatic, im2col, winograd, direct };

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

namespace cpu {

// Which algorithm choice the convolutions follow. Starts from env HOTLAP_CONV_CPU
// (auto|im2col|winograd|direct; default auto); set_cpu_conv overrides it (kernels/choice.h).
CpuConv cpu_conv_impl();
void set_cpu_conv(CpuConv impl);
const char* cpu_conv_name(CpuConv impl);
// 3x3, stride 1, padding 1: the shapes the Winograd kernels implement.
bool winograd_supported(const ConvShape& s);
// Whether forward and backward data of this shape run Winograd under the current choice.
bool conv2d_uses_winograd(const ConvShape& s);

// The GEMM under the 1x1 convolutions (pointwise and strided). When the CPU GEMM is OpenBLAS (the
// default where it is built in), each GEMM of a 1x1 convolution runs on whichever of OpenBLAS and
// the hand-written GEMM measured faster for its shape class (kernels/cpu/conv.cpp: conv_1x1_gemm;
// bench/NOTES.md). Env HOTLAP_CONV_1X1=auto|gemm (default auto; or set_cpu_conv_1x1_by_shape)
// turns the choice off: gemm runs every convolution GEMM on cpu_gemm_impl(), for comparisons.
bool cpu_conv_1x1_by_shape();
void set_cpu_conv_1x1_by_shape(bool by_shape);
// The GEMM a 1x1 convolution's GEMM call g runs on under the current settings; in_parallel: called
// from inside an OpenMP parallel region (so the GEMM runs on one thread).
CpuGemm conv_1x1_gemm(const GemmArgs& g, bool in_parallel);

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

// The kernels of each pass, side by side (each file's opening comment gives its tiles, arithmetic
// intensity and the peak it aims at):
//   simple       fp32 on the CUDA cores, one thread per output element: the readable reference
//   tiled        fp32, 64x64 shared-memory tiles, 4x4 register micro-tiles, 16-byte loads through a
//                register double buffer, split-K (backward filter)
//   tiled_1x1    tiled on 1x1 stride-1 unpadded convolutions as plain GEMMs (no im2col arithmetic)
//   tf32         the tiled kernels with the products on the tensor cores (wmma m16n16k8, TF32
//                inputs, fp32 sums): about 1e-3 relative error, like cuDNN under MathMode::tf32
//   tf32_async   128x64 tiles on the tensor cores, operands copied by cp.async into two
//                shared-memory stages (no registers on the way), TF32 products, fp32 sums
//   tf32_1x1     tf32_async on 1x1 stride-1 unpadded convolutions as plain GEMMs
//   bf16_simple  bf16 tensors, one thread per output, fp32 sums: the bf16 reference
//   bf16         tf32_async's pipeline with bf16 operands (wmma m16n16k16), fp32 sums
//   bf16_1x1     bf16 on 1x1 stride-1 unpadded convolutions as plain GEMMs
// The bf16 variants run through the *_bf16 entry points, the others through the fp32 ones; a
// *_1x1 variant takes only 1x1 stride-1 unpadded shapes (ConvShape::is_pointwise).
enum class ConvVariant {
  simple,
  tiled,
  tiled_1x1,
  tf32,
  tf32_async,
  tf32_1x1,
  bf16_simple,
  bf16,
  bf16_1x1,
};
const char* conv_variant_name(ConvVariant v);

// The variants that take bf16 tensors (the *_bf16 entry points); the others take fp32 ones.
constexpr bool conv_variant_is_bf16(ConvVariant v) {
  return v == ConvVariant::bf16_simple || v == ConvVariant::bf16 || v == ConvVariant::bf16_1x1;
}
// The plain-GEMM variants, which run 1x1 stride-1 convolutions without padding only.
constexpr bool conv_variant_is_1x1(ConvVariant v) {
  return v == ConvVariant::tiled_1x1 || v == ConvVariant::tf32_1x1 || v == ConvVariant::bf16_1x1;
}

// The variant the plain fp32 entry points run (kernels/cuda/conv_math.h: choose_conv_variant, by
// shape class and kernels::math_mode()), and the one the bf16 entry points run (by shape class).
ConvVariant conv2d_variant(const ConvShape& s, ConvPass pass);
ConvVariant conv2d_bf16_variant(const ConvShape& s, ConvPass pass);

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
