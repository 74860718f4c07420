// The table of ops: one row per op with the shapes it is checked and benchmarked at, the dtypes it
// takes, how close it must come to its float64 reference, and that reference. Three things read it:
//
//   tests/nn/test_op_table.cpp  every row, case, dtype, and every device and backend present: the
//                               forward pass against the float64 reference, the backward pass
//                               against central differences of the reference, and an op that
//                               dispatch::supports says has no kernel must throw a clear error
//   bench/bench_ops.cpp         every ResNet-50 case of every row, on each device, backend, dtype
//   hotlap ops                  the support matrix op x device x backend x dtype (dispatch::supports)
//
// The references are the maths of every op written as plainly as possible, in double: read them to
// learn what an op computes, and the kernels to learn how it is made fast.
//
// Adding an op: its row in nn/layers/op_table.cpp (shapes, dtypes, tolerances, reference) and its entry
// in dispatch::supports (nn/runtime/dispatch.cpp); the test, the benchmark and `hotlap ops` follow.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/choice.h"
#include "kernels/math_mode.h"
#include "nn/runtime/tensor.h"

namespace hotlap::op_table {

// The values of one tensor, row-major, in double.
using Values = std::vector<double>;

// One set of shapes an op is run at.
struct Case {
  std::string label;            // what the shapes are: "3x3 stride 2", "ResNet-50 stem", "odd sizes"
  std::vector<Shape> shapes;    // of the row's inputs, in order; an empty Shape: the input is absent
  std::vector<int64_t> params;  // the op's integer parameters (the row says which)
  bool resnet50 = false;        // a shape ResNet-50 runs at 224x224, batch 1: a benchmark case
};

struct Row {
  std::string op = {};  // the name ops, profiles and dispatch::supports know it by
  std::string params_meaning = {};  // what Case::params hold, for the reader: "stride, padding"
  std::vector<DType> dtypes = {};   // f32; bf16 = run under MathMode::bf16 (ops.h's autocast rules)
  // The inputs that are activations: bf16 tensors when the row runs in bf16. And the inputs a bf16
  // run rounds to bf16 before it computes (the activations, and conv2d's weight copy): the reference
  // of a bf16 run takes these rounded, so what it measures is the op's own rounding.
  std::vector<int> activations = {}, bf16_rounded = {};
  // The inputs that receive a gradient; empty: the op is forward only.
  std::vector<int> differentiable = {};
  // Largest |got - reference| allowed, relative to the largest |reference|, for the output and for
  // the gradients, in f32 and in bf16.
  double tolerance_f32 = 0, tolerance_bf16 = 0, grad_tolerance_f32 = 0, grad_tolerance_bf16 = 0;
  // On another device, the largest difference from the CPU's own result allowed, output and
  // gradients alike (relative to the CPU's largest value); negative: held to the reference only.
  // The element-wise ops promise the CPU's values: the same fp32 arithmetic, rounded once, and
  // built without fused multiply-adds on both sides.
  double cpu_agreement = -1;
  std::vector<Case> cases = {};
  // The inputs of a case, f32 on the cpu, from a seed; values are kept away from the op's kinks
  // (ReLU at 0, max-pool ties, ...) by more than the finite differences' step.
  std::function<std::vector<Tensor>(const Case&, uint64_t seed)> inputs = {};
  // The op under test, through ops:: (inputs on any device; activations f32 or bf16).
  std::function<Tensor(const std::vector<Tensor>&, const Case&)> run = {};
  // The op in float64 from the inputs' values (an absent input: empty Values).
  std::function<Values(const std::vector<Values>&, const Case&)> reference = {};
  // Floating-point operations of one forward call, for GFLOP/s; none: memory-bound, report GB/s.
  std::function<double(const Case&)> flops = {};
};
// A row is written as a designated initializer, in the order of the fields above:
//   {.op = "relu", .dtypes = ..., .activations = {0}, ..., .reference = ...}

const std::vector<Row>& rows();
const Row& row(std::string_view op);  // throws Error for an op without a row

// ---- running a row (its test and its benchmark) -------------------------------------------------

// Where a row runs: a device, its backend, and whether the readable kernels run (HOTLAP_REFERENCE,
// kernels/choice.h).
struct Target {
  Device device = Device::cpu;
  kernels::Backend backend = kernels::Backend::native;
  bool reference = false;
  std::string name() const;  // "cpu", "cpu reference", "cuda native", "cuda cudnn", "cuda reference"
};
// Every target this build and machine have: the CPU; with a GPU, its native backend and cuDNN when
// compiled in; and, when `with_reference`, each device's readable kernels.
std::vector<Target> targets(bool with_reference);

// A tensor's values in double, from any device and dtype; empty for an undefined tensor.
Values values(const Tensor& t);
// A case's inputs (from Row::inputs) as leaves on `device`: f32, fresh copies; those the row
// differentiates require a gradient when `with_grad`.
std::vector<Tensor> leaves(const Row& row, const std::vector<Tensor>& host, Device device, bool with_grad);
// What the op is handed: the leaves, with each activation of a bf16 run through a differentiable
// cast to bf16, as a bf16 convolution's output would arrive. Recorded when gradients are on: call it
// again for each recorded run.
std::vector<Tensor> args(const Row& row, const std::vector<Tensor>& leaves, DType dtype);

// The kernel settings and math mode a run of `dtype` on `target` takes; the previous ones come back
// when the scope ends, however it ends.
class RunScope {
 public:
  RunScope(const Target& target, DType dtype);
  ~RunScope();
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

 private:
  kernels::KernelOptions saved_;
  kernels::ScopedMathMode mode_;
};

}  // namespace hotlap::op_table
