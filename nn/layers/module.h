// Modules: layers with named parameters and buffers, arranged in a tree.
//
// Names follow PyTorch's state_dict: a module's own parameters, then its own buffers, then each child
// under "<child>." — so a ResNet built from these has torchvision's names (layer1.0.conv1.weight,
// bn1.running_mean, fc.bias). Parameters receive gradients; buffers (running statistics) do not.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/runtime/tensor.h"

namespace hotlap {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  NamedTensors state() const;  // parameters and buffers, in state_dict order
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

  // Copies values into the module's tensors by name. Strict: every name must be present with the
  // same shape, and no name may be left over; the error lists what is missing, unexpected or
  // mis-shaped.
  void load_state(const std::map<std::string, Tensor>& values);

  void train(bool on = true);  // recursive
  // fn on this module and every module under it, parents first (PyTorch's Module.apply).
  void apply(const std::function<void(Module&)>& fn);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves every parameter and buffer to `device`, in place (optimizers built on them follow; build
  // them after the move so their state is created there too).
  void to(Device device);

  // Drops a child (and its tensors) from the tree; returns whether there was one by that name.
  bool remove_module(const std::string& name);

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

 private:
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// ---- layers -----------------------------------------------------------------------------------
// Initialisation follows PyTorch's defaults (uniform in +-1/sqrt(fan_in) for conv and linear
// weights and biases; batch norm gamma 1, beta 0), drawn from global_rng().

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
  Tensor forward(const Tensor& x) override;
  // relu(bn(x) + residual) in one op (either part optional): see ops::batch_norm, also for why x is
  // taken by value (std::move a tensor nobody else holds, and eval on the CPU reuses its memory).
  Tensor forward(Tensor x, const Tensor& residual, bool relu);
  Tensor weight, bias, running_mean, running_var;
  float eps, momentum;
  // In training, normalise with the statistics of every rank's slice of the batch (data-parallel,
  // --sync-bn: ops::sync_batch_norm) instead of this rank's alone.
  bool sync = false;
};

// Sets `sync` on every BatchNorm2d in the tree under `root` (PyTorch's convert_sync_batchnorm).
void set_sync_batch_norm(Module& root, bool on);

// While one of these lives on a thread, the layers built there (Conv2d, Linear, and the ResNet's own
// initialisation) leave their parameters at zero instead of drawing them at random, and the random
// stream is not advanced: for a network whose every parameter is about to be loaded from a file
// (score, predict, config_from_state's parameter counts). Drawing ResNet-50's 25.6 million values
// took about 1.5 s of the start of a `hotlap bench` run on a 2-core AVX2 machine. Nests.
class SkipParameterInit {
 public:
  SkipParameterInit();
  ~SkipParameterInit();
  SkipParameterInit(const SkipParameterInit&) = delete;
  SkipParameterInit& operator=(const SkipParameterInit&) = delete;
  static bool active();

 private:
  bool saved_;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1,
         int64_t padding = 0, bool bias = false);
  Tensor forward(const Tensor& x) override;
  // relu?(conv(x) + residual) (residual may be undefined): ops::conv2d with its epilogue, for a
  // convolution whose batch norm has been folded in.
  Tensor forward(const Tensor& x, const Tensor& residual, bool relu);
  // Folds an eval-mode batch norm that follows this convolution into its weight and bias:
  // w *= gamma / sqrt(var + eps) per output channel; b = (b - mean) * gamma / sqrt(var + eps) + beta.
  void fold_batch_norm(const BatchNorm2d& bn);
  Tensor weight, bias;  // weight OHWI [out, k, k, in]; bias [out] or undefined
  int64_t stride, padding;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int64_t window = 3, int64_t stride = 2, int64_t padding = 1)
      : window(window), stride(stride), padding(padding) {}
  Tensor forward(const Tensor& x) override;
  int64_t window, stride, padding;
};

class GlobalAvgPool : public Module {  // [N,H,W,C] -> [N,C]
 public:
  Tensor forward(const Tensor& x) override;
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;  // weight [out, in]
};

// Runs its children in order; they are named "0", "1", ... unless a name is given.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential& add(std::shared_ptr<Module> m, std::string name = "");
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace hotlap
