// ResNet-50 end to end on the CPU, 224x224 random images: inference (eval mode, no gradients) at
// batch 1 and 8, and one training step at batch 8 (zero_grad, forward, MSE loss against random
// targets for the 1000-way head, backward, SGD with momentum 0.9). The work is `hotlap bench`'s
// (apps/cli/bench.h), which tools/peer_resnet_cpu.py sets beside PyTorch: here it runs under Google
// Benchmark, one untimed warm-up and 3 timed iterations per case, reporting the median.
// A forward pass is ~4.1 GFLOP per image and a training step ~3x that. Filter: --benchmark_filter=resnet
#include <benchmark/benchmark.h>

#include "apps/cli/bench.h"

namespace {

void bench_resnet50(benchmark::State& state, const char* mode) {
  hotlap::ResNetBenchConfig config;
  config.mode = mode;
  config.batch = state.range(0);
  config.warmup = 1;
  config.iters = 3;
  hotlap::ResNetBenchResult result;
  for (auto _ : state) {
    result = hotlap::run_resnet_bench(config);
    state.SetIterationTime(result.ms_median / 1000.0);  // Time column: the median iteration
  }
  state.counters["ms"] = result.ms_median;
  state.counters["images/s"] = result.images_per_s;
  state.counters["peak_rss_MB"] = result.peak_rss_mb;
}

BENCHMARK_CAPTURE(bench_resnet50, infer, "infer")
    ->Name("resnet50/infer/224")
    ->Arg(1)
    ->Arg(8)
    ->ArgName("batch")
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

BENCHMARK_CAPTURE(bench_resnet50, train_step, "train")
    ->Name("resnet50/train_step_sgd/224")
    ->Arg(8)
    ->ArgName("batch")
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

}  // namespace
