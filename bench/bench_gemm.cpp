// GEMM: the hand-written blocked GEMM against OpenBLAS on square row-major problems.
//
// 2*N^3 FLOPs over 12*N^2 bytes: compute-bound at every size here, so GFLOP/s against the FMA peak
// (2 FMA ports x 16 lanes x 2 FLOPs x clock x cores; ~330 GFLOP/s on the 2-core 2.6 GHz dev box) is
// the figure of merit. Filter: --benchmark_filter=gemm
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "kernels/gemm.h"

namespace {

using hotlap::kernels::CpuGemm;
using hotlap::kernels::GemmArgs;
namespace cpu = hotlap::kernels::cpu;

void bench_gemm(benchmark::State& state, CpuGemm impl) {
  const int64_t n = state.range(0);
  std::vector<float> a(size_t(n * n), 0.5f), b(size_t(n * n), 0.25f), c(size_t(n * n), 0.0f);
  GemmArgs g;
  g.m = g.n = g.k = n;
  g.a = a.data();
  g.b = b.data();
  g.c = c.data();
  g.lda = g.ldb = g.ldc = n;
  for (auto _ : state) {
    if (impl == CpuGemm::openblas)
      cpu::gemm_openblas(g);
    else
      cpu::gemm_blocked(g);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(n) * double(n) * double(n),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(impl == CpuGemm::openblas
                     ? std::string("openblas")
                     : std::string("blocked/") + cpu::gemm_blocked_kernel_name());
}

const bool registered = [] {
  std::vector<CpuGemm> impls{CpuGemm::blocked};
  if (cpu::openblas_available()) impls.push_back(CpuGemm::openblas);
  for (CpuGemm impl : impls) {
    const std::string name = std::string("gemm/") + cpu::cpu_gemm_name(impl);
    benchmark::RegisterBenchmark(name.c_str(), bench_gemm, impl)
        ->Arg(256)
        ->Arg(512)
        ->Arg(1024)
        ->Arg(2048)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace
