// Convolution on the GPU, version 1: one thread per output element, fp32 on the CUDA cores. The
// readable reference for the tiled kernels (conv_tiled.cu, conv_tensor_core.cu): each kernel is the
// convolution's definition written as a loop, with nothing shared between threads. Templated on
// the tensors' type: float (variant simple) or bf16 bits (bf16_simple: each value widened to fp32,
// fp32 sums, y and dx rounded once to bf16; dw and dbias stay fp32).
//
//   forward          thread (m = (n,p,q), kout): y = bias + sum over (r,s,c) of x * w
//   backward data    thread (n,h,w,c): dx = sum over taps (r,s) whose output pixel
//                    p = (h + pad_h - r) / stride_h is a whole number inside the output, and
//                    over kout, of dy * w
//   backward filter  thread (kout,r,s,c): dw += sum over (n,p,q) of dy * x; a thread per kout
//                    for dbias += sum over (n,p,q) of dy
//
// Adjacent threads take adjacent channels (kout forward, c backward), so one operand is read as a
// broadcast and the other coalesced where NHWC/OHWI allow: forward reads x broadcast and w with a
// stride of R*S*C floats between threads (uncoalesced, served by L1/L2).
//
// Cost, ResNet-50 layer1 3x3 (64 -> 64 channels, 56x56) at batch 64: 2 * 200704 * 64 * 576 =
// 14.8 GFLOP. Every multiply-add loads two floats from L1/L2 (8 bytes per 2 FLOPs): 59 GB of
// cache traffic, so these kernels run against the L1/L2 bandwidth, not the 67 TFLOP/s of the
// H100's fp32 cores, at an expected 1-3 TFLOP/s (5-15 ms for that layer). They exist to be
// obviously right. bf16_simple moves half the bytes per multiply-add and should be no slower.
// These figures are predictions (docs/gpu.md: what has run on a GPU).
#include <cuda_runtime.h>

#include "kernels/conv.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/cuda_memory.h"

namespace hotlap::kernels::cuda {

namespace {

template <class T>
__global__ void conv2d_forward_simple_kernel(ConvDims d, const T* x, const T* w, const float* bias,
                                             T* y) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<int64_t>(d.n) * d.p * d.q * d.k) return;
  const int kout = static_cast<int>(idx % d.k);
  const int m = static_cast<int>(idx / d.k);
  const int q = m % d.q, p = (m / d.q) % d.p, n = m / (d.q * d.p);
  float sum = bias != nullptr ? bias[kout] : 0.0f;
  for (int r = 0; r < d.r; ++r) {
    const int iy = p * d.stride_h - d.pad_h + r;
    if (iy < 0 || iy >= d.h) continue;
    for (int s = 0; s < d.s; ++s) {
      const int ix = q * d.stride_w - d.pad_w + s;
      if (ix < 0 || ix >= d.w) continue;
      const T* xs = x + ((n * d.h + iy) * d.w + ix) * d.c;
      const T* ws = w + ((kout * d.r + r) * d.s + s) * d.c;
      for (int c = 0; c < d.c; ++c) sum += conv_to_float(xs[c]) * conv_to_float(ws[c]);
    }
  }
  y[idx] = conv_from_float<T>(sum);
}

template <class T>
__global__ void conv2d_backward_data_simple_kernel(ConvDims d, const T* dy, const T* w, T* dx) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<int64_t>(d.n) * d.h * d.w * d.c) return;
  const int c = static_cast<int>(idx % d.c);
  const int pix = static_cast<int>(idx / d.c);
  const int ix = pix % d.w, iy = (pix / d.w) % d.h, n = pix / (d.w * d.h);
  float sum = 0.0f;
  for (int r = 0; r < d.r; ++r) {
    const int ny = iy + d.pad_h - r;  // = p * stride_h for the output row p this tap reads
    if (ny < 0 || ny % d.stride_h != 0 || ny / d.stride_h >= d.p) continue;
    const int p = ny / d.stride_h;
    for (int s = 0; s < d.s; ++s) {
      const int nx = ix + d.pad_w - s;
      if (nx < 0 || nx % d.stride_w != 0 || nx / d.stride_w >= d.q) continue;
      const int q = nx / d.stride_w;
      const T* dys = dy + ((n * d.p + p) * d.q + q) * d.k;
      const T* ws = w + (r * d.s + s) * d.c + c;
      const int w_step = d.r * d.s * d.c;  // from one kout's filter to the next
      for (int kout = 0; kout < d.k; ++kout)
        sum += conv_to_float(dys[kout]) * conv_to_float(ws[kout * w_step]);
    }
  }
  dx[idx] = conv_from_float<T>(sum);
}

template <class T>
__global__ void conv2d_backward_filter_simple_kernel(ConvDims d, const T* x, const T* dy,
                                                     float* dw) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int rsc = d.r * d.s * d.c;
  if (idx >= static_cast<int64_t>(d.k) * rsc) return;
  const int kout = static_cast<int>(idx / rsc);
  const int tap = static_cast<int>(idx % rsc);
  const int c = tap % d.c, s = (tap / d.c) % d.s, r = tap / (d.c * d.s);
  float sum = 0.0f;
  for (int n = 0; n < d.n; ++n)
    for (int p = 0; p < d.p; ++p) {
      const int iy = p * d.stride_h - d.pad_h + r;
      if (iy < 0 || iy >= d.h) continue;
      for (int q = 0; q < d.q; ++q) {
        const int ix = q * d.stride_w - d.pad_w + s;
        if (ix < 0 || ix >= d.w) continue;
        sum += conv_to_float(dy[((n * d.p + p) * d.q + q) * d.k + kout]) *
               conv_to_float(x[((n * d.h + iy) * d.w + ix) * d.c + c]);
      }
    }
  dw[idx] += sum;
}

template <class T>
__global__ void conv2d_bias_grad_simple_kernel(int rows, int k, const T* dy, float* dbias) {
  const int kout = blockIdx.x * blockDim.x + threadIdx.x;
  if (kout >= k) return;
  float sum = 0.0f;
  for (int row = 0; row < rows; ++row) sum += conv_to_float(dy[static_cast<int64_t>(row) * k + kout]);
  dbias[kout] += sum;
}

unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>(ceil_div(threads, kConvSimpleThreads));
}

// A launch error names the op, the variant and the shape.
template <class T>
void check_simple_launch(const char* op, const ConvShape& s) {
  HOTLAP_CUDA_CHECK_LAUNCH(op, sizeof(T) == sizeof(float) ? " (simple)" : " (bf16_simple)",
                           " n=", s.n, " h=", s.h, " w=", s.w, " c=", s.c, " k=", s.k, " r=", s.r,
                           " s=", s.s);
}

}  // namespace

namespace detail {

template <class T>
void conv2d_forward_simple(const ConvShape& s, const T* x, const T* w, const float* bias, T* y) {
  const ConvDims d = conv_dims(s);
  conv2d_forward_simple_kernel<T><<<blocks_for(s.n * s.p() * s.q() * s.k), kConvSimpleThreads, 0,
                                    compute_stream()>>>(d, x, w, bias, y);
  check_simple_launch<T>("cuda::conv2d_forward", s);
}

template <class T>
void conv2d_backward_data_simple(const ConvShape& s, const T* dy, const T* w, T* dx) {
  const ConvDims d = conv_dims(s);
  conv2d_backward_data_simple_kernel<T><<<blocks_for(s.n * s.h * s.w * s.c), kConvSimpleThreads,
                                          0, compute_stream()>>>(d, dy, w, dx);
  check_simple_launch<T>("cuda::conv2d_backward_data", s);
}

template <class T>
void conv2d_backward_filter_simple(const ConvShape& s, const T* x, const T* dy, float* dw,
                                   float* dbias) {
  const ConvDims d = conv_dims(s);
  const cudaStream_t stream = compute_stream();
  conv2d_backward_filter_simple_kernel<T><<<blocks_for(s.k * s.r * s.s * s.c), kConvSimpleThreads,
                                            0, stream>>>(d, x, dy, dw);
  check_simple_launch<T>("cuda::conv2d_backward_filter", s);
  if (dbias == nullptr) return;
  conv2d_bias_grad_simple_kernel<T><<<blocks_for(s.k), kConvSimpleThreads, 0, stream>>>(
      d.n * d.p * d.q, d.k, dy, dbias);
  check_simple_launch<T>("cuda::conv2d_backward_filter (dbias)", s);
}

template void conv2d_forward_simple<float>(const ConvShape&, const float*, const float*,
                                           const float*, float*);
template void conv2d_forward_simple<bfloat16>(const ConvShape&, const bfloat16*, const bfloat16*,
                                              const float*, bfloat16*);
template void conv2d_backward_data_simple<float>(const ConvShape&, const float*, const float*,
                                                 float*);
template void conv2d_backward_data_simple<bfloat16>(const ConvShape&, const bfloat16*,
                                                    const bfloat16*, bfloat16*);
template void conv2d_backward_filter_simple<float>(const ConvShape&, const float*, const float*,
                                                   float*, float*);
template void conv2d_backward_filter_simple<bfloat16>(const ConvShape&, const bfloat16*,
                                                      const bfloat16*, float*, float*);

}  // namespace detail
}  // namespace hotlap::kernels::cuda
