// Convolution shapes for the kernel tests: a short constructor, a readable description for failure
// messages, and every distinct convolution of torchvision's ResNet-50 v1.5 at 224x224.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv.h"

namespace hotlap::test {

// Square stride and padding: what every ResNet convolution uses.
inline kernels::ConvShape conv_shape(int64_t n, int64_t h, int64_t w, int64_t c, int64_t k, int64_t r, int64_t s,
                                     int64_t stride, int64_t pad) {
  kernels::ConvShape cs;
  cs.n = n, cs.h = h, cs.w = w, cs.c = c, cs.k = k, cs.r = r, cs.s = s;
  cs.stride_h = cs.stride_w = stride;
  cs.pad_h = cs.pad_w = pad;
  return cs;
}

// "x[2,56,56,64] w[64,3,3] stride 1x1 pad 1x1"
inline std::string describe(const kernels::ConvShape& s) {
  return "x[" + std::to_string(s.n) + "," + std::to_string(s.h) + "," + std::to_string(s.w) + "," +
         std::to_string(s.c) + "] w[" + std::to_string(s.k) + "," + std::to_string(s.r) + "," +
         std::to_string(s.s) + "] stride " + std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w) +
         " pad " + std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w);
}

}  // namespace hotlap::test
