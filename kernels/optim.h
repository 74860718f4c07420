// Optimizer updates, one fused pass over a parameter, its gradient and its state.
// Same semantics as torch.optim.SGD and torch.optim.AdamW (decoupled weight decay).
//
// Test: hotlap_kernel_tests -tc='optim*,cuda optimizers*'.
#pragma once

#include <cstdint>

namespace hotlap::kernels {

struct SgdArgs {
  float lr = 0.01f, momentum = 0.0f, dampening = 0.0f, weight_decay = 0.0f;
  bool nesterov = false;
  bool first_step = true;  // momentum buffer starts as the gradient itself (PyTorch)
};

struct AdamWArgs {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 1e-2f;
  int64_t step = 1;  // 1-based, for bias correction
};

// The argument checks every backend makes, so all refuse the same arguments with the same words;
// `op` starts each message ("sgd_update", "cuda::sgd_update").
void check_sgd_args(const char* op, const SgdArgs& a, int64_t n, const float* momentum_buf);
void check_adamw_args(const char* op, const AdamWArgs& a, int64_t n);

namespace cpu {

// p -= lr * (momentum-filtered (g + wd*p)). momentum_buf may be null when momentum == 0.
void sgd_update(const SgdArgs& a, int64_t n, float* p, const float* g, float* momentum_buf);
// p = p*(1 - lr*wd) - lr * mhat / (sqrt(vhat) + eps).
void adamw_update(const AdamWArgs& a, int64_t n, float* p, const float* g, float* m, float* v);

}  // namespace cpu

// The same updates on the GPU (kernels/cuda/optim.cu): device pointers, queued on the compute
// stream; in a build without CUDA each throws. Same checks, same order of fp32 operations as the
// CPU (agreement to about an ulp a step: the GPU may fuse multiply-adds).
namespace cuda {
void sgd_update(const SgdArgs& a, int64_t n, float* p, const float* g, float* momentum_buf);
void adamw_update(const AdamWArgs& a, int64_t n, float* p, const float* g, float* m, float* v);
}  // namespace cuda
}  // namespace hotlap::kernels
