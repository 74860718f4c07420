// Finite-difference gradient checks of what the op table (tests/nn/test_op_table.cpp, every op
// against central differences of its float64 reference) does not hold: reshape, and modules with
// named parameters; and the fused ops against the separate ops they stand for.
//
// For an op f and fixed random weights R, L(inputs) = sum(f(inputs) * R) (computed with ops::linear
// for backward(), so the check also exercises reshape). Each input element is nudged by +-h and the
// central difference (L(+h) - L(-h)) / 2h compared with the gradient backward() produced. The ops run
// in float32, so h = 1e-2 (1e-3 where a ReLU kink is near) balances truncation error (O(h^2)
// curvature) against rounding (O(u / h)). The differences sum L in double: an fp32 sum of L would
// add a rounding of |L| itself, a few ulps that vary with the GEMM's order (ISA, BLAS) and are
// amplified by 1/2h = 500 to 4e-3 of the largest gradient; what is left is each output's own
// rounding, ~sqrt(numel) * u * |y| / 2h, and the truncation: at most 7e-4 here under every ISA level,
// GEMM and thread count. The tolerance, 1e-2 relative to the largest gradient, catches any wrong
// formula (those are off by tens of percent) with margin over that noise.
// Inputs avoid kinks: ReLU and max-pool inputs are spread so no value sits within h of a decision
// boundary by construction of the seeds.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "nn/runtime/autograd.h"
#include "nn/layers/module.h"
#include "nn/layers/ops.h"
#include "nn/runtime/random.h"
#include "test_util.h"

namespace hotlap {
namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return Tensor::from_vector(shape, test::random_floats(static_cast<size_t>(shape_numel(shape)), seed, lo, hi));
}

// sum(f(inputs) * weights), as a differentiable scalar.
Tensor weighted_sum(const Tensor& y, const Tensor& weights) {
  return ops::linear(y.reshape({1, -1}), weights, Tensor());
}

// The same sum in double, for the central differences: see the file comment.
double weighted_sum_double(const Tensor& y, const std::vector<float>& weights) {
  const std::vector<float> v = y.to_vector();
  double sum = 0.0;
  for (size_t i = 0; i < v.size(); ++i) sum += static_cast<double>(v[i]) * weights[i];
  return sum;
}

void gradcheck(const std::string& name, const Fn& f, std::vector<Tensor> inputs, double h = 1e-2,
               double tolerance = 1e-2) {
  INFO(name);
  for (auto& t : inputs) t.set_requires_grad(true);
  Tensor y = f(inputs);
  const Tensor weights = random_tensor({1, y.numel()}, 99, 0.5f, 1.5f);
  Tensor loss = weighted_sum(y, weights);
  loss.backward();
  const std::vector<float> w = weights.to_vector();

  for (size_t k = 0; k < inputs.size(); ++k) {
    INFO("input " << k << " " << inputs[k].describe());
    REQUIRE(inputs[k].grad().defined());
    std::vector<float> analytic = inputs[k].grad().to_vector();
    std::vector<double> numeric(analytic.size());
    NoGradGuard no_grad;
    float* p = inputs[k].f32();
    for (size_t i = 0; i < analytic.size(); ++i) {
      const float saved = p[i];
      p[i] = saved + static_cast<float>(h);
      const double plus = weighted_sum_double(f(inputs), w);
      p[i] = saved - static_cast<float>(h);
      const double minus = weighted_sum_double(f(inputs), w);
      p[i] = saved;
      numeric[i] = (plus - minus) / (2 * h);
    }
    CHECK(test::max_rel_error(analytic, numeric) < tolerance);
  }
}

// Values spaced at least 0.05 apart and away from 0, so +-h never crosses a ReLU or max-pool decision.
Tensor spread_tensor(const Shape& shape, uint64_t seed) {
  const int64_t n = shape_numel(shape);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = -1.0f + 0.05f * static_cast<float>(i) + 0.025f;
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[rng.below(i + 1)]);
  // keep clear of zero
  for (auto& x : v) if (std::abs(x) < 0.03f) x += 0.04f;
  return Tensor::from_vector(shape, v);
}

TEST_CASE("batch_norm: the fused epilogue equals the separate ops") {
  const Tensor x = random_tensor({2, 3, 3, 4}, 1), r = random_tensor({2, 3, 3, 4}, 2);
  const Tensor g = random_tensor({4}, 3, 0.5f, 1.5f), b = random_tensor({4}, 4);
  const Tensor fused = ops::batch_norm(x, g, b, Tensor(), Tensor(), {.training = true, .residual = r, .relu = true});
  const Tensor separate = ops::add_relu(ops::batch_norm(x, g, b, Tensor(), Tensor(), {.training = true}), r);
  CHECK(fused.to_vector() == separate.to_vector());
  CHECK_THROWS_AS(ops::batch_norm(x, g, b, Tensor(), Tensor(), {.training = true, .residual = Tensor::zeros({2, 3, 3, 3}), .relu = true}),
                  Error);
}

TEST_CASE("conv2d with a residual and ReLU: one fused op for inference, the separate ops when recording") {
  struct Case { Shape x, w; int64_t stride, pad; };
  for (const Case& c : {Case{{2, 6, 6, 4}, {5, 3, 3, 4}, 1, 1}, Case{{2, 5, 5, 4}, {6, 1, 1, 4}, 1, 0},
                        Case{{1, 9, 9, 3}, {4, 3, 3, 3}, 2, 1}}) {
    INFO(shape_str(c.x), " * ", shape_str(c.w));
    const Tensor x = random_tensor(c.x, 1), w = random_tensor(c.w, 2), b = random_tensor({c.w[0]}, 3);
    const Shape out = ops::conv2d(x, w, b, c.stride, c.pad).shape();
    const Tensor r = random_tensor(out, 4);
    for (int parts = 1; parts < 4; ++parts) {
      const bool with_residual = parts & 1, relu = parts & 2;
      INFO("residual ", with_residual, " relu ", relu);
      const Tensor residual = with_residual ? r : Tensor();
      auto separate = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi, const Tensor& ri) {
        const Tensor y = ops::conv2d(xi, wi, bi, c.stride, c.pad);
        if (ri.defined()) return relu ? ops::add_relu(y, ri) : ops::add(y, ri);
        return ops::relu(y);
      };
      std::vector<float> fused;
      {
        NoGradGuard no_grad;  // nothing recorded: the kernel's epilogue
        fused = ops::conv2d(x, w, b, c.stride, c.pad, residual, relu).to_vector();
      }
      CHECK(fused == separate(x, w, b, residual).to_vector());

      // With gradients wanted: the same values, and the gradients of the separate ops.
      std::vector<Tensor> a{x.clone(), w.clone(), b.clone(), r.clone()}, e{x.clone(), w.clone(), b.clone(), r.clone()};
      for (auto* set : {&a, &e})
        for (Tensor& t : *set) t.set_requires_grad(true);
      const Tensor weights = random_tensor({1, shape_numel(out)}, 9, 0.5f, 1.5f);
      const Tensor ya = ops::conv2d(a[0], a[1], a[2], c.stride, c.pad, with_residual ? a[3] : Tensor(), relu);
      CHECK(ya.to_vector() == fused);
      weighted_sum(ya, weights).backward();  // one graph at a time: backward() runs the whole tape
      weighted_sum(separate(e[0], e[1], e[2], with_residual ? e[3] : Tensor()), weights).backward();
      for (size_t k = 0; k < (with_residual ? 4u : 3u); ++k) {
        INFO("input ", k);
        REQUIRE(a[k].grad().defined());
        CHECK(a[k].grad().to_vector() == e[k].grad().to_vector());
      }
    }
    NoGradGuard no_grad;
    CHECK_THROWS_WITH_AS(ops::conv2d(x, w, b, c.stride, c.pad, Tensor::zeros({1, 2, 2, 2}), true),
                         doctest::Contains("conv2d: residual"), Error);
  }
}

TEST_CASE("gradcheck: linear and reshape") {
  gradcheck("linear", [](const std::vector<Tensor>& t) { return ops::linear(t[0], t[1], t[2]); },
            {random_tensor({3, 5}, 1), random_tensor({4, 5}, 2), random_tensor({4}, 3)});
  gradcheck("reshape", [](const std::vector<Tensor>& t) { return ops::relu(t[0].reshape({3, -1})); },
            {spread_tensor({2, 3, 2}, 4)});
}

TEST_CASE("gradcheck: modules — every parameter of a Sequential stack, by name") {
  manual_seed(3);
  // ReLU and max pool come first, on the input: a perturbed weight moves every activation after it,
  // and in float32 some would cross a ReLU or max-pool decision within the step. Those ops have
  // their own checks above; here the parameters' plumbing from names to gradients is under test.
  Sequential net;
  net.add(std::make_shared<ReLU>());
  net.add(std::make_shared<MaxPool2d>(3, 2, 1));
  // No conv bias: before batch norm its exact gradient is zero, and a relative check of zero
  // measures only rounding noise (the conv bias gradient is checked on its own above).
  net.add(std::make_shared<Conv2d>(2, 4, 3, 1, 1, false));
  net.add(std::make_shared<BatchNorm2d>(4));
  net.add(std::make_shared<GlobalAvgPool>());
  net.add(std::make_shared<Linear>(4, 2));
  const Tensor x = spread_tensor({3, 5, 5, 2}, 11);
  const std::vector<std::string> expected{"2.weight", "3.weight", "3.bias", "5.weight", "5.bias"};
  std::vector<std::string> names;
  for (auto& [name, param] : net.named_parameters()) {
    names.push_back(name);
    Tensor p = param;
    gradcheck("module parameter " + name, [&](const std::vector<Tensor>&) { return net.forward(x); }, {p});
    net.zero_grad();
  }
  CHECK(names == expected);
}

}  // namespace
}  // namespace hotlap
