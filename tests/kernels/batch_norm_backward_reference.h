// The CPU's training-mode batch-norm backward on random inputs: the reference that the GPU
// kernel's test and the emulation of its per-thread maths compare with. The inputs are drawn from
// `seed` in a fixed order (x, dy, gamma, beta, then the starting dgamma and dbeta), and the saved
// statistics come from the CPU's own training forward.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/batch_norm.h"
#include "test_util.h"

namespace hotlap::test {

// T: the activations' storage (float, or bfloat16: x, dy and dx in bf16, the statistics and the
// parameter gradients fp32, as the bf16 kernels take them).
template <typename T = float>
struct BatchNormBackwardReference {
  std::vector<T> x, dy;
  std::vector<float> gamma, beta;
  std::vector<float> mean, invstd;    // the training forward's saved statistics
  std::vector<float> dgamma0, dbeta0;  // what dgamma and dbeta hold before the backward adds to them
  std::vector<T> dx;
  std::vector<float> dgamma, dbeta;

  BatchNormBackwardReference(const kernels::BatchNormShape& s, uint64_t& seed) {
    const size_t n = static_cast<size_t>(s.rows * s.c), c = static_cast<size_t>(s.c);
    x = as_elements<T>(random_floats(n, ++seed, 1.0f, 3.0f));
    dy = as_elements<T>(random_floats(n, ++seed));
    gamma = random_floats(c, ++seed, 0.5f, 1.5f);
    beta = random_floats(c, ++seed);
    std::vector<T> y(n);
    mean.resize(c);
    invstd.resize(c);
    kernels::cpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, nullptr, nullptr,
                                          y.data(), mean.data(), invstd.data());
    dgamma0 = random_floats(c, ++seed);
    dbeta0 = random_floats(c, ++seed);
    dx.resize(n);
    dgamma = dgamma0;
    dbeta = dbeta0;
    kernels::cpu::batch_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                                     dgamma.data(), dbeta.data());
  }
};

}  // namespace hotlap::test
