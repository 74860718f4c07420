// The per-thread arithmetic of the CUDA pooling kernels (kernels/cuda/pool.cu), as functions both
// nvcc and the host compiler read, so the CPU tests can run it for every index (see
// batch_norm_math.h for the idea).
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/storage.h"
#include "kernels/pool.h"

namespace hotlap::kernels::cuda {

// Pool kernels: blocks of 32 channels (x) by 8 pixels (y), a grid-stride loop over the pixels.
constexpr int kPoolChannelTile = 32;
constexpr int kPoolPixelLanes = 8;

inline int64_t pool_pixel_blocks(int64_t pixels) {
  return std::clamp<int64_t>(ceil_div(pixels, kPoolPixelLanes), 1, kMaxGridY);
}

// The outputs along one axis whose window covers input i: o in [first, last] (empty if first >
// last), from o*stride - pad <= i < o*stride - pad + window, clipped to [0, out - 1].
HOTLAP_HOST_DEVICE inline int64_t pool_first_window(int64_t i, int64_t pad, int64_t window,
                                                    int64_t stride) {
  const int64_t num = i + pad - window;  // o*stride > num
  return num < 0 ? 0 : num / stride + 1;
}
HOTLAP_HOST_DEVICE inline int64_t pool_last_window(int64_t i, int64_t pad, int64_t stride,
                                                   int64_t out) {
  const int64_t last = (i + pad) / stride;  // i + pad >= 0
  return last < out - 1 ? last : out - 1;
}

// Max over the window of output pixel (n, p, q), channel j, exactly as the CPU kernel: raster
// order, a value wins when strictly greater or NaN, padding is never read; an (impossible) empty
// window gives -inf and index -1. P, Q: the output size. T: float or bf16 storage (storage.h); the
// max of bf16 values is one of them, so the rounding store is exact.
template <typename T>
HOTLAP_HOST_DEVICE inline void max_pool_forward_element(const PoolShape& s, int64_t P, int64_t Q,
                                                       const T* x, int64_t n, int64_t p,
                                                       int64_t q, int64_t j, T* y,
                                                       int32_t* indices) {
  const int64_t H = s.h, W = s.w, C = s.c;
  const int64_t h0 = p * s.stride_h - s.pad_h, w0 = q * s.stride_w - s.pad_w;
  const int64_t h_begin = h0 > 0 ? h0 : 0, h_end = h0 + s.window_h < H ? h0 + s.window_h : H;
  const int64_t w_begin = w0 > 0 ? w0 : 0, w_end = w0 + s.window_w < W ? w0 + s.window_w : W;
  const bool empty = h_begin >= h_end || w_begin >= w_end;
  float best = -INFINITY;
  int32_t best_index = empty ? -1 : static_cast<int32_t>(h_begin * W + w_begin);
  for (int64_t ih = h_begin; ih < h_end; ++ih) {
    for (int64_t iw = w_begin; iw < w_end; ++iw) {
      const float v = load_as_float(x[((n * H + ih) * W + iw) * C + j]);
      if (v > best || v != v) {
        best = v;
        best_index = static_cast<int32_t>(ih * W + iw);
      }
    }
  }
  const int64_t out = ((n * P + p) * Q + q) * C + j;
  store_rounded(&y[out], best);
  indices[out] = best_index;
}

// dx at input pixel (n, ih, iw), channel j: the sum of dy over the outputs whose saved index is
// this pixel, gathered in raster order of the outputs (the order the CPU's scatter adds them, so
// the result is the same to the bit). Assumes the indices came from max_pool_forward: an index
// points into its own window, so only the outputs whose window covers the pixel need looking at.
// The sum is fp32 for either storage type T.
template <typename T>
HOTLAP_HOST_DEVICE inline float max_pool_backward_element(const PoolShape& s, int64_t P, int64_t Q,
                                                         const T* dy, const int32_t* indices,
                                                         int64_t n, int64_t ih, int64_t iw,
                                                         int64_t j) {
  const int64_t C = s.c;
  const int32_t self = static_cast<int32_t>(ih * s.w + iw);
  const int64_t p_first = pool_first_window(ih, s.pad_h, s.window_h, s.stride_h);
  const int64_t p_last = pool_last_window(ih, s.pad_h, s.stride_h, P);
  const int64_t q_first = pool_first_window(iw, s.pad_w, s.window_w, s.stride_w);
  const int64_t q_last = pool_last_window(iw, s.pad_w, s.stride_w, Q);
  float sum = 0.0f;
  for (int64_t p = p_first; p <= p_last; ++p) {
    for (int64_t q = q_first; q <= q_last; ++q) {
      const int64_t out = ((n * P + p) * Q + q) * C + j;
      if (indices[out] == self) sum += load_as_float(dy[out]);
    }
  }
  return sum;
}

// Global average pool of image n, channel j over hw pixels: a double sum in pixel order, as the
// CPU, so the result is the same to the bit (for bf16 storage T: the CPU's, on the widened input).
template <typename T>
HOTLAP_HOST_DEVICE inline float global_avg_pool_element(int64_t hw, int64_t c, const T* x,
                                                       int64_t n, int64_t j) {
  double acc = 0.0;
  for (int64_t i = 0; i < hw; ++i) acc += load_as_float(x[(n * hw + i) * c + j]);
  return static_cast<float>(acc * (1.0 / static_cast<double>(hw)));
}

}  // namespace hotlap::kernels::cuda
