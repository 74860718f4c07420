// The direct convolution: the definition as loops (kernels/cpu/conv_direct.cpp). What
// HOTLAP_REFERENCE=1 runs, to step through and to check the fast paths against.
#pragma once

#include "kernels/conv.h"

namespace hotlap::kernels::cpu::direct {

void forward(const ConvShape& s, const float* x, const float* w, const ConvEpilogue& epilogue, float* y);
void backward_data(const ConvShape& s, const float* dy, const float* w, float* dx);
void backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, float* dbias);

}  // namespace hotlap::kernels::cpu::direct
