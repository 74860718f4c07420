// Deterministic "random" values that C++ and Python compute identically, bit for bit: the golden
// files for full-size networks store no weights (ResNet-50 has 25 million), only outputs and samples.
// tools/make_resnet_goldens.py implements the same functions; both sides check the test vectors.
//
//   key(name)      = FNV-1a 64 of the tensor's name
//   u(name, i)     = uniform in [-1, 1): top 53 bits of splitmix64(key(name) + i), as a double
//   sample_index(name, j, n) = splitmix64(key(name) ^ 0x5A5A5A5A5A5A5A5A + j) mod n
// i is the flat index in PyTorch's layout (NCHW / OIHW); sample indices are flat indices in hotlap's
// layout (NHWC / OHWI). Values are computed in double and rounded to float once.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace hotlap::test {

inline uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline double hash_uniform(const std::string& name, uint64_t i) {
  return static_cast<double>(splitmix64(fnv1a64(name) + i) >> 11) * 0x1.0p-52 - 1.0;
}

inline uint64_t sample_index(const std::string& name, uint64_t j, uint64_t n) {
  return splitmix64((fnv1a64(name) ^ 0x5A5A5A5A5A5A5A5AULL) + j) % n;
}

}  // namespace hotlap::test
