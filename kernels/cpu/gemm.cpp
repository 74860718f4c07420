// CPU GEMM front door: argument checks, the run-time choice between the hand-written GEMM and
// OpenBLAS, and the linear layer on top of GEMM.
//
// Linear layer (x[rows, in], W[out, in], y[rows, out]) is three GEMMs:
//   forward          y  = x W^T (+ b per row)       2*rows*in*out FLOPs
//   backward data    dx = dy W                      2*rows*in*out FLOPs
//   backward filter  dW += dy^T x, db += colsum(dy)  2*rows*in*out FLOPs
// For ResNet-50's classifier (batch 16, 2048 -> 1): tiny and memory-bound (reading W and x);
// for a 2048 -> 1000 head it is 2*16*2048*1000 = 66 MFLOP over 8 MiB of weights: memory-bound too,
// since rows is small. The GEMMs themselves run against the FMA limit when all three sizes are large.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <omp.h>

#include "kernels/choice.h"
#include "kernels/cpu/gemm_internal.h"
#include "kernels/cpu/isa_dispatch.h"
#include "kernels/error.h"
#include "kernels/gemm.h"

#ifdef HOTLAP_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace hotlap::kernels::cpu {

// The implementation choice (cpu_gemm_impl, set_cpu_gemm) is kernels/choice.cpp's, with every other setting.

bool openblas_available() {
#ifdef HOTLAP_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

std::string openblas_core() {
#ifdef HOTLAP_HAVE_OPENBLAS
  const char* name = openblas_get_corename();
  return name != nullptr ? name : "";
#else
  return "";
#endif
}

const char* cpu_gemm_name(CpuGemm impl) {
  switch (impl) {
    case CpuGemm::blocked: return "blocked";
    case CpuGemm::openblas: return "openblas";
  }
  return "unknown";
}

// ---- checks shared with gemm_blocked.cpp ---------------------------------------------------------

namespace detail {

void check_gemm_args(const GemmArgs& g, const char* op) {
  HOTLAP_CHECK(g.m >= 0 && g.n >= 0 && g.k >= 0, op, ": negative size m=", g.m, " n=", g.n,
               " k=", g.k);
  // op(A) is [m, k]; stored as [m, k] (lda >= k) or, transposed, as [k, m] (lda >= m). Same for B.
  const int64_t a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
  const int64_t b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
  HOTLAP_CHECK(g.lda >= a_cols, op, ": lda=", g.lda, " < ", a_cols, " (A is ", a_rows, "x", a_cols,
               g.trans_a ? ", transposed" : "", ", m=", g.m, " k=", g.k, ")");
  HOTLAP_CHECK(g.ldb >= b_cols, op, ": ldb=", g.ldb, " < ", b_cols, " (B is ", b_rows, "x", b_cols,
               g.trans_b ? ", transposed" : "", ", k=", g.k, " n=", g.n, ")");
  HOTLAP_CHECK(g.ldc >= g.n, op, ": ldc=", g.ldc, " < n=", g.n, " (C is ", g.m, "x", g.n, ")");
  const bool reads_ab = g.m > 0 && g.n > 0 && g.k > 0 && g.alpha != 0.0f;
  HOTLAP_CHECK(!reads_ab || (g.a != nullptr && g.b != nullptr), op, ": null A or B for m=", g.m,
               " n=", g.n, " k=", g.k);
  HOTLAP_CHECK(g.c != nullptr || g.m == 0 || g.n == 0, op, ": null C for m=", g.m, " n=", g.n);
  HOTLAP_CHECK(g.epilogue.residual == nullptr || g.epilogue.ldr >= g.n, op, ": epilogue residual row stride ",
               g.epilogue.ldr, " < n=", g.n);
}

// C = beta * C (beta == 0 writes zeros without reading C): the whole GEMM when k == 0 or alpha == 0.
void scale_c(const GemmArgs& g) {
#pragma omp parallel for if (g.m * g.n > (1 << 16))
  for (int64_t i = 0; i < g.m; ++i) {
    float* ci = g.c + i * g.ldc;
    if (g.beta == 0.0f) {
      for (int64_t j = 0; j < g.n; ++j) ci[j] = 0.0f;
    } else if (g.beta != 1.0f) {
      for (int64_t j = 0; j < g.n; ++j) ci[j] *= g.beta;
    }
  }
}

// One row of C through the epilogue: the bias, then the residual, then the ReLU (NaN stays NaN).
__attribute__((always_inline)) inline void epilogue_row_body(int64_t n, float* c, const float* bias,
                                                             const float* residual, bool relu) {
  if (bias != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) c[j] += bias[j];
  }
  if (residual != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) c[j] += residual[j];
  }
  if (relu) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) c[j] = (c[j] > 0.0f || std::isnan(c[j])) ? c[j] : 0.0f;
  }
}

void add_column_sums(int64_t rows, int64_t cols, const float* x, float* sums) {
  if (rows <= 0 || cols <= 0) return;
  constexpr int kShares = 4;  // the same on any machine: it sets the order of the sums
  const int shares = rows * cols > (1 << 15) ? kShares : 1;
  std::vector<float> partial(size_t(shares) * size_t(cols), 0.0f);
#pragma omp parallel for schedule(static) if (shares > 1 && !omp_in_parallel())
  for (int share = 0; share < shares; ++share) {
    float* acc = partial.data() + size_t(share) * size_t(cols);
    for (int64_t i = rows * share / shares; i < rows * (share + 1) / shares; ++i) {
      const float* xi = x + i * cols;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) acc[j] += xi[j];
    }
  }
  for (int share = 0; share < shares; ++share)
    for (int64_t j = 0; j < cols; ++j) sums[j] += partial[size_t(share) * size_t(cols) + j];
}

void epilogue_row(int64_t n, float* c, const float* bias, const float* residual, bool relu) {
  epilogue_row_body(n, c, bias, residual, relu);
}

void apply_epilogue(const GemmArgs& g) {
  const GemmEpilogue& ep = g.epilogue;
  if (ep.empty() || g.m == 0 || g.n == 0) return;
  const auto row = built_for_active_cpu_isa<epilogue_row_body>();
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && g.m * g.n > (1 << 15))
  for (int64_t i = 0; i < g.m; ++i)
    row(g.n, g.c + i * g.ldc, ep.bias, ep.residual != nullptr ? ep.residual + i * ep.ldr : nullptr, ep.relu);
}

}  // namespace detail

// ---- GEMM ------------------------------------------------------------------------------------------

void gemm(const GemmArgs& args) {
  if (cpu_gemm_impl() == CpuGemm::openblas)
    gemm_openblas(args);
  else
    gemm_blocked(args);
}

void conv_gemm(const GemmArgs& args, bool one_by_one) {
  if (choose_conv_gemm(args, one_by_one) == CpuGemm::blocked)
    gemm_blocked(args);
  else
    gemm(args);
}

void gemm_openblas(const GemmArgs& g) {
#ifdef HOTLAP_HAVE_OPENBLAS
  detail::check_gemm_args(g, "gemm_openblas");
  if (g.m == 0 || g.n == 0) return;
  // cblas_sgemm insists on ld >= max(1, cols) even when there is nothing to read, and 32-bit sizes;
  // the degenerate cases are done here so every call that reaches it is an ordinary one.
  if (g.k == 0 || g.alpha == 0.0f) {
    detail::scale_c(g);
    detail::apply_epilogue(g);
    return;
  }
  for (int64_t v : {g.m, g.n, g.k, g.lda, g.ldb, g.ldc})
    HOTLAP_CHECK(v <= INT_MAX, "gemm_openblas: size ", v, " does not fit OpenBLAS's 32-bit int (m=",
                 g.m, " n=", g.n, " k=", g.k, "); use HOTLAP_GEMM=blocked");
  // C's block [i0, i1) x [j0, j1), by one cblas_sgemm call.
  auto block = [&g](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const float* a = g.trans_a ? g.a + i0 : g.a + i0 * g.lda;  // A is m x k, or k x m when transposed
    const float* b = g.trans_b ? g.b + j0 * g.ldb : g.b + j0;  // B is k x n, or n x k
    cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans,
                int(i1 - i0), int(j1 - j0), int(g.k), g.alpha, a, int(g.lda), b, int(g.ldb), g.beta,
                g.c + i0 * g.ldc + j0, int(g.ldc));
  };
  // OpenBLAS's own threads give sums that depend on how many of them there are (its threaded and
  // one-thread paths add in different orders: OpenBLAS 0.3.21 on an AMD EPYC, every shape tried
  // differed between 1 and 2, 3 or 5 threads), and hotlap's results must not depend on the thread
  // count (the adaptive count changes it as the machine gets busy). So OpenBLAS always runs on one
  // thread: inside a parallel region its OpenMP build stays on one thread anyway; outside, C is cut
  // into blocks fixed by the shape alone (at least 96 rows and 256 columns each, 64 at most), shared
  // out over OpenMP's threads, one single-threaded call each; one block is one call with this
  // thread's OpenMP count set to 1 for it (OpenBLAS takes its thread count from there).
  constexpr int64_t kRows = 96, kCols = 256;
  const int64_t row_blocks = std::max<int64_t>(1, std::min<int64_t>(g.m / kRows, 64));
  const int64_t col_blocks = std::max<int64_t>(1, std::min<int64_t>(g.n / kCols, 64 / row_blocks));
  const int64_t blocks = row_blocks * col_blocks;
  if (omp_in_parallel()) {
    block(0, g.m, 0, g.n);
  } else if (blocks == 1) {
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    block(0, g.m, 0, g.n);
    omp_set_num_threads(threads);
  } else {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t bi = 0; bi < blocks; ++bi) {
      const int64_t r = bi / col_blocks, q = bi % col_blocks;
      block(g.m * r / row_blocks, g.m * (r + 1) / row_blocks, g.n * q / col_blocks, g.n * (q + 1) / col_blocks);
    }
  }
  detail::apply_epilogue(g);
#else
  (void)g;
  throw_error("gemm_openblas: this build has no OpenBLAS (configure with -DHOTLAP_BLAS=ON, or use "
              "HOTLAP_GEMM=blocked)");
#endif
}

// ---- linear layer ----------------------------------------------------------------------------------

namespace {

void check_linear(const LinearShape& s, const char* op) {
  HOTLAP_CHECK(s.rows >= 0 && s.in >= 0 && s.out >= 0, op, ": negative shape rows=", s.rows,
               " in=", s.in, " out=", s.out);
}

}  // namespace

void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  check_linear(s, "linear_forward");
  GemmArgs g = linear_forward_gemm(s, x, w, y);
  g.epilogue.bias = b;
  gemm(g);
}

void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db) {
  check_linear(s, "linear_backward");
  if (dx != nullptr) gemm(linear_backward_data_gemm(s, dy, w, dx));
  if (dw != nullptr) gemm(linear_backward_weight_gemm(s, dy, x, dw));
  if (db != nullptr && s.out > 0) detail::add_column_sums(s.rows, s.out, dy, db);
}

}  // namespace hotlap::kernels::cpu
