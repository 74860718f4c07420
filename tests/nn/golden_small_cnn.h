// The small CNN of tools/make_goldens.py (conv-bn-relu-maxpool-conv-bn-relu-avgpool-linear) in
// hotlap's modules, with PyTorch's state names, and a golden file's tensors by name: shared by the
// PyTorch golden tests (test_golden_pytorch.cpp) and the data-parallel one (test_collective.cpp).
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>

#include "nn/files/serialize.h"
#include "nn/layers/module.h"
#include "nn/layers/ops.h"

namespace hotlap::test {

class GoldenNet : public Module {
 public:
  GoldenNet()
      : conv1(register_module("conv1", std::make_shared<Conv2d>(3, 8, 3, 1, 1, false))),
        bn1(register_module("bn1", std::make_shared<BatchNorm2d>(8))),
        conv2(register_module("conv2", std::make_shared<Conv2d>(8, 16, 3, 2, 1, false))),
        bn2(register_module("bn2", std::make_shared<BatchNorm2d>(16))),
        fc(register_module("fc", std::make_shared<Linear>(16, 1))) {}
  Tensor forward(const Tensor& x) override {
    Tensor y = ops::relu(bn1->forward(conv1->forward(x)));
    y = ops::max_pool2d(y, 3, 2, 1);
    y = ops::relu(bn2->forward(conv2->forward(y)));
    return fc->forward(ops::global_avg_pool(y));
  }
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<BatchNorm2d> bn2;
  std::shared_ptr<Linear> fc;
};

struct Golden {
  explicit Golden(const std::string& path) : t(read_tensors(path)) {}
  std::map<std::string, Tensor> t;
  const Tensor& operator[](const std::string& name) const {
    auto it = t.find(name);
    if (it == t.end()) FAIL("golden file has no tensor " << name);
    return it->second;
  }
  // The model's state from the tensors named prefix + <state name>.
  std::map<std::string, Tensor> state(const std::string& prefix) const {
    std::map<std::string, Tensor> out;
    for (auto& [name, tensor] : t)
      if (name.rfind(prefix, 0) == 0) out.emplace(name.substr(prefix.size()), tensor);
    return out;
  }
};

}  // namespace hotlap::test
