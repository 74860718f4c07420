// The CUDA kernels' workspace sizes: host arithmetic on their launch plans (batchnorm_math.h,
// elementwise_math.h), no CUDA header, so it is built with or without CUDA and a caller can size
// its memory the same way in both. The kernels lay their workspaces out from the same functions.
#include "kernels/batchnorm.h"
#include "kernels/cuda/batchnorm_math.h"
#include "kernels/cuda/elementwise_math.h"
#include "kernels/elementwise.h"

namespace hotlap::kernels::cuda {

size_t batchnorm_forward_train_workspace_bytes(const BatchNormShape& s) {
  return batchnorm_workspace_floats(s, kBnForwardTrainWorkspace) * sizeof(float);
}

size_t batchnorm_forward_eval_workspace_bytes(const BatchNormShape& s) {
  return batchnorm_workspace_floats(s, kBnForwardEvalWorkspace) * sizeof(float);
}

size_t batchnorm_backward_workspace_bytes(const BatchNormShape& s) {
  return batchnorm_workspace_floats(s, kBnBackwardWorkspace) * sizeof(float);
}

size_t batchnorm_backward_eval_workspace_bytes(const BatchNormShape& s) {
  return batchnorm_workspace_floats(s, kBnBackwardEvalWorkspace) * sizeof(float);
}

size_t loss_workspace_bytes(int64_t n) { return loss_workspace_doubles(n) * sizeof(double); }

}  // namespace hotlap::kernels::cuda
