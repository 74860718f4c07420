// Every op of the op table (nn/layers/op_table.h) at its ResNet-50 shapes, through ops:: as the network
// calls it, on every device, backend and dtype present that dispatch::supports says runs it:
//   ops/<op>/<case>/<device>[_<backend>]/<dtype>/forward    the op, nothing recorded (inference)
//   ops/<op>/<case>/<device>[_<backend>]/<dtype>/step       the op recorded, its output summed with
//                                                           fixed weights (a linear layer), and the
//                                                           backward pass of both; in bf16 with the
//                                                           casts of its activations from f32 leaves.
//                                                           The sum and the gradients' allocation are
//                                                           most of a cheap element-wise op's step.
// Counters: GFLOP/s for the compute-bound ops (convolution, linear: the direct method's FLOPs, so a
// Winograd figure is an effective rate), GB/s for the rest (each input read once, the output
// written once). Filter: --benchmark_filter=ops/ (ops/conv2d/ for one op).
#include <benchmark/benchmark.h>

#include <cctype>
#include <string>
#include <vector>

#include "kernels/cuda_memory.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/dispatch.h"
#include "nn/layers/op_table.h"
#include "nn/layers/ops.h"

namespace {

using namespace hotlap;

using op_table::Target;

void bench_op(benchmark::State& state, const op_table::Row* row, const op_table::Case* c, Target target, DType dtype,
              bool backward) {
  const op_table::RunScope settings(target, dtype);
  // f32 leaves on the device (those that take a gradient require one when the step is timed); the
  // forward pass takes its args (activations cast to bf16 in a bf16 run) once, outside the loop.
  std::vector<Tensor> leaves = op_table::leaves(*row, row->inputs(*c, 1), target.device, backward);
  Tensor y;
  std::vector<Tensor> fixed_args;
  {
    NoGradGuard no_grad;
    fixed_args = op_table::args(*row, leaves, dtype);
    y = row->run(fixed_args, *c);
  }
  double bytes = double(y.nbytes());  // each input read once, the output written once
  for (const Tensor& t : fixed_args)
    if (t.defined()) bytes += double(t.nbytes());
  const Tensor weights = Tensor::full({1, y.numel()}, 1.0f).to(target.device);
  for (auto _ : state) {
    if (backward) {
      ops::linear(row->run(op_table::args(*row, leaves, dtype), *c).reshape({1, y.numel()}), weights, Tensor())
          .backward();
      for (Tensor& t : leaves)
        if (t.defined() && t.requires_grad()) t.zero_grad();
    } else {
      NoGradGuard no_grad;
      benchmark::DoNotOptimize(row->run(fixed_args, *c));
    }
    if (target.device == Device::cuda) kernels::cuda::synchronize("bench ops");
  }
  const double flops = row->flops ? row->flops(*c) : 0.0;
  // The backward pass of a convolution or linear layer is two more products of the forward's size.
  if (flops > 0)
    state.counters["GFLOP/s"] = benchmark::Counter(flops * (backward ? 3.0 : 1.0), benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
  else if (!backward)
    state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// A case's label as a name part: "ResNet-50 layer1 3x3" -> "resnet-50_layer1_3x3".
std::string slug(const std::string& label) {
  std::string s;
  for (char ch : label) {
    if (ch == ',') continue;
    s += ch == ' ' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return s;
}

const bool registered = [] {
  const std::vector<Target> targets = op_table::targets(false);
  for (const op_table::Row& row : op_table::rows())
    for (const op_table::Case& c : row.cases) {
      if (!c.resnet50) continue;
      for (const Target& t : targets)
        for (DType dtype : row.dtypes) {
          if (dispatch::supports(row.op, t.device, t.backend, dtype) == dispatch::Support::none) continue;
          for (bool backward : {false, true}) {
            if (backward && row.differentiable.empty()) continue;
            const std::string name = "ops/" + row.op + "/" + slug(c.label) + "/" + slug(t.name()) + "/" + dtype_name(dtype) + "/" +
                                     (backward ? "step" : "forward");
            benchmark::RegisterBenchmark(name.c_str(), bench_op, &row, &c, t, dtype, backward)
                ->Unit(benchmark::kMillisecond)
                ->MinTime(0.1)
                ->UseRealTime();
          }
        }
    }
  return true;
}();

}  // namespace
