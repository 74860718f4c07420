#include "nn/optim.h"

#include "nn/autograd.h"

namespace hotlap {

namespace kc = kernels::cpu;

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) {
    Tensor t = p;
    t.zero_grad();
  }
}

SGD::SGD(NamedTensors params, const SgdOptions& options)
    : Optimizer(std::move(params)), options_(options), momentum_(params_.size()) {
  HOTLAP_CHECK(options.lr >= 0 && options.momentum >= 0 && options.weight_decay >= 0,
               "SGD: lr, momentum and weight decay must be non-negative");
  HOTLAP_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
               "SGD: Nesterov momentum needs momentum > 0 and dampening 0");
  lr_ = options.lr;
}

void SGD::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    kernels::SgdArgs args;
    args.lr = static_cast<float>(lr_);
    args.momentum = static_cast<float>(options_.momentum);
    args.dampening = static_cast<float>(options_.dampening);
    args.weight_decay = static_cast<float>(options_.weight_decay);
    args.nesterov = options_.nesterov;
    args.first_step = !momentum_[i].defined();
    if (options_.momentum != 0.0 && !momentum_[i].defined()) momentum_[i] = Tensor::empty(p.shape());
    kc::sgd_update(args, p.numel(), p.f32(), g.f32(),
                   momentum_[i].defined() ? momentum_[i].f32() : nullptr);
  }
  ++steps_;
}

NamedTensors SGD::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i)
    if (momentum_[i].defined()) out.emplace_back(params_[i].first + ".momentum_buffer", momentum_[i]);
  return out;
}

AdamW::AdamW(NamedTensors params, const AdamWOptions& options)
    : Optimizer(std::move(params)),
      options_(options),
      exp_avg_(params_.size()),
      exp_avg_sq_(params_.size()),
      param_steps_(params_.size(), 0) {
  HOTLAP_CHECK(options.lr >= 0 && options.eps >= 0 && options.weight_decay >= 0,
               "AdamW: lr, eps and weight decay must be non-negative");
  HOTLAP_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
               "AdamW: betas must be in [0, 1)");
  lr_ = options.lr;
}

void AdamW::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = Tensor::zeros(p.shape());
      exp_avg_sq_[i] = Tensor::zeros(p.shape());
    }
    kernels::AdamWArgs args;
    args.lr = static_cast<float>(lr_);
    args.beta1 = static_cast<float>(options_.beta1);
    args.beta2 = static_cast<float>(options_.beta2);
    args.eps = static_cast<float>(options_.eps);
    args.weight_decay = static_cast<float>(options_.weight_decay);
    args.step = ++param_steps_[i];
    kc::adamw_update(args, p.numel(), p.f32(), g.f32(), exp_avg_[i].f32(), exp_avg_sq_[i].f32());
  }
  ++steps_;
}

NamedTensors AdamW::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg_[i].defined()) continue;
    out.emplace_back(params_[i].first + ".exp_avg", exp_avg_[i]);
    out.emplace_back(params_[i].first + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  return out;
}

}  // namespace hotlap
