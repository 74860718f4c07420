// Backward filter's deterministic sums for the tiled convolution variants (conv_tiled.cu,
// conv_tensor_core.cu): the split-K partial products added into dw in split order, and dbias as a
// two-kernel column sum of dy. No atomics: every addition happens in an order fixed by the shape.
//
//   split sum  dw[i] += partial[0][i] + ... + partial[splits-1][i]: one pass over splits + 1 fp32
//              copies of dw (K*R*S*C floats each), bandwidth-bound: layer3's 3x3 (589,824 weights,
//              2.4 MB) split 4 ways at batch 64 moves ~14 MB, ~4 us at the H100's 3.35 TB/s
//              (4.8 TB/s on H200)
//   dbias      partial[split][j] = sum of dy[row][j] over the split's rows (32 channels x 8 row
//              lanes a block, lanes added in order), then one thread a channel adds the partials.
//              One read of dy: 51 MB for layer1's 64x56x56x64 fp32 dy, ~15 us at 3.35 TB/s;
//              half that for bf16 dy.
// The times are predictions from the bytes moved (docs/gpu.md: what has run on a GPU).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/conv.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/cuda_memory.h"

namespace hotlap::kernels::cuda {

namespace {

__global__ void conv_split_sum_kernel(int64_t count, int splits, const float* partial, float* dw) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += step) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += partial[s * count + i];
    dw[i] += sum;
  }
}

template <class T>
__global__ void conv_bias_partial_kernel(int rows, int k, int rows_per_split, const T* dy,
                                         float* partial) {
  __shared__ float lanes[kConvBiasLanes][kConvBiasChannels];
  const int j = static_cast<int>(blockIdx.x) * kConvBiasChannels + threadIdx.x;
  const int begin = static_cast<int>(blockIdx.y) * rows_per_split;
  const int end = min(rows, begin + rows_per_split);
  float sum = 0.0f;
  if (j < k)
    for (int row = begin + static_cast<int>(threadIdx.y); row < end; row += kConvBiasLanes)
      sum += conv_to_float(dy[static_cast<int64_t>(row) * k + j]);
  lanes[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || j >= k) return;
  float total = 0.0f;
  for (int lane = 0; lane < kConvBiasLanes; ++lane) total += lanes[lane][threadIdx.x];
  partial[static_cast<int64_t>(blockIdx.y) * k + j] = total;
}

__global__ void conv_bias_finalize_kernel(int k, int splits, const float* partial, float* dbias) {
  const int j = static_cast<int>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= k) return;
  float total = 0.0f;
  for (int s = 0; s < splits; ++s) total += partial[static_cast<int64_t>(s) * k + j];
  dbias[j] += total;
}

}  // namespace

namespace detail {

void conv_split_sum(const char* op, const ConvShape& s, int64_t splits, const float* partial,
                    float* dw) {
  const int64_t count = s.k * s.r * s.s * s.c;
  const int blocks = static_cast<int>(std::min<int64_t>(ceil_div(count, 256), 4096));
  conv_split_sum_kernel<<<blocks, 256, 0, compute_stream()>>>(count, static_cast<int>(splits),
                                                              partial, dw);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (split-K sum) k=", s.k, " r=", s.r, " s=", s.s, " c=", s.c,
                           " splits=", splits);
}

template <class T>
void conv_bias_grad(const char* op, const ConvShape& s, const T* dy, float* dbias, float* partial) {
  const int64_t rows = s.n * s.p() * s.q();
  const ConvBiasPlan plan = conv_bias_plan(rows, s.k);
  const cudaStream_t stream = compute_stream();
  const dim3 grid(static_cast<unsigned>(ceil_div(s.k, kConvBiasChannels)),
                  static_cast<unsigned>(plan.splits));
  conv_bias_partial_kernel<T><<<grid, dim3(kConvBiasChannels, kConvBiasLanes), 0, stream>>>(
      static_cast<int>(rows), static_cast<int>(s.k), static_cast<int>(plan.rows_per_split), dy,
      partial);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (dbias sums) rows=", rows, " k=", s.k);
  conv_bias_finalize_kernel<<<static_cast<unsigned>(ceil_div(s.k, 256)), 256, 0, stream>>>(
      static_cast<int>(s.k), static_cast<int>(plan.splits), partial, dbias);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (dbias) k=", s.k);
}

template void conv_bias_grad<float>(const char*, const ConvShape&, const float*, float*, float*);
template void conv_bias_grad<bfloat16>(const char*, const ConvShape&, const bfloat16*, float*,
                                       float*);

}  // namespace detail
}  // namespace hotlap::kernels::cuda
