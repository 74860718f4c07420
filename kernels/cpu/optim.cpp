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

#include "kernels/optim_math.h"

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

// The element updates are kernels/optim_math.h's, which the GPU kernels run too. The loops are
// split on the loop-invariant choices (plain SGD or momentum) so that each vectorises.
void sgd_update(const SgdArgs& a, int64_t n, float* p, const float* g, float* momentum_buf) {
  check_sgd_args("sgd_update", a, n, momentum_buf);
  const SgdFactors f = sgd_factors(a);
  if (a.momentum == 0.0f) {  // plain SGD: the buffer neither read nor written
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) sgd_element(f, p, g, nullptr, i);
    return;
  }
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) sgd_element(f, p, g, momentum_buf, i);
}

void adamw_update(const AdamWArgs& a, int64_t n, float* p, const float* g, float* m, float* v) {
  check_adamw_args("adamw_update", a, n);
  const AdamWFactors f = adamw_factors(a);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) adamw_element(f, p, g, m, v, i);
}

}  // namespace hotlap::kernels::cpu
