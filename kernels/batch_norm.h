// Batch normalisation over NHWC activations: statistics per channel over the N*H*W rows.
//
//   training: mean, biased var over the batch; y = (x - mean) * invstd * gamma + beta,
//             running = (1 - momentum) * running + momentum * stat, with the UNBIASED variance
//             (rows / (rows - 1)), as PyTorch does.
//   eval:     the same with the running statistics.
// Statistics accumulate in double on the CPU (fp32 at least everywhere, design rule 3).
// Memory-bound: training forward reads x twice and writes y once.
//
// Every entry point has a bf16 twin (*_bf16): x, y, dy, dx and the epilogue's residual are bf16
// (bfloat16, kernels/cast.h); gamma, beta, the running and saved statistics, dgamma and dbeta
// stay fp32, and every sum is fp32 or wider. Outputs are rounded to bf16 once, on store.
//
// Test: hotlap_kernel_tests -tc='*batch_norm*'; benchmark: hotlap_bench --benchmark_filter='ops/batch_norm|gpu_bn/'.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cast.h"

namespace hotlap::kernels {

struct BatchNormShape {
  int64_t rows = 0;  // N*H*W
  int64_t c = 0;     // channels
};

// What follows every batch norm in a ResNet, done in the same pass over the output:
//   y = bn(x) [+ residual] [then max(., 0)]
// The fused forms save a pass over memory and, in training, a saved activation: the backward pass
// needs only the final y (for the ReLU mask), not the batch norm's own output.
// T: the activations' storage type (float, or bfloat16 for bf16).
template <typename T>
struct BatchNormEpilogueOf {
  const T* residual = nullptr;  // [rows, c], added before the ReLU; null for none
  bool relu = false;
};
using BatchNormEpilogue = BatchNormEpilogueOf<float>;
using BatchNormEpilogueBf16 = BatchNormEpilogueOf<bfloat16>;

namespace cpu {

// save_mean/save_invstd [c] receive the batch statistics the backward pass needs.
// running_mean/running_var may be null (no running-stat update).
void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             const BatchNormEpilogue& epilogue = {});
// y may be x (in place: each element is read before it is written, by the same thread).
void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, const BatchNormEpilogue& epilogue = {});
// Training-mode backward. dx is overwritten; dgamma, dbeta are accumulated (+=).
void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                        float* dbeta);

// Eval-mode backward (running statistics, so an affine map per channel: y = x * a + b with
// a = gamma / sqrt(running_var + eps)). dx (may be null) is overwritten; dgamma, dbeta (may be
// null) are accumulated. Used when a model is fine-tuned with frozen batch-norm statistics.
void batch_norm_backward_eval(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                             const float* running_mean, const float* running_var, float eps, float* dx,
                             float* dgamma, float* dbeta);

// bf16 activations: an emulation (kernels/cpu/bf16_emulation.h): the fp32 kernel on widened
// inputs, its outputs rounded to bf16. For correctness and tests, not speed.
void batch_norm_forward_train(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                  const float* beta, float eps, float momentum, float* running_mean,
                                  float* running_var, bfloat16* y, float* save_mean,
                                  float* save_invstd, const BatchNormEpilogueBf16& epilogue = {});
void batch_norm_forward_eval(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                 const float* beta, const float* running_mean,
                                 const float* running_var, float eps, bfloat16* y,
                                 const BatchNormEpilogueBf16& epilogue = {});
void batch_norm_backward(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                             const float* gamma, const float* save_mean, const float* save_invstd,
                             bfloat16* dx, float* dgamma, float* dbeta);
void batch_norm_backward_eval(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                                  const float* gamma, const float* running_mean,
                                  const float* running_var, float eps, bfloat16* dx, float* dgamma,
                                  float* dbeta);

}  // namespace cpu

// The same contracts on the GPU (kernels/cuda/batch_norm.cu): every pointer is device memory, the
// work is queued on the compute stream (kernels/cuda_memory.h) and the call returns before it is
// done. Same shape checks (thrown at once); in a build without CUDA each throws "built without
// CUDA". Deterministic. Eval-mode results (y, and dx of the eval backward) are the CPU's to the
// bit; training-mode results, whose statistics are summed in another order, match the CPU's to
// fp32 rounding (about 1e-6 relative). (No fused multiply-adds on either side: CMakeLists.txt.)
//
// Each call also takes a workspace, device memory the caller owns (a block from its caching
// allocator, say), for the channel reduction's partial sums and the per-channel coefficients:
// `workspace_bytes` at `workspace`, at least what the matching *_workspace_bytes query gives for
// the shape, 256-byte aligned (kernels/cuda/launch.h). A smaller, null or misaligned workspace
// throws. The queries are host arithmetic on the launch plan, exact, 0 for an empty shape, and
// give the same numbers in a build without CUDA. For ResNet-50 every one stays under 1 MiB at
// batch 64; the workspace may be reused by the next op on the compute stream at once.
namespace cuda {

size_t batch_norm_forward_train_workspace_bytes(const BatchNormShape& s);
size_t batch_norm_forward_eval_workspace_bytes(const BatchNormShape& s);
size_t batch_norm_backward_workspace_bytes(const BatchNormShape& s);
size_t batch_norm_backward_eval_workspace_bytes(const BatchNormShape& s);

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             const BatchNormEpilogue& epilogue, void* workspace,
                             size_t workspace_bytes);
void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, const BatchNormEpilogue& epilogue,
                            void* workspace, size_t workspace_bytes);
void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                        float* dbeta, void* workspace, size_t workspace_bytes);
void batch_norm_backward_eval(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                             const float* running_mean, const float* running_var, float eps, float* dx,
                             float* dgamma, float* dbeta, void* workspace, size_t workspace_bytes);

// bf16 activations, the same kernels templated on the storage type (fp32 arithmetic); the same
// workspaces (the *_workspace_bytes queries hold for both).
void batch_norm_forward_train(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                  const float* beta, float eps, float momentum, float* running_mean,
                                  float* running_var, bfloat16* y, float* save_mean,
                                  float* save_invstd, const BatchNormEpilogueBf16& epilogue,
                                  void* workspace, size_t workspace_bytes);
void batch_norm_forward_eval(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                 const float* beta, const float* running_mean,
                                 const float* running_var, float eps, bfloat16* y,
                                 const BatchNormEpilogueBf16& epilogue, void* workspace,
                                 size_t workspace_bytes);
void batch_norm_backward(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                             const float* gamma, const float* save_mean, const float* save_invstd,
                             bfloat16* dx, float* dgamma, float* dbeta, void* workspace,
                             size_t workspace_bytes);
void batch_norm_backward_eval(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                                  const float* gamma, const float* running_mean,
                                  const float* running_var, float eps, bfloat16* dx, float* dgamma,
                                  float* dbeta, void* workspace, size_t workspace_bytes);

}  // namespace cuda
}  // namespace hotlap::kernels
