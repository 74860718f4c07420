// The convolution as its definition, on the CPU: the twin of the GPU's simple kernels
// (kernels/cuda/conv_simple.cu), one output value at a time, nothing shared, no workspace. NHWC
// activations, OHWI weights; a tap outside the input reads zero padding.
//
//   forward          y[n,p,q,k] = bias[k] + sum over r, s, c of x[n, p*stride - pad + r, q*.., c] * w[k,r,s,c]
//                    then + residual, then ReLU (the epilogue, kernels/conv.h)
//   backward data    dx[n,h,w,c] = sum over the taps (r,s) whose output pixel p = (h + pad - r) / stride
//                    is whole and inside the output, and over k, of dy[n,p,q,k] * w[k,r,s,c]
//   backward filter  dw[k,r,s,c] += sum over n, p, q of dy[n,p,q,k] * x[n, p*stride - pad + r, .., c];
//                    dbias[k] += sum over n, p, q of dy[n,p,q,k]
//
// The innermost loop runs along c, contiguous in NHWC and OHWI alike. Each output is independent,
// so the outer loop is shared out over the threads; sums are fp32, in the order written, so a
// result does not depend on the thread count. About 1-2 GFLOP/s: for reading, not for speed.
#include "kernels/cpu/conv_direct.h"

#include <cstdint>

#include "kernels/activation.h"

namespace hotlap::kernels::cpu::direct {

void forward(const ConvShape& s, const float* x, const float* w, const ConvEpilogue& ep, float* y) {
  const int64_t P = s.p(), Q = s.q();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q)
        for (int64_t k = 0; k < s.k; ++k) {
          float sum = 0.0f;
          for (int64_t r = 0; r < s.r; ++r) {
            const int64_t h = p * s.stride_h - s.pad_h + r;
            if (h < 0 || h >= s.h) continue;
            for (int64_t t = 0; t < s.s; ++t) {
              const int64_t wi = q * s.stride_w - s.pad_w + t;
              if (wi < 0 || wi >= s.w) continue;
              const float* xs = x + ((n * s.h + h) * s.w + wi) * s.c;
              const float* ws = w + ((k * s.r + r) * s.s + t) * s.c;
              for (int64_t c = 0; c < s.c; ++c) sum += xs[c] * ws[c];
            }
          }
          const int64_t at = ((n * P + p) * Q + q) * s.k + k;
          if (ep.bias != nullptr) sum += ep.bias[k];
          if (ep.residual != nullptr) sum += ep.residual[at];
          y[at] = ep.relu ? Relu::forward(sum) : sum;
        }
}

void backward_data(const ConvShape& s, const float* dy, const float* w, float* dx) {
  const int64_t P = s.p(), Q = s.q();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t h = 0; h < s.h; ++h)
      for (int64_t wi = 0; wi < s.w; ++wi) {
        float* d = dx + ((n * s.h + h) * s.w + wi) * s.c;
        for (int64_t c = 0; c < s.c; ++c) d[c] = 0.0f;
        for (int64_t r = 0; r < s.r; ++r) {
          const int64_t ph = h + s.pad_h - r;  // = p * stride_h for the output row this tap feeds
          if (ph < 0 || ph % s.stride_h != 0 || ph / s.stride_h >= P) continue;
          for (int64_t t = 0; t < s.s; ++t) {
            const int64_t qw = wi + s.pad_w - t;
            if (qw < 0 || qw % s.stride_w != 0 || qw / s.stride_w >= Q) continue;
            const float* g = dy + ((n * P + ph / s.stride_h) * Q + qw / s.stride_w) * s.k;
            for (int64_t k = 0; k < s.k; ++k) {
              const float* ws = w + ((k * s.r + r) * s.s + t) * s.c;
              for (int64_t c = 0; c < s.c; ++c) d[c] += g[k] * ws[c];
            }
          }
        }
      }
}

void backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  const int64_t P = s.p(), Q = s.q();
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < s.k; ++k) {
    for (int64_t r = 0; r < s.r; ++r)
      for (int64_t t = 0; t < s.s; ++t) {
        float* d = dw + ((k * s.r + r) * s.s + t) * s.c;
        for (int64_t n = 0; n < s.n; ++n)
          for (int64_t p = 0; p < P; ++p) {
            const int64_t h = p * s.stride_h - s.pad_h + r;
            if (h < 0 || h >= s.h) continue;
            for (int64_t q = 0; q < Q; ++q) {
              const int64_t wi = q * s.stride_w - s.pad_w + t;
              if (wi < 0 || wi >= s.w) continue;
              const float g = dy[((n * P + p) * Q + q) * s.k + k];
              const float* xs = x + ((n * s.h + h) * s.w + wi) * s.c;
              for (int64_t c = 0; c < s.c; ++c) d[c] += g * xs[c];
            }
          }
      }
    if (dbias != nullptr) {
      float sum = 0.0f;
      for (int64_t i = 0; i < s.n * P * Q; ++i) sum += dy[i * s.k + k];
      dbias[k] += sum;
    }
  }
}

}  // namespace hotlap::kernels::cpu::direct
