// The launch plan and the per-thread arithmetic of the CUDA batch norm (kernels/cuda/batch_norm.cu),
// as plain functions both nvcc and the host compiler read: the kernels call them with indices from
// blockIdx/threadIdx, and the CPU tests call them with every index in turn, so the plan and the
// index arithmetic are checked on a machine without a GPU.
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>

#include "kernels/batch_norm.h"
#include "kernels/batch_norm_statistics.h"
#include "kernels/cuda/elementwise_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/storage.h"

namespace hotlap::kernels::cuda {

// Every batch-norm kernel has blocks of kBnChannelTile x kBnRowLanes threads: x runs along 32
// consecutive channels (a warp reads 128 contiguous bytes of one row: one fully used transaction),
// y along 8 rows.
constexpr int kBnChannelTile = 32;
constexpr int kBnRowLanes = 8;
// Rows a thread loads before it uses any of them: 4 independent loads in flight per thread.
constexpr int kBnRowUnroll = 4;
// The channel reduction aims at this many blocks (an H100 runs 132 SMs x 8 blocks of 256 threads).
// A constant, not a device query: the split, and so the order of every floating-point addition,
// depends only on the shape, and the results are the same on every GPU (design rule 6).
constexpr int64_t kBnTargetBlocks = 1024;
// A split of fewer rows would spend more on its partial sums than on its loads.
constexpr int64_t kBnMinRowsPerSplit = 64;

// The channel reduction: grid (channel_tiles, splits); block (x, y) sums rows
// [y * rows_per_split, min(rows, (y + 1) * rows_per_split)) of channels [32x, 32x + 32).
struct BatchNormReductionPlan {
  int64_t channel_tiles = 0;
  int64_t splits = 0;
  int64_t rows_per_split = 0;
};

inline BatchNormReductionPlan batch_norm_reduction_plan(int64_t rows, int64_t c) {
  BatchNormReductionPlan plan;
  plan.channel_tiles = ceil_div(c, kBnChannelTile);
  if (rows <= 0 || c <= 0) return plan;
  const int64_t wanted = ceil_div(kBnTargetBlocks, plan.channel_tiles);
  const int64_t most = std::max<int64_t>(1, rows / kBnMinRowsPerSplit);
  const int64_t splits = std::clamp<int64_t>(wanted, 1, most);
  plan.rows_per_split = ceil_div(rows, splits);
  plan.splits = ceil_div(rows, plan.rows_per_split);  // no split left empty by the rounding
  return plan;
}

// The element-wise passes (normalise, dx): grid (channel_tiles, row_blocks), each thread visiting
// kBnRowUnroll rows per step of a grid-stride loop over the rows.
inline int64_t batch_norm_row_blocks(int64_t rows) {
  return std::clamp<int64_t>(ceil_div(rows, kBnRowLanes * kBnRowUnroll), 1, kMaxGridY);
}

// What each entry point keeps in its workspace (launch.h), in floats: the channel reduction's
// partial sums [splits][quantities][c] (the eval forward has no reduction), then `params`
// per-channel arrays [c].
struct BatchNormWorkspaceLayout {
  int quantities = 0;
  int params = 0;
};
constexpr BatchNormWorkspaceLayout kBnForwardTrainWorkspace{2, 2};   // sums d, d^2; mean_lo, scale
constexpr BatchNormWorkspaceLayout kBnForwardEvalWorkspace{0, 1};    // scale
constexpr BatchNormWorkspaceLayout kBnBackwardWorkspace{3, 4};       // sums d, dy*d, dy; coef[4]
constexpr BatchNormWorkspaceLayout kBnBackwardEvalWorkspace{3, 1};   // sums d, dy*d, dy; scale

// Floats of that layout for shape s: 0 for an empty shape (the calls return before any launch).
// Every entry point needs its full layout, whichever of its optional outputs are null.
inline size_t batch_norm_workspace_floats(const BatchNormShape& s, BatchNormWorkspaceLayout layout) {
  if (s.rows <= 0 || s.c <= 0) return 0;
  const int64_t splits = layout.quantities > 0 ? batch_norm_reduction_plan(s.rows, s.c).splits : 0;
  return static_cast<size_t>((splits * layout.quantities + layout.params) * s.c);
}

// One thread's sums over its share of a split: channel j, rows row_begin + lane,
// row_begin + lane + kBnRowLanes, ... below row_end. With d = x - shift:
//   kWithDy false:  d = sum d,  second = sum d^2                 (forward: moments of x)
//   kWithDy true:   d = sum d,  second = sum dy * d,  dy = sum dy  (backward)
// In fp32 whatever the storage type T (float or bf16, storage.h): a thread sums rows_per_split / 8
// values (~200 for ResNet-50 at batch 64); the splits are added in double.
struct ChannelSums {
  float d = 0.0f, second = 0.0f, dy = 0.0f;
};

template <bool kWithDy, typename T>
HOTLAP_HOST_DEVICE inline ChannelSums channel_sums_thread(const T* x, const T* dy,
                                                          float shift, int64_t c, int64_t j,
                                                          int64_t row_begin, int64_t row_end,
                                                          int lane) {
  ChannelSums s;
  constexpr int64_t kStep = kBnRowLanes;
  int64_t r = row_begin + lane;
  // The loads of kBnRowUnroll rows are issued before their arithmetic, so they overlap in memory.
  for (; r + (kBnRowUnroll - 1) * kStep < row_end; r += kBnRowUnroll * kStep) {
    float xv[kBnRowUnroll], gv[kBnRowUnroll];
    for (int u = 0; u < kBnRowUnroll; ++u) {
      xv[u] = load_as_float(x[(r + u * kStep) * c + j]);
      gv[u] = kWithDy ? load_as_float(dy[(r + u * kStep) * c + j]) : 0.0f;
    }
    for (int u = 0; u < kBnRowUnroll; ++u) {
      const float d = xv[u] - shift;
      s.d += d;
      if (kWithDy) {
        s.second += gv[u] * d;
        s.dy += gv[u];
      } else {
        s.second += d * d;
      }
    }
  }
  for (; r < row_end; r += kStep) {
    const float d = load_as_float(x[r * c + j]) - shift;
    s.d += d;
    if (kWithDy) {
      const float g = load_as_float(dy[r * c + j]);
      s.second += g * d;
      s.dy += g;
    } else {
      s.second += d * d;
    }
  }
  return s;
}

// Training forward, per channel j: adds the splits' partial sums [splits][2][c] in split order (in
// double), then the statistics with the CPU kernel's own function (kernels/batch_norm_statistics.h):
// the mean as an fp32 pair save_mean + mean_lo, invstd, scale = gamma * invstd, and the running
// statistics with the unbiased variance. shift is x's first row, as on the CPU.
template <typename T>
HOTLAP_HOST_DEVICE inline void batch_norm_finalize_forward_channel(
    int64_t j, int64_t rows, int64_t c, int64_t splits, const float* partial, const T* x,
    const float* gamma, float eps, float momentum, float* running_mean, float* running_var,
    float* save_mean, float* save_invstd, float* mean_lo, float* scale) {
  double sum_d = 0.0, sum_d2 = 0.0;
  for (int64_t s = 0; s < splits; ++s) {
    sum_d += partial[(s * 2 + 0) * c + j];
    sum_d2 += partial[(s * 2 + 1) * c + j];
  }
  batch_norm_channel_statistics(sum_d, sum_d2, static_cast<double>(load_as_float(x[j])), rows, gamma[j], eps, momentum,
                               running_mean != nullptr ? running_mean + j : nullptr,
                               running_var != nullptr ? running_var + j : nullptr, save_mean + j,
                               save_invstd + j, mean_lo + j, scale + j);
}

// Eval mode, per channel: scale = gamma / sqrt(running_var + eps), as the CPU forms it.
HOTLAP_HOST_DEVICE inline float batch_norm_eval_scale(float gamma, float running_var, float eps) {
  const double invstd = 1.0 / sqrt(static_cast<double>(running_var) + static_cast<double>(eps));
  return static_cast<float>(static_cast<double>(gamma) * invstd);
}

// y = ((x - hi) - lo) * scale + bias [+ residual] [then ReLU, NaN kept], as the CPU's normalize.
HOTLAP_HOST_DEVICE inline float batch_norm_normalize_value(float x, float hi, float lo, float scale,
                                                          float bias, bool has_residual,
                                                          float residual, bool relu) {
  float v = ((x - hi) - lo) * scale + bias;
  if (has_residual) v += residual;
  if (relu) v = Relu::forward(v);
  return v;
}

// Training backward, per channel j: adds the partial sums [splits][3][c] (sum d, sum dy*d, sum dy
// around the saved mean) in split order, accumulates dgamma and dbeta, and leaves the coefficients
// of dx = k * (dy - a - ((x - save_mean) - delta) * b) in coef[4][c] = {k, a, b, delta}.
HOTLAP_HOST_DEVICE inline void batch_norm_finalize_backward_channel(
    int64_t j, int64_t rows, int64_t c, int64_t splits, const float* partial, const float* gamma,
    const float* save_invstd, float* dgamma, float* dbeta, float* coef) {
  double sum_d = 0.0, sum_dy_d = 0.0, sum_dy = 0.0;
  for (int64_t s = 0; s < splits; ++s) {
    sum_d += partial[(s * 3 + 0) * c + j];
    sum_dy_d += partial[(s * 3 + 1) * c + j];
    sum_dy += partial[(s * 3 + 2) * c + j];
  }
  const double inv_rows = 1.0 / static_cast<double>(rows);
  const double invstd = save_invstd[j];
  const double d = sum_d * inv_rows;
  const double sum_dy_xc = sum_dy_d - d * sum_dy;
  dbeta[j] = static_cast<float>(dbeta[j] + sum_dy);
  dgamma[j] = static_cast<float>(dgamma[j] + sum_dy_xc * invstd);
  coef[0 * c + j] = static_cast<float>(static_cast<double>(gamma[j]) * invstd);
  coef[1 * c + j] = static_cast<float>(sum_dy * inv_rows);
  coef[2 * c + j] = static_cast<float>(invstd * invstd * sum_dy_xc * inv_rows);
  coef[3 * c + j] = static_cast<float>(d);
}

HOTLAP_HOST_DEVICE inline float batch_norm_dx_value(float x, float dy, float mean, float k, float a,
                                                   float b, float delta) {
  return k * (dy - a - ((x - mean) - delta) * b);
}

// Eval backward, per channel j: the sums [splits][3][c] are around the running mean; accumulates
// dgamma += sum(dy * (x - running_mean)) * invstd and dbeta += sum(dy) (either may be null).
HOTLAP_HOST_DEVICE inline void batch_norm_finalize_backward_eval_channel(
    int64_t j, int64_t c, int64_t splits, const float* partial, const float* running_var,
    float eps, float* dgamma, float* dbeta) {
  double sum_dy_d = 0.0, sum_dy = 0.0;
  for (int64_t s = 0; s < splits; ++s) {
    sum_dy_d += partial[(s * 3 + 1) * c + j];
    sum_dy += partial[(s * 3 + 2) * c + j];
  }
  const double invstd = 1.0 / sqrt(static_cast<double>(running_var[j]) + static_cast<double>(eps));
  if (dgamma != nullptr) dgamma[j] = static_cast<float>(dgamma[j] + sum_dy_d * invstd);
  if (dbeta != nullptr) dbeta[j] = static_cast<float>(dbeta[j] + sum_dy);
}

}  // namespace hotlap::kernels::cuda
