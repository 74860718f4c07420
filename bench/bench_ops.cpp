// Every op of the op table (nn/op_table.h) at its ResNet-50 shapes, through ops:: as the network
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

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/math_mode.h"
#include "nn/autograd.h"
#include "nn/dispatch.h"
#include "nn/op_table.h"
#include "nn/ops.h"

namespace {

using namespace hotlap;

struct Target {
  Device device;
  dispatch::Backend backend;
};

void bench_op(benchmark::State& state, const op_table::Row* row, const op_table::Case* c, Target target, DType dtype,
              bool backward) {
  const dispatch::Backends saved = dispatch::backends();
  dispatch::set_backends({target.backend, target.backend});
  kernels::ScopedMathMode mode(dtype == DType::bf16 ? kernels::MathMode::bf16 : kernels::MathMode::fp32);
  // The op's inputs on the device: f32 leaves (those that take a gradient require one when the
  // backward pass is timed); a bf16 run hands the op its activations cast to bf16.
  std::vector<Tensor> leaves;
  std::vector<bool> cast;
  double bytes = 0.0;
  const std::vector<Tensor> host = row->inputs(*c, 1);
  auto listed = [](const std::vector<int>& v, size_t i) { return std::find(v.begin(), v.end(), int(i)) != v.end(); };
  for (size_t i = 0; i < host.size(); ++i) {
    Tensor t = host[i].defined() ? host[i].to(target.device) : Tensor();
    if (t.defined() && t.same_as(host[i])) t = t.clone();
    if (t.defined() && backward && listed(row->differentiable, i)) t.set_requires_grad();
    cast.push_back(t.defined() && dtype == DType::bf16 && listed(row->activations, i));
    if (t.defined()) bytes += double(t.numel()) * double(dtype_size(cast.back() ? DType::bf16 : DType::f32));
    leaves.push_back(t);
  }
  auto args = [&] {
    std::vector<Tensor> a;
    for (size_t i = 0; i < leaves.size(); ++i) a.push_back(cast[i] ? ops::cast(leaves[i], DType::bf16) : leaves[i]);
    return a;
  };
  std::vector<Tensor> fixed_args;  // the forward pass: cast once, outside the timed loop
  Tensor y;
  {
    NoGradGuard no_grad;
    fixed_args = args();
    y = row->run(fixed_args, *c);
  }
  bytes += double(y.nbytes());
  const Tensor weights = Tensor::full({1, y.numel()}, 1.0f).to(target.device);
  for (auto _ : state) {
    if (backward) {
      ops::linear(row->run(args(), *c).reshape({1, y.numel()}), weights, Tensor()).backward();
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
  dispatch::set_backends(saved);
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
  std::vector<Target> targets{{Device::cpu, dispatch::Backend::native}};
  if (kernels::cuda_device_count() > 0) {
    targets.push_back({Device::cuda, dispatch::Backend::native});
    if (kernels::cudnn_compiled()) targets.push_back({Device::cuda, dispatch::Backend::cudnn});
  }
  for (const op_table::Row& row : op_table::rows())
    for (const op_table::Case& c : row.cases) {
      if (!c.resnet50) continue;
      for (const Target& t : targets)
        for (DType dtype : row.dtypes) {
          if (dispatch::supports(row.op, t.device, t.backend, dtype) == dispatch::Support::none) continue;
          for (bool backward : {false, true}) {
            if (backward && row.differentiable.empty()) continue;
            const std::string where = t.device == Device::cpu ? "cpu" : std::string("cuda_") + dispatch::backend_name(t.backend);
            const std::string name = "ops/" + row.op + "/" + slug(c.label) + "/" + where + "/" + dtype_name(dtype) + "/" +
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
