// Batch normalisation on the CPU, NHWC: channels are the fastest dimension, so every pass walks the
// rows (N*H*W) and, inside a row, runs a vectorised loop over the C channels.
//
// Training forward, two passes over x:
//   1. per-channel sums of d = x - shift and d^2 in double, shift = the first row (a cheap guess of
//      the mean that removes the cancellation of the naive sum/sum-of-squares formula):
//        mean = shift + S1/rows,  var = S2/rows - (S1/rows)^2   (biased, as the normalisation uses)
//   2. y = (x - mean) * (gamma * invstd) + beta,  invstd = 1/sqrt(var + eps), with the mean as an
//      fp32 hi + lo pair so a mean much larger than the spread costs no accuracy (see normalize).
// Backward, two passes over x and dy:
//   1. per-channel sum(dy), sum(dy * (x - m)) and sum(x - m) in double around the saved fp32 mean m
//      (the last recovers the rest of the true mean) -> dbeta, dgamma (= sum(dy * xhat))
//   2. dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
//
// Reductions are split into row blocks whose size depends only on `rows`, never on the thread
// count; the threads fill one partial-sum slot per block and the slots are added in block order. So
// the result is bit-identical for any OMP_NUM_THREADS (design rule 6).
//
// The three row passes are built for each instruction-set level (kernels/cpu/isa_dispatch.h) and
// run at the level active_cpu_isa() says: in cache (inference runs the normalising pass on each block
// of rows a convolution has just written) the 16-wide build is ~3x faster than the 4-wide one. Every
// level gives the same bits: the passes are element-wise across channels (no reduction changes order
// with the vector width) and this file is compiled without fused multiply-adds (-ffp-contract=off),
// which also keeps it rounding like the GPU's per-thread maths (kernels/cuda/batch_norm_math.h).
//
// ResNet-50 conv1 output at batch 32: rows = 32*112*112 = 401k, C = 64 -> 25.7M elements:
// ~8 FLOPs/element forward (~0.2 GFLOP) against 3 x 4 bytes/element (~310 MB): memory-bound.
#include "kernels/batch_norm.h"
#include "kernels/batch_norm_statistics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/isa_dispatch.h"
#include "kernels/error.h"

namespace hotlap::kernels::cpu {

namespace {

// Elements; below this the threads cost more than they save.
constexpr int64_t kParallelMin = 1 << 15;
constexpr int64_t kMaxBlocks = 256;
constexpr int64_t kMinBlockRows = 16;

struct RowBlocks {
  int64_t rows_per_block, count;
};

RowBlocks row_blocks(int64_t rows) {
  int64_t per = std::max<int64_t>(kMinBlockRows, (rows + kMaxBlocks - 1) / kMaxBlocks);
  return {per, (rows + per - 1) / per};
}

// f(block, r0, r1) for every block of row_blocks(rows), shared out over the OpenMP threads when
// there is enough work.
template <class F>
void for_each_row_block(int64_t rows, int64_t c, F&& f) {
  const RowBlocks blocks = row_blocks(rows);
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t b = 0; b < blocks.count; ++b)
    f(b, b * blocks.rows_per_block, std::min(rows, (b + 1) * blocks.rows_per_block));
}

void check_shape(const char* op, const BatchNormShape& s) {
  HOTLAP_CHECK(s.rows >= 0 && s.c >= 0, op, ": bad shape rows=", s.rows, " c=", s.c,
               " (rows = N*H*W and c must be >= 0)");
}

// One block's share of channel_sums: rows [r0, r1) added into s_d, s_2 (and s_dy).
__attribute__((always_inline)) inline void channel_sums_rows(
    int64_t r0, int64_t r1, int64_t c, const float* x, const double* shift, const float* dy, double* s_d,
    double* s_2, double* s_dy) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    if (dy == nullptr) {
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const double d = static_cast<double>(xr[j]) - shift[j];
        s_d[j] += d;
        s_2[j] += d * d;
      }
    } else {
      const float* dyr = dy + r * c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const double d = static_cast<double>(xr[j]) - shift[j];
        const double g = static_cast<double>(dyr[j]);
        s_d[j] += d;
        s_2[j] += g * d;
        s_dy[j] += g;
      }
    }
  }
}

// Per-channel sums over the rows, in double, with d = x[r,j] - shift[j]:
//   dy == null:  sum_d[j] = sum_r d,  sum2[j] = sum_r d^2                 (moments of x)
//   dy given:    sum_d[j] = sum_r d,  sum2[j] = sum_r dy * d,  sum_dy[j] = sum_r dy  (backward)
void channel_sums(int64_t rows, int64_t c, const float* x, const double* shift, const float* dy,
                  double* sum_d, double* sum2, double* sum_dy) {
  const RowBlocks blocks = row_blocks(rows);
  std::vector<double> partial(static_cast<size_t>(blocks.count * 3 * c), 0.0);
  const auto sums_rows = built_for_active_cpu_isa<channel_sums_rows>();
  for_each_row_block(rows, c, [&](int64_t b, int64_t r0, int64_t r1) {
    double* s_d = partial.data() + b * 3 * c;
    sums_rows(r0, r1, c, x, shift, dy, s_d, s_d + c, s_d + 2 * c);
  });
  std::fill(sum_d, sum_d + c, 0.0);
  std::fill(sum2, sum2 + c, 0.0);
  if (sum_dy != nullptr) std::fill(sum_dy, sum_dy + c, 0.0);
  for (int64_t b = 0; b < blocks.count; ++b) {  // in block order: deterministic
    const double* part = partial.data() + b * 3 * c;
    for (int64_t j = 0; j < c; ++j) {
      sum_d[j] += part[j];
      sum2[j] += part[c + j];
      if (sum_dy != nullptr) sum_dy[j] += part[2 * c + j];
    }
  }
}

// y[r,j] = ((x[r,j] - center_hi[j]) - center_lo[j]) * scale[j] + bias[j], then the epilogue, for
// rows [r0, r1).
// The centre is a float pair hi + lo: x - hi is exact when x is near the mean (Sterbenz), so a mean
// that is large next to the spread costs no accuracy (a single fp32 mean would be off by up to half
// an ulp of the mean, which for x = 1e4 +- 0.01 is 10% of the standard deviation).
__attribute__((always_inline)) inline void normalize_rows(
    int64_t r0, int64_t r1, int64_t c, const float* x, const float* center_hi, const float* center_lo,
    const float* scale, const float* bias, float* y, const float* res, bool relu) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    const float* rr = res ? res + r * c : nullptr;
    float* yr = y + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      float v = ((xr[j] - center_hi[j]) - center_lo[j]) * scale[j] + bias[j];
      if (rr) v += rr[j];
      // v > 0 ? v : 0 keeps NaN as NaN, as torch.relu does.
      if (relu) v = (v > 0.0f || v != v) ? v : 0.0f;
      yr[j] = v;
    }
  }
}

// dx[r,j] = k[j] * (dy[r,j] - a[j] - ((x[r,j] - mean[j]) - delta[j]) * b[j]) for rows [r0, r1):
// the training backward's element-wise pass.
__attribute__((always_inline)) inline void backward_dx_rows(
    int64_t r0, int64_t r1, int64_t c, const float* x, const float* dy, const float* mean, const float* delta,
    const float* k, const float* a, const float* b, float* dx) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;
    const float* dyr = dy + r * c;
    float* dxr = dx + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) dxr[j] = k[j] * (dyr[j] - a[j] - ((xr[j] - mean[j]) - delta[j]) * b[j]);
  }
}

void normalize(int64_t rows, int64_t c, const float* x, const float* center_hi,
               const float* center_lo, const float* scale, const float* bias, float* y,
               const BatchNormEpilogue& epilogue) {
  const auto norm_rows = built_for_active_cpu_isa<normalize_rows>();
  for_each_row_block(rows, c, [&](int64_t, int64_t r0, int64_t r1) {
    norm_rows(r0, r1, c, x, center_hi, center_lo, scale, bias, y, epilogue.residual, epilogue.relu);
  });
}

}  // namespace

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             const BatchNormEpilogue& epilogue) {
  check_shape("batch_norm_forward_train", s);
  HOTLAP_CHECK(s.rows > 1 || s.c == 0,
               "batch_norm: training needs more than one value per channel (rows = N*H*W = ", s.rows,
               ", c = ", s.c, "); use a batch larger than 1 or eval mode");
  const int64_t rows = s.rows, c = s.c;
  if (c == 0) return;

  std::vector<double> shift(c), sum_d(c), sum_d2(c);
  for (int64_t j = 0; j < c; ++j) shift[j] = x[j];
  channel_sums(rows, c, x, shift.data(), nullptr, sum_d.data(), sum_d2.data(), nullptr);

  std::vector<float> scale(c), mean_lo(c);
  for (int64_t j = 0; j < c; ++j)
    batch_norm_channel_statistics(sum_d[j], sum_d2[j], shift[j], rows, gamma[j], eps, momentum,
                                 running_mean != nullptr ? running_mean + j : nullptr,
                                 running_var != nullptr ? running_var + j : nullptr, save_mean + j,
                                 save_invstd + j, mean_lo.data() + j, scale.data() + j);
  normalize(rows, c, x, save_mean, mean_lo.data(), scale.data(), beta, y, epilogue);
}

void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, const BatchNormEpilogue& epilogue) {
  check_shape("batch_norm_forward_eval", s);
  const int64_t rows = s.rows, c = s.c;
  if (rows == 0 || c == 0) return;
  std::vector<float> scale(c), zeros(c, 0.0f);
  for (int64_t j = 0; j < c; ++j) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[j]) + eps);
    scale[j] = static_cast<float>(static_cast<double>(gamma[j]) * invstd);
  }
  normalize(rows, c, x, running_mean, zeros.data(), scale.data(), beta, y, epilogue);
}

void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dx, float* dgamma, float* dbeta) {
  check_shape("batch_norm_backward", s);
  const int64_t rows = s.rows, c = s.c;
  if (rows == 0 || c == 0) return;

  // Sums around the saved fp32 mean m; sum(x - m) recovers delta = (true mean) - m in double, so
  // xc = x - mean is formed as (x - m) - delta: the same float pair the forward pass used.
  std::vector<double> m(c), sum_d(c), sum_dy_d(c), sum_dy(c);
  for (int64_t j = 0; j < c; ++j) m[j] = save_mean[j];
  channel_sums(rows, c, x, m.data(), dy, sum_d.data(), sum_dy_d.data(), sum_dy.data());

  // dx = k * (dy - a - xc * b) with k = gamma*invstd, a = mean(dy),
  // b = invstd * mean(dy * xhat) = invstd^2 * sum(dy * xc) / rows.
  std::vector<float> k_v(c), a_v(c), b_v(c), delta_v(c);
  float* k = k_v.data();
  float* a = a_v.data();
  float* b = b_v.data();
  float* delta = delta_v.data();
  const double inv_rows = 1.0 / static_cast<double>(rows);
  for (int64_t j = 0; j < c; ++j) {
    const double invstd = save_invstd[j];
    const double d = sum_d[j] * inv_rows;
    const double sum_dy_xc = sum_dy_d[j] - d * sum_dy[j];
    dbeta[j] = static_cast<float>(dbeta[j] + sum_dy[j]);
    dgamma[j] = static_cast<float>(dgamma[j] + sum_dy_xc * invstd);
    k[j] = static_cast<float>(static_cast<double>(gamma[j]) * invstd);
    a[j] = static_cast<float>(sum_dy[j] * inv_rows);
    b[j] = static_cast<float>(invstd * invstd * sum_dy_xc * inv_rows);
    delta[j] = static_cast<float>(d);
  }
  const auto dx_rows = built_for_active_cpu_isa<backward_dx_rows>();
  for_each_row_block(rows, c, [&](int64_t, int64_t r0, int64_t r1) {
    dx_rows(r0, r1, c, x, dy, save_mean, delta, k, a, b, dx);
  });
}

void batch_norm_backward_eval(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                             const float* running_mean, const float* running_var, float eps, float* dx,
                             float* dgamma, float* dbeta) {
  check_shape("batch_norm_backward_eval", s);
  const int64_t rows = s.rows, c = s.c;
  if (rows == 0 || c == 0) return;
  std::vector<double> invstd(c), shift(c), sum_d(c), sum_dy_d(c), sum_dy(c);
  for (int64_t j = 0; j < c; ++j) {
    invstd[j] = 1.0 / std::sqrt(static_cast<double>(running_var[j]) + eps);
    shift[j] = running_mean[j];
  }
  if (dgamma || dbeta) {
    // sum(dy * (x - running_mean)) and sum(dy), around the running mean.
    channel_sums(rows, c, x, shift.data(), dy, sum_d.data(), sum_dy_d.data(), sum_dy.data());
    for (int64_t j = 0; j < c; ++j) {
      if (dgamma) dgamma[j] = static_cast<float>(dgamma[j] + sum_dy_d[j] * invstd[j]);
      if (dbeta) dbeta[j] = static_cast<float>(dbeta[j] + sum_dy[j]);
    }
  }
  if (!dx) return;
  std::vector<float> scale(c);
  for (int64_t j = 0; j < c; ++j) scale[j] = static_cast<float>(static_cast<double>(gamma[j]) * invstd[j]);
  const float* k = scale.data();
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* dyr = dy + r * c;
    float* dxr = dx + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) dxr[j] = dyr[j] * k[j];
  }
}

}  // namespace hotlap::kernels::cpu
