// GEMM and the linear layer on cuBLAS: cublasSgemm for C = alpha op(A) op(B) + beta C in hotlap's
// row-major convention (mapped to cuBLAS's column-major one by column_major_gemm in kernels/cudnn.h:
// C^T = op(B)^T op(A)^T, no copies), cudnnAddTensor for the linear layer's bias and
// cudnnConvolutionBackwardBias for its gradient (a per-column sum over the rows). 2*M*N*K FLOPs;
// the yardstick for every GEMM-shaped kernel.
//
// Math mode: MathMode::fp32 is CUBLAS_DEFAULT_MATH (fp32 FMA; cuBLAS uses TF32 there only when the
// environment sets NVIDIA_TF32_OVERRIDE=1), MathMode::tf32 is CUBLAS_TF32_TENSOR_OP_MATH. Set on
// the handle before each call (a host-side flag, no GPU work).
//
// Determinism: cuBLAS gives bit-identical results run to run on one GPU model when its calls come
// on one stream, as here (cuBLAS's documented reproducibility rule).
#include <algorithm>
#include <limits>

#include "kernels/cudnn.h"
#include "kernels/cudnn/check.h"
#include "kernels/cudnn/descriptors.h"
#include "kernels/cudnn/elementwise.h"
#include "kernels/error.h"

namespace hotlap::kernels::cudnn {

namespace {

void check_gemm_args(const GemmArgs& g, const char* op) {
  HOTLAP_CHECK(g.m >= 0 && g.n >= 0 && g.k >= 0, op, ": negative size m=", g.m, " n=", g.n,
               " k=", g.k);
  const int64_t a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
  const int64_t b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
  HOTLAP_CHECK(g.lda >= a_cols, op, ": lda=", g.lda, " < ", a_cols, " (A is ",
               a_rows, "x", a_cols, g.trans_a ? ", transposed" : "", ", m=", g.m, " k=", g.k, ")");
  HOTLAP_CHECK(g.ldb >= b_cols, op, ": ldb=", g.ldb, " < ", b_cols, " (B is ",
               b_rows, "x", b_cols, g.trans_b ? ", transposed" : "", ", k=", g.k, " n=", g.n, ")");
  HOTLAP_CHECK(g.ldc >= g.n, op, ": ldc=", g.ldc, " < n=", g.n, " (C is ",
               g.m, "x", g.n, ")");
  const bool reads_ab = g.m > 0 && g.n > 0 && g.k > 0 && g.alpha != 0.0f;
  HOTLAP_CHECK(!reads_ab || (g.a != nullptr && g.b != nullptr), op, ": null A or B for m=", g.m,
               " n=", g.n, " k=", g.k);
  HOTLAP_CHECK(g.c != nullptr || g.m == 0 || g.n == 0, op, ": null C for m=", g.m, " n=", g.n);
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  HOTLAP_CHECK(g.m <= kMax && g.n <= kMax && g.k <= kMax && g.lda <= kMax && g.ldb <= kMax &&
                   g.ldc <= kMax,
               op, ": m=", g.m, " n=", g.n, " k=", g.k, " lda=", g.lda, " ldb=", g.ldb,
               " ldc=", g.ldc, " do not all fit cuBLAS's int arguments");
}

const float kOne = 1.0f;

}  // namespace

void gemm(const GemmArgs& args) {
  const char* op = "cudnn::gemm";
  check_gemm_args(args, op);
  if (args.m == 0 || args.n == 0) return;
  // k == 0 or alpha == 0: C = beta * C, and with beta == 0 zeros written without reading C, as the
  // CPU gemm and the reference BLAS do. Done here rather than by cuBLAS: its documentation does not
  // promise it for k == 0, and some versions' batched GEMMs have left C as it was there.
  if (args.k == 0 || args.alpha == 0.0f)
    return detail::scale_matrix(args.m, args.n, args.ldc, args.beta, args.c);
  const ColumnMajorGemm g = column_major_gemm(args);
  // cuBLAS wants every leading dimension >= 1, even for a matrix with no columns.
  const auto ld = [](int64_t v) { return static_cast<int>(std::max<int64_t>(v, 1)); };
  cublasHandle_t h = cublas_handle();
  const cublasMath_t math =
      math_mode() == MathMode::tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
  HOTLAP_CUBLAS_CHECK(cublasSetMathMode(h, math), op, " setting math mode ",
                      math_mode_name(math_mode()));
  HOTLAP_CUBLAS_CHECK(
      cublasSgemm(h, g.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N,
                  g.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(g.m),
                  static_cast<int>(g.n), static_cast<int>(g.k), &g.alpha, g.first,
                  ld(g.ld_first), g.second, ld(g.ld_second), &g.beta,
                  g.c, ld(g.ldc)),
      op, " m=", args.m, " n=", args.n, " k=", args.k, args.trans_a ? " A^T" : "",
      args.trans_b ? " B^T" : "", " lda=", args.lda, " ldb=", args.ldb, " ldc=", args.ldc);
}

void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  const char* op = "cudnn::linear_forward";
  HOTLAP_CHECK(s.rows >= 0 && s.in >= 0 && s.out >= 0, op, ": bad shape rows=", s.rows,
               " in=", s.in, " out=", s.out);
  if (s.rows == 0 || s.out == 0) return;
  gemm(linear_forward_gemm(s, x, w, y));
  if (b == nullptr) return;
  TensorDesc y_desc, b_desc;
  y_desc.set_nhwc(s.rows, s.out, 1, 1, op);
  b_desc.set_nhwc(1, s.out, 1, 1, op);
  HOTLAP_CUDNN_CHECK(cudnnAddTensor(cudnn_handle(), &kOne, b_desc.get(), b, &kOne, y_desc.get(), y),
                     op, " bias rows=", s.rows, " out=", s.out);
}

void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db) {
  const char* op = "cudnn::linear_backward";
  HOTLAP_CHECK(s.rows >= 0 && s.in >= 0 && s.out >= 0, op, ": bad shape rows=", s.rows,
               " in=", s.in, " out=", s.out);
  if (dx != nullptr && s.rows > 0 && s.in > 0) gemm(linear_backward_data_gemm(s, dy, w, dx));
  if (dw != nullptr && s.out > 0 && s.in > 0) gemm(linear_backward_weight_gemm(s, dy, x, dw));
  if (db != nullptr && s.rows > 0 && s.out > 0) {  // db += sum over rows of dy
    TensorDesc dy_desc, db_desc;
    dy_desc.set_nhwc(s.rows, s.out, 1, 1, op);
    db_desc.set_nhwc(1, s.out, 1, 1, op);
    HOTLAP_CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn_handle(), &kOne, dy_desc.get(), dy, &kOne,
                                                    db_desc.get(), db),
                       op, " bias gradient rows=", s.rows, " out=", s.out);
  }
}

}  // namespace hotlap::kernels::cudnn
