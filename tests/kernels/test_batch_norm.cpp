// Batch norm (NHWC, per-channel statistics over rows = N*H*W) against a float64 reference: forward
// in training and eval mode, running statistics, the analytic backward, and central finite
// differences of the float64 forward.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/error.h"
#include "test_util.h"

using hotlap::kernels::BatchNormShape;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
namespace cpu = hotlap::kernels::cpu;

namespace {

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

struct BnForwardRef {
  std::vector<double> y, mean, var, invstd;  // var is the biased (population) variance
};

// Plain float64 training-mode forward: two passes per channel.
BnForwardRef bn_forward_ref(int64_t rows, int64_t c, const std::vector<double>& x,
                            const std::vector<double>& gamma, const std::vector<double>& beta,
                            double eps) {
  BnForwardRef r{std::vector<double>(rows * c), std::vector<double>(c), std::vector<double>(c),
                 std::vector<double>(c)};
  for (int64_t j = 0; j < c; ++j) {
    double sum = 0.0;
    for (int64_t i = 0; i < rows; ++i) sum += x[i * c + j];
    const double mean = sum / rows;
    double sq = 0.0;
    for (int64_t i = 0; i < rows; ++i) sq += (x[i * c + j] - mean) * (x[i * c + j] - mean);
    const double var = sq / rows;
    const double invstd = 1.0 / std::sqrt(var + eps);
    r.mean[j] = mean;
    r.var[j] = var;
    r.invstd[j] = invstd;
    for (int64_t i = 0; i < rows; ++i)
      r.y[i * c + j] = (x[i * c + j] - mean) * invstd * gamma[j] + beta[j];
  }
  return r;
}

struct BnBackwardRef {
  std::vector<double> dx, dgamma, dbeta;
};

// Plain float64 analytic backward (training mode), from the float64 forward's statistics.
BnBackwardRef bn_backward_ref(int64_t rows, int64_t c, const std::vector<double>& x,
                              const std::vector<double>& dy, const std::vector<double>& gamma,
                              double eps) {
  const std::vector<double> zeros(c, 0.0);
  const BnForwardRef f = bn_forward_ref(rows, c, x, gamma, zeros, eps);
  BnBackwardRef r{std::vector<double>(rows * c), std::vector<double>(c), std::vector<double>(c)};
  for (int64_t j = 0; j < c; ++j) {
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int64_t i = 0; i < rows; ++i) {
      const double xhat = (x[i * c + j] - f.mean[j]) * f.invstd[j];
      sum_dy += dy[i * c + j];
      sum_dy_xhat += dy[i * c + j] * xhat;
    }
    r.dbeta[j] = sum_dy;
    r.dgamma[j] = sum_dy_xhat;
    for (int64_t i = 0; i < rows; ++i) {
      const double xhat = (x[i * c + j] - f.mean[j]) * f.invstd[j];
      r.dx[i * c + j] =
          gamma[j] * f.invstd[j] * (dy[i * c + j] - sum_dy / rows - xhat * sum_dy_xhat / rows);
    }
  }
  return r;
}

// L = sum(y .* dy) for the float64 forward: its gradient is what the backward pass computes.
double weighted_output(int64_t rows, int64_t c, const std::vector<double>& x,
                       const std::vector<double>& gamma, const std::vector<double>& beta,
                       const std::vector<double>& dy, double eps) {
  const BnForwardRef f = bn_forward_ref(rows, c, x, gamma, beta, eps);
  double l = 0.0;
  for (size_t i = 0; i < f.y.size(); ++i) l += f.y[i] * dy[i];
  return l;
}

// Central differences of weighted_output with respect to every element of `wrt` (one of the
// inputs).
std::vector<double> finite_difference(int64_t rows, int64_t c, std::vector<double> x,
                                      std::vector<double> gamma, std::vector<double> beta,
                                      const std::vector<double>& dy, double eps, char wrt) {
  std::vector<double>& v = wrt == 'x' ? x : (wrt == 'g' ? gamma : beta);
  std::vector<double> grad(v.size());
  const double h = 1e-5;
  for (size_t i = 0; i < v.size(); ++i) {
    const double saved = v[i];
    v[i] = saved + h;
    const double lp = weighted_output(rows, c, x, gamma, beta, dy, eps);
    v[i] = saved - h;
    const double lm = weighted_output(rows, c, x, gamma, beta, dy, eps);
    v[i] = saved;
    grad[i] = (lp - lm) / (2 * h);
  }
  return grad;
}

// max |got - ref| / scale: an absolute error in units the caller chooses.
template <typename A>
double max_scaled_error(const std::vector<A>& got, const std::vector<double>& ref, double scale) {
  double d = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) d = std::max(d, std::abs(double(got[i]) - ref[i]));
  return d / scale;
}

struct BnCase {
  int64_t rows, c;
};

const BnCase kShapes[] = {{2, 1},  {2, 3},  {2, 17}, {5, 1},   {5, 3},
                          {5, 17}, {97, 1}, {97, 3}, {97, 17}, {2053, 17}};  // last: threaded

}  // namespace

TEST_CASE("batch_norm: training forward and running statistics match float64") {
  const float eps = 1e-5f, momentum = 0.1f;
  for (const BnCase& sh : kShapes) {
    CAPTURE(sh.rows);
    CAPTURE(sh.c);
    const int64_t rows = sh.rows, c = sh.c;
    const uint64_t seed = static_cast<uint64_t>(rows * 100 + c);
    const auto x = random_floats(rows * c, seed, -2.0f, 3.0f);
    const auto gamma = random_floats(c, seed + 1, 0.5f, 1.5f);
    const auto beta = random_floats(c, seed + 2);
    auto running_mean = random_floats(c, seed + 3);
    auto running_var = random_floats(c, seed + 4, 0.5f, 2.0f);
    const auto rm0 = running_mean, rv0 = running_var;
    std::vector<float> y(rows * c), save_mean(c), save_invstd(c);
    cpu::batch_norm_forward_train({rows, c}, x.data(), gamma.data(), beta.data(), eps, momentum,
                                 running_mean.data(), running_var.data(), y.data(),
                                 save_mean.data(), save_invstd.data());

    const BnForwardRef ref =
        bn_forward_ref(rows, c, to_double(x), to_double(gamma), to_double(beta), eps);
    // Tolerances: a few fp32 roundings of values of order max|y| (statistics are double-exact).
    CHECK(max_rel_error(y, ref.y) < 2e-6);
    CHECK(max_rel_error(save_mean, ref.mean) < 1e-6);
    CHECK(max_rel_error(save_invstd, ref.invstd) < 1e-6);

    std::vector<double> rm_ref(c), rv_ref(c);
    for (int64_t j = 0; j < c; ++j) {
      rm_ref[j] = (1 - double(momentum)) * rm0[j] + double(momentum) * ref.mean[j];
      rv_ref[j] = (1 - double(momentum)) * rv0[j] +
                  double(momentum) * ref.var[j] * double(rows) / double(rows - 1);  // unbiased
    }
    CHECK(max_rel_error(running_mean, rm_ref) < 1e-6);  // one fp32 rounding
    CHECK(max_rel_error(running_var, rv_ref) < 1e-6);
  }
}

TEST_CASE("batch_norm: a mean far larger than the spread loses no accuracy") {
  // x = 1e4 +- 0.01 (mean^2 / var ~ 3e12): a one-pass sum of squares would cancel away the variance
  // even in double, and an fp32 mean alone is off by up to half its ulp (5e-4, 10% of the standard
  // deviation). The kernel shifts by the first row and carries the mean as an fp32 hi + lo pair.
  const int64_t rows = 97, c = 3;
  const auto x = random_floats(rows * c, 5, 1e4f - 0.01f, 1e4f + 0.01f);
  const auto gamma = random_floats(c, 6, 0.5f, 1.5f), beta = random_floats(c, 7);
  const auto dy = random_floats(rows * c, 8);
  const float eps = 1e-9f;  // far below the variance (~3e-5), so it does not mask errors in it
  std::vector<float> y(rows * c), save_mean(c), save_invstd(c), dx(rows * c);
  std::vector<float> dgamma(c, 0.0f), dbeta(c, 0.0f);
  cpu::batch_norm_forward_train({rows, c}, x.data(), gamma.data(), beta.data(), eps, 0.1f, nullptr,
                               nullptr, y.data(), save_mean.data(), save_invstd.data());
  cpu::batch_norm_backward({rows, c}, x.data(), dy.data(), gamma.data(), save_mean.data(),
                          save_invstd.data(), dx.data(), dgamma.data(), dbeta.data());
  const auto xd = to_double(x), gd = to_double(gamma);
  const BnForwardRef ref = bn_forward_ref(rows, c, xd, gd, to_double(beta), eps);
  const BnBackwardRef bref = bn_backward_ref(rows, c, xd, to_double(dy), gd, eps);
  // Same tolerances as for well-centred data: a few fp32 roundings.
  CHECK(max_rel_error(save_invstd, ref.invstd) < 1e-6);
  CHECK(max_rel_error(y, ref.y) < 2e-6);
  double term_scale = 0.0;
  for (int64_t i = 0; i < rows * c; ++i)
    term_scale = std::max(term_scale, std::abs(double(gamma[i % c]) * save_invstd[i % c] * dy[i]));
  CHECK(max_scaled_error(dx, bref.dx, term_scale) < 1e-5);
  CHECK(max_rel_error(dgamma, bref.dgamma) < 1e-5);
}

TEST_CASE("batch_norm: eval forward uses the running statistics") {
  for (const BnCase& sh : kShapes) {
    CAPTURE(sh.rows);
    CAPTURE(sh.c);
    const int64_t rows = sh.rows, c = sh.c;
    const uint64_t seed = static_cast<uint64_t>(rows * 31 + c);
    const auto x = random_floats(rows * c, seed, -2.0f, 2.0f);
    const auto gamma = random_floats(c, seed + 1, 0.5f, 1.5f);
    const auto beta = random_floats(c, seed + 2);
    const auto rm = random_floats(c, seed + 3);
    const auto rv = random_floats(c, seed + 4, 0.1f, 2.0f);
    const float eps = 1e-3f;
    std::vector<float> y(rows * c);
    cpu::batch_norm_forward_eval({rows, c}, x.data(), gamma.data(), beta.data(), rm.data(),
                                rv.data(), eps, y.data());
    std::vector<double> ref(rows * c);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < c; ++j)
        ref[i * c + j] =
            (double(x[i * c + j]) - rm[j]) / std::sqrt(double(rv[j]) + double(eps)) * gamma[j] +
            beta[j];
    CHECK(max_rel_error(y, ref) < 2e-6);  // a few fp32 roundings
  }
}

// The fused ReLU keeps a NaN a NaN (torch.relu), whether it came in through x or the residual, and
// in training a NaN in x spoils its channel's statistics, so the whole channel. The GPU backends
// are held to the same (tests/kernels/test_cudnn.cpp, test_cuda_kernels.cpp).
TEST_CASE("batch_norm: NaN goes through the ReLU epilogue as NaN") {
  const int64_t rows = 6, c = 4;
  auto x = random_floats(rows * c, 90, -2.0f, 2.0f);
  auto res = random_floats(rows * c, 91);
  x[1] = NAN;        // row 0, channel 1
  res[c + 2] = NAN;  // row 1, channel 2
  const std::vector<float> gamma(c, 1.0f), beta(c, 0.0f), rm(c, 0.0f), rv(c, 1.0f);
  std::vector<float> y(rows * c), mean(c), invstd(c);
  cpu::batch_norm_forward_eval({rows, c}, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 1e-5f,
                              y.data(), {res.data(), true});
  for (int64_t i = 0; i < rows * c; ++i) {
    CAPTURE(i);
    CHECK(std::isnan(y[i]) == (i == 1 || i == c + 2));
    if (!std::isnan(y[i])) CHECK(y[i] >= 0.0f);
  }
  cpu::batch_norm_forward_train({rows, c}, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, nullptr, nullptr,
                               y.data(), mean.data(), invstd.data(), {nullptr, true});
  for (int64_t r = 0; r < rows; ++r) CHECK(std::isnan(y[r * c + 1]));
  CHECK(std::isnan(mean[1]));
  CHECK_FALSE(std::isnan(y[0]));
}

TEST_CASE("batch_norm: eval backward matches the float64 gradient of the affine map and accumulates") {
  for (const BnCase& sh : kShapes) {
    CAPTURE(sh.rows);
    CAPTURE(sh.c);
    const int64_t rows = sh.rows, c = sh.c;
    const uint64_t seed = static_cast<uint64_t>(rows * 17 + c);
    const auto x = random_floats(rows * c, seed, -2.0f, 2.0f);
    const auto dy = random_floats(rows * c, seed + 1);
    const auto gamma = random_floats(c, seed + 2, 0.5f, 1.5f);
    const auto rm = random_floats(c, seed + 3);
    const auto rv = random_floats(c, seed + 4, 0.1f, 2.0f);
    const float eps = 1e-3f;
    std::vector<float> dx(rows * c), dgamma(c, 0.5f), dbeta(c, -0.25f);  // start non-zero
    cpu::batch_norm_backward_eval({rows, c}, x.data(), dy.data(), gamma.data(), rm.data(), rv.data(), eps,
                                 dx.data(), dgamma.data(), dbeta.data());
    std::vector<double> dx_ref(rows * c), dg_ref(c, 0.5), db_ref(c, -0.25);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < c; ++j) {
        const double invstd = 1.0 / std::sqrt(double(rv[j]) + double(eps));
        dx_ref[i * c + j] = double(dy[i * c + j]) * gamma[j] * invstd;
        dg_ref[j] += double(dy[i * c + j]) * (double(x[i * c + j]) - rm[j]) * invstd;
        db_ref[j] += dy[i * c + j];
      }
    CHECK(max_rel_error(dx, dx_ref) < 2e-6);       // one product per element
    CHECK(max_rel_error(dgamma, dg_ref) < 1e-5);   // sums over up to 97 rows in double, then fp32
    CHECK(max_rel_error(dbeta, db_ref) < 1e-5);
    // dx alone, no parameter gradients.
    std::vector<float> dx2(rows * c);
    cpu::batch_norm_backward_eval({rows, c}, x.data(), dy.data(), gamma.data(), rm.data(), rv.data(), eps,
                                 dx2.data(), nullptr, nullptr);
    CHECK(dx2 == dx);
  }
}

TEST_CASE("batch_norm: backward matches the float64 analytic gradient and accumulates") {
  const float eps = 1e-3f;
  for (const BnCase& sh : kShapes) {
    CAPTURE(sh.rows);
    CAPTURE(sh.c);
    const int64_t rows = sh.rows, c = sh.c;
    const uint64_t seed = static_cast<uint64_t>(rows * 7 + c * 1000);
    const auto x = random_floats(rows * c, seed, -2.0f, 2.0f);
    const auto dy = random_floats(rows * c, seed + 1);
    const auto gamma = random_floats(c, seed + 2, 0.5f, 1.5f);
    const auto beta = random_floats(c, seed + 3);
    std::vector<float> y(rows * c), save_mean(c), save_invstd(c), dx(rows * c, 123.0f);
    cpu::batch_norm_forward_train({rows, c}, x.data(), gamma.data(), beta.data(), eps, 0.1f, nullptr,
                                 nullptr, y.data(), save_mean.data(), save_invstd.data());
    const auto dgamma0 = random_floats(c, seed + 4), dbeta0 = random_floats(c, seed + 5);
    auto dgamma = dgamma0, dbeta = dbeta0;  // non-zero: the kernel must add, not overwrite
    cpu::batch_norm_backward({rows, c}, x.data(), dy.data(), gamma.data(), save_mean.data(),
                            save_invstd.data(), dx.data(), dgamma.data(), dbeta.data());

    const BnBackwardRef ref =
        bn_backward_ref(rows, c, to_double(x), to_double(dy), to_double(gamma), eps);
    std::vector<double> dgamma_ref(c), dbeta_ref(c);
    for (int64_t j = 0; j < c; ++j) {
      dgamma_ref[j] = dgamma0[j] + ref.dgamma[j];
      dbeta_ref[j] = dbeta0[j] + ref.dbeta[j];
    }
    // dx is a difference of terms of size |gamma*invstd*dy| that cancel (exactly so for rows = 2),
    // so its error is measured in that unit: a few fp32 roundings of it.
    double term_scale = 0.0;
    for (int64_t i = 0; i < rows * c; ++i)
      term_scale =
          std::max(term_scale, std::abs(double(gamma[i % c]) * save_invstd[i % c] * dy[i]));
    CHECK(max_scaled_error(dx, ref.dx, term_scale) < 1e-5);
    CHECK(max_rel_error(dgamma, dgamma_ref) < 1e-5);  // double sums, fp32 inputs and statistics
    CHECK(max_rel_error(dbeta, dbeta_ref) < 1e-6);    // double sum of fp32 values
  }
}

TEST_CASE("batch_norm: backward matches finite differences of the float64 forward") {
  const double eps = 1e-3;
  const BnCase shapes[] = {{2, 3}, {5, 1}, {5, 17}, {97, 3}};
  for (const BnCase& sh : shapes) {
    CAPTURE(sh.rows);
    CAPTURE(sh.c);
    const int64_t rows = sh.rows, c = sh.c;
    const uint64_t seed = static_cast<uint64_t>(rows * 13 + c);
    const auto x = random_floats(rows * c, seed, -2.0f, 2.0f);
    const auto dy = random_floats(rows * c, seed + 1);
    const auto gamma = random_floats(c, seed + 2, 0.5f, 1.5f);
    const auto beta = random_floats(c, seed + 3);
    std::vector<float> y(rows * c), save_mean(c), save_invstd(c), dx(rows * c);
    std::vector<float> dgamma(c, 0.0f), dbeta(c, 0.0f);
    cpu::batch_norm_forward_train({rows, c}, x.data(), gamma.data(), beta.data(), float(eps), 0.1f,
                                 nullptr, nullptr, y.data(), save_mean.data(), save_invstd.data());
    cpu::batch_norm_backward({rows, c}, x.data(), dy.data(), gamma.data(), save_mean.data(),
                            save_invstd.data(), dx.data(), dgamma.data(), dbeta.data());
    const auto xd = to_double(x), gd = to_double(gamma), bd = to_double(beta), dyd = to_double(dy);
    const auto fd_x = finite_difference(rows, c, xd, gd, bd, dyd, eps, 'x');
    const auto fd_g = finite_difference(rows, c, xd, gd, bd, dyd, eps, 'g');
    const auto fd_b = finite_difference(rows, c, xd, gd, bd, dyd, eps, 'b');
    double term_scale = 0.0;
    for (int64_t i = 0; i < rows * c; ++i)
      term_scale =
          std::max(term_scale, std::abs(double(gamma[i % c]) * save_invstd[i % c] * dy[i]));
    // Central differences with h = 1e-5 in double: truncation ~h^2 * f''' ~ 1e-8 relative, below
    // the fp32 kernel's own error (see the analytic test), so the same tolerances plus margin
    // apply.
    CHECK(max_scaled_error(dx, fd_x, term_scale) < 2e-5);
    CHECK(max_rel_error(dgamma, fd_g) < 2e-5);
    CHECK(max_rel_error(dbeta, fd_b) < 2e-5);
  }
}

TEST_CASE("batch_norm: results do not depend on the thread count") {
  const int64_t rows = 4099, c = 17;  // above the threading threshold
  const auto x = random_floats(rows * c, 41, -1.0f, 4.0f);
  const auto dy = random_floats(rows * c, 42);
  const std::vector<float> gamma(c, 1.25f), beta(c, -0.5f);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> y(rows * c), m(c), s(c), dx(rows * c), dg(c, 0.0f), db(c, 0.0f);
    cpu::batch_norm_forward_train({rows, c}, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f,
                                 nullptr, nullptr, y.data(), m.data(), s.data());
    cpu::batch_norm_backward({rows, c}, x.data(), dy.data(), gamma.data(), m.data(), s.data(),
                            dx.data(), dg.data(), db.data());
    omp_set_num_threads(saved);
    y.insert(y.end(), dx.begin(), dx.end());
    y.insert(y.end(), dg.begin(), dg.end());
    y.insert(y.end(), db.begin(), db.end());
    return y;
  };
  CHECK(run(1) == run(3));  // bit-identical (design rule 6)
}

TEST_CASE("batch_norm: bad shapes throw hotlap::Error") {
  std::vector<float> buf(16, 1.0f);
  float* p = buf.data();
  // One value per channel: PyTorch raises "Expected more than 1 value per channel when training".
  CHECK_THROWS_AS(
      cpu::batch_norm_forward_train({1, 3}, p, p, p, 1e-5f, 0.1f, nullptr, nullptr, p, p, p),
      hotlap::Error);
  CHECK_THROWS_AS(
      cpu::batch_norm_forward_train({0, 3}, p, p, p, 1e-5f, 0.1f, nullptr, nullptr, p, p, p),
      hotlap::Error);
  CHECK_THROWS_AS(
      cpu::batch_norm_forward_train({-4, 3}, p, p, p, 1e-5f, 0.1f, nullptr, nullptr, p, p, p),
      hotlap::Error);
  CHECK_THROWS_AS(cpu::batch_norm_forward_eval({2, -1}, p, p, p, p, p, 1e-5f, p), hotlap::Error);
  CHECK_THROWS_AS(cpu::batch_norm_backward({-1, 2}, p, p, p, p, p, p, p, p), hotlap::Error);
  // Eval mode with a single row is fine.
  CHECK_NOTHROW(cpu::batch_norm_forward_eval({1, 3}, p, p, p, p, p, 1e-5f, p + 8));
}
