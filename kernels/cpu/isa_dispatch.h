// One kernel body, built for each instruction-set level, and the build for the level that
// active_cpu_isa() says (kernels/cpu_isa.h).
//
// The library is compiled for the x86-64 baseline. A kernel that gains from wider vectors writes its
// body once, as an always_inline function, and gets it compiled three times: inlined into wrappers
// marked __attribute__((target("avx512f,avx2,fma"))), target("avx2,fma") and none, so the compiler
// vectorises the same source with 16-, 8- and 4-wide registers. The caller asks for the wrapper of the
// active level and calls it through a pointer:
//
//   __attribute__((always_inline)) inline void scale_rows(int64_t n, float* x) { ... }
//   const auto scale = built_for_active_cpu_isa<scale_rows>();  // before any OpenMP region
//   scale(n, x);
//
// Ask before starting OpenMP threads: active_cpu_isa() throws for a bad HOTLAP_CPU_ISA, and an
// exception cannot leave an OpenMP region (the program would abort instead of printing it).
//
// Unlike target_clones, which the loader resolves once from the CPU's features, this lets
// HOTLAP_CPU_ISA (and the tests, through set_cpu_isa) run the lower levels on any machine.
//
// Rounding: the target attributes make FMA instructions available, and GCC contracts a * b + c into
// one by default in C++. A file whose levels must round alike (bit-identical results at every level,
// as batch norm and the Winograd transforms promise) is compiled with -ffp-contract=off
// (CMakeLists.txt).
//
// Speed: time every level, not only the best. The first AVX2 build of the Winograd transforms ran
// slower than the baseline one, because GCC had turned its copy loops into memcpy and expanded those
// with 16-byte moves that the 32-byte loads after them could not be forwarded from (CMakeLists.txt,
// bench/NOTES.md).
#pragma once

#include "kernels/cpu_isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HOTLAP_CPU_ISA_X86 1
#endif

namespace hotlap::kernels::cpu {

// Body (a function, always_inline) compiled once per level.
template <auto Body, class Fn = decltype(Body)>
struct IsaBuilds;

template <auto Body, class R, class... Args>
struct IsaBuilds<Body, R (*)(Args...)> {
#ifdef HOTLAP_CPU_ISA_X86
  __attribute__((target("avx512f,avx2,fma"))) static R avx512(Args... args) { return Body(args...); }
  __attribute__((target("avx2,fma"))) static R avx2(Args... args) { return Body(args...); }
#endif
  static R baseline(Args... args) { return Body(args...); }
};

// The build of Body for the active level. Throws for a bad HOTLAP_CPU_ISA (see above).
template <auto Body>
decltype(Body) built_for_active_cpu_isa() {
  using Builds = IsaBuilds<Body>;
  switch (active_cpu_isa()) {
#ifdef HOTLAP_CPU_ISA_X86
    case CpuIsa::avx512: return Builds::avx512;
    case CpuIsa::avx2: return Builds::avx2;
#endif
    default: return Builds::baseline;
  }
}

}  // namespace hotlap::kernels::cpu
