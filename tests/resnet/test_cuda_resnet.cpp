// A ResNet-50 training step on the GPU against the same step on the CPU (loss, a sample of the
// gradients, the weights after SGD), then four more steps that must lower the loss while the caching
// allocator serves every tensor from its cache (design rule 4). Skipped without a CUDA device.
#include <doctest/doctest.h>

#include "kernels/math_mode.h"
#include "nn/caching_allocator.h"
#include "nn/dispatch.h"
#include "nn/ops.h"
#include "nn/optim.h"
#include "nn/random.h"
#include "resnet/resnet.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::max_rel_error;
using test::random_floats;

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  return Tensor::from_vector(shape, random_floats(static_cast<size_t>(shape_numel(shape)), seed));
}

}  // namespace

TEST_CASE("cuda resnet-50: a training step matches the cpu, five steps lower the loss, no device allocation "
          "once warm") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  kernels::set_math_mode(kernels::MathMode::fp32);
  manual_seed(11);
  auto cpu_net = resnet::make_resnet({50, 1, 64});
  manual_seed(11);
  auto gpu_net = resnet::make_resnet({50, 1, 64});
  gpu_net->to(Device::cuda);
  SgdOptions o;
  o.lr = 1e-3;
  o.momentum = 0.9;
  SGD cpu_opt(cpu_net->named_parameters(), o), gpu_opt(gpu_net->named_parameters(), o);
  const Tensor x = random_tensor({2, 64, 64, 3}, 5), t = Tensor::from_vector({2, 1}, {2.5f, 3.5f});
  cpu_net->train();
  gpu_net->train();

  Tensor cpu_loss = ops::mse_loss(cpu_net->forward(x), t);
  Tensor gpu_loss = ops::mse_loss(gpu_net->forward(x.to(Device::cuda)), t.to(Device::cuda));
  CHECK(gpu_loss.item() == doctest::Approx(cpu_loss.item()).epsilon(1e-3));
  cpu_loss.backward();
  gpu_loss.backward();
  const auto cpu_params = cpu_net->named_parameters(), gpu_params = gpu_net->named_parameters();
  for (size_t i = 0; i < cpu_params.size(); i += 7) {  // a sample across the depth
    CAPTURE(cpu_params[i].first);
    CHECK(max_rel_error(gpu_params[i].second.grad().to_vector(), cpu_params[i].second.grad().to_vector()) < 1e-2);
  }
  cpu_opt.step();
  gpu_opt.step();
  CHECK(max_rel_error(gpu_params[0].second.to_vector(), cpu_params[0].second.to_vector()) < 1e-4);

  // Four more steps on the same batch: the loss falls; after the first steps the allocator serves
  // every tensor from its cache.
  float first = gpu_loss.item(), last = first;
  size_t allocations_after_warmup = 0;
  for (int step = 0; step < 4; ++step) {
    gpu_opt.zero_grad();
    Tensor loss = ops::mse_loss(gpu_net->forward(x.to(Device::cuda)), t.to(Device::cuda));
    loss.backward();
    gpu_opt.step();
    last = loss.item();
    if (step == 1) allocations_after_warmup = cuda_allocator().stats().source_allocations;
  }
  CHECK(last < first);
  CHECK(cuda_allocator().stats().source_allocations == allocations_after_warmup);
}

}  // namespace hotlap
