// Max pooling and global average pooling on the GPU, NHWC.
//
// Max pool forward: a thread per output element (pixel, channel), threadIdx.x along 32 consecutive
// channels so each of the window's loads is a coalesced 128-byte row segment; it walks its window
// in raster order and keeps the max and the flat index h*W + w of the winner, with the CPU's rules
// (strictly greater wins, NaN wins, padding never read), so y and the indices match the CPU's
// exactly.
// Max pool backward is a GATHER, not the CPU's scatter: a thread per input element looks at the few
// outputs whose window covers it (at most ceil(3/2)^2 = 4 for ResNet's 3x3 stride 2) and adds the
// dy of those whose saved index is itself, in output raster order. No atomics, every dx element
// written once (no separate zeroing pass), and the sum is formed in the same order as the CPU's
// scatter: bit-identical, deterministic.
// Global average pool: a thread per (image, channel) sums its H*W pixels in double, in pixel
// order (bit-identical to the CPU); backward writes dy / (H*W) to every pixel.
// Like its CPU twin, this file is built without fused multiply-adds (CMakeLists.txt), so these
// bit-identities do not hang on there being no a*b + c for nvcc to contract.
//
// ResNet-50's stem pool (3x3, stride 2, pad 1) at batch 64: x [64,112,112,64] = 206 MB in, y 51 MB
// + indices 51 MB out, 9 compares an output: 0.03 GFLOP over 308 MB, memory-bound (92 us at the
// H100's 3.35 TB/s). Overlapping windows read each input ~2.25 times, but neighbouring threads
// share them through L1/L2, so HBM sees ~1 read: expect 60-75% of peak (the index math per pixel
// and the 9 dependent compares leave fewer loads in flight than a plain copy). Backward reads dy
// and indices (102 MB, each ~2.25 times, from cache) and writes dx (206 MB): similar.
// Global average pool at the end of ResNet-50, batch 64: [64,7,7,2048] = 26 MB read once; only
// 131k threads, each summing 49 values: a few microseconds, launch-bound at small batches.
//
// bf16 activations (the *_bf16 entry points): the same kernels templated on the storage type
// (kernels/cuda/storage.h): x, y, dy, dx bf16, indices int32, every sum fp32 (the average in
// double), rounded once on store. The stem pool then moves 103 MB in, 26 + 51 MB out.
#include <cuda_runtime.h>

#include <limits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/pool_math.h"
#include "kernels/cuda/storage.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"
#include "kernels/pool.h"

namespace hotlap::kernels::cuda {

namespace {

// ---- kernels -------------------------------------------------------------------------------------

// A thread per (output pixel, channel): block (32 channels, 8 pixels), grid-stride over pixels.
template <typename T>
__global__ void max_pool2d_forward_kernel(PoolShape s, int64_t P, int64_t Q, const T* x, T* y,
                                         int32_t* indices) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kPoolChannelTile + threadIdx.x;
  if (j >= s.c) return;
  const int64_t pixels = s.n * P * Q;
  const int64_t step = static_cast<int64_t>(gridDim.y) * kPoolPixelLanes;
  for (int64_t pix = static_cast<int64_t>(blockIdx.y) * kPoolPixelLanes + threadIdx.y;
       pix < pixels; pix += step) {
    const int64_t q = pix % Q, p = (pix / Q) % P, n = pix / (P * Q);
    max_pool_forward_element(s, P, Q, x, n, p, q, j, y, indices);
  }
}

// A thread per (input pixel, channel), gathering from the outputs that can point at it.
template <typename T>
__global__ void max_pool2d_backward_kernel(PoolShape s, int64_t P, int64_t Q, const T* dy,
                                          const int32_t* indices, T* dx) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kPoolChannelTile + threadIdx.x;
  if (j >= s.c) return;
  const int64_t pixels = s.n * s.h * s.w;
  const int64_t step = static_cast<int64_t>(gridDim.y) * kPoolPixelLanes;
  for (int64_t pix = static_cast<int64_t>(blockIdx.y) * kPoolPixelLanes + threadIdx.y;
       pix < pixels; pix += step) {
    const int64_t iw = pix % s.w, ih = (pix / s.w) % s.h, n = pix / (s.h * s.w);
    store_rounded(&dx[pix * s.c + j], max_pool_backward_element(s, P, Q, dy, indices, n, ih, iw, j));
  }
}

// A thread per (image, channel), the channel fastest across threads: 1-D grid-stride.
template <typename T>
__global__ void global_avg_pool_forward_kernel(int64_t n, int64_t hw, int64_t c, const T* x, T* y) {
  const int64_t total = n * c;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += step)
    store_rounded(&y[i], global_avg_pool_element(hw, c, x, i / c, i % c));
}

// dx[r, j] = dy[r / hw, j] / hw: block (32 channels, 8 rows), grid-stride over the rows.
template <typename T>
__global__ void global_avg_pool_backward_kernel(int64_t n, int64_t hw, int64_t c, const T* dy,
                                               T* dx) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kPoolChannelTile + threadIdx.x;
  if (j >= c) return;
  const float hw_f = static_cast<float>(hw);
  const int64_t rows = n * hw;
  const int64_t step = static_cast<int64_t>(gridDim.y) * kPoolPixelLanes;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * kPoolPixelLanes + threadIdx.y; r < rows;
       r += step)
    store_rounded(&dx[r * c + j], load_as_float(dy[(r / hw) * c + j]) / hw_f);
}

// ---- launch helpers --------------------------------------------------------------------------------


const dim3 kTileBlock(kPoolChannelTile, kPoolPixelLanes);

dim3 tile_grid(int64_t c, int64_t pixels) {
  return dim3(static_cast<unsigned>(ceil_div(c, kPoolChannelTile)),
              static_cast<unsigned>(pool_pixel_blocks(pixels)));
}

// ---- the entry points, for either storage type T ---------------------------------------------------

template <typename T>
void max_pool_forward(const char* op, const PoolShape& s, const T* x, T* y, int32_t* indices) {
  check_max_pool_shape(op, s);
  const int64_t P = s.p(), Q = s.q();
  if (s.n == 0 || s.c == 0) return;
  max_pool2d_forward_kernel<<<tile_grid(s.c, s.n * P * Q), kTileBlock, 0, compute_stream()>>>(
      s, P, Q, x, y, indices);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " [N,H,W,C]=[", s.n, ",", s.h, ",", s.w, ",", s.c, "]");
}

template <typename T>
void max_pool_backward(const char* op, const PoolShape& s, const T* dy, const int32_t* indices, T* dx) {
  check_max_pool_shape(op, s);
  const int64_t P = s.p(), Q = s.q();
  if (s.n == 0 || s.c == 0) return;
  max_pool2d_backward_kernel<<<tile_grid(s.c, s.n * s.h * s.w), kTileBlock, 0, compute_stream()>>>(
      s, P, Q, dy, indices, dx);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " [N,H,W,C]=[", s.n, ",", s.h, ",", s.w, ",", s.c, "]");
}

template <typename T>
void avg_pool_forward(const char* op, int64_t n, int64_t hw, int64_t c, const T* x, T* y) {
  HOTLAP_CHECK(n >= 0 && hw >= 1 && c >= 0, op, ": bad shape n=", n,
               " hw=", hw, " c=", c, " (need H*W >= 1)");
  if (n == 0 || c == 0) return;
  global_avg_pool_forward_kernel<<<static_cast<unsigned>(elementwise_blocks(n * c)),
                                  kElementwiseThreads, 0, compute_stream()>>>(n, hw, c, x, y);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " n=", n, " hw=", hw, " c=", c);
}

template <typename T>
void avg_pool_backward(const char* op, int64_t n, int64_t hw, int64_t c, const T* dy, T* dx) {
  HOTLAP_CHECK(n >= 0 && hw >= 1 && c >= 0, op, ": bad shape n=", n,
               " hw=", hw, " c=", c, " (need H*W >= 1)");
  if (n == 0 || c == 0) return;
  global_avg_pool_backward_kernel<<<tile_grid(c, n * hw), kTileBlock, 0, compute_stream()>>>(
      n, hw, c, dy, dx);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " n=", n, " hw=", hw, " c=", c);
}

}  // namespace

void max_pool2d_forward(const PoolShape& s, const float* x, float* y, int32_t* indices) {
  max_pool_forward("cuda::max_pool2d_forward", s, x, y, indices);
}
void max_pool2d_backward(const PoolShape& s, const float* dy, const int32_t* indices, float* dx) {
  max_pool_backward("cuda::max_pool2d_backward", s, dy, indices, dx);
}
void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  avg_pool_forward("cuda::global_avg_pool_forward", n, hw, c, x, y);
}
void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  avg_pool_backward("cuda::global_avg_pool_backward", n, hw, c, dy, dx);
}

void max_pool2d_forward(const PoolShape& s, const bfloat16* x, bfloat16* y, int32_t* indices) {
  max_pool_forward("cuda::max_pool2d_forward", s, device_bf16(x), device_bf16(y), indices);
}
void max_pool2d_backward(const PoolShape& s, const bfloat16* dy, const int32_t* indices,
                             bfloat16* dx) {
  max_pool_backward("cuda::max_pool2d_backward", s, device_bf16(dy), indices, device_bf16(dx));
}
void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const bfloat16* x, bfloat16* y) {
  avg_pool_forward("cuda::global_avg_pool_forward", n, hw, c, device_bf16(x), device_bf16(y));
}
void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const bfloat16* dy,
                                  bfloat16* dx) {
  avg_pool_backward("cuda::global_avg_pool_backward", n, hw, c, device_bf16(dy), device_bf16(dx));
}

}  // namespace hotlap::kernels::cuda
