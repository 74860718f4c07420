// The two small kernels the cuDNN batch norm needs around cuDNN's own calls (kernels/cudnn/
// elementwise.cu): cuDNN's legacy batch norm has no fp32 residual-add epilogue and no eval-mode
// backward. Internal to kernels/cudnn; queued on the compute stream.
#pragma once

#include <cstdint>

namespace hotlap::kernels::cudnn::detail {

// y = y + residual (when not null), then max(y, 0) when relu: in place over n floats.
void apply_epilogue(int64_t n, float* y, const float* residual, bool relu);

// Eval-mode batch norm backward, element-wise part, with a = gamma[j] / sqrt(running_var[j] + eps):
//   dx[i]      = dy[i] * a                                   (when dx is not null)
//   dy_xhat[i] = dy[i] * (x[i] - running_mean[j]) / sqrt(running_var[j] + eps)  (when not null)
// for the rows x c elements, j = i % c.
void batchnorm_eval_backward_elementwise(int64_t rows, int64_t c, const float* x, const float* dy,
                                         const float* gamma, const float* running_mean,
                                         const float* running_var, float eps, float* dx,
                                         float* dy_xhat);

}  // namespace hotlap::kernels::cudnn::detail
