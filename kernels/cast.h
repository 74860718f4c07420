// Storage conversions between fp32 and the 16-bit float formats.
//
// bf16 is the top half of an fp32 (8-bit exponent, 7-bit mantissa): conversion to fp32 is a shift;
// from fp32 it rounds to nearest even, and keeps NaN a (quiet) NaN. fp16 (IEEE half) appears only in
// imported and exported checkpoints; both directions handle subnormals, infinities and NaN.
//
// Test: hotlap_kernel_tests -tc='cast*,cuda cast*'.
#pragma once

#include <cstdint>
#include <cstring>

namespace hotlap::kernels {

// A bf16 value: its 16 bits, in a type of its own, so that a bf16 buffer is never taken for fp16
// bits or integers, and each kernel's fp32 and bf16 versions are overloads on float and bfloat16.
// The same layout as CUDA's __nv_bfloat16 (kernels/cuda/storage.h reads it as that on the GPU).
struct bfloat16 {
  uint16_t bits;
};
static_assert(sizeof(bfloat16) == 2, "bfloat16 is two bytes, like the format");
inline bool operator==(bfloat16 a, bfloat16 b) { return a.bits == b.bits; }
inline bool operator!=(bfloat16 a, bfloat16 b) { return a.bits != b.bits; }

// Inline, so that kernels templated on their storage type (float or bfloat16) convert per element
// in their own loops. (memcpy, not std::bit_cast: the CUDA files that include this are C++17.)
inline bfloat16 float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return {static_cast<uint16_t>((x >> 16) | 0x0040u)};  // NaN
  const uint32_t lsb = (x >> 16) & 1u;
  return {static_cast<uint16_t>((x + 0x7FFFu + lsb) >> 16)};
}
inline float bf16_to_float(bfloat16 b) {
  const uint32_t x = static_cast<uint32_t>(b.bits) << 16;
  float f;
  std::memcpy(&f, &x, sizeof f);
  return f;
}
float fp16_to_float(uint16_t h);
uint16_t float_to_fp16(float f);

namespace cpu {
void f32_to_bf16(int64_t n, const float* x, bfloat16* y);
void bf16_to_f32(int64_t n, const bfloat16* x, float* y);
void f16_to_f32(int64_t n, const uint16_t* x, float* y);
void f32_to_f16(int64_t n, const float* x, uint16_t* y);
}  // namespace cpu

// fp32 <-> bf16 on the GPU (kernels/cuda/cast.cu), bit-identical to the CPU's: device pointers,
// queued on the compute stream; in a build without CUDA each throws. (fp16 appears only in
// checkpoint files, converted on the host.)
namespace cuda {
void f32_to_bf16(int64_t n, const float* x, bfloat16* y);
void bf16_to_f32(int64_t n, const bfloat16* x, float* y);
}  // namespace cuda
}  // namespace hotlap::kernels

namespace hotlap {
using kernels::bfloat16;
}  // namespace hotlap
