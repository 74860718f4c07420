// The optimizer updates' arithmetic, once for both backends (kernels/cpu/optim.cpp, one OpenMP
// loop; kernels/cuda/optim.cu, a thread per element): the scalar factors, formed once on the host
// in double as PyTorch forms them in Python, and the per-element update in fp32 in PyTorch's order
// of operations. Host-and-device code (kernels/host_device.h).
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/host_device.h"
#include "kernels/optim.h"

namespace hotlap::kernels {

struct SgdFactors {
  float lr, weight_decay, momentum, one_minus_dampening;
  bool nesterov, first_step;
};

inline SgdFactors sgd_factors(const SgdArgs& a) {
  return {a.lr, a.weight_decay, a.momentum,
          static_cast<float>(1.0 - static_cast<double>(a.dampening)), a.nesterov, a.first_step};
}

// g = g + wd*p;  buf = first ? g : momentum*buf + (1 - dampening)*g;
// step = nesterov ? g + momentum*buf : buf;  p = p - lr*step.   momentum_buf null: plain SGD.
HOTLAP_HOST_DEVICE inline void sgd_element(const SgdFactors& f, float* p, const float* g,
                                           float* momentum_buf, int64_t i) {
  const float gi = g[i] + f.weight_decay * p[i];
  if (momentum_buf == nullptr) {
    p[i] = p[i] - f.lr * gi;
    return;
  }
  const float buf = f.first_step ? gi : f.momentum * momentum_buf[i] + f.one_minus_dampening * gi;
  momentum_buf[i] = buf;
  const float step = f.nesterov ? gi + f.momentum * buf : buf;
  p[i] = p[i] - f.lr * step;
}

struct AdamWFactors {
  float decay;        // 1 - lr*wd
  float w1;           // the lerp weight 1 - beta1
  float beta2, w2;    // beta2, 1 - beta2
  float step_size;    // lr / (1 - beta1^t)
  float bc2_sqrt;     // sqrt(1 - beta2^t)
  float eps;
  bool lerp_from_start;  // w1 < 0.5: torch.lerp's formula choice
};

inline AdamWFactors adamw_factors(const AdamWArgs& a) {
  const double lr = a.lr, b1 = a.beta1, b2 = a.beta2;
  const double t = static_cast<double>(a.step);
  AdamWFactors f;
  f.decay = static_cast<float>(1.0 - lr * static_cast<double>(a.weight_decay));
  f.w1 = static_cast<float>(1.0 - b1);
  f.beta2 = a.beta2;
  f.w2 = static_cast<float>(1.0 - b2);
  f.step_size = static_cast<float>(lr / (1.0 - pow(b1, t)));
  f.bc2_sqrt = static_cast<float>(sqrt(1.0 - pow(b2, t)));
  f.eps = a.eps;
  f.lerp_from_start = f.w1 < 0.5f;
  return f;
}

// p = p*decay;  m = lerp(m, g, w1);  v = beta2*v + w2*g*g;  p = p - step_size*m / (sqrt(v)/bc2 + eps).
HOTLAP_HOST_DEVICE inline void adamw_element(const AdamWFactors& f, float* p, const float* g,
                                             float* m, float* v, int64_t i) {
  const float gi = g[i];
  const float pi = p[i] * f.decay;
  const float mi = f.lerp_from_start ? m[i] + f.w1 * (gi - m[i]) : gi - (gi - m[i]) * (1.0f - f.w1);
  const float vi = v[i] * f.beta2 + f.w2 * gi * gi;
  const float denom = sqrtf(vi) / f.bc2_sqrt + f.eps;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - f.step_size * mi / denom;
}

}  // namespace hotlap::kernels
