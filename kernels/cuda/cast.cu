// fp32 <-> bf16 storage conversions on the GPU, bit-identical to the CPU's (the same integer
// arithmetic, cast_math.h; not __float2bfloat16_rn, whose NaN payload may differ).
//
// A thread per 4 elements where the pointers allow (16-byte fp32 loads, 8-byte bf16 stores), else
// one; grid-stride. Converting a ResNet-50 activation [64,56,56,256] (51.4M elements): 206 MB read
// and 103 MB written (or the reverse), a few integer ops an element: memory-bound, 92 us at the
// H100's 3.35 TB/s; expect 80-90% of peak with the vector accesses.
#include <cuda_runtime.h>


#include "kernels/cast.h"
#include "kernels/cuda/cast_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"

namespace hotlap::kernels::cuda {

namespace {

// groups: the float4 / ushort4 groups done as vectors (the host checked the alignment).
__global__ void f32_to_bf16_kernel(int64_t n, int64_t groups, const float* x, bfloat16* y) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = first; g < groups; g += step) {
    const float4 v = reinterpret_cast<const float4*>(x)[g];
    reinterpret_cast<ushort4*>(y)[g] = make_ushort4(
        f32_bits_to_bf16(__float_as_uint(v.x)), f32_bits_to_bf16(__float_as_uint(v.y)),
        f32_bits_to_bf16(__float_as_uint(v.z)), f32_bits_to_bf16(__float_as_uint(v.w)));
  }
  for (int64_t i = groups * 4 + first; i < n; i += step)
    y[i] = bfloat16{f32_bits_to_bf16(__float_as_uint(x[i]))};
}

__global__ void bf16_to_f32_kernel(int64_t n, int64_t groups, const bfloat16* x, float* y) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = first; g < groups; g += step) {
    const ushort4 v = reinterpret_cast<const ushort4*>(x)[g];
    reinterpret_cast<float4*>(y)[g] =
        make_float4(__uint_as_float(bf16_to_f32_bits(v.x)), __uint_as_float(bf16_to_f32_bits(v.y)),
                    __uint_as_float(bf16_to_f32_bits(v.z)), __uint_as_float(bf16_to_f32_bits(v.w)));
  }
  for (int64_t i = groups * 4 + first; i < n; i += step)
    y[i] = __uint_as_float(bf16_to_f32_bits(x[i].bits));
}

// Vector groups: the fp32 side needs 16-byte alignment, the bf16 side 8-byte.
int64_t cast_groups(int64_t n, const void* f32, const void* bf16) {
  const bool aligned = reinterpret_cast<uintptr_t>(f32) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(bf16) % 8 == 0;
  return aligned ? n / 4 : 0;
}

}  // namespace

void f32_to_bf16(int64_t n, const float* x, bfloat16* y) {
  HOTLAP_CHECK(n >= 0, "cuda::f32_to_bf16: negative length n=", n);
  if (n == 0) return;
  const int64_t groups = cast_groups(n, x, y);
  f32_to_bf16_kernel<<<static_cast<unsigned>(elementwise_blocks(groups > 0 ? groups : n)),
                       kElementwiseThreads, 0, compute_stream()>>>(n, groups, x, y);
  HOTLAP_CUDA_CHECK_LAUNCH("cuda::f32_to_bf16 n=", n);
}

void bf16_to_f32(int64_t n, const bfloat16* x, float* y) {
  HOTLAP_CHECK(n >= 0, "cuda::bf16_to_f32: negative length n=", n);
  if (n == 0) return;
  const int64_t groups = cast_groups(n, y, x);
  bf16_to_f32_kernel<<<static_cast<unsigned>(elementwise_blocks(groups > 0 ? groups : n)),
                       kElementwiseThreads, 0, compute_stream()>>>(n, groups, x, y);
  HOTLAP_CUDA_CHECK_LAUNCH("cuda::bf16_to_f32 n=", n);
}

}  // namespace hotlap::kernels::cuda
