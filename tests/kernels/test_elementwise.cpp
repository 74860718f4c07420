// Element-wise kernels, per-channel bias and the regression losses against float64 references; loss
// gradients also against central finite differences of the float64 loss.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"
#include "test_util.h"

using hotlap::kernels::LossKind;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
namespace cpu = hotlap::kernels::cpu;

namespace {

const int64_t kLengths[] = {0, 1, 17, 97, 100003};  // the last crosses the threading threshold

// A single fp32 operation on fp32 inputs, compared with the same operation in double: at most half
// an fp32 ulp of the result apart.
constexpr double kOneRounding = 1e-7;

double loss_ref(LossKind kind, const std::vector<double>& p, const std::vector<float>& t,
                double beta) {
  double sum = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double d = p[i] - t[i], a = std::abs(d);
    switch (kind) {
      case LossKind::mse:
        sum += d * d;
        break;
      case LossKind::l1:
        sum += a;
        break;
      case LossKind::smooth_l1:
        sum += (beta > 0 && a < beta) ? 0.5 * d * d / beta : a - 0.5 * beta;
    }
  }
  return sum / double(p.size());
}

std::vector<double> loss_grad_ref(LossKind kind, const std::vector<float>& p,
                                  const std::vector<float>& t, double beta, double scale) {
  std::vector<double> g(p.size());
  const double n = double(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const double d = double(p[i]) - t[i];
    const double sign = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
    double dl = 0.0;
    switch (kind) {
      case LossKind::mse:
        dl = 2 * d;
        break;
      case LossKind::l1:
        dl = sign;
        break;
      case LossKind::smooth_l1:
        dl = (beta > 0 && std::abs(d) < beta) ? d / beta : sign;
    }
    g[i] = scale * dl / n;
  }
  return g;
}

const char* name(LossKind k) {
  return k == LossKind::mse ? "mse" : (k == LossKind::l1 ? "l1" : "smooth_l1");
}

}  // namespace

TEST_CASE("elementwise: fill, copy, add, accumulate, scale match float64") {
  for (int64_t n : kLengths) {
    CAPTURE(n);
    const auto a = random_floats(n, uint64_t(n) + 1, -3.0f, 3.0f);
    const auto b = random_floats(n, uint64_t(n) + 2, -3.0f, 3.0f);
    std::vector<float> y(n, 9.0f);
    std::vector<double> ref(n);

    cpu::fill(n, -1.5f, y.data());
    CHECK(y == std::vector<float>(n, -1.5f));
    cpu::copy(n, a.data(), y.data());
    CHECK(y == a);

    cpu::add(n, a.data(), b.data(), y.data());
    for (int64_t i = 0; i < n; ++i) ref[i] = double(a[i]) + b[i];
    CHECK(max_rel_error(y, ref) <= kOneRounding);

    std::vector<float> acc = b;
    cpu::accumulate(n, a.data(), acc.data());
    CHECK(max_rel_error(acc, ref) <= kOneRounding);

    cpu::scale(n, 0.37f, a.data(), y.data());
    for (int64_t i = 0; i < n; ++i) ref[i] = double(0.37f) * a[i];
    CHECK(max_rel_error(y, ref) <= kOneRounding);
  }
}

TEST_CASE("relu: forward, backward and fused add+relu match float64") {
  for (int64_t n : kLengths) {
    CAPTURE(n);
    auto x = random_floats(n, uint64_t(n) + 3, -1.0f, 1.0f);
    const auto b = random_floats(n, uint64_t(n) + 4, -1.0f, 1.0f);
    const auto dy = random_floats(n, uint64_t(n) + 5);
    if (n > 2) x[1] = 0.0f;  // relu'(0) = 0, as PyTorch's threshold_backward
    std::vector<float> y(n), dx(n, 5.0f), ref(n), dref(n);

    cpu::activation_forward<hotlap::kernels::Relu>(n, x.data(), y.data());
    for (int64_t i = 0; i < n; ++i) ref[i] = x[i] > 0 ? x[i] : 0.0f;
    CHECK(y == ref);  // exact

    cpu::activation_backward<hotlap::kernels::Relu>(n, y.data(), dy.data(), dx.data());
    for (int64_t i = 0; i < n; ++i) dref[i] = y[i] > 0 ? dy[i] : 0.0f;
    CHECK(dx == dref);  // exact

    cpu::add_relu_forward(n, x.data(), b.data(), y.data());
    std::vector<double> sref(n);
    for (int64_t i = 0; i < n; ++i) sref[i] = std::max(0.0, double(x[i]) + b[i]);
    CHECK(max_rel_error(y, sref) <= kOneRounding);
  }
  // NaN propagates through relu (torch.relu(nan) = nan).
  const float nan = std::numeric_limits<float>::quiet_NaN(), one = 1.0f;
  float y = 0.0f;
  cpu::activation_forward<hotlap::kernels::Relu>(1, &nan, &y);
  CHECK(std::isnan(y));
  cpu::add_relu_forward(1, &nan, &one, &y);
  CHECK(std::isnan(y));
  CHECK_THROWS_AS(cpu::activation_forward<hotlap::kernels::Relu>(-1, &nan, &y), hotlap::Error);
}

TEST_CASE("elementwise: bias add and bias gradient (accumulating) match float64") {
  const int64_t shapes[][2] = {{2, 1}, {5, 3}, {97, 17}, {1, 5}, {5000, 17}, {0, 3}};
  for (const auto& sh : shapes) {
    const int64_t rows = sh[0], c = sh[1];
    CAPTURE(rows);
    CAPTURE(c);
    const auto bias = random_floats(c, uint64_t(c));
    auto y = random_floats(rows * c, uint64_t(rows));
    const auto y0 = y;
    cpu::bias_add(rows, c, bias.data(), y.data());
    std::vector<double> ref(rows * c);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < c; ++j) ref[i * c + j] = double(y0[i * c + j]) + bias[j];
    if (rows > 0) {
      CHECK(max_rel_error(y, ref) <= kOneRounding);
    }

    const auto dy = random_floats(rows * c, uint64_t(rows) + 7);
    const auto dbias0 = random_floats(c, 11);
    auto dbias = dbias0;  // non-zero: the kernel adds to it
    cpu::bias_backward(rows, c, dy.data(), dbias.data());
    std::vector<double> dref(dbias0.begin(), dbias0.end());
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < c; ++j) dref[j] += dy[i * c + j];
    CHECK(max_rel_error(dbias, dref) < 1e-6);  // double sum, one fp32 rounding
  }
  float v = 0.0f;
  CHECK_THROWS_AS(cpu::bias_add(-1, 3, &v, &v), hotlap::Error);
  CHECK_THROWS_AS(cpu::bias_backward(2, -3, &v, &v), hotlap::Error);
}

TEST_CASE("loss: forward and backward match float64 and finite differences") {
  const LossKind kinds[] = {LossKind::mse, LossKind::l1, LossKind::smooth_l1};
  for (LossKind kind : kinds) {
    for (float beta : {1.0f, 0.25f, 0.0f}) {
      if (kind != LossKind::smooth_l1 && beta != 1.0f) continue;
      for (int64_t n : {1, 5, 97, 100003}) {
        CAPTURE(name(kind));
        CAPTURE(beta);
        CAPTURE(n);
        const auto pred = random_floats(n, uint64_t(n) * 3, -2.0f, 2.0f);
        const auto target = random_floats(n, uint64_t(n) * 3 + 1, -2.0f, 2.0f);
        std::vector<double> pd(pred.begin(), pred.end());
        const double loss = cpu::loss_forward(kind, n, pred.data(), target.data(), beta);
        const double ref = loss_ref(kind, pd, target, beta);
        // Both sum in double; only the order differs.
        CHECK(std::abs(loss - ref) <= 1e-12 * std::abs(ref));

        const float grad_scale = 0.75f;
        std::vector<float> dpred(n, 4.0f);
        cpu::loss_backward(kind, n, pred.data(), target.data(), beta, grad_scale, dpred.data());
        // fp32 difference p - t and one or two fp32 products: a few ulps.
        CHECK(max_rel_error(dpred, loss_grad_ref(kind, pred, target, beta, grad_scale)) < 1e-6);

        if (n > 97) continue;  // finite differences on the small sizes
        std::vector<double> fd(n);
        const double h = 1e-6;  // the loss is piecewise quadratic: central differences are exact
        for (int64_t i = 0; i < n; ++i) {
          const double saved = pd[i];
          pd[i] = saved + h;
          const double lp = loss_ref(kind, pd, target, beta);
          pd[i] = saved - h;
          const double lm = loss_ref(kind, pd, target, beta);
          pd[i] = saved;
          fd[i] = grad_scale * (lp - lm) / (2 * h);
        }
        // Up to double rounding of the loss (~1e-16 / 1e-6) and the kernel's fp32 result.
        CHECK(max_rel_error(dpred, fd) < 1e-6);
      }
    }
  }
}

TEST_CASE("loss: special points and bad arguments") {
  const float p[] = {1.0f, -2.0f, 0.5f, 3.0f};
  const float t[] = {1.0f, -1.0f, 0.25f, 1.0f};  // d = 0, -1, 0.25, 2
  float g[4];
  // L1 gradient at d == 0 is 0 (sign), elsewhere +-1/n.
  cpu::loss_backward(LossKind::l1, 4, p, t, 1.0f, 1.0f, g);
  CHECK(g[0] == 0.0f);
  CHECK(g[1] == -0.25f);
  CHECK(g[2] == 0.25f);
  CHECK(g[3] == 0.25f);
  CHECK(cpu::loss_forward(LossKind::l1, 4, p, t, 1.0f) ==
        doctest::Approx((0 + 1 + 0.25 + 2) / 4.0));
  // smooth L1, beta = 1: 0, 0.5 (|d| == beta: the linear branch, |d| - beta/2), 0.03125, 1.5.
  CHECK(cpu::loss_forward(LossKind::smooth_l1, 4, p, t, 1.0f) ==
        doctest::Approx((0 + 0.5 + 0.03125 + 1.5) / 4.0));
  cpu::loss_backward(LossKind::smooth_l1, 4, p, t, 1.0f, 2.0f, g);
  CHECK(g[0] == 0.0f);
  CHECK(g[1] == -0.5f);
  CHECK(g[2] == 0.125f);
  CHECK(g[3] == 0.5f);
  // beta == 0 is exactly L1, forward and backward.
  float g1[4];
  CHECK(cpu::loss_forward(LossKind::smooth_l1, 4, p, t, 0.0f) ==
        cpu::loss_forward(LossKind::l1, 4, p, t, 0.0f));
  cpu::loss_backward(LossKind::smooth_l1, 4, p, t, 0.0f, 1.0f, g);
  cpu::loss_backward(LossKind::l1, 4, p, t, 0.0f, 1.0f, g1);
  for (int i = 0; i < 4; ++i) CHECK(g[i] == g1[i]);
  // MSE: mean of 0, 1, 1/16, 4.
  CHECK(cpu::loss_forward(LossKind::mse, 4, p, t, 1.0f) == doctest::Approx(5.0625 / 4));

  CHECK_THROWS_AS(cpu::loss_forward(LossKind::mse, 0, p, t, 1.0f), hotlap::Error);
  CHECK_THROWS_AS(cpu::loss_backward(LossKind::l1, -3, p, t, 1.0f, 1.0f, g), hotlap::Error);
  CHECK_THROWS_AS(cpu::loss_forward(LossKind::smooth_l1, 4, p, t, -1.0f), hotlap::Error);
}
