// bf16 compute on the CPU, by emulation: widen every bf16 input to an fp32 scratch copy, run the
// existing fp32 kernel, round every bf16 output to nearest even (kernels::float_to_bf16). The
// results are what a bf16 kernel with fp32 arithmetic and one rounding per stored value gives,
// which is the contract of the GPU's bf16 kernels; so `--device cpu --precision bf16` runs the
// whole bf16 plumbing, and the tests can check it, on a machine without a GPU.
//
// This is for correctness and tests, not a fast path: each call allocates and converts its
// operands (an extra pass over memory per operand) on top of the fp32 kernel's own cost.
//
//   Bf16Emulation e;
//   cpu::global_avg_pool_forward(n, hw, c, e.widen(x, n * hw * c), e.output(y, n * c));
//   e.round_outputs();
//
// The element-wise ops and the activations need none of this: their loops take bf16 storage
// directly (kernels/cpu/elementwise.cpp). The convolution, batch norm and the pools still do.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cast.h"

namespace hotlap::kernels::cpu {

class Bf16Emulation {
 public:
  // An fp32 copy of n bf16 values; null for null (optional operands stay optional).
  const float* widen(const bfloat16* x, int64_t n);
  // fp32 scratch for an output of n values that round_outputs() rounds into y; null for null.
  float* output(bfloat16* y, int64_t n);
  // The same, starting from y's current values (an output the kernel adds into).
  float* in_out(bfloat16* y, int64_t n);
  // Rounds every output's scratch into its bf16 destination. Call once, after the kernel.
  void round_outputs();

 private:
  float* scratch(int64_t n);
  struct Output {
    bfloat16* destination;
    const float* values;
    int64_t n;
  };
  std::vector<std::unique_ptr<float[]>> buffers_;
  std::vector<Output> outputs_;
};

}  // namespace hotlap::kernels::cpu
