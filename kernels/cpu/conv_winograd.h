// Winograd convolution for 3x3 stride-1 pad-1 layers, NHWC/OHWI: the internal interface
// between the convolution front door (kernels/cpu/conv.cpp, which picks the algorithm per shape) and
// the kernel (kernels/cpu/conv_winograd.cpp, which explains the algorithm and its costs).
#pragma once

#include <cstdint>

#include "kernels/conv.h"

namespace hotlap::kernels::cpu::winograd {

// Scratch floats of a Winograd pass (the transformed weights, then per OpenMP worker the transformed
// input and the GEMM results of one block of tiles). Forward and backward data need the same
// amount. Depends on omp_get_max_threads(), like the im2col workspace.
int64_t workspace_floats(const ConvShape& s);

// y = conv(x, w) through the epilogue (kernels/conv.h), applied as each output tile is written;
// s must satisfy winograd_supported(s).
void forward(const ConvShape& s, const float* x, const float* w, const ConvEpilogue& epilogue, float* y,
             float* workspace);
// dx = conv_transpose(dy, w): a 3x3 pad-1 convolution of dy with w rotated by 180 degrees and its
// input and output channels swapped.
void backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, float* workspace);

}  // namespace hotlap::kernels::cpu::winograd
