// Convolution (NHWC/OHWI) on ResNet-50 layer shapes at batch 8. Two families:
//   conv/<pass>/<layer>/<gemm>        im2col + GEMM: forward, backward data and backward filter, with
//                                     the GEMM underneath named (OpenBLAS when built in, and the
//                                     hand-written blocked GEMM)
//   conv_algo/<pass>/<layer>/<algo>   the 3x3 stride-1 layers, im2col against Winograd F(4x4, 3x3)
//                                     (forward and backward data; the default GEMM)
//   conv_1x1/<pass>/b<N>/<layer>/<gemm>  every distinct 1x1 convolution of ResNet-50 (the strided
//                                     downsamples included) at batch 8 and 1, on each GEMM alone and
//                                     "auto" (the choice by shape class, kernels/choice.h); no bias. The
//                                     counter "calls" says how often the shape occurs in one pass
//                                     over the network
//   conv_kxk/<pass>/b<N>/<layer>/<gemm>  the same for the other convolutions of ResNet-50 (the stem and
//                                     the 3x3s; "auto" runs Winograd where the network would)
// GFLOP/s always counts the direct convolution's 2*N*P*Q*K*R*S*C FLOPs, so Winograd's figure is an
// effective rate (it does 4x fewer multiplies). Filter: --benchmark_filter=conv
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "kernels/choice.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"

namespace {

using hotlap::kernels::ConvShape;
using hotlap::kernels::CpuConv;
using hotlap::kernels::CpuGemm;
namespace cpu = hotlap::kernels::cpu;

struct Layer {
  const char* name;
  ConvShape shape;
};

ConvShape make(int64_t h, int64_t c, int64_t k, int64_t r, int64_t stride, int64_t pad,
               int64_t n = 8) {
  ConvShape s;
  s.n = n;
  s.h = s.w = h;
  s.c = c;
  s.k = k;
  s.r = s.s = r;
  s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = pad;
  return s;
}

const Layer kLayers[] = {
    {"stem_7x7s2_224x224x3_64", make(224, 3, 64, 7, 2, 3)},
    {"layer1_1x1_56x56x64_64", make(56, 64, 64, 1, 1, 0)},
    {"layer1_3x3_56x56x64_64", make(56, 64, 64, 3, 1, 1)},
    {"layer2_3x3s2_56x56x128_128", make(56, 128, 128, 3, 2, 1)},
    {"layer3_1x1_14x14x256_1024", make(14, 256, 1024, 1, 1, 0)},
};

// The 3x3 stride-1 pad-1 layers of ResNet-50, which Winograd can take.
const Layer kWinogradLayers[] = {
    {"layer1_3x3_56x56x64_64", make(56, 64, 64, 3, 1, 1)},
    {"layer2_3x3_28x28x128_128", make(28, 128, 128, 3, 1, 1)},
    {"layer3_3x3_14x14x256_256", make(14, 256, 256, 3, 1, 1)},
    {"layer4_3x3_7x7x512_512", make(7, 512, 512, 3, 1, 1)},
};

// The 1x1 convolutions of ResNet-50 v1.5 at 224x224 (input size, C -> K, stride), with how many
// times each occurs in the network: bottleneck conv1 (C -> planes), conv3 (planes -> 4 planes) and
// the downsample of each stage's first block (stride 2 from layer2 on).
struct Pointwise {
  const char* name;
  int64_t h, c, k, stride, calls;
};
const Pointwise kPointwise[] = {
    {"layer1_56x56x64_64", 56, 64, 64, 1, 1},
    {"layer1_56x56x64_256", 56, 64, 256, 1, 4},
    {"layer1_56x56x256_64", 56, 256, 64, 1, 2},
    {"layer2_56x56x256_128", 56, 256, 128, 1, 1},
    {"layer2_56x56x256_512_s2", 56, 256, 512, 2, 1},
    {"layer2_28x28x128_512", 28, 128, 512, 1, 4},
    {"layer2_28x28x512_128", 28, 512, 128, 1, 3},
    {"layer3_28x28x512_256", 28, 512, 256, 1, 1},
    {"layer3_28x28x512_1024_s2", 28, 512, 1024, 2, 1},
    {"layer3_14x14x256_1024", 14, 256, 1024, 1, 6},
    {"layer3_14x14x1024_256", 14, 1024, 256, 1, 5},
    {"layer4_14x14x1024_512", 14, 1024, 512, 1, 1},
    {"layer4_14x14x1024_2048_s2", 14, 1024, 2048, 2, 1},
    {"layer4_7x7x512_2048", 7, 512, 2048, 1, 3},
    {"layer4_7x7x2048_512", 7, 2048, 512, 1, 2},
};

// The other convolutions of ResNet-50 v1.5 at 224x224 (im2col + GEMM, or Winograd where the choice
// takes it): the stem, the strided 3x3 of each stage's first block and the stride-1 3x3s, with how
// many times each occurs.
struct Spatial {
  const char* name;
  int64_t h, c, k, r, stride, calls;
};
const Spatial kSpatial[] = {
    {"stem_224x224x3_64_7x7s2", 224, 3, 64, 7, 2, 1},
    {"layer1_56x56x64_64_3x3", 56, 64, 64, 3, 1, 3},
    {"layer2_56x56x128_128_3x3s2", 56, 128, 128, 3, 2, 1},
    {"layer2_28x28x128_128_3x3", 28, 128, 128, 3, 1, 3},
    {"layer3_28x28x256_256_3x3s2", 28, 256, 256, 3, 2, 1},
    {"layer3_14x14x256_256_3x3", 14, 256, 256, 3, 1, 5},
    {"layer4_14x14x512_512_3x3s2", 14, 512, 512, 3, 2, 1},
    {"layer4_7x7x512_512_3x3", 7, 512, 512, 3, 1, 2},
};

enum class Pass { forward, backward_data, backward_filter };
const char* pass_name(Pass p) {
  switch (p) {
    case Pass::forward: return "forward";
    case Pass::backward_data: return "backward_data";
    case Pass::backward_filter: return "backward_filter";
  }
  return "?";
}

// by_shape: the 1x1 convolutions' choice of GEMM by shape class (kernels/conv.h) on, as in the
// network; off, every GEMM runs on impl.
void bench_conv(benchmark::State& state, ConvShape s, Pass pass, CpuGemm impl, CpuConv algo,
                bool by_shape, int64_t calls) {
  const CpuGemm saved = cpu::cpu_gemm_impl();
  const CpuConv saved_algo = cpu::cpu_conv_impl();
  const bool saved_by_shape = cpu::cpu_conv_gemm_by_shape();
  cpu::set_cpu_gemm(impl);
  cpu::set_cpu_conv_gemm_by_shape(by_shape);
  cpu::set_cpu_conv(algo);
  const size_t nx = size_t(s.n * s.h * s.w * s.c), nw = size_t(s.k * s.r * s.s * s.c),
               ny = size_t(s.n * s.p() * s.q() * s.k);
  std::vector<float> x(nx, 0.5f), w(nw, 0.01f), y(ny, 0.0f), dy(ny, 0.25f), dx(nx, 0.0f),
      dw(nw, 0.0f), bias_v(size_t(s.k), 0.1f), dbias_v(size_t(s.k), 0.0f),
      ws(size_t(cpu::conv2d_workspace_floats(s)) + 1);
  // The 1x1 family (calls > 0) runs without a bias, as in ResNet-50: it times the GEMM alone.
  float* bias = calls > 0 ? nullptr : bias_v.data();
  float* dbias = calls > 0 ? nullptr : dbias_v.data();
  for (auto _ : state) {
    switch (pass) {
      case Pass::forward:
        cpu::conv2d_forward(s, x.data(), w.data(), bias, y.data(), ws.data());
        break;
      case Pass::backward_data:
        cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), ws.data());
        break;
      case Pass::backward_filter:
        cpu::conv2d_backward_filter(s, x.data(), dy.data(), dw.data(), dbias, ws.data());
        break;
    }
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(double(s.flops()),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  if (calls > 0) state.counters["calls"] = double(calls);
  state.SetLabel(std::string("gemm=") + cpu::cpu_gemm_name(impl) + (by_shape ? " by shape" : "") +
                 (cpu::conv2d_uses_winograd(s) ? " winograd" : ""));
  cpu::set_cpu_gemm(saved);
  cpu::set_cpu_conv(saved_algo);
  cpu::set_cpu_conv_gemm_by_shape(saved_by_shape);
}

const bool registered = [] {
  std::vector<CpuGemm> impls;
  if (cpu::openblas_available()) impls.push_back(CpuGemm::openblas);
  impls.push_back(CpuGemm::blocked);
  for (CpuGemm impl : impls)
    for (const Layer& layer : kLayers)
      for (Pass pass : {Pass::forward, Pass::backward_data, Pass::backward_filter}) {
        const std::string name = std::string("conv/") + pass_name(pass) + "/" + layer.name + "/" +
                                 cpu::cpu_gemm_name(impl);
        benchmark::RegisterBenchmark(name.c_str(), bench_conv, layer.shape, pass, impl,
                                     CpuConv::im2col, false, int64_t{0})
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.2)
            ->UseRealTime();
      }
  for (const Layer& layer : kWinogradLayers)
    for (Pass pass : {Pass::forward, Pass::backward_data})
      for (CpuConv algo : {CpuConv::im2col, CpuConv::winograd}) {
        const std::string name = std::string("conv_algo/") + pass_name(pass) + "/" + layer.name +
                                 "/" + cpu::cpu_conv_name(algo);
        benchmark::RegisterBenchmark(name.c_str(), bench_conv, layer.shape, pass,
                                     cpu::cpu_gemm_impl(), algo, false, int64_t{0})
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.2)
            ->UseRealTime();
      }
  // The GEMM choice by shape class (kernels/choice.h) against each GEMM alone, on every convolution
  // of the network: conv_1x1/... and conv_kxk/... (the "auto" variant is what the network runs).
  auto by_shape_family = [&](const std::string& family, const std::string& layer, const ConvShape& s, int64_t calls) {
    for (Pass pass : {Pass::forward, Pass::backward_data, Pass::backward_filter})
      for (size_t v = 0; v <= impls.size(); ++v) {
        // Each GEMM alone, then (with OpenBLAS built in) "auto": the choice by shape class.
        if (v == impls.size() && !cpu::openblas_available()) continue;
        const bool by_shape = v == impls.size();
        const CpuGemm impl = by_shape ? CpuGemm::openblas : impls[v];
        const std::string name = family + "/" + pass_name(pass) + "/b" + std::to_string(s.n) + "/" + layer + "/" +
                                 (by_shape ? "auto" : cpu::cpu_gemm_name(impl));
        benchmark::RegisterBenchmark(name.c_str(), bench_conv, s, pass, impl, CpuConv::automatic, by_shape, calls)
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.1)
            ->UseRealTime();
      }
  };
  for (int64_t batch : {8, 1}) {
    for (const Pointwise& pw : kPointwise)
      by_shape_family("conv_1x1", pw.name, make(pw.h, pw.c, pw.k, 1, pw.stride, 0, batch), pw.calls);
    for (const Spatial& sp : kSpatial)
      by_shape_family("conv_kxk", sp.name, make(sp.h, sp.c, sp.k, sp.r, sp.stride, sp.r / 2, batch), sp.calls);
  }
  return true;
}();

}  // namespace
