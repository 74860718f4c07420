// bf16 compute on the CPU (MathMode::bf16, the CPU's emulation): ops on mixed-dtype operands and
// chains of ops against the same in fp32 on bf16-representable inputs, forward and backward, and
// the cast op's gradient.
//
// Tolerance 2e-2 of the largest reference value: the inputs are exact in bf16, so the only errors
// are the roundings of bf16 outputs (2^-9 = 2e-3 relative each) and, for ops that take a bf16
// gradient or a bf16 intermediate, a few of them compounding; a wrong index or a missed cast would
// be off by O(1). One exception is allowed for: at a ReLU, a value within bf16 rounding of 0 may
// land on the other side of the kink, which changes that element's gradient by O(1). So the
// largest 2% of the element errors are left out (a handful of elements; a real bug moves most).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cast.h"
#include "kernels/math_mode.h"
#include "nn/layers/ops.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::bf16_error;
using test::max_rel_error;

constexpr double kBf16Tolerance = 2e-2;

// Under MathMode::bf16, t as a bf16 activation (as a convolution's output would be); else t.
Tensor activation(const Tensor& t) {
  return kernels::math_mode() == kernels::MathMode::bf16 ? ops::cast(t, DType::bf16) : t;
}

// Restores fp32 compute when a test ends, however it ends.
struct MathModeScope {
  explicit MathModeScope(kernels::MathMode m) { kernels::set_math_mode(m); }
  ~MathModeScope() { kernels::set_math_mode(kernels::MathMode::fp32); }
};

// Random values rounded to bf16, so fp32 and bf16 runs start from the same numbers.
std::vector<float> bf16_exact(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v = test::random_floats(n, seed, lo, hi);
  for (float& x : v) x = kernels::bf16_to_float(kernels::float_to_bf16(x));
  return v;
}

Tensor leaf(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::from_vector(shape, bf16_exact(static_cast<size_t>(shape_numel(shape)), seed));
  t.set_requires_grad();
  return t;
}

// One run of `f` on fresh leaves from `shapes` under `mode`: the output (as floats, with its dtype)
// and each leaf's gradient after backward of sum(output * weights).
struct Run {
  std::vector<float> output;
  DType dtype;
  std::vector<std::vector<float>> grads;
};

template <typename F>
Run run(kernels::MathMode mode, const std::vector<Shape>& shapes, F f) {
  MathModeScope scope(mode);
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < shapes.size(); ++i) leaves.push_back(leaf(shapes[i], 100 + i));
  Tensor y = f(leaves);
  Run r{y.to_vector(), y.dtype(), {}};
  // A fixed random weighting of the output makes every gradient element different.
  const Tensor w = Tensor::from_vector({y.numel(), 1}, bf16_exact(static_cast<size_t>(y.numel()), 7));
  const Tensor loss = ops::linear(y.reshape({1, y.numel()}), w.reshape({1, y.numel()}), Tensor());
  ops::mse_loss(loss, Tensor::scalar(0.0f)).backward();
  for (const Tensor& t : leaves) {
    if (!t.grad().defined()) {  // a leaf this variant does not use
      r.grads.emplace_back();
      continue;
    }
    CHECK(t.grad().dtype() == DType::f32);  // fp32 leaves, fp32 grads
    r.grads.push_back(t.grad().to_vector());
  }
  return r;
}

template <typename F>
void check_against_fp32(const std::string& what, const std::vector<Shape>& shapes, F f, bool bf16_output = true) {
  CAPTURE(what);
  const Run ref = run(kernels::MathMode::fp32, shapes, f);
  const Run got = run(kernels::MathMode::bf16, shapes, f);
  CHECK(ref.dtype == DType::f32);
  CHECK(got.dtype == (bf16_output ? DType::bf16 : DType::f32));
  CHECK(bf16_error(got.output, ref.output) < kBf16Tolerance);
  for (size_t i = 0; i < ref.grads.size(); ++i) {
    CAPTURE(i);
    REQUIRE(got.grads[i].size() == ref.grads[i].size());
    if (!ref.grads[i].empty()) CHECK(bf16_error(got.grads[i], ref.grads[i]) < kBf16Tolerance);
  }
}

}  // namespace

// Each op alone, in bf16 against its float64 reference, is a row of the op table
// (tests/nn/test_op_table.cpp). Here: operands of mixed dtypes, and ops behind a bf16 convolution.
TEST_CASE("bf16 ops: mixed-dtype operands and chains of ops behind a convolution match fp32") {
  using V = std::vector<Tensor>;
  const Shape act{2, 4, 4, 8}, ch{8};
  for (int variant = 0; variant < 4; ++variant) {
    const bool residual = variant & 1, relu = variant & 2;
    CAPTURE(variant);
    check_against_fp32("batch_norm train", {act, ch, ch, act}, [&](const V& t) {
      // A bf16 conv output feeds it, as in a ResNet; the residual arrives as fp32 and is cast.
      const Tensor x = activation(t[0]);
      return ops::batch_norm(x, t[1], t[2], Tensor(), Tensor(),
                             {.training = true, .residual = residual ? t[3] : Tensor(), .relu = relu});
    });
  }
  // (Not behind a convolution: its backward would sum the few kink flips into every element.)
  check_against_fp32("add_relu of an activation and an fp32 tensor", {act, act}, [](const V& t) {
    return ops::add_relu(activation(t[0]), t[1]);
  });
  check_against_fp32("add", {act, {8, 1, 1, 8}, act}, [](const V& t) {
    return ops::add(ops::conv2d(t[0], t[1], Tensor(), 1, 0), t[2]);
  });
  check_against_fp32("max pool after a conv", {{2, 8, 8, 4}, {4, 3, 3, 4}}, [](const V& t) {
    return ops::max_pool2d(ops::conv2d(t[0], t[1], Tensor(), 1, 1), 3, 2, 1);
  });
  check_against_fp32("global average pool then linear (fp32)", {{2, 4, 4, 8}, {8, 1, 1, 8}, {3, 8}, {3}},
                     [](const V& t) {
                       const Tensor pooled = ops::global_avg_pool(ops::conv2d(t[0], t[1], Tensor(), 1, 0));
                       return ops::linear(pooled, t[2], t[3]);
                     },
                     /*bf16_output=*/false);
}

TEST_CASE("bf16 ops: conv2d with a residual and ReLU, as a folded network runs it, equals the separate ops") {
  MathModeScope scope(kernels::MathMode::bf16);
  NoGradGuard no_grad;
  const Tensor x = leaf({2, 6, 6, 4}, 1), w = leaf({5, 3, 3, 4}, 2), b = leaf({5}, 3);
  const Tensor r = activation(leaf({2, 6, 6, 5}, 4));  // a bf16 activation, as a block's identity is
  const Tensor fused = ops::conv2d(x, w, b, 1, 1, r, true);
  CHECK(fused.dtype() == DType::bf16);
  CHECK(fused.to_vector() == ops::add_relu(ops::conv2d(x, w, b, 1, 1), r).to_vector());
  // An fp32 residual is read in the activations' dtype.
  CHECK(ops::conv2d(x, w, b, 1, 1, leaf({2, 6, 6, 5}, 4), false).to_vector() ==
        ops::add(ops::conv2d(x, w, b, 1, 1), r).to_vector());
}

TEST_CASE("bf16 ops: nothing changes in fp32 mode, and bf16 activations need bf16 mode") {
  kernels::set_math_mode(kernels::MathMode::fp32);
  const Tensor x = leaf({1, 4, 4, 2}, 1), w = leaf({3, 3, 3, 2}, 2);
  CHECK(ops::conv2d(x, w, Tensor(), 1, 1).dtype() == DType::f32);
  CHECK_THROWS_WITH_AS(ops::relu(x.to(DType::bf16)), doctest::Contains("--precision bf16"), Error);
}

TEST_CASE("bf16 ops: the cast's gradient is the output gradient converted back to the source dtype") {
  const Tensor x = leaf({2, 3}, 5);
  const Tensor y = ops::cast(x, DType::bf16);
  CHECK(y.dtype() == DType::bf16);
  CHECK(ops::cast(y, DType::bf16).same_as(y));  // no-op cast: the same tensor, nothing recorded
  const Tensor back = ops::cast(y, DType::f32);
  CHECK(back.to_vector() == x.to_vector());  // the values are bf16-exact
  // loss = sum(back * w): d loss / dx = w, which passes through the bf16 gradient of y.
  const Tensor w = Tensor::from_vector({6, 1}, bf16_exact(6, 9));
  ops::linear(back.reshape({1, 6}), w.reshape({1, 6}), Tensor()).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().dtype() == DType::f32);
  CHECK(x.grad().to_vector() == w.to_vector());  // bf16-exact weights survive the bf16 gradient
}

TEST_CASE("bf16 ops: gradients of a bf16 activation used twice add up in bf16") {
  MathModeScope scope(kernels::MathMode::bf16);
  const Tensor x = leaf({1, 2, 2, 4}, 3);
  const Tensor h = ops::relu(ops::cast(x, DType::bf16));
  const Tensor y = ops::add(h, h);  // h's gradient: two contributions
  ops::mse_loss(ops::global_avg_pool(y), Tensor::zeros({1, 4})).backward();
  const std::vector<float> g = x.grad().to_vector(), xv = x.to_vector();
  // Where relu cut x the gradient is 0; elsewhere both contributions arrived (and are compared with
  // the same graph in fp32).
  for (size_t i = 0; i < g.size(); ++i)
    if (xv[i] <= 0.0f) CHECK(g[i] == 0.0f);
  CHECK(std::any_of(g.begin(), g.end(), [](float v) { return v != 0.0f; }));
}

}  // namespace hotlap
