// Shared helpers for the tests: seeded random data and error measures against float64 references.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace hotlap::test {

// Uniform values in [lo, hi), reproducible from the seed.
inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Largest absolute difference divided by the largest absolute reference value: a relative error for
// the tensor as a whole, which does not blow up on the reference's near-zero elements.
template <typename A, typename B>
double max_rel_error(const std::vector<A>& got, const std::vector<B>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    if (std::isnan(g) != std::isnan(r)) return INFINITY;
    diff = std::max(diff, std::abs(g - r));
    scale = std::max(scale, std::abs(r));
  }
  return diff / std::max(scale, 1e-30);
}

}  // namespace hotlap::test
