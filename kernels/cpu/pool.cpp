// Max pooling and global average pooling on the CPU, NHWC.
//
// Max pool: for every output pixel, walk its window in raster order (h, then w) and keep, per
// channel, the running max and the flat index h*W + w it came from; the inner loop runs over the C
// contiguous channels, so it is a vectorised compare-and-select. A value wins when it is strictly
// greater (the first max wins a tie) or NaN (NaN propagates), exactly PyTorch's CPU rule. Padding
// is never read, which is the same as padding with -infinity. Backward zeroes dx and adds each dy
// to its winner: no recomputation. Images are independent, so the backward threads split the batch.
//
// ResNet-50's stem pool (3x3, stride 2, pad 1) at batch 32: 32x112x112x64 in (103 MB) ->
// 32x56x56x64 out (26 MB), 9 compares per output: ~0.06 GFLOP against ~130 MB -> memory-bound.
// Global average pool: one read of [N, H*W, C], one add per element: memory-bound.
#include "kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/error.h"

namespace hotlap::kernels {

void check_max_pool_shape(const char* op, const PoolShape& s) {
  const bool ok = s.n >= 0 && s.c >= 0 && s.h >= 1 && s.w >= 1 && s.window_h >= 1 &&
                  s.window_w >= 1 && s.stride_h >= 1 && s.stride_w >= 1 && s.pad_h >= 0 &&
                  s.pad_w >= 0 && 2 * s.pad_h <= s.window_h && 2 * s.pad_w <= s.window_w &&
                  s.h + 2 * s.pad_h >= s.window_h && s.w + 2 * s.pad_w >= s.window_w &&
                  s.h * s.w <= std::numeric_limits<int32_t>::max();
  HOTLAP_CHECK(
      ok, op, ": bad shape: input [N,H,W,C]=[", s.n, ",", s.h, ",", s.w, ",", s.c, "] window ",
      s.window_h, "x", s.window_w, " stride ", s.stride_h, "x", s.stride_w, " pad ", s.pad_h, "x",
      s.pad_w,
      "; need H,W >= 1, window and stride >= 1, 0 <= pad <= window/2, and the padded input "
      "at least as large as the window (output >= 1x1)");
}

}  // namespace hotlap::kernels

namespace hotlap::kernels::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;  // elements

}  // namespace

void max_pool2d_forward(const PoolShape& s, const float* x, float* y, int32_t* indices) {
  check_max_pool_shape("max_pool2d_forward", s);
  const int64_t H = s.h, W = s.w, C = s.c, P = s.p(), Q = s.q();
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for collapse(2) schedule(static) if (s.n * P * Q * C > kParallelMin)
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t p = 0; p < P; ++p) {
      const int64_t h0 = p * s.stride_h - s.pad_h;
      const int64_t h_begin = std::max<int64_t>(h0, 0), h_end = std::min(h0 + s.window_h, H);
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t w0 = q * s.stride_w - s.pad_w;
        const int64_t w_begin = std::max<int64_t>(w0, 0), w_end = std::min(w0 + s.window_w, W);
        float* yo = y + ((n * P + p) * Q + q) * C;
        int32_t* io = indices + ((n * P + p) * Q + q) * C;
        // A window wholly in the padding cannot happen with pad <= window/2; guard anyway: -inf,
        // and index -1, which the backward pass skips.
        const bool empty = h_begin >= h_end || w_begin >= w_end;
        const int32_t first = empty ? -1 : static_cast<int32_t>(h_begin * W + w_begin);
        for (int64_t j = 0; j < C; ++j) {
          yo[j] = kNegInf;
          io[j] = first;
        }
        for (int64_t ih = h_begin; ih < h_end; ++ih) {
          for (int64_t iw = w_begin; iw < w_end; ++iw) {
            const float* xi = x + ((n * H + ih) * W + iw) * C;
            const int32_t idx = static_cast<int32_t>(ih * W + iw);
#pragma omp simd
            for (int64_t j = 0; j < C; ++j) {
              const float v = xi[j];
              const bool take = v > yo[j] || std::isnan(v);
              yo[j] = take ? v : yo[j];
              io[j] = take ? idx : io[j];
            }
          }
        }
      }
    }
  }
}

void max_pool2d_backward(const PoolShape& s, const float* dy, const int32_t* indices, float* dx) {
  check_max_pool_shape("max_pool2d_backward", s);
  const int64_t HW = s.h * s.w, C = s.c, PQ = s.p() * s.q();
#pragma omp parallel for schedule(static) if (s.n * HW * C > kParallelMin)
  for (int64_t n = 0; n < s.n; ++n) {
    float* dxn = dx + n * HW * C;
    std::memset(dxn, 0, static_cast<size_t>(HW * C) * sizeof(float));
    const float* dyn = dy + n * PQ * C;
    const int32_t* in = indices + n * PQ * C;
    for (int64_t pq = 0; pq < PQ; ++pq) {
      for (int64_t j = 0; j < C; ++j) {
        const int64_t idx = in[pq * C + j];
        if (idx >= 0 && idx < HW) dxn[idx * C + j] += dyn[pq * C + j];
      }
    }
  }
}

void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  HOTLAP_CHECK(n >= 0 && hw >= 1 && c >= 0, "global_avg_pool_forward: bad shape n=", n, " hw=", hw,
               " c=", c, " (need H*W >= 1)");
  constexpr int64_t kChannelBlock = 256;  // double accumulators on the stack, one block at a time
  const double inv_hw = 1.0 / static_cast<double>(hw);
#pragma omp parallel for schedule(static) if (n * hw * c > kParallelMin)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t j0 = 0; j0 < c; j0 += kChannelBlock) {
      const int64_t jn = std::min(kChannelBlock, c - j0);
      double acc[kChannelBlock] = {};
      for (int64_t i = 0; i < hw; ++i) {
        const float* xi = x + (b * hw + i) * c + j0;
#pragma omp simd
        for (int64_t j = 0; j < jn; ++j) acc[j] += xi[j];
      }
      for (int64_t j = 0; j < jn; ++j) y[b * c + j0 + j] = static_cast<float>(acc[j] * inv_hw);
    }
  }
}

void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  HOTLAP_CHECK(n >= 0 && hw >= 1 && c >= 0, "global_avg_pool_backward: bad shape n=", n, " hw=", hw,
               " c=", c, " (need H*W >= 1)");
  const float hw_f = static_cast<float>(hw);
#pragma omp parallel for schedule(static) if (n * hw * c > kParallelMin)
  for (int64_t r = 0; r < n * hw; ++r) {
    const float* dyn = dy + (r / hw) * c;
    float* dxr = dx + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) dxr[j] = dyn[j] / hw_f;
  }
}

}  // namespace hotlap::kernels::cpu
