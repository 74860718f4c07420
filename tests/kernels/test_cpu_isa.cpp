// The instruction-set levels of the CPU kernels (kernels/cpu_isa.h): HOTLAP_CPU_ISA's parsing, and
// every run-time-dispatched kernel run at each level this machine supports against the baseline's
// results. Batch norm and the Winograd transforms promise the same bits at every level; the GEMM's
// micro-kernels agree to within fp32 rounding (see the GEMM case for the bound).
//
// The whole kernel, nn and resnet suites also run at each lower level under ctest (HOTLAP_CPU_ISA,
// tests/CMakeLists.txt); these cases compare the levels with each other directly, in one process.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/choice.h"
#include "kernels/conv.h"
#include "kernels/conv_shapes.h"
#include "kernels/cpu_isa.h"
#include "kernels/error.h"
#include "kernels/gemm.h"
#include "test_util.h"

namespace {

using hotlap::kernels::BatchNormEpilogue;
using hotlap::kernels::BatchNormShape;
using hotlap::kernels::ConvShape;
using hotlap::kernels::CpuConv;
using hotlap::kernels::CpuGemm;
using hotlap::kernels::GemmArgs;
using hotlap::kernels::cpu::CpuIsa;
namespace cpu = hotlap::kernels::cpu;
using hotlap::test::conv_shape;
using hotlap::test::describe;
using hotlap::test::random_floats;

constexpr CpuIsa kLevels[] = {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512};

// For doctest's messages, which print a const char* as a pointer.
std::string level(CpuIsa isa) { return cpu::cpu_isa_name(isa); }

// Restores the level, the GEMM (and its pinned micro-kernel) and the convolution algorithm when a
// test ends, pass or fail.
struct KernelChoiceGuard {
  CpuIsa isa = cpu::active_cpu_isa();
  CpuGemm gemm = cpu::cpu_gemm_impl();
  CpuConv conv = cpu::cpu_conv_impl();
  ~KernelChoiceGuard() {
    cpu::set_cpu_isa(isa);
    cpu::set_cpu_gemm(gemm);
    cpu::gemm_blocked_use_kernel(nullptr);
    cpu::set_cpu_conv(conv);
  }
};

// The levels this machine can run, baseline first.
std::vector<CpuIsa> runnable_levels() {
  std::vector<CpuIsa> v;
  for (CpuIsa isa : kLevels)
    if (isa <= cpu::detected_cpu_isa()) v.push_back(isa);
  return v;
}

// `run` at every runnable level; every level's outputs must have the baseline's bits.
void check_same_bits_at_every_level(const std::function<std::vector<float>()>& run) {
  KernelChoiceGuard guard;
  cpu::set_cpu_isa(CpuIsa::baseline);
  const std::vector<float> baseline = run();
  for (CpuIsa isa : runnable_levels()) {
    cpu::set_cpu_isa(isa);
    const std::vector<float> got = run();
    INFO("level ", level(isa));
    REQUIRE(got.size() == baseline.size());
    CHECK(std::memcmp(got.data(), baseline.data(), got.size() * sizeof(float)) == 0);
  }
}

// The message of the hotlap::Error that HOTLAP_CPU_ISA=value gives on a CPU whose best is
// `detected` ("" if it gives none).
std::string error_of(const char* value, CpuIsa detected) {
  try {
    cpu::cpu_isa_from_env_value(value, detected);
  } catch (const hotlap::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("cpu isa: HOTLAP_CPU_ISA names a level the CPU has, and anything else is one clear error") {
  for (CpuIsa detected : kLevels) {
    INFO("detected ", level(detected));
    // Unset, empty or auto: the CPU's best.
    CHECK(cpu::cpu_isa_from_env_value(nullptr, detected) == detected);
    CHECK(cpu::cpu_isa_from_env_value("", detected) == detected);
    CHECK(cpu::cpu_isa_from_env_value("auto", detected) == detected);
    for (CpuIsa asked : kLevels) {
      const char* name = cpu::cpu_isa_name(asked);
      if (asked <= detected) {
        CHECK(cpu::cpu_isa_from_env_value(name, detected) == asked);
      } else {  // above the CPU: the error names the variable, the value and what the CPU has
        const std::string e = error_of(name, detected);
        INFO(e);
        CHECK(contains(e, std::string("HOTLAP_CPU_ISA=") + name));
        CHECK(contains(e, "which this CPU lacks"));
        const std::string supported = detected == CpuIsa::avx2 ? "baseline, avx2 (" : "baseline (";
        CHECK(contains(e, "it supports " + supported));
      }
    }
    for (const char* bad : {"avx1024", "AVX2", "sse4.2", " avx2", "avx512f"}) {
      const std::string e = error_of(bad, detected);
      INFO(e);
      CHECK(contains(e, std::string("HOTLAP_CPU_ISA=") + bad + " is not an instruction-set level"));
      CHECK(contains(e, "valid values: auto, baseline, avx2, avx512"));
      CHECK(contains(e, "this CPU supports baseline"));
    }
  }
  CHECK(std::string(cpu::cpu_isa_name(CpuIsa::baseline)) == "baseline");
  CHECK(std::string(cpu::cpu_isa_name(CpuIsa::avx2)) == "avx2");
  CHECK(std::string(cpu::cpu_isa_name(CpuIsa::avx512)) == "avx512");
  MESSAGE("this CPU: ", level(cpu::detected_cpu_isa()), ", running at ", level(cpu::active_cpu_isa()));
}

TEST_CASE("cpu isa: set_cpu_isa takes the levels this CPU has and refuses the others") {
  KernelChoiceGuard guard;
  for (CpuIsa isa : kLevels) {
    if (isa <= cpu::detected_cpu_isa()) {
      cpu::set_cpu_isa(isa);
      CHECK(cpu::active_cpu_isa() == isa);
    } else {
      const CpuIsa before = cpu::active_cpu_isa();
      CHECK_THROWS_AS(cpu::set_cpu_isa(isa), hotlap::Error);
      CHECK(cpu::active_cpu_isa() == before);
    }
  }
}

TEST_CASE("cpu isa: the blocked GEMM's micro-kernel is the best the active level allows") {
  KernelChoiceGuard guard;
  const char* best_at[] = {"generic", "avx2", "avx512"};  // by level
  for (CpuIsa isa : runnable_levels()) {
    cpu::set_cpu_isa(isa);
    INFO("level ", level(isa));
    CHECK(std::string(cpu::gemm_blocked_kernel_name()) == best_at[int(isa)]);
    for (CpuIsa other : kLevels)  // a kernel above the level cannot be pinned
      CHECK(cpu::gemm_blocked_use_kernel(best_at[int(other)]) == (other <= isa));
    cpu::gemm_blocked_use_kernel(nullptr);
  }
}

TEST_CASE("cpu isa: batch norm gives the same bits at every level") {
  // Rows above the threading threshold and channel counts off every vector width (a 4-, 8- and
  // 16-wide loop each leave a different tail), a mean far from zero, the residual + ReLU epilogue.
  for (int64_t c : {1, 7, 17, 64, 83}) {
    const int64_t rows = 4099;
    INFO("rows ", rows, " c ", c);
    const auto x = random_floats(size_t(rows * c), 900 + uint64_t(c), -3.0f, 5.0f);
    const auto dy = random_floats(size_t(rows * c), 901 + uint64_t(c));
    const auto residual = random_floats(size_t(rows * c), 902 + uint64_t(c));
    const auto gamma = random_floats(size_t(c), 903 + uint64_t(c), 0.5f, 1.5f);
    const auto beta = random_floats(size_t(c), 904 + uint64_t(c));
    const auto running_var = random_floats(size_t(c), 905 + uint64_t(c), 0.5f, 2.0f);
    check_same_bits_at_every_level([&] {
      const BatchNormShape s{rows, c};
      std::vector<float> y(rows * c), y_eval(rows * c), dx(rows * c), dx_eval(rows * c);
      std::vector<float> mean(c), invstd(c), run_mean(c, 0.5f), run_var = running_var;
      std::vector<float> dgamma(c, 0.25f), dbeta(c, -0.25f);
      const BatchNormEpilogue epilogue{residual.data(), true};
      cpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, run_mean.data(),
                                   run_var.data(), y.data(), mean.data(), invstd.data(), epilogue);
      cpu::batch_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                              dgamma.data(), dbeta.data());
      cpu::batch_norm_forward_eval(s, x.data(), gamma.data(), beta.data(), run_mean.data(), run_var.data(),
                                  1e-5f, y_eval.data(), epilogue);
      cpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma.data(), run_mean.data(), run_var.data(),
                                   1e-5f, dx_eval.data(), dgamma.data(), dbeta.data());
      std::vector<float> all;
      for (const auto* v : {&y, &mean, &invstd, &run_mean, &run_var, &dx, &dgamma, &dbeta, &y_eval,
                            &dx_eval})
        all.insert(all.end(), v->begin(), v->end());
      return all;
    });
  }
}

TEST_CASE("cpu isa: Winograd convolution gives the same bits at every level") {
  // The transforms are dispatched; the GEMMs between them are pinned to the generic micro-kernel
  // (built for the baseline only), so any difference comes from a transform. Channel counts off the
  // 16-wide vectors, partial tiles, forward (F(2x2)) and backward data (F(4x4)).
  const ConvShape shapes[] = {conv_shape(2, 7, 9, 17, 5, 3, 3, 1, 1),
                              conv_shape(1, 13, 6, 33, 31, 3, 3, 1, 1),
                              conv_shape(4, 26, 26, 48, 80, 3, 3, 1, 1)};
  uint64_t seed = 950;
  for (const ConvShape& s : shapes) {
    INFO(describe(s));
    const auto x = random_floats(size_t(s.n * s.h * s.w * s.c), seed++);
    const auto w = random_floats(size_t(s.k * 9 * s.c), seed++);
    const auto bias = random_floats(size_t(s.k), seed++);
    const auto dy = random_floats(size_t(s.n * s.p() * s.q() * s.k), seed++);
    check_same_bits_at_every_level([&] {
      cpu::set_cpu_conv(CpuConv::winograd);
      cpu::set_cpu_gemm(CpuGemm::blocked);
      REQUIRE(cpu::gemm_blocked_use_kernel("generic"));
      REQUIRE(cpu::conv2d_uses_winograd(s));
      std::vector<float> ws(size_t(cpu::conv2d_workspace_floats(s)));
      std::vector<float> y(dy.size()), dx(x.size());
      cpu::conv2d_forward(s, x.data(), w.data(), bias.data(), y.data(), ws.data());
      cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), ws.data());
      y.insert(y.end(), dx.begin(), dx.end());
      return y;
    });
  }
}

TEST_CASE("cpu isa: the GEMM at every level agrees with the baseline's to fp32 rounding") {
  // Each level's micro-kernel sums the same k products into each element (in the same order, today),
  // but the AVX2 and AVX-512 kernels fuse each multiply into its addition (one rounding) where the
  // baseline's rounds the product first: the results differ in the last bits. The classic bound
  // (Higham, Accuracy and Stability of Numerical Algorithms, 3.1) holds for any summation order
  // and any CPU: an fp32 sum of n rounded terms is within gamma_n * sum |terms| of the exact one,
  // gamma_n = n*u / (1 - n*u), u = 2^-24. Here n = k plus two roundings per 256-deep block of k
  // (alpha, and the accumulation into C) plus two for beta * C; two levels differ by at most
  // twice that. A wrong index or a missed edge gives an error of the size of the terms themselves.
  struct Case {
    int64_t m, n, k;
    bool ta, tb;
    float alpha, beta;
  };
  const Case cases[] = {{1, 1, 1, false, false, 1.0f, 0.0f},      {13, 35, 7, false, true, 1.0f, 0.0f},
                        {50, 70, 300, true, false, 0.5f, 1.0f},   {97, 33, 600, false, false, 1.0f, -0.5f},
                        {300, 200, 64, true, true, 2.0f, 0.25f},  {256, 256, 256, false, true, 1.0f, 0.0f}};
  KernelChoiceGuard guard;
  cpu::set_cpu_gemm(CpuGemm::blocked);
  uint64_t seed = 970;
  for (const Case& t : cases) {
    INFO("m ", t.m, " n ", t.n, " k ", t.k, " ta ", t.ta, " tb ", t.tb, " alpha ", t.alpha, " beta ",
         t.beta);
    const auto a = random_floats(size_t(t.m * t.k), seed++), b = random_floats(size_t(t.k * t.n), seed++);
    const auto c0 = random_floats(size_t(t.m * t.n), seed++);
    auto run = [&](CpuIsa isa) {
      cpu::set_cpu_isa(isa);
      GemmArgs g;
      g.trans_a = t.ta, g.trans_b = t.tb;
      g.m = t.m, g.n = t.n, g.k = t.k;
      g.alpha = t.alpha, g.beta = t.beta;
      g.a = a.data(), g.lda = t.ta ? t.m : t.k;
      g.b = b.data(), g.ldb = t.tb ? t.k : t.n;
      std::vector<float> c = c0;
      g.c = c.data(), g.ldc = t.n;
      cpu::gemm(g);
      return c;
    };
    // sum |terms| of every element: |alpha| * sum_p |a_ip b_pj| + |beta c_ij|.
    std::vector<double> magnitude(size_t(t.m * t.n));
    for (int64_t i = 0; i < t.m; ++i)
      for (int64_t j = 0; j < t.n; ++j) {
        double s = 0.0;
        for (int64_t p = 0; p < t.k; ++p) {
          const double aip = t.ta ? a[p * t.m + i] : a[i * t.k + p];
          const double bpj = t.tb ? b[j * t.k + p] : b[p * t.n + j];
          s += std::abs(aip * bpj);
        }
        magnitude[i * t.n + j] = std::abs(t.alpha) * s + std::abs(t.beta * c0[i * t.n + j]);
      }
    const double u = std::ldexp(1.0, -24), terms = double(t.k + 2 * ((t.k + 255) / 256) + 2);
    const double gamma = terms * u / (1.0 - terms * u);
    const std::vector<float> baseline = run(CpuIsa::baseline);
    for (CpuIsa isa : runnable_levels()) {
      const std::vector<float> got = run(isa);
      INFO("level ", level(isa), " (micro-kernel ", std::string(cpu::gemm_blocked_kernel_name()), ")");
      double worst = 0.0;  // the largest difference, in units of its bound
      for (size_t e = 0; e < got.size(); ++e)
        worst = std::max(worst, std::abs(double(got[e]) - baseline[e]) / (2.0 * gamma * magnitude[e]));
      CHECK(worst <= 1.0);
    }
  }
}
