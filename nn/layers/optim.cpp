#include "nn/layers/optim.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "kernels/profile.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/dispatch.h"

namespace hotlap {


namespace {

// Collects what is wrong with a state map so that one Error can list all of it.
struct StateProblems {
  std::vector<std::string> lines;
  void add(std::string line) { lines.push_back(std::move(line)); }
  void throw_if_any(const char* who) const {
    if (lines.empty()) return;
    std::ostringstream os;
    os << who << ".load_state: the state does not fit this optimizer (" << lines.size() << " problem"
       << (lines.size() == 1 ? "" : "s") << "):";
    const size_t shown = std::min<size_t>(lines.size(), 20);
    for (size_t i = 0; i < shown; ++i) os << "\n  " << lines[i];
    if (lines.size() > shown) os << "\n  ... and " << lines.size() - shown << " more";
    throw Error(os.str());
  }
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The index of the parameter a state entry "<param><suffix>" belongs to, or -1.
int64_t param_index(const NamedTensors& params, const std::string& key, const std::string& suffix) {
  if (!ends_with(key, suffix)) return -1;
  const std::string name = key.substr(0, key.size() - suffix.size());
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].first == name) return static_cast<int64_t>(i);
  return -1;
}

// An f32 cpu copy of a state tensor shaped like `param`, or an undefined tensor after adding a
// problem.
Tensor state_copy(const std::string& key, const Tensor& t, const Tensor& param, StateProblems& problems) {
  if (!t.defined()) {
    problems.add(key + ": undefined tensor");
    return {};
  }
  if (t.shape() != param.shape()) {
    problems.add(key + ": shape " + shape_str(t.shape()) + ", the parameter is " + shape_str(param.shape()));
    return {};
  }
  // A copy in f32 on the parameter's device (a checkpoint is read on the cpu, training may run on cuda).
  Tensor copy = Tensor::empty(param.shape(), DType::f32, param.device());
  copy.copy_from(t);
  return copy;
}

// AdamW's per-parameter step counts travel as f32 tensors; f32 holds integers exactly up to 2^24.
constexpr int64_t kMaxExactStep = int64_t{1} << 24;

}  // namespace

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> params;
  params.reserve(params_.size());
  for (const auto& [name, p] : params_) params.push_back(p);
  return params;
}

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
  kernels::ProfileScope scope("optim.sgd.step");
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    kernels::SgdArgs args;
    args.lr = static_cast<float>(lr_);
    args.momentum = static_cast<float>(options_.momentum);
    args.dampening = static_cast<float>(options_.dampening);
    args.weight_decay = static_cast<float>(decay_of(p, options_.weight_decay, options_.decay_vectors));
    args.nesterov = options_.nesterov;
    args.first_step = !momentum_[i].defined();
    if (options_.momentum != 0.0 && !momentum_[i].defined())
      momentum_[i] = Tensor::empty(p.shape(), DType::f32, p.device());
    dispatch::sgd_update(p.device(), args, p.numel(), p.f32(), g.f32(),
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

void SGD::load_state(const std::map<std::string, Tensor>& state) {
  static const std::string kSuffix = ".momentum_buffer";
  StateProblems problems;
  std::vector<Tensor> next(params_.size());
  for (const auto& [key, t] : state) {
    const int64_t i = param_index(params_, key, kSuffix);
    if (i < 0) {
      problems.add(key + (ends_with(key, kSuffix) ? ": no parameter of that name"
                                                  : ": unknown entry (SGD keeps <param>.momentum_buffer)"));
      continue;
    }
    next[i] = state_copy(key, t, params_[i].second, problems);
  }
  if (options_.momentum == 0.0 && !state.empty())
    problems.add("this SGD has momentum 0 but the state holds momentum buffers (saved with momentum > 0?)");
  problems.throw_if_any("SGD");
  momentum_ = std::move(next);
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
  kernels::ProfileScope scope("optim.adamw.step");
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = Tensor::zeros(p.shape(), DType::f32, p.device());
      exp_avg_sq_[i] = Tensor::zeros(p.shape(), DType::f32, p.device());
    }
    kernels::AdamWArgs args;
    args.lr = static_cast<float>(lr_);
    args.beta1 = static_cast<float>(options_.beta1);
    args.beta2 = static_cast<float>(options_.beta2);
    args.eps = static_cast<float>(options_.eps);
    args.weight_decay = static_cast<float>(decay_of(p, options_.weight_decay, options_.decay_vectors));
    args.step = ++param_steps_[i];
    dispatch::adamw_update(p.device(), args, p.numel(), p.f32(), g.f32(), exp_avg_[i].f32(), exp_avg_sq_[i].f32());
  }
  ++steps_;
}

NamedTensors AdamW::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg_[i].defined()) continue;
    out.emplace_back(params_[i].first + ".exp_avg", exp_avg_[i]);
    out.emplace_back(params_[i].first + ".exp_avg_sq", exp_avg_sq_[i]);
    HOTLAP_CHECK(param_steps_[i] <= kMaxExactStep, "AdamW.state: ", params_[i].first, " has taken ",
                 param_steps_[i], " steps, more than the f32 step entry holds exactly (2^24)");
    out.emplace_back(params_[i].first + ".step",
                     Tensor::full({1}, static_cast<float>(param_steps_[i])));
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& state) {
  static const std::string kAvg = ".exp_avg", kAvgSq = ".exp_avg_sq", kStep = ".step";
  StateProblems problems;
  const size_t n = params_.size();
  std::vector<Tensor> avg(n), avg_sq(n);
  std::vector<int64_t> steps(n, 0);
  std::vector<int> seen(n, 0);  // bit 0: exp_avg, bit 1: exp_avg_sq, bit 2: step
  for (const auto& [key, t] : state) {
    int64_t i = -1;
    int bit = 0;
    for (const auto& [suffix, b] : {std::pair{kAvgSq, 2}, std::pair{kAvg, 1}, std::pair{kStep, 4}}) {
      if (!ends_with(key, suffix)) continue;
      i = param_index(params_, key, suffix);
      bit = b;
      if (i < 0) problems.add(key + ": no parameter of that name");
      break;
    }
    if (bit == 0) problems.add(key + ": unknown entry (AdamW keeps <param>.exp_avg, .exp_avg_sq, .step)");
    if (i < 0) continue;
    const Tensor& p = params_[i].second;
    seen[i] |= bit;
    if (bit == 1) avg[i] = state_copy(key, t, p, problems);
    if (bit == 2) avg_sq[i] = state_copy(key, t, p, problems);
    if (bit == 4) {
      if (!t.defined() || t.device() != Device::cpu || t.numel() != 1) {
        problems.add(key + ": expected one step count, got " + (t.defined() ? t.describe() : "an undefined tensor"));
        continue;
      }
      const float v = t.item();
      if (!(v >= 1.0f && v <= static_cast<float>(kMaxExactStep)) || v != std::floor(v)) {
        std::ostringstream os;
        os << key << ": step count " << v << " is not an integer in [1, 2^24]";
        problems.add(os.str());
        continue;
      }
      steps[i] = static_cast<int64_t>(v);
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (seen[i] != 0 && seen[i] != 7)
      problems.add(params_[i].first + ": has " + (seen[i] & 1 ? "" : "no ") + "exp_avg, " +
                   (seen[i] & 2 ? "" : "no ") + "exp_avg_sq and " + (seen[i] & 4 ? "a" : "no") +
                   " step; AdamW needs all three or none");
  problems.throw_if_any("AdamW");
  exp_avg_ = std::move(avg);
  exp_avg_sq_ = std::move(avg_sq);
  param_steps_ = std::move(steps);
}

}  // namespace hotlap
