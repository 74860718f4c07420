// SGD (momentum, dampening, Nesterov, L2 weight decay) and AdamW, one fused pass per parameter.
//
// The arithmetic follows PyTorch's single-tensor path (foreach=False) operation by operation, in
// fp32, with the scalar factors PyTorch computes in Python (1 - dampening, 1 - lr*wd, the bias
// corrections, the step size) done in double and rounded to float once, so hotlap's weights track
// PyTorch's to ~1e-6 after many steps:
//
//   SGD    g = g + wd*p;  buf = first ? g : momentum*buf + (1 - dampening)*g;
//          g = nesterov ? g + momentum*buf : buf;  p = p - lr*g
//   AdamW  p = p * (1 - lr*wd);  m = lerp(m, g, 1 - b1);  v = b2*v + (1 - b2)*g*g;
//          p = p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//
// (PyTorch updates m with torch.lerp, which for a weight below 0.5 computes m + w*(g - m); we do
// the same.) Per element SGD reads 3 and writes 2 floats, AdamW reads 4 and writes 3 for ~12 FLOPs:
// ResNet-50's 25.6M parameters cost ~0.7 GB of traffic per AdamW step, bandwidth-bound.
#include "kernels/optim.h"

#include <cmath>

#include "kernels/error.h"

namespace hotlap::kernels {

void check_sgd_args(const char* op, const SgdArgs& a, int64_t n, const float* momentum_buf) {
  HOTLAP_CHECK(n >= 0, op, ": negative length n=", n);
  HOTLAP_CHECK(a.momentum >= 0.0f && a.weight_decay >= 0.0f && a.lr >= 0.0f, op,
               ": lr, momentum and weight_decay must be >= 0 (lr=", a.lr, ", momentum=", a.momentum,
               ", weight_decay=", a.weight_decay, ")");
  HOTLAP_CHECK(!a.nesterov || (a.momentum > 0.0f && a.dampening == 0.0f), op,
               ": Nesterov momentum requires a momentum > 0 and zero dampening (momentum=", a.momentum,
               ", dampening=", a.dampening, ")");
  HOTLAP_CHECK(a.momentum == 0.0f || momentum_buf != nullptr, op, ": momentum=", a.momentum,
               " needs a momentum buffer (got null)");
}

void check_adamw_args(const char* op, const AdamWArgs& a, int64_t n) {
  HOTLAP_CHECK(n >= 0, op, ": negative length n=", n);
  HOTLAP_CHECK(a.step >= 1, op, ": step is 1-based, got ", a.step);
  HOTLAP_CHECK(a.beta1 >= 0.0f && a.beta1 < 1.0f && a.beta2 >= 0.0f && a.beta2 < 1.0f, op,
               ": betas must be in [0, 1), got (", a.beta1, ", ", a.beta2, ")");
  HOTLAP_CHECK(a.lr >= 0.0f && a.eps >= 0.0f && a.weight_decay >= 0.0f, op,
               ": lr, eps and weight_decay must be >= 0 (lr=", a.lr, ", eps=", a.eps,
               ", weight_decay=", a.weight_decay, ")");
}

}  // namespace hotlap::kernels

namespace hotlap::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 16;  // elements
}  // namespace

void sgd_update(const SgdArgs& a, int64_t n, float* p, const float* g, float* momentum_buf) {
  check_sgd_args("sgd_update", a, n, momentum_buf);
  const float lr = a.lr, wd = a.weight_decay, mom = a.momentum;
  const float one_minus_damp = static_cast<float>(1.0 - static_cast<double>(a.dampening));

  if (mom == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i] + wd * p[i];
      p[i] = p[i] - lr * gi;
    }
    return;
  }
  const bool first = a.first_step, nesterov = a.nesterov;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + wd * p[i];
    const float buf = first ? gi : mom * momentum_buf[i] + one_minus_damp * gi;
    momentum_buf[i] = buf;
    const float step = nesterov ? gi + mom * buf : buf;
    p[i] = p[i] - lr * step;
  }
}

void adamw_update(const AdamWArgs& a, int64_t n, float* p, const float* g, float* m, float* v) {
  check_adamw_args("adamw_update", a, n);
  const double lr = a.lr, b1 = a.beta1, b2 = a.beta2;
  const double t = static_cast<double>(a.step);
  const float decay = static_cast<float>(1.0 - lr * static_cast<double>(a.weight_decay));
  const float w1 = static_cast<float>(1.0 - b1);  // lerp weight
  const float beta2 = a.beta2;
  const float w2 = static_cast<float>(1.0 - b2);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(b1, t)));
  const float bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
  const float eps = a.eps;
  const bool lerp_from_start = w1 < 0.5f;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float pi = p[i] * decay;
    // torch.lerp(m, g, w): m + w*(g - m) for w < 0.5, else g - (g - m)*(1 - w).
    const float mi = lerp_from_start ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (1.0f - w1);
    const float vi = v[i] * beta2 + w2 * gi * gi;  // addcmul: self + value*t1*t2
    const float denom = std::sqrt(vi) / bc2_sqrt + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / denom;  // addcdiv: self + value*t1/t2
  }
}

}  // namespace hotlap::kernels::cpu
