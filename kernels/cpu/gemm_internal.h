// Shared between the two CPU GEMMs (kernels/cpu/gemm.cpp defines them): argument checks, and
// C = beta * C for the cases with nothing to multiply (k == 0 or alpha == 0).
#pragma once

#include "kernels/gemm.h"

namespace hotlap::kernels::cpu::detail {

void check_gemm_args(const GemmArgs& g, const char* op);
void scale_c(const GemmArgs& g);

}  // namespace hotlap::kernels::cpu::detail
