// Learning-rate schedules: the rate as a pure function of the step number (0-based), so a resumed
// run needs only the step to continue exactly where it was.
#pragma once

#include <cstdint>
#include <memory>

namespace hotlap {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr_at(int64_t step) const = 0;
};

class ConstantLr : public LrSchedule {
 public:
  explicit ConstantLr(double lr) : lr_(lr) {}
  double lr_at(int64_t) const override { return lr_; }

 private:
  double lr_;
};

// lr * gamma^(step / step_size): the paper's schedule is StepLr(1e-3, 5000, 0.1).
class StepLr : public LrSchedule {
 public:
  StepLr(double lr, int64_t step_size, double gamma);
  double lr_at(int64_t step) const override;

 private:
  double lr_, gamma_;
  int64_t step_size_;
};

// Linear warm-up from 0 over `warmup` steps, then half a cosine from lr down to min_lr at `total`.
class CosineLr : public LrSchedule {
 public:
  CosineLr(double lr, int64_t warmup, int64_t total, double min_lr = 0.0);
  double lr_at(int64_t step) const override;

 private:
  double lr_, min_lr_;
  int64_t warmup_, total_;
};

}  // namespace hotlap
