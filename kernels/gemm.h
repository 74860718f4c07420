// GEMM and linear: the workhorse under convolution (im2col) and the fully connected layer.
//
// Row-major throughout: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where op(X) is X or X^T
// and lda/ldb/ldc are row strides in elements. 2*M*N*K FLOPs.
//
// Two CPU implementations, chosen at run time (env HOTLAP_GEMM=blocked|openblas, or set_cpu_gemm):
//   blocked  - hand-written, cache- and register-blocked (the teaching one; kernels/cpu/gemm_blocked.cpp)
//   openblas - cblas_sgemm (the yardstick, and the default when built with HOTLAP_BLAS)
//
// Test: hotlap_kernel_tests -tc='gemm*'; benchmark: hotlap_bench --benchmark_filter='gemm/'.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "kernels/cpu_isa.h"

namespace hotlap::kernels {

enum class CpuGemm { blocked, openblas };

// What a GEMM does to each value of C once the product is complete (its epilogue), so that a bias, a
// residual and a ReLU after the product cost no pass of their own over C:
//   C[i, j] = relu?( (C[i, j] + bias[j]) + residual[i * ldr + j] )
// with each addition rounded in that order, and the ReLU keeping NaN (as ops::relu): the result is
// bit-identical to the product followed by separate bias, add and ReLU passes. The hand-written GEMM
// applies it to each register tile as the last K block is stored, while the values are still in
// registers; OpenBLAS has no such hook, so gemm_openblas applies it in one pass afterwards. The
// residual must not overlap C.
struct GemmEpilogue {
  const float* bias = nullptr;      // [n]; null for none
  const float* residual = nullptr;  // [m, n], row stride ldr; null for none
  int64_t ldr = 0;
  bool relu = false;
  bool empty() const { return bias == nullptr && residual == nullptr && !relu; }
};

// Written with designated initializers, naming what each number is:
//   GemmArgs{.trans_b = true, .m = rows, .n = k, .k = depth, .a = x, .lda = depth, .b = w, .ldb = depth, ...}
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float beta = 0.0f;
  float* c = nullptr;
  int64_t ldc = 0;
  GemmEpilogue epilogue = {};  // none by default
};

// Linear layer shapes: x[rows, in] -> y[rows, out], weight[out, in] (PyTorch's layout), bias[out].
struct LinearShape {
  int64_t rows = 0, in = 0, out = 0;
};

// The linear layer's three products as GEMMs (row-major), the same for every backend. Leading
// dimensions are at least 1, as BLAS requires even for empty matrices.
//   forward:          y[rows, out]  = x[rows, in] * W[out, in]^T        (overwrites y)
//   backward data:    dx[rows, in]  = dy[rows, out] * W[out, in]        (overwrites dx)
//   backward weight:  dW[out, in]  += dy[rows, out]^T * x[rows, in]     (accumulates)
inline GemmArgs linear_forward_gemm(const LinearShape& s, const float* x, const float* w, float* y) {
  GemmArgs g;
  g.trans_b = true;
  g.m = s.rows, g.n = s.out, g.k = s.in;
  g.a = x, g.lda = s.in > 1 ? s.in : 1;
  g.b = w, g.ldb = s.in > 1 ? s.in : 1;
  g.c = y, g.ldc = s.out > 1 ? s.out : 1;
  return g;
}
inline GemmArgs linear_backward_data_gemm(const LinearShape& s, const float* dy, const float* w, float* dx) {
  GemmArgs g;
  g.m = s.rows, g.n = s.in, g.k = s.out;
  g.a = dy, g.lda = s.out > 1 ? s.out : 1;
  g.b = w, g.ldb = s.in > 1 ? s.in : 1;
  g.c = dx, g.ldc = s.in > 1 ? s.in : 1;
  return g;
}
inline GemmArgs linear_backward_weight_gemm(const LinearShape& s, const float* dy, const float* x, float* dw) {
  GemmArgs g;
  g.trans_a = true;
  g.m = s.out, g.n = s.in, g.k = s.rows;
  g.a = dy, g.lda = s.out > 1 ? s.out : 1;
  g.b = x, g.ldb = s.in > 1 ? s.in : 1;
  g.beta = 1.0f;
  g.c = dw, g.ldc = s.in > 1 ? s.in : 1;
  return g;
}

namespace cpu {

// Which implementation gemm() uses: env HOTLAP_GEMM=blocked|openblas or set_cpu_gemm when given,
// else (HOTLAP_GEMM unset or auto) default_cpu_gemm().
CpuGemm cpu_gemm_impl();
void set_cpu_gemm(CpuGemm impl);
bool openblas_available();
// The CPU OpenBLAS chose its kernels for ("Cooperlake", "Haswell", ...), "" without OpenBLAS. It
// picks them itself when it is loaded, ignoring HOTLAP_CPU_ISA; OPENBLAS_CORETYPE=Haswell (set before
// hotlap starts) makes it run its AVX2 kernels.
std::string openblas_core();
// The level of the kernels OpenBLAS runs under the core name `core` (case ignored): avx512 for
// SkylakeX, Cooperlake and SapphireRapids; avx2 for Haswell, Zen and Excavator; baseline for the
// older x86 cores (Prescott, Sandybridge, ...). nullopt for a name not in that list (another
// architecture's, or a core newer than this list): nothing is then assumed about it.
std::optional<CpuIsa> openblas_core_isa(const std::string& core);
// Whether OpenBLAS's kernels under `core` are known to be below `level`.
bool openblas_below(const std::string& core, CpuIsa level);
// The GEMM when none was chosen: OpenBLAS where it is compiled in, unless its kernels are known to be
// below the active level, and then the hand-written GEMM. An OpenBLAS older than the CPU does not
// know it and falls back to its oldest x86-64 kernels: Debian 12's 0.3.21 runs Prescott's (SSE3) on
// an Intel Xeon of model 207 (Emerald Rapids), where ResNet-50 then took 2.7x as long at batch 1
// (bench/NOTES.md). OPENBLAS_CORETYPE=SkylakeX (or Haswell), set before hotlap starts, makes
// OpenBLAS run the right ones; `hotlap info` says which it runs.
CpuGemm default_cpu_gemm();
const char* cpu_gemm_name(CpuGemm impl);

void gemm(const GemmArgs& args);                // dispatches on cpu_gemm_impl()
// A convolution's GEMM (im2col, 1x1 or Winograd's): on the GEMM kernels/choice.h's choose_conv_gemm
// picks for its shape class (one_by_one: a 1x1 convolution's).
void conv_gemm(const GemmArgs& args, bool one_by_one);
void gemm_blocked(const GemmArgs& args);        // hand-written
void gemm_openblas(const GemmArgs& args);       // throws when not compiled in

// The hand-written GEMM's micro-kernel ("avx512" 12x32, "avx2" 6x16 or "generic" 4x16) is the best
// the active instruction-set level allows (kernels/cpu_isa.h: the CPU's best, or HOTLAP_CPU_ISA's).
// use_kernel pins one (tests run every kernel the level allows); nullptr returns to the best; a
// kernel above the active level or an unknown name returns false and changes nothing.
const char* gemm_blocked_kernel_name();
bool gemm_blocked_use_kernel(const char* name);

// y = x W^T + b (b may be null).
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y);
// dx = dy W (dx may be null); dW += dy^T x; db += sum over rows of dy (db may be null).
void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db);

}  // namespace cpu
}  // namespace hotlap::kernels
