#include "nn/layers/module.h"

#include <cmath>
#include <set>
#include <sstream>

#include "nn/runtime/autograd.h"
#include "nn/layers/ops.h"
#include "nn/runtime/random.h"

namespace hotlap {

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
  if (params)
    for (const auto& [name, t] : params_) out.emplace_back(prefix + name, t);
  if (buffers)
    for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

NamedTensors Module::state() const {
  NamedTensors out;
  collect("", true, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::load_state(const std::map<std::string, Tensor>& values) {
  std::ostringstream problems;
  std::set<std::string> used;
  for (auto& [name, t] : state()) {
    auto it = values.find(name);
    if (it == values.end()) {
      problems << "\n  missing: " << name << " " << shape_str(t.shape());
    } else if (it->second.shape() != t.shape()) {
      problems << "\n  wrong shape: " << name << " is " << shape_str(it->second.shape())
               << ", the model expects " << shape_str(t.shape());
    }
    used.insert(name);
  }
  for (auto& [name, t] : values)
    if (!used.count(name)) problems << "\n  unexpected: " << name << " " << shape_str(t.shape());
  HOTLAP_CHECK(problems.str().empty(), "load_state: the weights do not fit the model:", problems.str());
  for (auto& [name, t] : state()) {
    Tensor target = t;
    target.copy_from(values.at(name));
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  for (auto& [name, t] : state()) {
    Tensor handle = t;
    handle.move_to_(device);
  }
}

void Module::zero_grad() {
  for (auto& [name, t] : named_parameters()) {
    Tensor p = t;
    p.zero_grad();
  }
}

bool Module::remove_module(const std::string& name) {
  for (auto it = children_.begin(); it != children_.end(); ++it)
    if (it->first == name) {
      children_.erase(it);
      return true;
    }
  return false;
}

// ---- layers -----------------------------------------------------------------------------------

namespace {
thread_local bool g_skip_parameter_init = false;
}  // namespace

SkipParameterInit::SkipParameterInit() : saved_(g_skip_parameter_init) { g_skip_parameter_init = true; }
SkipParameterInit::~SkipParameterInit() { g_skip_parameter_init = saved_; }
bool SkipParameterInit::active() { return g_skip_parameter_init; }

// PyTorch's default for conv and linear: kaiming_uniform(a = sqrt(5)), which works out to
// uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight, and the same bound for the bias.
static Tensor init_uniform(const Shape& shape, int64_t fan_in) {
  if (SkipParameterInit::active()) return Tensor::zeros(shape);
  Tensor t = Tensor::empty(shape);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  fill_uniform(t, -bound, bound);
  return t;
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride_, int64_t padding_, bool with_bias)
    : stride(stride_), padding(padding_) {
  HOTLAP_CHECK(in > 0 && out > 0 && kernel > 0 && stride_ > 0 && padding_ >= 0, "Conv2d(", in, ", ",
               out, ", kernel ", kernel, ", stride ", stride_, ", padding ", padding_, "): bad sizes");
  const int64_t fan_in = in * kernel * kernel;
  weight = register_parameter("weight", init_uniform({out, kernel, kernel, in}, fan_in));
  if (with_bias) bias = register_parameter("bias", init_uniform({out}, fan_in));
}

Tensor Conv2d::forward(const Tensor& x) { return ops::conv2d(x, weight, bias, stride, padding); }

Tensor Conv2d::forward(const Tensor& x, const Tensor& residual, bool relu) {
  return ops::conv2d(x, weight, bias, stride, padding, residual, relu);
}

void Conv2d::fold_batch_norm(const BatchNorm2d& bn) {
  const int64_t k = weight.dim(0), per_filter = weight.numel() / k;
  HOTLAP_CHECK(bn.weight.dim(0) == k, "fold_batch_norm: batch norm over ", bn.weight.dim(0),
               " channels after a convolution with ", k, " filters");
  const Tensor* folded[] = {&weight, &bn.weight, &bn.bias, &bn.running_mean, &bn.running_var};
  for (const Tensor* t : folded)
    HOTLAP_CHECK(t->device() == Device::cpu && t->dtype() == DType::f32, "fold_batch_norm: folds f32 tensors on the "
                 "cpu, this one is ", t->describe(), " (fold before moving the network to the GPU)");
  NoGradGuard no_grad;
  if (!bias.defined()) bias = register_parameter("bias", Tensor::zeros({k}));
  float* w = weight.f32();
  float* b = bias.f32();
  for (int64_t o = 0; o < k; ++o) {
    const double scale = bn.weight.f32()[o] / std::sqrt(static_cast<double>(bn.running_var.f32()[o]) + bn.eps);
    for (int64_t i = 0; i < per_filter; ++i) w[o * per_filter + i] = static_cast<float>(w[o * per_filter + i] * scale);
    b[o] = static_cast<float>((b[o] - bn.running_mean.f32()[o]) * scale + bn.bias.f32()[o]);
  }
}

BatchNorm2d::BatchNorm2d(int64_t channels, float eps_, float momentum_) : eps(eps_), momentum(momentum_) {
  weight = register_parameter("weight", Tensor::full({channels}, 1.0f));
  bias = register_parameter("bias", Tensor::zeros({channels}));
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::full({channels}, 1.0f));
}

Tensor BatchNorm2d::forward(const Tensor& x) { return forward(x, Tensor(), false); }

Tensor BatchNorm2d::forward(Tensor x, const Tensor& residual, bool relu) {
  const ops::BatchNormOptions options{
      .training = is_training(), .momentum = momentum, .eps = eps, .residual = residual, .relu = relu};
  if (sync && is_training()) return ops::sync_batch_norm(x, weight, bias, running_mean, running_var, options);
  return ops::batch_norm(std::move(x), weight, bias, running_mean, running_var, options);
}

void Module::apply(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [name, child] : children_) child->apply(fn);
}

void set_sync_batch_norm(Module& root, bool on) {
  root.apply([on](Module& m) {
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) bn->sync = on;
  });
}

Tensor ReLU::forward(const Tensor& x) { return ops::relu(x); }
Tensor MaxPool2d::forward(const Tensor& x) { return ops::max_pool2d(x, window, stride, padding); }
Tensor GlobalAvgPool::forward(const Tensor& x) { return ops::global_avg_pool(x); }

Linear::Linear(int64_t in, int64_t out, bool with_bias) {
  HOTLAP_CHECK(in > 0 && out > 0, "Linear(", in, ", ", out, "): bad sizes");
  weight = register_parameter("weight", init_uniform({out, in}, in));
  if (with_bias) bias = register_parameter("bias", init_uniform({out}, in));
}

Tensor Linear::forward(const Tensor& x) { return ops::linear(x, weight, bias); }

Sequential& Sequential::add(std::shared_ptr<Module> m, std::string name) {
  if (name.empty()) name = std::to_string(layers_.size());
  register_module(name, m);
  layers_.push_back(std::move(m));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

}  // namespace hotlap
