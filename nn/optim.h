// Optimizers: SGD (momentum, Nesterov, weight decay) and AdamW, with the semantics of torch.optim.
//
// An optimizer holds the parameters (shared handles, so it updates the model's tensors in place) and
// a state tensor per parameter (momentum buffer; AdamW's first and second moments). The learning rate
// is set from outside each step, usually by a schedule (nn/schedule.h). Parameters without a gradient
// are skipped, as PyTorch does.
#pragma once

#include <string>
#include <vector>

#include "kernels/optim.h"
#include "nn/module.h"

namespace hotlap {

class Optimizer {
 public:
  explicit Optimizer(NamedTensors params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps_taken() const { return steps_; }
  // Optimizer state by name ("<param>.momentum_buffer", "<param>.exp_avg", ...), for checkpoints.
  virtual NamedTensors state() const = 0;

 protected:
  NamedTensors params_;
  double lr_ = 0.0;
  int64_t steps_ = 0;
};

struct SgdOptions {
  double lr = 0.01, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, const SgdOptions& options);
  void step() override;
  NamedTensors state() const override;

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_;  // undefined until the parameter's first step
};

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
};

class AdamW : public Optimizer {
 public:
  AdamW(NamedTensors params, const AdamWOptions& options);
  void step() override;
  NamedTensors state() const override;

 private:
  AdamWOptions options_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> param_steps_;  // per parameter, as PyTorch counts them
};

}  // namespace hotlap
