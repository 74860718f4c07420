// fp32 <-> bf16 / fp16 conversions, bit by bit.
//
// Bit layouts (sign | exponent | mantissa, most significant bit first):
//
//   fp32: 1 | 8 (bias 127) | 23     value = (-1)^s * 1.m * 2^(e-127); e = 0: 0.m * 2^-126
//   bf16: 1 | 8 (bias 127) |  7     the top 16 bits of an fp32: same range, 8 bits of precision
//   fp16: 1 | 5 (bias 15)  | 10     value = (-1)^s * 1.m * 2^(e-15);  e = 0: 0.m * 2^-14
//                                    max 65504 (0x7BFF), min normal 2^-14 (0x0400),
//                                    min subnormal 2^-24 (0x0001)
//   exponent all ones: infinity (mantissa 0) or NaN (mantissa != 0; its top bit set = quiet).
//
// Narrowing rounds to nearest, ties to even, done on the integer bits: add just under half an ulp
// of the target plus the lowest kept bit, then truncate; a carry out of the mantissa bumps the
// exponent, which is exactly the right answer (and turns the largest finite values into infinity on
// overflow). NaN is handled first so the rounding carry cannot turn a NaN into an infinity; it
// stays a quiet NaN with its sign and the top of its payload.
//
// Cost: 4 bytes in, 2 out (or the reverse) per element, a handful of integer ops: memory-bound.
#include "kernels/cast.h"

#include <bit>

namespace hotlap::kernels {

namespace {

constexpr int64_t kParallelMin = 1 << 16;

inline uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }
inline float float_of(uint32_t u) { return std::bit_cast<float>(u); }

inline uint16_t f32_to_f16_bits(uint32_t x) {
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) {  // inf or NaN
    if (a == 0x7F800000u) return sign | 0x7C00u;
    return static_cast<uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x03FFu));  // quiet NaN
  }
  // 65520 = 0x477FF000 is halfway between 65504 and 2^16: ties to even (2^16) = overflow.
  if (a >= 0x477FF000u) return sign | 0x7C00u;
  if (a >= 0x38800000u) {  // >= 2^-14: normal fp16. Rebias exponent 127 -> 15 (subtract 112 << 23).
    uint32_t lsb = (a >> 13) & 1u;
    return static_cast<uint16_t>(sign | ((a - 0x38000000u + 0x0FFFu + lsb) >> 13));
  }
  // Subnormal fp16 (or zero): the result is round(|f| * 2^24) as an integer 0..0x400 (0x400 is the
  // smallest normal, whose encoding is that same integer).
  const uint32_t e = a >> 23;
  if (e == 0) return sign;  // fp32 zero or subnormal (< 2^-126): rounds to zero
  const uint32_t m = (a & 0x007FFFFFu) | 0x00800000u;  // |f| = m * 2^(e-150)
  const uint32_t shift = 126 - e;                      // |f| * 2^24 = m >> shift, shift >= 14
  if (shift > 24) return sign;  // < 2^-25 * 2: below half the least subnormal
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | q);
}

inline float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu;
  const uint32_t m = h & 0x03FFu;
  if (e == 0) {
    // Zero or subnormal: m * 2^-24, exact in fp32.
    float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // 2^-24
    return float_of(bits_of(v) | sign);
  }
  if (e == 31) return float_of(sign | 0x7F800000u | (m << 13) | (m ? 0x00400000u : 0u));
  return float_of(sign | ((e + 112u) << 23) | (m << 13));
}

}  // namespace

float fp16_to_float(uint16_t h) { return f16_bits_to_f32(h); }
uint16_t float_to_fp16(float f) { return f32_to_f16_bits(bits_of(f)); }

namespace cpu {

void f32_to_bf16(int64_t n, const float* x, bfloat16* y) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = float_to_bf16(x[i]);
}

void bf16_to_f32(int64_t n, const bfloat16* x, float* y) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_float(x[i]);
}

void f16_to_f32(int64_t n, const uint16_t* x, float* y) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = f16_bits_to_f32(x[i]);
}

void f32_to_f16(int64_t n, const float* x, uint16_t* y) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16_bits(bits_of(x[i]));
}

}  // namespace cpu
}  // namespace hotlap::kernels
