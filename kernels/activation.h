// Activation functions, each written once: its value and its derivative in fp32, as functions both
// the host compiler and nvcc compile (kernels/host_device.h). Everything else is a template over
// these structs: the CPU kernels (kernels/cpu/elementwise.cpp), the CUDA kernels
// (kernels/cuda/elementwise.cu), the builds without CUDA (kernels/cuda_none.cpp), dispatch and
// ops::activation, each instantiated for every entry of HOTLAP_ACTIVATIONS below.
//
// Adding an activation is three edits: its struct and its line in the list here, a one-line op in
// nn/layers/ops.h, and a row of the op table (nn/layers/op_table.cpp) with its float64 reference, which checks it
// on every device, dtype and thread count and benchmarks it.
//
// Contract of each struct:
//   name           the op's name (autograd records, profiles, the op table)
//   saves_output   the backward reads the forward's output y (true) or its input x (false); the
//                  op keeps only that one tensor for the backward pass
//   forward(x)     y
//   backward(s, g) dx = g * dy/dx, where s is y or x as saves_output says
// Both devices compute in fp32 whatever the storage (bf16: widened exactly, rounded once on store).
// An activation made of + - * / and comparisons only (ReLU) gives the same bits on the CPU and the
// GPU, as the files are built without fused multiply-adds; one that calls expf (SiLU) may differ by
// the libraries' last-place errors (CUDA's expf: 2 ulp), and its checks have a tolerance.
//
// Test and benchmark: build/tests/hotlap_tests -tc='op table*'; build/bench/hotlap_bench
// --benchmark_filter=ops/.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/cast.h"
#include "kernels/host_device.h"

namespace hotlap::kernels {

struct Relu {
  static constexpr const char* name = "relu";
  static constexpr bool saves_output = true;
  // x > 0 ? x : 0, with NaN kept as NaN (torch.relu); fmaxf would turn NaN into 0.
  HOTLAP_HOST_DEVICE static float forward(float x) { return (x > 0.0f || x != x) ? x : 0.0f; }
  // The output's sign is the input's: y > 0 exactly where x > 0.
  HOTLAP_HOST_DEVICE static float backward(float y, float dy) { return y > 0.0f ? dy : 0.0f; }
};

// SiLU (swish): x * sigmoid(x) = x / (1 + e^-x). d/dx = s (1 + x (1 - s)) with s = sigmoid(x).
// At x -> -inf, e^-x overflows to inf and y to -0, as torch.nn.functional.silu gives.
struct Silu {
  static constexpr const char* name = "silu";
  static constexpr bool saves_output = false;
  HOTLAP_HOST_DEVICE static float forward(float x) { return x / (1.0f + expf(-x)); }
  HOTLAP_HOST_DEVICE static float backward(float x, float dy) {
    const float s = 1.0f / (1.0f + expf(-x));
    return dy * (s * (1.0f + x * (1.0f - s)));
  }
};

// Every activation: X(struct) once each. The explicit instantiations of every layer use it.
#define HOTLAP_ACTIVATIONS(X) \
  X(Relu)                     \
  X(Silu)

// The kernels, for storage T = float or bfloat16 (bf16 bits, kernels/cast.h). dx may alias dy, y may
// alias x. n < 0 throws.
namespace cpu {
template <typename Act, typename T>
void activation_forward(int64_t n, const T* x, T* y);
template <typename Act, typename T>
void activation_backward(int64_t n, const T* saved, const T* dy, T* dx);
}  // namespace cpu

// The same contracts on the GPU: device pointers, queued on the compute stream; in a build without
// CUDA each throws.
namespace cuda {
template <typename Act, typename T>
void activation_forward(int64_t n, const T* x, T* y);
template <typename Act, typename T>
void activation_backward(int64_t n, const T* saved, const T* dy, T* dx);
}  // namespace cuda

// The explicit instantiations an implementation of the kernels above makes for one activation, in
// its own namespace (kernels/cpu/elementwise.cpp, kernels/cuda/elementwise.cu, kernels/cuda_none.cpp):
//   HOTLAP_ACTIVATIONS(HOTLAP_ACTIVATION_KERNELS)
#define HOTLAP_ACTIVATION_KERNELS(Act)                                                        \
  template void activation_forward<Act, float>(int64_t, const float*, float*);                \
  template void activation_forward<Act, bfloat16>(int64_t, const bfloat16*, bfloat16*);       \
  template void activation_backward<Act, float>(int64_t, const float*, const float*, float*); \
  template void activation_backward<Act, bfloat16>(int64_t, const bfloat16*, const bfloat16*, bfloat16*);

}  // namespace hotlap::kernels
