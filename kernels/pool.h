// Pooling over NHWC activations.
//
// Max pool keeps, for each output element, the flat index (h*W + w) of the winning input pixel within
// its image and channel plane, so the backward pass is a scatter with no recomputation.
// Padding counts as -infinity (PyTorch semantics). Global average pool: [N,H,W,C] -> [N,C].
//
// Test: hotlap_kernel_tests -tc='pool*,cuda max_pool2d*,cuda global*'; benchmark: hotlap_bench
// --benchmark_filter='ops/(max_pool2d|global_avg_pool)'.
#pragma once

#include <cstdint>

#include "kernels/cast.h"

namespace hotlap::kernels {

struct PoolShape {
  int64_t n = 0, h = 0, w = 0, c = 0;
  int64_t window_h = 3, window_w = 3;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 1, pad_w = 1;
  // PyTorch's ceil_mode: the output size rounds up, so a last, partial window covers the remainder
  // (it is clipped to the input), but a window may not start in the right/bottom padding.
  // MTCNN's pools use it. Off by default.
  bool ceil_mode = false;

  static int64_t out_size(int64_t in, int64_t pad, int64_t window, int64_t stride, bool ceil) {
    const int64_t span = in + 2 * pad - window;
    if (!ceil || span < 0) return span / stride + 1;
    int64_t out = (span + stride - 1) / stride + 1;
    if ((out - 1) * stride >= in + pad) --out;
    return out;
  }
  int64_t p() const { return out_size(h, pad_h, window_h, stride_h, ceil_mode); }
  int64_t q() const { return out_size(w, pad_w, window_w, stride_w, ceil_mode); }
};

// Throws hotlap::Error naming `op` unless the max-pool shape is valid: H, W >= 1, window and stride
// >= 1, 0 <= pad <= window / 2, the padded input at least as large as the window, H * W within int32
// (the indices). Every backend checks with it, so all refuse the same shapes.
void check_max_pool_shape(const char* op, const PoolShape& s);

namespace cpu {

// y[N,P,Q,C]; indices[N,P,Q,C] hold h*W+w of the max. Overwrites y and indices.
void max_pool2d_forward(const PoolShape& s, const float* x, float* y, int32_t* indices);
// dx is overwritten (zeroed, then dy scattered to the winners).
void max_pool2d_backward(const PoolShape& s, const float* dy, const int32_t* indices, float* dx);

// y[n,c] = mean over h,w of x[n,h,w,c].
void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y);
// dx[n,h,w,c] = dy[n,c] / hw (overwrites dx).
void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx);

// bf16 activations (bfloat16; indices stay int32): an emulation (kernels/cpu/
// bf16_emulation.h), the fp32 kernels on widened inputs with outputs rounded to bf16. For
// correctness and tests, not speed.
void max_pool2d_forward(const PoolShape& s, const bfloat16* x, bfloat16* y, int32_t* indices);
void max_pool2d_backward(const PoolShape& s, const bfloat16* dy, const int32_t* indices, bfloat16* dx);
void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const bfloat16* x, bfloat16* y);
void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const bfloat16* dy, bfloat16* dx);

}  // namespace cpu

// The same contracts on the GPU (kernels/cuda/pool.cu): device pointers, queued on the compute
// stream; in a build without CUDA each throws. Results are bit-identical to the CPU's. Max-pool
// backward gathers instead of scattering: it assumes `indices` came from max_pool2d_forward (each
// points into its own window).
namespace cuda {
void max_pool2d_forward(const PoolShape& s, const float* x, float* y, int32_t* indices);
void max_pool2d_backward(const PoolShape& s, const float* dy, const int32_t* indices, float* dx);
void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y);
void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx);
// bf16 activations: the same kernels on bf16 storage, fp32 sums, rounded once on store; equal to
// the CPU's bf16 versions except where an fp32 sum rounds differently (max pool: bit-identical).
void max_pool2d_forward(const PoolShape& s, const bfloat16* x, bfloat16* y, int32_t* indices);
void max_pool2d_backward(const PoolShape& s, const bfloat16* dy, const int32_t* indices, bfloat16* dx);
void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const bfloat16* x, bfloat16* y);
void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const bfloat16* dy, bfloat16* dx);
}  // namespace cuda
}  // namespace hotlap::kernels
