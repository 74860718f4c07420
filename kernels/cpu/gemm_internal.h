// Shared between the two CPU GEMMs (kernels/cpu/gemm.cpp defines them): argument checks, C = beta * C
// for the cases with nothing to multiply (k == 0 or alpha == 0), and the epilogue as a pass of its own.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"

namespace hotlap::kernels::cpu::detail {

void check_gemm_args(const GemmArgs& g, const char* op);
void scale_c(const GemmArgs& g);
// C = the epilogue of C (g.epilogue; nothing when it is empty), in one pass: for the GEMMs that
// cannot apply it as they store C (OpenBLAS, and the k == 0 cases).
void apply_epilogue(const GemmArgs& g);
// sums[j] += the sum over the rows of x[rows, cols] (a bias's gradient): in a fixed number of row
// shares set by the size alone, summed in share order, so the bits do not depend on the thread count.
void add_column_sums(int64_t rows, int64_t cols, const float* x, float* sums);
// One row of n values of C through the epilogue (bias and residual already at the row's first column).
void epilogue_row(int64_t n, float* c, const float* bias, const float* residual, bool relu);

}  // namespace hotlap::kernels::cpu::detail
