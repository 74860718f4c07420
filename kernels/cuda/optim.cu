// Optimizer updates on the GPU: SGD (momentum, dampening, Nesterov, L2 weight decay) and AdamW, one
// fused grid-stride pass over a parameter, its gradient and its state, a thread per element.
//
// The arithmetic is the CPU kernel's (kernels/cpu/optim.cpp), shared through kernels/optim_math.h: scalar
// factors formed once on the host in double, then the same fp32 operations in the same order. This
// file is built with -fmad=false and the CPU's with -ffp-contract=off (CMakeLists.txt): no multiply
// and add fused into one FMA on either side, and sqrtf and the division are IEEE-rounded (nvcc's
// default without --use_fast_math), so the updates are the CPU's to the bit, step after step.
//
// ResNet-50's 25.6M parameters: AdamW reads p, g, m, v and writes p, m, v: 28 bytes an element,
// 717 MB a step, ~12 FLOPs an element (0.3 GFLOP): memory-bound, 214 us at 3.35 TB/s; SGD with
// momentum moves 20 bytes an element (512 MB, 153 us). Scalar loads, each thread streaming its
// elements: expect 75-85% of peak. In a real step this is spread over ~160 parameter tensors, so
// the launches (~3 us each, ~0.5 ms in all) cost more than the traffic; a multi-tensor version
// that updates every parameter in one launch is the next step.
#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"
#include "kernels/optim.h"
#include "kernels/optim_math.h"

namespace hotlap::kernels::cuda {

namespace {

__global__ void sgd_update_kernel(SgdFactors f, int64_t n, float* p, const float* g,
                                  float* momentum_buf) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    sgd_element(f, p, g, momentum_buf, i);
}

__global__ void adamw_update_kernel(AdamWFactors f, int64_t n, float* p, const float* g, float* m,
                                    float* v) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    adamw_element(f, p, g, m, v, i);
}

}  // namespace

void sgd_update(const SgdArgs& a, int64_t n, float* p, const float* g, float* momentum_buf) {
  check_sgd_args("cuda::sgd_update", a, n, momentum_buf);
  if (n == 0) return;
  // momentum == 0: plain SGD, the buffer neither read nor written (as on the CPU).
  float* buf = a.momentum == 0.0f ? nullptr : momentum_buf;
  sgd_update_kernel<<<static_cast<unsigned>(elementwise_blocks(n)), kElementwiseThreads, 0,
                      compute_stream()>>>(sgd_factors(a), n, p, g, buf);
  HOTLAP_CUDA_CHECK_LAUNCH("cuda::sgd_update n=", n);
}

void adamw_update(const AdamWArgs& a, int64_t n, float* p, const float* g, float* m, float* v) {
  check_adamw_args("cuda::adamw_update", a, n);
  if (n == 0) return;
  adamw_update_kernel<<<static_cast<unsigned>(elementwise_blocks(n)), kElementwiseThreads, 0,
                        compute_stream()>>>(adamw_factors(a), n, p, g, m, v);
  HOTLAP_CUDA_CHECK_LAUNCH("cuda::adamw_update n=", n);
}

}  // namespace hotlap::kernels::cuda
