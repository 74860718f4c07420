// Element-wise kernels, per-channel bias, the regression losses and the cross-entropy against float64
// references; loss gradients also against central finite differences of the float64 loss.
#include <doctest/doctest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
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

// ---- softmax cross-entropy --------------------------------------------------------------------

namespace {

// The loss's definition in double: -sum_j target_j (x_j - log sum_k exp x_k), target = (1 - e)
// one-hot + e / K; and its gradient softmax - target, both divided by the rows.
double cross_entropy_ref(int64_t rows, int64_t classes, const std::vector<float>& x, const std::vector<float>& y,
                         double e, std::vector<double>* grad) {
  double sum = 0.0;
  if (grad != nullptr) grad->assign(x.size(), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    double m = x[i * classes];
    for (int64_t j = 0; j < classes; ++j) m = std::max(m, double(x[i * classes + j]));
    double exps = 0.0;
    for (int64_t j = 0; j < classes; ++j) exps += std::exp(double(x[i * classes + j]) - m);
    for (int64_t j = 0; j < classes; ++j) {
      const double target = (j == int64_t(y[i]) ? 1.0 - e : 0.0) + e / double(classes);
      const double log_p = double(x[i * classes + j]) - m - std::log(exps);
      sum -= target * log_p;
      if (grad != nullptr) (*grad)[i * classes + j] = (std::exp(log_p) - target) / double(rows);
    }
  }
  return sum / double(rows);
}

std::vector<float> class_labels(int64_t rows, int64_t classes, uint64_t seed) {
  std::vector<float> y(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) y[i] = float((uint64_t(i) * 2654435761u + seed) % uint64_t(classes));
  return y;
}

}  // namespace

TEST_CASE("cross_entropy: forward and backward match float64, every row's gradient sums to 0") {
  const int64_t shapes[][2] = {{1, 1}, {1, 2}, {4, 10}, {33, 7}, {16, 1000}, {40, 1001}};
  uint64_t seed = 1;
  for (const auto& shape : shapes) {
    for (float e : {0.0f, 0.1f, 0.5f}) {
      const int64_t rows = shape[0], classes = shape[1];
      CAPTURE(rows);
      CAPTURE(classes);
      CAPTURE(e);
      std::vector<float> x = random_floats(size_t(rows * classes), ++seed);
      for (float& v : x) v *= 12.0f;  // logits in [-12, 12]: probabilities from 1e-10 to near 1
      const std::vector<float> y = class_labels(rows, classes, seed);
      std::vector<double> want_grad;
      const double want = cross_entropy_ref(rows, classes, x, y, e, &want_grad);
      const double got = cpu::cross_entropy_forward(rows, classes, x.data(), y.data(), e);
      CHECK(std::abs(got - want) <= 1e-12 * std::max(1.0, std::abs(want)));
      std::vector<float> g(x.size());
      cpu::cross_entropy_backward(rows, classes, x.data(), y.data(), e, 1.0f, g.data());
      CHECK(max_rel_error(g, want_grad) <= 1e-6);
      for (int64_t i = 0; i < rows; ++i) {
        double row_sum = 0.0, row_abs = 0.0;
        for (int64_t j = 0; j < classes; ++j) {
          row_sum += g[i * classes + j];
          row_abs += std::abs(g[i * classes + j]);
        }
        CHECK(std::abs(row_sum) <= 1e-6 * std::max(row_abs, 1e-30));  // probabilities and target both sum to 1
      }
      // grad_scale multiplies the whole gradient.
      std::vector<float> g3(x.size());
      cpu::cross_entropy_backward(rows, classes, x.data(), y.data(), e, 3.0f, g3.data());
      std::vector<double> g_times_3(g.begin(), g.end());
      for (double& v : g_times_3) v *= 3.0;
      CHECK(max_rel_error(g3, g_times_3) <= 1e-6);
    }
  }
}

TEST_CASE("cross_entropy: logits far apart stay finite, and the known values") {
  const float huge[] = {1000.0f, 0.0f, -1000.0f};  // exp(1000) overflows a double: the max shift must hold
  const float label0[] = {0.0f}, label2[] = {2.0f};
  CHECK(cpu::cross_entropy_forward(1, 3, huge, label0, 0.0f) == 0.0);
  CHECK(cpu::cross_entropy_forward(1, 3, huge, label2, 0.0f) == doctest::Approx(2000.0));
  float g[3];
  cpu::cross_entropy_backward(1, 3, huge, label2, 0.0f, 1.0f, g);
  CHECK(g[0] == 1.0f);  // softmax is (1, 0, 0): the gradient is p - onehot
  CHECK(g[1] == 0.0f);
  CHECK(g[2] == -1.0f);
  // Equal logits: log K, whatever the label or the smoothing (the target's entropy does not enter).
  const float flat[] = {0.5f, 0.5f, 0.5f, 0.5f};
  for (float e : {0.0f, 0.3f}) CHECK(cpu::cross_entropy_forward(1, 4, flat, label2, e) == doctest::Approx(std::log(4.0)));
  // Smoothing e: (1 - e) of the label's loss plus e of the mean over the classes' losses.
  const float two[] = {2.0f, 0.0f};
  const double l0 = std::log(1.0 + std::exp(-2.0)), l1 = 2.0 + l0;
  CHECK(cpu::cross_entropy_forward(1, 2, two, label0, 0.2f) == doctest::Approx(0.8 * l0 + 0.2 * (l0 + l1) / 2));
}

TEST_CASE("cross_entropy: bad labels and arguments name what is wrong") {
  const float x[] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  float g[6];
  const auto message = [&](float bad_label) {
    const float labels[] = {1.0f, bad_label};
    try {
      cpu::cross_entropy_forward(2, 3, x, labels, 0.0f);
    } catch (const hotlap::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  for (float bad : {-1.0f, 3.0f, 1.5f, std::numeric_limits<float>::quiet_NaN(), 1e30f}) {
    CAPTURE(bad);
    const std::string m = message(bad);
    CHECK(m.find("row 1") != std::string::npos);
    CHECK(m.find("[0, 3)") != std::string::npos);
  }
  const float labels[] = {0.0f, 2.0f};
  CHECK_THROWS_AS(cpu::cross_entropy_forward(0, 3, x, labels, 0.0f), hotlap::Error);
  CHECK_THROWS_AS(cpu::cross_entropy_forward(2, 0, x, labels, 0.0f), hotlap::Error);
  CHECK_THROWS_AS(cpu::cross_entropy_forward(2, 3, x, labels, 1.0f), hotlap::Error);
  CHECK_THROWS_AS(cpu::cross_entropy_forward(2, 3, x, labels, -0.1f), hotlap::Error);
  CHECK_THROWS_AS(cpu::cross_entropy_backward(2, 3, x, labels, 1.5f, 1.0f, g), hotlap::Error);
  const float bad_labels[] = {0.0f, 7.0f};
  CHECK_THROWS_AS(cpu::cross_entropy_backward(2, 3, x, bad_labels, 0.0f, 1.0f, g), hotlap::Error);
}

TEST_CASE("cross_entropy: the same bits on any number of threads") {
  const int64_t rows = 64, classes = 1000;  // past the threading threshold
  std::vector<float> x = random_floats(size_t(rows * classes), 77);
  for (float& v : x) v *= 10.0f;
  const std::vector<float> y = class_labels(rows, classes, 5);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = cpu::cross_entropy_forward(rows, classes, x.data(), y.data(), 0.1f);
  std::vector<float> g1(x.size()), g3(x.size());
  cpu::cross_entropy_backward(rows, classes, x.data(), y.data(), 0.1f, 1.0f, g1.data());
  omp_set_num_threads(3);
  const double three = cpu::cross_entropy_forward(rows, classes, x.data(), y.data(), 0.1f);
  cpu::cross_entropy_backward(rows, classes, x.data(), y.data(), 0.1f, 1.0f, g3.data());
  omp_set_num_threads(saved);
  CHECK(one == three);
  CHECK(g1 == g3);
}
