// The small kernels the cuDNN backend needs around cuDNN's own calls (kernels/cudnn/
// elementwise.cu): cuDNN's legacy batch norm has no fp32 residual-add epilogue and no eval-mode
// backward; a bf16 convolution's fp32 bias, and its bf16 filter gradient added into fp32 weights'
// gradients, are done here too (mixed-type cudnnAddTensor / BackwardBias are not relied on), and
// the GEMM's degenerate case C = beta * C (cuBLAS with k == 0 is not relied on).
// Internal to kernels/cudnn; queued on the compute stream. bf16 is bfloat16, fp32 arithmetic.
#pragma once

#include <cstdint>

#include "kernels/cast.h"

namespace hotlap::kernels::cudnn::detail {

// y = y + residual (when not null), then ReLU when relu (NaN kept, as the CPU's and torch.relu:
// Relu::forward): in place over n floats.
void apply_epilogue(int64_t n, float* y, const float* residual, bool relu);

// Eval-mode batch norm backward, element-wise part, with a = gamma[j] / sqrt(running_var[j] + eps):
//   dx[i]      = dy[i] * a                                   (when dx is not null)
//   dy_xhat[i] = dy[i] * (x[i] - running_mean[j]) / sqrt(running_var[j] + eps)  (when not null)
// for the rows x c elements, j = i % c.
void batch_norm_eval_backward_elementwise(int64_t rows, int64_t c, const float* x, const float* dy,
                                         const float* gamma, const float* running_mean,
                                         const float* running_var, float eps, float* dx,
                                         float* dy_xhat);

void apply_epilogue(int64_t n, bfloat16* y, const bfloat16* residual, bool relu);
// bf16 dy, x, dx; dy_xhat stays fp32 (it is summed per channel next).
void batch_norm_eval_backward_elementwise(int64_t rows, int64_t c, const bfloat16* x,
                                              const bfloat16* dy, const float* gamma,
                                              const float* running_mean, const float* running_var,
                                              float eps, bfloat16* dx, float* dy_xhat);

// C = beta * C over the rows x cols matrix with row stride ld; beta == 0 writes zeros without
// reading C (BLAS's rule, and the CPU gemm's). The whole GEMM when k == 0 or alpha == 0.
void scale_matrix(int64_t rows, int64_t cols, int64_t ld, float beta, float* c);

// y[r, j] = bf16(y[r, j] + bias[j]) over rows x c.
void bias_add(int64_t rows, int64_t c, const float* bias, bfloat16* y);
// dbias[j] += sum over rows of dy[r, j] (fp32 per thread, double across threads).
void bias_backward(int64_t rows, int64_t c, const bfloat16* dy, float* dbias);
// y[i] += float(x[i]): a bf16 filter gradient into the fp32 weight gradient.
void accumulate_widened(int64_t n, const bfloat16* x, float* y);

}  // namespace hotlap::kernels::cudnn::detail
