// Batch normalisation over NHWC activations: statistics per channel over the N*H*W rows.
//
//   training: mean, biased var over the batch; y = (x - mean) * invstd * gamma + beta,
//             running = (1 - momentum) * running + momentum * stat, with the UNBIASED variance
//             (rows / (rows - 1)), as PyTorch does.
//   eval:     the same with the running statistics.
// Statistics accumulate in double on the CPU (fp32 at least everywhere, design rule 3).
// Memory-bound: training forward reads x twice and writes y once.
#pragma once

#include <cstdint>

namespace hotlap::kernels {

struct BatchNormShape {
  int64_t rows = 0;  // N*H*W
  int64_t c = 0;     // channels
};

// What follows every batch norm in a ResNet, done in the same pass over the output:
//   y = bn(x) [+ residual] [then max(., 0)]
// The fused forms save a pass over memory and, in training, a saved activation: the backward pass
// needs only the final y (for the ReLU mask), not the batch norm's own output.
struct BatchNormEpilogue {
  const float* residual = nullptr;  // [rows, c], added before the ReLU; null for none
  bool relu = false;
};

namespace cpu {

// save_mean/save_invstd [c] receive the batch statistics the backward pass needs.
// running_mean/running_var may be null (no running-stat update).
void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             const BatchNormEpilogue& epilogue = {});
void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, const BatchNormEpilogue& epilogue = {});
// Training-mode backward. dx is overwritten; dgamma, dbeta are accumulated (+=).
void batchnorm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                        float* dbeta);

// Eval-mode backward (running statistics, so an affine map per channel: y = x * a + b with
// a = gamma / sqrt(running_var + eps)). dx (may be null) is overwritten; dgamma, dbeta (may be
// null) are accumulated. Used when a model is fine-tuned with frozen batch-norm statistics.
void batchnorm_backward_eval(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                             const float* running_mean, const float* running_var, float eps, float* dx,
                             float* dgamma, float* dbeta);

}  // namespace cpu
}  // namespace hotlap::kernels
