#include "nn/layers/schedule.h"

#include <algorithm>
#include <cmath>

#include "kernels/error.h"

namespace hotlap {

StepLr::StepLr(double lr, int64_t step_size, double gamma) : lr_(lr), gamma_(gamma), step_size_(step_size) {
  HOTLAP_CHECK(step_size > 0, "StepLr: step size must be positive, got ", step_size);
}

double StepLr::lr_at(int64_t step) const {
  return lr_ * std::pow(gamma_, static_cast<double>(std::max<int64_t>(step, 0) / step_size_));
}

CosineLr::CosineLr(double lr, int64_t warmup, int64_t total, double min_lr)
    : lr_(lr), min_lr_(min_lr), warmup_(warmup), total_(total) {
  HOTLAP_CHECK(warmup >= 0 && total > warmup, "CosineLr: need 0 <= warmup (", warmup, ") < total (",
               total, ")");
}

double CosineLr::lr_at(int64_t step) const {
  if (step < warmup_) return lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_ + 1);
  const double t = std::min(1.0, static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_));
  return min_lr_ + 0.5 * (lr_ - min_lr_) * (1.0 + std::cos(M_PI * t));
}

}  // namespace hotlap
