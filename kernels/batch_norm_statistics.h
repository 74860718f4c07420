// One channel's batch statistics from its sums, shared by the CPU kernel (kernels/cpu/batch_norm.cpp)
// and the CUDA kernel (kernels/cuda/batch_norm_math.h), so both form them with the same operations in
// the same order and agree to the last bit given the same sums (both files are built without
// fused multiply-adds, which would round a*b + c once instead of twice: CMakeLists.txt).
//
// The sums are of d = x - shift over the channel's rows (shift: the channel's value in the first
// row, which keeps the sums small and the variance accurate when the mean is large):
//   mean = shift + sum_d / rows,  var = sum_d2 / rows - (sum_d / rows)^2 (biased, clamped at 0)
// The mean is kept as an fp32 pair (save_mean + mean_lo) so that x - mean is exact enough in fp32;
// the running statistics use the unbiased variance (rows / (rows - 1)), as PyTorch does.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/host_device.h"

namespace hotlap::kernels {

HOTLAP_HOST_DEVICE inline void batch_norm_channel_statistics(double sum_d, double sum_d2, double shift,
                                                            int64_t rows, float gamma, float eps,
                                                            float momentum, float* running_mean,
                                                            float* running_var, float* save_mean,
                                                            float* save_invstd, float* mean_lo,
                                                            float* scale) {
  const double inv_rows = 1.0 / static_cast<double>(rows);
  const double centered_mean = sum_d * inv_rows;
  const double mean = shift + centered_mean;
  double var = sum_d2 * inv_rows - centered_mean * centered_mean;
  if (!(var > 0.0)) var = 0.0;
  const double invstd = 1.0 / sqrt(var + static_cast<double>(eps));
  *save_mean = static_cast<float>(mean);
  *mean_lo = static_cast<float>(mean - static_cast<double>(*save_mean));
  *save_invstd = static_cast<float>(invstd);
  *scale = static_cast<float>(static_cast<double>(gamma) * invstd);
  const double m = momentum;
  if (running_mean != nullptr) *running_mean = static_cast<float>((1.0 - m) * *running_mean + m * mean);
  if (running_var != nullptr) {
    const double unbiased = var * static_cast<double>(rows) / static_cast<double>(rows - 1);
    *running_var = static_cast<float>((1.0 - m) * *running_var + m * unbiased);
  }
}

}  // namespace hotlap::kernels
