// ResNet-50 end to end on the CPU, 224x224 random images: inference (eval mode, no gradients) at
// batch 1 and 8, and one training step at batch 8 (zero_grad, forward, MSE loss against random
// targets for the 1000-way head, backward, SGD with momentum 0.9). The same work as `hotlap bench`,
// which tools/peer_resnet_cpu.py sets beside PyTorch. A forward pass is ~4.1 GFLOP per image and a
// training step ~3x that, so one iteration takes from a tenth of a second to seconds here: each case
// runs one untimed warm-up iteration, then a fixed 3 timed ones. Filter: --benchmark_filter=resnet
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>

#include "nn/autograd.h"
#include "nn/ops.h"
#include "nn/optim.h"
#include "nn/random.h"
#include "resnet/resnet.h"

namespace {

using namespace hotlap;

constexpr int64_t kSize = 224, kOutputs = 1000;

Tensor random_tensor(const Shape& shape, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  fill_normal(t, 0.0, 1.0, rng);
  return t;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ms: wall milliseconds per iteration; images/s: batch / that.
void set_counters(benchmark::State& state, int64_t batch, double total_ms) {
  state.counters["ms"] = benchmark::Counter(total_ms, benchmark::Counter::kAvgIterations);
  state.counters["images/s"] =
      benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void bench_resnet50_infer(benchmark::State& state) {
  const int64_t batch = state.range(0);
  manual_seed(1);
  auto model = resnet::make_resnet({50, kOutputs});
  model->eval();
  Rng rng(2);
  const Tensor x = random_tensor({batch, kSize, kSize, 3}, rng);
  NoGradGuard no_grad;
  model->forward(x);  // warm-up: first-touch allocations, the im2col buffer
  double total_ms = 0;
  for (auto _ : state) {
    const double t0 = now_ms();
    Tensor y = model->forward(x);
    benchmark::DoNotOptimize(y.f32());
    y = Tensor();
    total_ms += now_ms() - t0;
  }
  set_counters(state, batch, total_ms);
}

void bench_resnet50_train_step(benchmark::State& state) {
  const int64_t batch = state.range(0);
  manual_seed(1);
  auto model = resnet::make_resnet({50, kOutputs});
  model->train();
  Rng rng(2);
  const Tensor x = random_tensor({batch, kSize, kSize, 3}, rng);
  const Tensor target = random_tensor({batch, kOutputs}, rng);
  SgdOptions opt;
  opt.lr = 1e-3;
  opt.momentum = 0.9;
  opt.weight_decay = 1e-4;
  SGD optimizer(model->named_parameters(), opt);
  auto step = [&] {
    optimizer.zero_grad();
    Tensor loss = ops::mse_loss(model->forward(x), target);
    loss.backward();
    optimizer.step();
    return loss;
  };
  step();  // warm-up: creates gradients and momentum buffers
  double total_ms = 0;
  for (auto _ : state) {
    const double t0 = now_ms();
    Tensor loss = step();
    benchmark::DoNotOptimize(loss.f32());
    total_ms += now_ms() - t0;
  }
  set_counters(state, batch, total_ms);
}

BENCHMARK(bench_resnet50_infer)
    ->Name("resnet50/infer/224")
    ->Arg(1)
    ->Arg(8)
    ->ArgName("batch")
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK(bench_resnet50_train_step)
    ->Name("resnet50/train_step_sgd/224")
    ->Arg(8)
    ->ArgName("batch")
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
