// fp32 <-> bf16 on raw bits, for kernels/cuda/cast.cu, readable by nvcc and the host compiler (the
// CPU tests compare it with kernels::float_to_bf16 over every class of input). The same integer
// arithmetic as kernels/cpu/cast.cpp: round to nearest even by adding 0x7FFF plus the lowest kept
// bit, NaN first (kept quiet, with its sign and the top of its payload) so the carry cannot turn
// it into an infinity.
#pragma once

#include <cstdint>

#include "kernels/cuda/launch.h"

namespace hotlap::kernels::cuda {

HOTLAP_HOST_DEVICE inline uint16_t f32_bits_to_bf16(uint32_t x) {
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // NaN
  const uint32_t lsb = (x >> 16) & 1u;
  return static_cast<uint16_t>((x + 0x7FFFu + lsb) >> 16);
}

HOTLAP_HOST_DEVICE inline uint32_t bf16_to_f32_bits(uint16_t b) {
  return static_cast<uint32_t>(b) << 16;
}

}  // namespace hotlap::kernels::cuda
