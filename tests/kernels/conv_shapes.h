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

// Every distinct convolution of torchvision's ResNet-50 v1.5 at 224x224 (stride in the 3x3), at
// batch n.
inline std::vector<kernels::ConvShape> resnet50_conv_shapes(int64_t n) {
  return {
      conv_shape(n, 224, 224, 3, 64, 7, 7, 2, 3),  // stem
      // layer1, 56x56
      conv_shape(n, 56, 56, 64, 64, 1, 1, 1, 0), conv_shape(n, 56, 56, 64, 64, 3, 3, 1, 1),
      conv_shape(n, 56, 56, 64, 256, 1, 1, 1, 0),  // expand and downsample (stride 1)
      conv_shape(n, 56, 56, 256, 64, 1, 1, 1, 0),
      // layer2, 56 -> 28
      conv_shape(n, 56, 56, 256, 128, 1, 1, 1, 0), conv_shape(n, 56, 56, 128, 128, 3, 3, 2, 1),
      conv_shape(n, 28, 28, 128, 512, 1, 1, 1, 0), conv_shape(n, 56, 56, 256, 512, 1, 1, 2, 0),
      conv_shape(n, 28, 28, 512, 128, 1, 1, 1, 0), conv_shape(n, 28, 28, 128, 128, 3, 3, 1, 1),
      // layer3, 28 -> 14
      conv_shape(n, 28, 28, 512, 256, 1, 1, 1, 0), conv_shape(n, 28, 28, 256, 256, 3, 3, 2, 1),
      conv_shape(n, 14, 14, 256, 1024, 1, 1, 1, 0), conv_shape(n, 28, 28, 512, 1024, 1, 1, 2, 0),
      conv_shape(n, 14, 14, 1024, 256, 1, 1, 1, 0), conv_shape(n, 14, 14, 256, 256, 3, 3, 1, 1),
      // layer4, 14 -> 7
      conv_shape(n, 14, 14, 1024, 512, 1, 1, 1, 0), conv_shape(n, 14, 14, 512, 512, 3, 3, 2, 1),
      conv_shape(n, 7, 7, 512, 2048, 1, 1, 1, 0), conv_shape(n, 14, 14, 1024, 2048, 1, 1, 2, 0),
      conv_shape(n, 7, 7, 2048, 512, 1, 1, 1, 0), conv_shape(n, 7, 7, 512, 512, 3, 3, 1, 1),
  };
}

}  // namespace hotlap::test
