// Optimizers: SGD (momentum, Nesterov, weight decay) and AdamW, with the semantics of torch.optim.
//
// An optimizer holds the parameters (shared handles, so it updates the model's tensors in place) and
// a state tensor per parameter (momentum buffer; AdamW's first and second moments). The learning rate
// is set from outside each step, usually by a schedule (nn/layers/schedule.h). Parameters without a gradient
// are skipped, as PyTorch does.
//
// Checkpoints (nn/files/checkpoint.h) save state() and give it back through load_state(). The names are
// "<param>.<what>" as in torch.optim's per-parameter state:
//   SGD    "<param>.momentum_buffer"              (only for parameters that have taken a step)
//   AdamW  "<param>.exp_avg", "<param>.exp_avg_sq" and "<param>.step": the parameter's own step
//          count (what bias correction uses), stored as an f32 [1] tensor holding an integer, as
//          torch.optim.AdamW keeps it. f32 holds every integer up to 2^24 = 16,777,216 exactly;
//          state() refuses a larger count rather than round it.
// load_state() checks every name and shape before it changes anything; a parameter with no entry
// goes back to "never stepped".
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kernels/optim.h"
#include "nn/layers/module.h"

namespace hotlap {

class Optimizer {
 public:
  explicit Optimizer(NamedTensors params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  // The parameters it updates, in order (handles on the model's tensors).
  std::vector<Tensor> parameters() const;
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps_taken() const { return steps_; }
  // The weight decay parameter `p` takes: `decay`, or 0 for a vector (ndim 1) when vectors are spared.
  static double decay_of(const Tensor& p, double decay, bool decay_vectors) {
    return decay_vectors || p.ndim() > 1 ? decay : 0.0;
  }
  void set_steps_taken(int64_t steps) { steps_ = steps; }  // for resuming from a checkpoint
  virtual std::string kind() const = 0;  // "sgd", "adamw": what a checkpoint records
  // Optimizer state by name ("<param>.momentum_buffer", "<param>.exp_avg", ...), for checkpoints.
  virtual NamedTensors state() const = 0;
  // Replaces the state with `state` (as state() returned it); copies the values. Throws Error,
  // leaving the optimizer unchanged, on an unknown name, a wrong shape or an incomplete entry.
  virtual void load_state(const std::map<std::string, Tensor>& state) = 0;

 protected:
  NamedTensors params_;
  double lr_ = 0.0;
  int64_t steps_ = 0;
};

// decay_vectors = false: no weight decay on the parameters of one dimension -- biases and batch
// norm's scales and shifts -- as the ImageNet recipes do (PyTorch: a parameter group with
// weight_decay 0 for them); the weights of convolutions and linear layers decay as before.
struct SgdOptions {
  double lr = 0.01, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  bool decay_vectors = true;
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, const SgdOptions& options);
  void step() override;
  std::string kind() const override { return "sgd"; }
  NamedTensors state() const override;
  void load_state(const std::map<std::string, Tensor>& state) override;

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_;  // undefined until the parameter's first step
};

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
  bool decay_vectors = true;  // as SgdOptions'
};

class AdamW : public Optimizer {
 public:
  AdamW(NamedTensors params, const AdamWOptions& options);
  void step() override;
  std::string kind() const override { return "adamw"; }
  NamedTensors state() const override;
  void load_state(const std::map<std::string, Tensor>& state) override;

 private:
  AdamWOptions options_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> param_steps_;  // per parameter, as PyTorch counts them
};

}  // namespace hotlap
