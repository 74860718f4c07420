// Seeded random numbers for initialisation and data: the same seed gives the same numbers on every
// platform (the standard library's distributions do not promise that, so the transforms are ours).
#pragma once

#include <cstdint>

#include "nn/runtime/tensor.h"

namespace hotlap {

// xoshiro256** (Blackman & Vigna): small state, fast, good statistics; seeded with splitmix64.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0x5eed) { seed_with(seed); }
  void seed_with(uint64_t seed);
  uint64_t next_u64();
  double uniform();                        // [0, 1)
  double uniform(double lo, double hi);    // [lo, hi)
  double normal();                         // mean 0, sd 1 (Box-Muller)
  int64_t below(int64_t n);                // [0, n)
  uint64_t state[4];
};

// The generator behind parameter initialisation.
Rng& global_rng();
void manual_seed(uint64_t seed);

void fill_uniform(Tensor& t, double lo, double hi, Rng& rng = global_rng());
void fill_normal(Tensor& t, double mean, double sd, Rng& rng = global_rng());

}  // namespace hotlap
