// Element-wise kernels beside cuDNN's batch norm: the residual-add + ReLU epilogue (one read of y
// and the residual, one write: 12 bytes per element, memory-bound) and the element-wise half of the
// eval-mode backward (reads x, dy, writes dx and dy * xhat: 16 bytes per element). The per-channel
// reductions stay with cuDNN (cudnnConvolutionBackwardBias, in batchnorm.cpp).
//
// Grid-stride loops, 256 threads a block, at most 4096 blocks, on the compute stream.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/check.h"
#include "kernels/cuda_memory.h"
#include "kernels/cudnn/elementwise.h"

namespace hotlap::kernels::cudnn::detail {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 4096));
}

__global__ void epilogue_kernel(int64_t n, float* y, const float* residual, bool relu) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    float v = y[i];
    if (residual != nullptr) v += residual[i];
    if (relu) v = fmaxf(v, 0.0f);
    y[i] = v;
  }
}

__global__ void eval_backward_kernel(int64_t n, int64_t c, const float* x, const float* dy,
                                     const float* gamma, const float* running_mean,
                                     const float* running_var, float eps, float* dx,
                                     float* dy_xhat) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = i % c;
    const float invstd = 1.0f / sqrtf(running_var[j] + eps);
    const float g = dy[i];
    if (dx != nullptr) dx[i] = g * (gamma[j] * invstd);
    if (dy_xhat != nullptr) dy_xhat[i] = g * ((x[i] - running_mean[j]) * invstd);
  }
}

}  // namespace

void apply_epilogue(int64_t n, float* y, const float* residual, bool relu) {
  if (n == 0 || (residual == nullptr && !relu)) return;
  epilogue_kernel<<<blocks_for(n), kThreads, 0, cuda::compute_stream()>>>(n, y, residual, relu);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::batchnorm epilogue of ", n, " elements");
}

void batchnorm_eval_backward_elementwise(int64_t rows, int64_t c, const float* x, const float* dy,
                                         const float* gamma, const float* running_mean,
                                         const float* running_var, float eps, float* dx,
                                         float* dy_xhat) {
  const int64_t n = rows * c;
  if (n == 0 || (dx == nullptr && dy_xhat == nullptr)) return;
  eval_backward_kernel<<<blocks_for(n), kThreads, 0, cuda::compute_stream()>>>(
      n, c, x, dy, gamma, running_mean, running_var, eps, dx, dy_xhat);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::batchnorm_backward_eval rows=", rows, " c=", c);
}

}  // namespace hotlap::kernels::cudnn::detail
