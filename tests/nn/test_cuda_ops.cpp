// The nn layer on the GPU against the CPU: tensors moved and converted, every differentiable op
// forward and backward on ResNet-50's shapes (batch 2), for both GPU backends. (A whole ResNet-50
// training step: tests/resnet/test_cuda_resnet.cpp.)
//
// Without a CUDA device each case says why and returns (ctest: Skipped). What runs everywhere: the
// backend choice and the errors a cpu-only machine gives.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/device.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"
#include "nn/autograd.h"
#include "nn/caching_allocator.h"
#include "nn/dispatch.h"
#include "nn/ops.h"
#include "nn/optim.h"
#include "nn/random.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::max_rel_error;
using test::random_floats;

Tensor random_tensor(const Shape& shape, uint64_t seed, Device device = Device::cpu) {
  return Tensor::from_vector(shape, random_floats(static_cast<size_t>(shape_numel(shape)), seed)).to(device);
}

// Runs `op` on the cpu and on the gpu with the same inputs (each input a leaf that requires a
// gradient), backpropagates the same random output gradient, and compares outputs and input
// gradients.
void check_op(const std::string& what, const std::vector<Shape>& shapes,
              const std::function<Tensor(const std::vector<Tensor>&)>& op, double tolerance) {
  CAPTURE(what);
  std::vector<Tensor> on_cpu, on_gpu;
  for (size_t i = 0; i < shapes.size(); ++i) {
    on_cpu.push_back(random_tensor(shapes[i], 100 + i));
    on_gpu.push_back(on_cpu.back().to(Device::cuda));
    on_cpu.back().set_requires_grad();
    on_gpu.back().set_requires_grad();
  }
  Tensor y_cpu = op(on_cpu), y_gpu = op(on_gpu);
  REQUIRE(y_gpu.device() == Device::cuda);
  REQUIRE(y_gpu.shape() == y_cpu.shape());
  CHECK(max_rel_error(y_gpu.to_vector(), y_cpu.to_vector()) < tolerance);
  // loss = mean((y - t)^2) with a random target: d loss / d y is a dense random gradient.
  const Tensor target = random_tensor(y_cpu.shape(), 7);
  ops::mse_loss(y_cpu, target).backward();
  ops::mse_loss(y_gpu, target.to(Device::cuda)).backward();
  for (size_t i = 0; i < shapes.size(); ++i) {
    CAPTURE(i);
    REQUIRE(on_gpu[i].grad().defined());
    CHECK(max_rel_error(on_gpu[i].grad().to_vector(), on_cpu[i].grad().to_vector()) < tolerance);
  }
}

// Every distinct convolution of torchvision's ResNet-50 v1.5 at 224x224, as (H=W, C, K, R, stride).
struct ConvCase {
  int64_t hw, c, k, r, stride;
};
const std::vector<ConvCase>& resnet50_convs() {
  static const std::vector<ConvCase> cases = {
      {224, 3, 64, 7, 2},     {56, 64, 64, 1, 1},     {56, 64, 64, 3, 1},    {56, 64, 256, 1, 1},
      {56, 256, 64, 1, 1},    {56, 256, 128, 1, 1},   {56, 128, 128, 3, 2},  {28, 128, 512, 1, 1},
      {56, 256, 512, 1, 2},   {28, 512, 128, 1, 1},   {28, 128, 128, 3, 1},  {28, 512, 256, 1, 1},
      {28, 256, 256, 3, 2},   {14, 256, 1024, 1, 1},  {28, 512, 1024, 1, 2}, {14, 1024, 256, 1, 1},
      {14, 256, 256, 3, 1},   {14, 1024, 512, 1, 1},  {14, 512, 512, 3, 2},  {7, 512, 2048, 1, 1},
      {14, 1024, 2048, 1, 2}, {7, 2048, 512, 1, 1},   {7, 512, 512, 3, 1}};
  return cases;
}

struct BackendGuard {  // restores the process-wide backend choice and math mode
  dispatch::Backends saved = dispatch::backends();
  kernels::MathMode mode = kernels::math_mode();
  ~BackendGuard() {
    dispatch::set_backends(saved);
    kernels::set_math_mode(mode);
  }
};

}  // namespace

TEST_CASE("nn dispatch: backends parse, and cuda work on a cpu-only machine is one clear error") {
  CHECK(dispatch::parse_backend("--conv", "cudnn") == dispatch::Backend::cudnn);
  CHECK(dispatch::parse_backend("--conv", "native") == dispatch::Backend::native);
  CHECK_THROWS_WITH_AS(dispatch::parse_backend("HOTLAP_CONV", "fast"), doctest::Contains("HOTLAP_CONV"), Error);
  if (test::have_cuda_device()) return;
  CHECK_THROWS_AS(Tensor::empty({3}, DType::f32, Device::cuda), Error);
  CHECK_THROWS_AS(Tensor::full({3}, 1.0f).to(Device::cuda), Error);
  CHECK_THROWS_AS(Tensor::empty_pinned({3}), Error);
}

TEST_CASE("cuda tensors: copies, zeros, fill, casts and in-place moves") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const Tensor host = random_tensor({3, 5, 7}, 1);
  const Tensor dev = host.to(Device::cuda);
  CHECK(dev.device() == Device::cuda);
  CHECK(dev.to_vector() == host.to_vector());
  CHECK(dev.clone().to_vector() == host.to_vector());
  CHECK(dev.to(DType::bf16).to(DType::f32).to_vector() == host.to(DType::bf16).to(DType::f32).to_vector());
  CHECK(Tensor::zeros({4, 4}, DType::f32, Device::cuda).to_vector() == std::vector<float>(16, 0.0f));
  Tensor filled = Tensor::empty({9}, DType::f32, Device::cuda);
  filled.fill_(2.5f);
  CHECK(filled.to_vector() == std::vector<float>(9, 2.5f));
  // Pinned host memory: the copy to the GPU is asynchronous; the values arrive all the same, and the
  // buffer can be dropped right after (its release waits for the copy).
  {
    Tensor pinned = Tensor::empty_pinned({3, 5, 7});
    pinned.copy_from(host);
    CHECK(pinned.is_pinned());
    const Tensor moved = pinned.to(Device::cuda);
    pinned = Tensor();
    CHECK(moved.to_vector() == host.to_vector());
  }
  Tensor leaf = host.clone();
  Tensor alias = leaf;
  leaf.move_to_(Device::cuda);
  CHECK(alias.device() == Device::cuda);  // every handle sees the move
  CHECK(alias.to_vector() == host.to_vector());
}

TEST_CASE("cuda autograd: a reshape's gradient stays on the GPU, first and later contributions") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  Tensor x = random_tensor({2, 3, 4}, 5).to(Device::cuda);
  x.set_requires_grad();
  // x reaches the loss twice through reshapes: the second gradient is added onto the first.
  const Tensor target = Tensor::zeros({24}, DType::f32, Device::cuda);
  const Tensor loss = ops::add(ops::mse_loss(x.reshape({24}), target), ops::mse_loss(x.reshape({6, 4}), target));
  loss.backward();
  const std::vector<float> xs = x.to_vector(), grad = x.grad().to_vector();
  REQUIRE(x.grad().device() == Device::cuda);
  for (size_t i = 0; i < xs.size(); ++i) CHECK(grad[i] == doctest::Approx(2.0 * 2.0 * xs[i] / 24.0));
}

TEST_CASE("cuda ops: every op of a ResNet matches the cpu, forward and backward, both backends") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  BackendGuard guard;
  kernels::set_math_mode(kernels::MathMode::fp32);
  for (dispatch::Backend backend : {dispatch::Backend::native, dispatch::Backend::cudnn}) {
    CAPTURE(dispatch::backend_name(backend));
    dispatch::set_backends({backend, backend});
    for (const ConvCase& c : resnet50_convs()) {
      const int64_t pad = c.r / 2;
      check_op("conv2d " + std::to_string(c.hw) + "x" + std::to_string(c.hw) + "x" + std::to_string(c.c) + " -> " +
                   std::to_string(c.k) + " r" + std::to_string(c.r) + " s" + std::to_string(c.stride),
               {{2, c.hw, c.hw, c.c}, {c.k, c.r, c.r, c.c}},
               [&](const std::vector<Tensor>& t) { return ops::conv2d(t[0], t[1], Tensor(), c.stride, pad); }, 1e-3);
    }
    for (int64_t ch : {64, 256, 512, 2048}) {
      const int64_t hw = ch == 64 ? 56 : ch == 256 ? 56 : ch == 512 ? 28 : 7;
      for (bool residual : {false, true})
        for (bool relu : {false, true})
          for (bool training : {true, false}) {
            Tensor mean = Tensor::zeros({ch}), var = Tensor::full({ch}, 1.0f);
            check_op("batch_norm c" + std::to_string(ch) + (residual ? " +residual" : "") + (relu ? " relu" : "") +
                         (training ? " train" : " eval"),
                     residual ? std::vector<Shape>{{2, hw, hw, ch}, {ch}, {ch}, {2, hw, hw, ch}}
                              : std::vector<Shape>{{2, hw, hw, ch}, {ch}, {ch}},
                     [&](const std::vector<Tensor>& t) {
                       const Device d = t[0].device();
                       return ops::batch_norm(t[0], t[1], t[2], mean.to(d), var.to(d), training, 0.1f, 1e-5f,
                                              residual ? t[3] : Tensor(), relu);
                     },
                     1e-3);
          }
    }
  }
  check_op("relu", {{2, 56, 56, 64}}, [](const std::vector<Tensor>& t) { return ops::relu(t[0]); }, 1e-6);
  check_op("add", {{2, 28, 28, 512}, {2, 28, 28, 512}},
           [](const std::vector<Tensor>& t) { return ops::add(t[0], t[1]); }, 1e-6);
  check_op("add_relu", {{2, 14, 14, 1024}, {2, 14, 14, 1024}},
           [](const std::vector<Tensor>& t) { return ops::add_relu(t[0], t[1]); }, 1e-6);
  check_op("max_pool2d", {{2, 112, 112, 64}},
           [](const std::vector<Tensor>& t) { return ops::max_pool2d(t[0], 3, 2, 1, false); }, 1e-6);
  check_op("global_avg_pool", {{2, 7, 7, 2048}},
           [](const std::vector<Tensor>& t) { return ops::global_avg_pool(t[0]); }, 1e-5);
  check_op("linear", {{2, 2048}, {1, 2048}, {1}},
           [](const std::vector<Tensor>& t) { return ops::linear(t[0], t[1], t[2]); }, 1e-4);
}

}  // namespace hotlap
