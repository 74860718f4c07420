// Element-wise kernels beside cuDNN's batch norm: the residual-add + ReLU epilogue (one read of y
// and the residual, one write: 12 bytes per element, memory-bound) and the element-wise half of the
// eval-mode backward (reads x, dy, writes dx and dy * xhat: 16 bytes per element). The per-channel
// reductions stay with cuDNN (cudnnConvolutionBackwardBias, in batch_norm.cpp).
//
// bf16 twins of both (templated on the storage type, kernels/cuda/storage.h: half the bytes), and
// for the bf16 convolution: its fp32 bias added into bf16 y, the bias gradient summed from bf16 dy,
// and the bf16 filter gradient widened and added into the fp32 dw (2 + 4 + 4 bytes per weight).
// For the GEMM: C = beta * C over a strided matrix, its whole work when k == 0 or alpha == 0.
//
// Grid-stride loops, 256 threads a block, at most 4096 blocks, on the compute stream.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise_math.h"
#include "kernels/cuda/storage.h"
#include "kernels/cuda_memory.h"
#include "kernels/cudnn/elementwise.h"

namespace hotlap::kernels::cudnn::detail {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 4096));
}

using cuda::device_bf16;
using cuda::load_as_float;
using cuda::store_rounded;

template <typename T>
__global__ void epilogue_kernel(int64_t n, T* y, const T* residual, bool relu) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    float v = load_as_float(y[i]);
    if (residual != nullptr) v += load_as_float(residual[i]);
    if (relu) v = Relu::forward(v);  // NaN stays NaN, as on the CPU (fmaxf would give 0)
    store_rounded(&y[i], v);
  }
}

template <typename T>
__global__ void eval_backward_kernel(int64_t n, int64_t c, const T* x, const T* dy,
                                     const float* gamma, const float* running_mean,
                                     const float* running_var, float eps, T* dx,
                                     float* dy_xhat) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t j = i % c;
    const float invstd = 1.0f / sqrtf(running_var[j] + eps);
    const float g = load_as_float(dy[i]);
    if (dx != nullptr) store_rounded(&dx[i], g * (gamma[j] * invstd));
    if (dy_xhat != nullptr) dy_xhat[i] = g * ((load_as_float(x[i]) - running_mean[j]) * invstd);
  }
}

__global__ void bias_add_bf16_kernel(int64_t n, int64_t c, const float* bias, __nv_bfloat16* y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    store_rounded(&y[i], load_as_float(y[i]) + bias[i % c]);
}

// A thread per channel, summing its column in fp32 runs of 64 rows added in double: the rows are
// few for the convolutions that have a bias at all (never in a ResNet), so no split reduction.
__global__ void bias_backward_bf16_kernel(int64_t rows, int64_t c, const __nv_bfloat16* dy,
                                          float* dbias) {
  const int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (j >= c) return;
  double total = 0.0;
  for (int64_t r0 = 0; r0 < rows; r0 += 64) {
    float run = 0.0f;
    for (int64_t r = r0; r < rows && r < r0 + 64; ++r) run += load_as_float(dy[r * c + j]);
    total += run;
  }
  dbias[j] = static_cast<float>(dbias[j] + total);
}

__global__ void accumulate_widened_kernel(int64_t n, const __nv_bfloat16* x, float* y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] += load_as_float(x[i]);
}

__global__ void scale_matrix_kernel(int64_t rows, int64_t cols, int64_t ld, float beta, float* c) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    float* ci = c + (i / cols) * ld + i % cols;
    *ci = beta == 0.0f ? 0.0f : beta * *ci;
  }
}

}  // namespace

void scale_matrix(int64_t rows, int64_t cols, int64_t ld, float beta, float* c) {
  if (rows == 0 || cols == 0 || beta == 1.0f) return;
  scale_matrix_kernel<<<blocks_for(rows * cols), kThreads, 0, cuda::compute_stream()>>>(
      rows, cols, ld, beta, c);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::gemm C = beta * C, m=", rows, " n=", cols, " ldc=", ld);
}

void apply_epilogue(int64_t n, float* y, const float* residual, bool relu) {
  if (n == 0 || (residual == nullptr && !relu)) return;
  epilogue_kernel<<<blocks_for(n), kThreads, 0, cuda::compute_stream()>>>(n, y, residual, relu);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::batch_norm epilogue of ", n, " elements");
}

void batch_norm_eval_backward_elementwise(int64_t rows, int64_t c, const float* x, const float* dy,
                                         const float* gamma, const float* running_mean,
                                         const float* running_var, float eps, float* dx,
                                         float* dy_xhat) {
  const int64_t n = rows * c;
  if (n == 0 || (dx == nullptr && dy_xhat == nullptr)) return;
  eval_backward_kernel<<<blocks_for(n), kThreads, 0, cuda::compute_stream()>>>(
      n, c, x, dy, gamma, running_mean, running_var, eps, dx, dy_xhat);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::batch_norm_backward_eval rows=", rows, " c=", c);
}

void apply_epilogue(int64_t n, bfloat16* y, const bfloat16* residual, bool relu) {
  if (n == 0 || (residual == nullptr && !relu)) return;
  epilogue_kernel<<<blocks_for(n), kThreads, 0, cuda::compute_stream()>>>(n, device_bf16(y),
                                                                          device_bf16(residual), relu);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::batch_norm bf16 epilogue of ", n, " elements");
}

void batch_norm_eval_backward_elementwise(int64_t rows, int64_t c, const bfloat16* x,
                                              const bfloat16* dy, const float* gamma,
                                              const float* running_mean, const float* running_var,
                                              float eps, bfloat16* dx, float* dy_xhat) {
  const int64_t n = rows * c;
  if (n == 0 || (dx == nullptr && dy_xhat == nullptr)) return;
  eval_backward_kernel<<<blocks_for(n), kThreads, 0, cuda::compute_stream()>>>(
      n, c, device_bf16(x), device_bf16(dy), gamma, running_mean, running_var, eps, device_bf16(dx),
      dy_xhat);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::batch_norm_backward_eval rows=", rows, " c=", c);
}

void bias_add(int64_t rows, int64_t c, const float* bias, bfloat16* y) {
  const int64_t n = rows * c;
  if (n == 0) return;
  bias_add_bf16_kernel<<<blocks_for(n), kThreads, 0, cuda::compute_stream()>>>(n, c, bias,
                                                                               device_bf16(y));
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::conv2d_forward bias rows=", rows, " c=", c);
}

void bias_backward(int64_t rows, int64_t c, const bfloat16* dy, float* dbias) {
  if (rows == 0 || c == 0) return;
  bias_backward_bf16_kernel<<<blocks_for(c), kThreads, 0, cuda::compute_stream()>>>(
      rows, c, device_bf16(dy), dbias);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::conv2d_backward_filter bias gradient rows=", rows, " c=", c);
}

void accumulate_widened(int64_t n, const bfloat16* x, float* y) {
  if (n == 0) return;
  accumulate_widened_kernel<<<blocks_for(n), kThreads, 0, cuda::compute_stream()>>>(
      n, device_bf16(x), y);
  HOTLAP_CUDA_CHECK_LAUNCH("cudnn::conv2d_backward_filter dw of ", n, " weights");
}

}  // namespace hotlap::kernels::cudnn::detail
