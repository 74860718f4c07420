// How the CUDA kernel tests compare a GPU result with the CPU's (test_cuda_kernels.cpp,
// test_cuda_batch_norm.cpp). Outputs are poisoned with NaN before each GPU run, so an element the
// kernel forgets to write shows up as a mismatch. The memory-bound kernels and their CPU twins are
// built without fused multiply-adds (CMakeLists.txt), so where both do the same arithmetic in the
// same order (everything but the reductions' order of additions) the results are compared bit for
// bit; a NaN that went through arithmetic matches any NaN (same_float_values: the GPU has one
// canonical NaN). Workspaces are allocated at exactly the size their query gives, poisoned too, with
// a guard after them that must come back untouched; one too small, null or misaligned must throw.
//
// The cases templated on the storage type (<float>, <bf16>) run the same shapes in bf16: both sides
// do fp32 arithmetic on the widened values and round each stored result once to nearest even, so
//  - element-wise ops, max pool (values and indices), global average pool and batch norm in eval
//    mode (y, and the eval backward's dx) give the same bf16 bits (any NaN matches any NaN);
//  - batch norm's training outputs may sit one bf16 step apart (bf16_ulp_error <= 1): its
//    statistics come from fp32 partial sums on the GPU and a double sum on the CPU, and a value a
//    few fp32 ulps off can round to the neighbouring bf16 value. The slack, 1e-4 of the largest
//    value, is for elements near zero where (x - mean) * scale + beta cancels; it is 40x smaller
//    than a bf16 step at the largest value, so a wrong element still shows;
//  - the statistics and dgamma, dbeta are fp32 sums of the same values: the fp32 bounds.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cast.h"
#include "kernels/device_buffers.h"
#include "test_util.h"

// Cases templated on the storage type are named "...<float>" and "...<bf16>".
TYPE_TO_STRING_AS("bf16", hotlap::kernels::bfloat16);

namespace hotlap::test {

// For the cases templated on the storage type T (float, bfloat16).
template <typename T>
std::vector<T> random_values(size_t n, uint64_t seed) {
  return as_elements<T>(random_floats(n, seed));
}

template <typename T>
bool same_results(const std::vector<T>& got, const std::vector<T>& want) {
  return same_values(got, want);
}

// Stricter where the arithmetic allows: fp32 results equal to the bit, NaN payloads included; bf16
// ones to the bit but any NaN for a NaN (the GPU's rounding to bf16 keeps a NaN a NaN, not its
// payload: kernels/cuda/storage.h).
template <typename T>
bool identical(const std::vector<T>& got, const std::vector<T>& want) {
  if constexpr (std::is_same_v<T, float>) return same_bits(got, want);
  return same_results(got, want);
}

inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

inline bool any_nan(const std::vector<float>& v) {
  for (float x : v)
    if (std::isnan(x)) return true;
  return false;
}

inline bool all_nan(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isnan(x)) return false;
  return true;
}

}  // namespace hotlap::test
