// fp32 <-> bf16/fp16 conversions: known bit patterns, round-to-nearest-even, special values, and
// exhaustive round trips over all 65536 16-bit patterns.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cast.h"
#include "test_util.h"

using namespace hotlap::kernels;

namespace {

float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

// The conversions as bit patterns, which is what these cases are written in.
uint16_t bf16_bits(float f) { return float_to_bf16(f).bits; }
float bf16_value(uint16_t bits) { return bf16_to_float(bfloat16{bits}); }
uint32_t to_bits(float f) { return std::bit_cast<uint32_t>(f); }

bool bf16_is_nan(uint16_t b) { return (b & 0x7F80u) == 0x7F80u && (b & 0x007Fu) != 0; }
bool fp16_is_nan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0; }

// True when `got` is the correctly rounded (nearest, ties to even) 16-bit neighbour of f, judged
// against both adjacent encodings in double (exact for all finite values involved).
template <typename ToFloat>
bool is_nearest_even(float f, uint16_t got, ToFloat to_float) {
  const double x = f, g = to_float(got);
  if (std::isinf(g)) return true;  // overflow is checked separately
  const double err = std::abs(g - x);
  for (int delta : {-1, 1}) {
    const uint16_t nb = static_cast<uint16_t>(got + delta);
    if ((nb & 0x7FFFu) == 0x7FFFu || ((got & 0x7FFFu) == 0 && delta < 0)) continue;  // wrapped
    const double n = to_float(nb);
    if (std::isnan(n) || std::isinf(n)) continue;
    if (std::signbit(n) != std::signbit(g) && n != 0.0 && g != 0.0) continue;
    const double nerr = std::abs(n - x);
    if (nerr < err) return false;
    if (nerr == err && (got & 1u)) return false;  // a tie must land on the even mantissa
  }
  return true;
}

}  // namespace

TEST_CASE("cast: bf16 known bit patterns") {
  CHECK(bf16_bits(1.0f) == 0x3F80);
  CHECK(bf16_bits(-2.0f) == 0xC000);
  CHECK(bf16_bits(0.0f) == 0x0000);
  CHECK(bf16_bits(-0.0f) == 0x8000);
  CHECK(bf16_bits(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(bf16_bits(-std::numeric_limits<float>::infinity()) == 0xFF80);
  // Ties to even: 1 + 2^-8 is halfway between 0x3F80 and 0x3F81 -> 0x3F80 (even);
  // 1 + 3*2^-8 is halfway between 0x3F81 and 0x3F82 -> 0x3F82; just above half rounds up.
  CHECK(bf16_bits(from_bits(0x3F808000u)) == 0x3F80);
  CHECK(bf16_bits(from_bits(0x3F818000u)) == 0x3F82);
  CHECK(bf16_bits(from_bits(0x3F808001u)) == 0x3F81);
  CHECK(bf16_bits(from_bits(0x3F807FFFu)) == 0x3F80);
  // The largest float rounds up past the largest bf16 into infinity, as PyTorch's bf16 does.
  CHECK(bf16_bits(std::numeric_limits<float>::max()) == 0x7F80);
  // NaN stays NaN, quiet, sign kept: including a signalling NaN whose payload lives only in the low
  // 16 bits (truncation alone would turn it into infinity).
  CHECK(bf16_bits(from_bits(0x7FC00000u)) == 0x7FC0);
  CHECK(bf16_bits(from_bits(0xFFC00000u)) == 0xFFC0);
  CHECK(bf16_bits(from_bits(0x7F800001u)) == 0x7FC0);
  CHECK(bf16_bits(from_bits(0x7FFFFFFFu)) == 0x7FFF);

  CHECK(bf16_value(0x3F80) == 1.0f);
  CHECK(bf16_value(0xC000) == -2.0f);
  CHECK(to_bits(bf16_value(0x8000)) == 0x80000000u);
  CHECK(std::isinf(bf16_value(0x7F80)));
  CHECK(std::isnan(bf16_value(0x7FC0)));
  CHECK(bf16_value(0x0001) == std::ldexp(1.0f, -133));  // smallest bf16 subnormal
}

TEST_CASE("cast: fp16 known bit patterns") {
  CHECK(fp16_to_float(0x3C00) == 1.0f);
  CHECK(fp16_to_float(0xC000) == -2.0f);
  CHECK(fp16_to_float(0x0001) == std::ldexp(1.0f, -24));            // smallest subnormal
  CHECK(fp16_to_float(0x03FF) == 1023.0f * std::ldexp(1.0f, -24));  // largest subnormal
  CHECK(fp16_to_float(0x0400) == std::ldexp(1.0f, -14));            // smallest normal
  CHECK(fp16_to_float(0x7BFF) == 65504.0f);                         // largest finite
  CHECK(fp16_to_float(0x3555) == 0.333251953125f);
  CHECK(fp16_to_float(0x7C00) == std::numeric_limits<float>::infinity());
  CHECK(fp16_to_float(0xFC00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(fp16_to_float(0x7E00)));
  CHECK(std::isnan(fp16_to_float(0x7C01)));  // signalling NaN stays NaN, and becomes quiet
  CHECK((to_bits(fp16_to_float(0x7C01)) & 0x00400000u) != 0);
  CHECK(to_bits(fp16_to_float(0x8000)) == 0x80000000u);
  CHECK(to_bits(fp16_to_float(0x8001)) == (0x80000000u | to_bits(std::ldexp(1.0f, -24))));

  CHECK(float_to_fp16(1.0f) == 0x3C00);
  CHECK(float_to_fp16(-2.0f) == 0xC000);
  CHECK(float_to_fp16(-0.0f) == 0x8000);
  CHECK(float_to_fp16(65504.0f) == 0x7BFF);
  CHECK(float_to_fp16(65519.0f) == 0x7BFF);  // below the midpoint 65520
  CHECK(float_to_fp16(65520.0f) == 0x7C00);  // the midpoint: ties to even = 2^16 = overflow
  CHECK(float_to_fp16(1e6f) == 0x7C00);
  CHECK(float_to_fp16(-1e6f) == 0xFC00);
  CHECK(float_to_fp16(std::numeric_limits<float>::infinity()) == 0x7C00);
  CHECK(fp16_is_nan(float_to_fp16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(fp16_is_nan(float_to_fp16(from_bits(0x7F800001u))));  // payload only in low bits
  CHECK((float_to_fp16(from_bits(0xFFC00000u)) & 0x8000u) != 0);
  // Ties to even in the normal range: 1 + 2^-11 -> 1.0; 1 + 3*2^-11 -> 1 + 2^-9 (0x3C02).
  CHECK(float_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
  CHECK(float_to_fp16(1.0f + 3.0f * std::ldexp(1.0f, -11)) == 0x3C02);
  // Subnormals: 2^-24 -> 0x0001; 2^-25 is a tie between 0 and 2^-24 -> 0 (even); just above -> 1;
  // 3*2^-25 is a tie between 1 and 2 -> 2; 2^-14 - 2^-25 ties between 0x03FF and 0x0400 -> 0x0400.
  CHECK(float_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(float_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);
  CHECK(float_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
  CHECK(float_to_fp16(3.0f * std::ldexp(1.0f, -25)) == 0x0002);
  CHECK(float_to_fp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)) == 0x0400);
  CHECK(float_to_fp16(-std::ldexp(1.0f, -24)) == 0x8001);
  CHECK(float_to_fp16(1e-30f) == 0x0000);
  CHECK(float_to_fp16(std::numeric_limits<float>::denorm_min()) == 0x0000);
}

TEST_CASE("cast: every 16-bit pattern round-trips through fp32") {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    if (fp16_is_nan(h)) {
      CHECK(fp16_is_nan(float_to_fp16(fp16_to_float(h))));
    } else if (float_to_fp16(fp16_to_float(h)) != h) {
      FAIL_CHECK("fp16 pattern " << h << " does not round-trip");
    }
    if (bf16_is_nan(h)) {
      CHECK(bf16_is_nan(bf16_bits(bf16_value(h))));
    } else if (bf16_bits(bf16_value(h)) != h) {
      FAIL_CHECK("bf16 pattern " << h << " does not round-trip");
    }
  }
}

TEST_CASE("cast: random floats round to the nearest even neighbour") {
  std::mt19937_64 rng(1234);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::uniform_real_distribution<float> fp16_range(-70000.0f, 70000.0f);
  std::uniform_int_distribution<int> small_exp(-30, 15);
  int bad_bf16 = 0, bad_fp16 = 0;
  for (int i = 0; i < 20000; ++i) {
    const float f = from_bits(any_bits(rng));  // any pattern: all exponents, NaN and inf included
    const uint16_t b = bf16_bits(f);
    if (std::isnan(f)) {
      bad_bf16 += !bf16_is_nan(b);
    } else {
      bad_bf16 += !is_nearest_even(f, b, bf16_value);
      // Relative error at most half a bf16 ulp (2^-8 relative) in the normal range.
      const double back = bf16_value(b);
      if (std::isfinite(back) && std::abs(f) >= 1e-37f)
        bad_bf16 += std::abs(back - f) > std::ldexp(std::abs(static_cast<double>(f)), -8);
    }
    // fp16: values across its whole range, subnormals included.
    const float g =
        (i % 2) ? fp16_range(rng) : std::ldexp(fp16_range(rng) / 70000.0f, small_exp(rng));
    const uint16_t h = float_to_fp16(g);
    if (std::abs(g) >= 65520.0f) {
      bad_fp16 += (h & 0x7FFFu) != 0x7C00u;
    } else {
      bad_fp16 += !is_nearest_even(g, h, fp16_to_float);
    }
  }
  CHECK(bad_bf16 == 0);
  CHECK(bad_fp16 == 0);
}

TEST_CASE("cast: array versions match the scalar ones") {
  for (int64_t n : {0, 1, 7, 100003}) {  // 100003 crosses the threading threshold
    std::vector<float> x = hotlap::test::random_floats(static_cast<size_t>(n), 77 + n, -1e5f, 1e5f);
    if (n > 3) {
      x[0] = std::numeric_limits<float>::quiet_NaN();
      x[1] = -0.0f;
      x[2] = 1e-7f;
    }
    std::vector<bfloat16> b(static_cast<size_t>(n));
    std::vector<uint16_t> h(n);
    std::vector<float> bf(n), hf(n);
    cpu::f32_to_bf16(n, x.data(), b.data());
    cpu::f32_to_f16(n, x.data(), h.data());
    cpu::bf16_to_f32(n, b.data(), bf.data());
    cpu::f16_to_f32(n, h.data(), hf.data());
    int mismatches = 0;
    for (int64_t i = 0; i < n; ++i) {
      mismatches += b[i].bits != bf16_bits(x[i]);
      mismatches += h[i] != float_to_fp16(x[i]);
      mismatches += to_bits(bf[i]) != to_bits(bf16_to_float(b[i]));
      mismatches += to_bits(hf[i]) != to_bits(fp16_to_float(h[i]));
    }
    CHECK(mismatches == 0);
  }
}
