// Which x86-64 instruction-set level the hand-written CPU kernels run at (design rule 8: any x86-64
// CPU is a target). The library is compiled for the x86-64 baseline; the kernels that gain from wider
// vectors are also built for AVX2 and AVX-512 and pick one of their builds at run time
// (kernels/cpu/isa_dispatch.h): batch norm's row passes, the Winograd transforms and the hand-written
// GEMM's micro-kernels. The level they use is the best this CPU has, unless HOTLAP_CPU_ISA caps it:
//
//   HOTLAP_CPU_ISA=baseline|avx2|avx512   (unset, empty or "auto": the best the CPU has)
//
// so that an AVX-512 machine can run, and test, the code an AVX2 laptop or a baseline x86-64 runs.
// The levels are ordered, each including the ones before it:
//   baseline  x86-64 as the compiler targets it by default (SSE2)
//   avx2      AVX2 and FMA (Haswell and later, Zen): what the GEMM's 6x16 micro-kernel needs
//   avx512    AVX-512F on top of those (Skylake-SP and later, Zen 4)
// OpenBLAS (HOTLAP_GEMM=openblas, the default GEMM when built in) does its own dispatch when it is
// loaded and ignores this cap: OPENBLAS_CORETYPE=Haswell makes it run its AVX2 kernels too (hotlap
// info names the ones it runs), and HOTLAP_GEMM=blocked puts the GEMM under the cap instead. A
// measurement of "an AVX2 machine" on an AVX-512 one needs both (tools/peer_resnet_cpu.py --isa avx2). A HOTLAP_NATIVE_ARCH build (-march=native,
// for benchmarks) compiles the baseline builds for the build machine as well, so there the lower
// levels are not what other CPUs run.
#pragma once

namespace hotlap::kernels::cpu {

enum class CpuIsa { baseline, avx2, avx512 };

// "baseline", "avx2", "avx512": the names HOTLAP_CPU_ISA takes.
const char* cpu_isa_name(CpuIsa isa);

// The best level this CPU and its operating system support (the OS must save the wide registers),
// asked once. Always baseline on other architectures.
CpuIsa detected_cpu_isa();

// The level HOTLAP_CPU_ISA=value asks for on a CPU whose best is `detected` (value may be null: the
// variable is unset). Throws hotlap::Error, naming the variable, the value and the levels this CPU
// supports, for an unknown name or a level above `detected`. No side effects: tests give it any
// detected level.
CpuIsa cpu_isa_from_env_value(const char* value, CpuIsa detected);

// The level every run-time-dispatched kernel uses: set_cpu_isa's when called, else HOTLAP_CPU_ISA's
// (read once). With a bad HOTLAP_CPU_ISA it throws on every call; the hotlap command calls it at
// start-up, and the kernels call it before they start their OpenMP threads.
CpuIsa active_cpu_isa();

// Overrides HOTLAP_CPU_ISA for the rest of the process (tests run every level in turn). A level
// above detected_cpu_isa() throws and changes nothing.
void set_cpu_isa(CpuIsa isa);

}  // namespace hotlap::kernels::cpu
