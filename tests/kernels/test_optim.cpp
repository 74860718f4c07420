// SGD and AdamW updates over several steps against a float64 re-implementation of the formulas of
// torch.optim.SGD and torch.optim.AdamW.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/error.h"
#include "kernels/optim.h"
#include "test_util.h"

using hotlap::kernels::AdamWArgs;
using hotlap::kernels::SgdArgs;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
namespace cpu = hotlap::kernels::cpu;

namespace {

const int64_t kLengths[] = {1, 17, 100003};  // the last crosses the threading threshold
constexpr int kSteps = 6;

// torch.optim.SGD, in double, one step.
void sgd_ref(const SgdArgs& a, std::vector<double>& p, const std::vector<float>& g,
             std::vector<double>& buf) {
  const double lr = a.lr, mom = a.momentum, damp = a.dampening, wd = a.weight_decay;
  for (size_t i = 0; i < p.size(); ++i) {
    double gi = g[i] + wd * p[i];
    if (mom != 0.0) {
      buf[i] = a.first_step ? gi : mom * buf[i] + (1.0 - damp) * gi;
      gi = a.nesterov ? gi + mom * buf[i] : buf[i];
    }
    p[i] -= lr * gi;
  }
}

// torch.optim.AdamW (amsgrad off), in double, one step.
void adamw_ref(const AdamWArgs& a, std::vector<double>& p, const std::vector<float>& g,
               std::vector<double>& m, std::vector<double>& v) {
  const double lr = a.lr, b1 = a.beta1, b2 = a.beta2, eps = a.eps, wd = a.weight_decay;
  const double bc1 = 1.0 - std::pow(b1, double(a.step)), bc2 = 1.0 - std::pow(b2, double(a.step));
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] *= 1.0 - lr * wd;
    m[i] = b1 * m[i] + (1.0 - b1) * g[i];
    v[i] = b2 * v[i] + (1.0 - b2) * double(g[i]) * g[i];
    p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
  }
}

}  // namespace

TEST_CASE("optim: SGD matches torch.optim.SGD in float64 over several steps") {
  struct Combo {
    float momentum, dampening, weight_decay;
    bool nesterov;
  };
  const Combo combos[] = {{0.0f, 0.0f, 0.0f, false}, {0.0f, 0.0f, 1e-2f, false},
                          {0.9f, 0.0f, 0.0f, false}, {0.9f, 0.1f, 1e-4f, false},
                          {0.9f, 0.0f, 5e-2f, true}, {0.5f, 0.5f, 0.0f, false},
                          {0.99f, 0.0f, 0.0f, true}};
  for (const Combo& cb : combos) {
    for (int64_t n : kLengths) {
      CAPTURE(cb.momentum);
      CAPTURE(cb.dampening);
      CAPTURE(cb.weight_decay);
      CAPTURE(cb.nesterov);
      CAPTURE(n);
      SgdArgs a;
      a.lr = 0.05f;
      a.momentum = cb.momentum;
      a.dampening = cb.dampening;
      a.weight_decay = cb.weight_decay;
      a.nesterov = cb.nesterov;
      auto p = random_floats(n, uint64_t(n) + 1);
      std::vector<double> pref(p.begin(), p.end()), bufref(n, 0.0);
      std::vector<float> buf(n, 0.0f);
      for (int step = 0; step < kSteps; ++step) {
        const auto g = random_floats(n, uint64_t(n) * 100 + step, -2.0f, 2.0f);
        a.first_step = step == 0;
        cpu::sgd_update(a, n, p.data(), g.data(), cb.momentum != 0.0f ? buf.data() : nullptr);
        sgd_ref(a, pref, g, bufref);
      }
      // ~2 fp32 roundings per step on values of order max|p|, over kSteps steps.
      CHECK(max_rel_error(p, pref) < 2e-6);
      if (cb.momentum != 0.0f) {
        CHECK(max_rel_error(buf, bufref) < 2e-6);
      }
    }
  }
}

TEST_CASE("optim: AdamW matches torch.optim.AdamW in float64 over several steps") {
  struct Combo {
    float lr, beta1, beta2, eps, weight_decay;
  };
  const Combo combos[] = {{1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f},
                          {1e-2f, 0.5f, 0.9f, 1e-6f, 0.0f},
                          {3e-2f, 0.3f, 0.99f, 1e-8f, 0.1f},  // lerp weight 0.7: the other branch
                          {1e-3f, 0.0f, 0.0f, 1e-3f, 1e-2f}};
  for (const Combo& cb : combos) {
    for (int64_t n : kLengths) {
      CAPTURE(cb.lr);
      CAPTURE(cb.beta1);
      CAPTURE(cb.beta2);
      CAPTURE(n);
      AdamWArgs a;
      a.lr = cb.lr;
      a.beta1 = cb.beta1;
      a.beta2 = cb.beta2;
      a.eps = cb.eps;
      a.weight_decay = cb.weight_decay;
      auto p = random_floats(n, uint64_t(n) + 2);
      std::vector<float> m(n, 0.0f), v(n, 0.0f);
      std::vector<double> pref(p.begin(), p.end()), mref(n, 0.0), vref(n, 0.0);
      for (int step = 1; step <= kSteps; ++step) {
        const auto g = random_floats(n, uint64_t(n) * 7 + step, -1.0f, 1.0f);
        a.step = step;
        cpu::adamw_update(a, n, p.data(), g.data(), m.data(), v.data());
        adamw_ref(a, pref, g, mref, vref);
      }
      // fp32 state: a few roundings per step; the update m/sqrt(v) is well conditioned.
      CHECK(max_rel_error(p, pref) < 2e-6);
      CHECK(max_rel_error(m, mref) < 2e-6);
      CHECK(max_rel_error(v, vref) < 2e-6);
    }
  }
}

TEST_CASE("optim: bad arguments throw hotlap::Error") {
  float p = 1.0f, g = 1.0f, buf = 0.0f, m = 0.0f, v = 0.0f;
  SgdArgs s;
  s.momentum = 0.9f;
  CHECK_THROWS_AS(cpu::sgd_update(s, 1, &p, &g, nullptr), hotlap::Error);  // momentum, no buffer
  s.nesterov = true;
  s.dampening = 0.1f;
  CHECK_THROWS_AS(cpu::sgd_update(s, 1, &p, &g, &buf), hotlap::Error);  // nesterov + dampening
  s.dampening = 0.0f;
  s.momentum = 0.0f;
  CHECK_THROWS_AS(cpu::sgd_update(s, 1, &p, &g, &buf), hotlap::Error);  // nesterov, no momentum
  s.nesterov = false;
  CHECK_THROWS_AS(cpu::sgd_update(s, -1, &p, &g, nullptr), hotlap::Error);
  CHECK_NOTHROW(cpu::sgd_update(s, 1, &p, &g, nullptr));  // plain SGD needs no buffer

  AdamWArgs a;
  a.step = 0;
  CHECK_THROWS_AS(cpu::adamw_update(a, 1, &p, &g, &m, &v), hotlap::Error);  // step is 1-based
  a.step = 1;
  a.beta1 = 1.0f;
  CHECK_THROWS_AS(cpu::adamw_update(a, 1, &p, &g, &m, &v), hotlap::Error);
  a.beta1 = 0.9f;
  a.eps = -1.0f;
  CHECK_THROWS_AS(cpu::adamw_update(a, 1, &p, &g, &m, &v), hotlap::Error);
}
