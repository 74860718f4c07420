// The instruction-set level of the CPU kernels: detection, HOTLAP_CPU_ISA, and the test override
// (see kernels/cpu_isa.h for what the levels are and who dispatches on them).
#include "kernels/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/choice.h"
#include "kernels/error.h"

namespace hotlap::kernels::cpu {

namespace {

// Every level in order, with its HOTLAP_CPU_ISA name and what it needs of the CPU (for the error
// that says the CPU lacks it). Indexed by the enum's value.
struct Level {
  CpuIsa isa;
  const char* name;
  const char* features;
};
constexpr Level kLevels[] = {{CpuIsa::baseline, "baseline", "x86-64"},
                             {CpuIsa::avx2, "avx2", "AVX2 and FMA"},
                             {CpuIsa::avx512, "avx512", "AVX-512F"}};

const Level& level(CpuIsa isa) { return kLevels[static_cast<int>(isa)]; }

// "baseline, avx2": the levels up to and including `best`.
std::string levels_up_to(CpuIsa best) {
  std::string s;
  for (const Level& l : kLevels)
    if (l.isa <= best) s += (s.empty() ? "" : ", ") + std::string(l.name);
  return s;
}

// Why `isa` cannot run where the best level is `detected`.
std::string beyond_this_cpu(CpuIsa isa, CpuIsa detected) {
  return std::string(" needs ") + level(isa).features + ", which this CPU lacks; it supports " +
         levels_up_to(detected);
}

// -1 until set_cpu_isa is called; then the chosen level (overrides the environment).
std::atomic<int> g_isa_override{-1};

}  // namespace

const char* cpu_isa_name(CpuIsa isa) { return level(isa).name; }

CpuIsa detected_cpu_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // __builtin_cpu_supports reports a feature only when the OS also saves its registers (XGETBV).
  static const CpuIsa detected = [] {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f")) return CpuIsa::avx512;
    return avx2 ? CpuIsa::avx2 : CpuIsa::baseline;
  }();
  return detected;
#else
  return CpuIsa::baseline;
#endif
}

CpuIsa cpu_isa_from_env_value(const char* value, CpuIsa detected) {
  if (value == nullptr || *value == '\0' || std::strcmp(value, "auto") == 0) return detected;
  for (const Level& l : kLevels) {
    if (std::strcmp(value, l.name) != 0) continue;
    HOTLAP_CHECK(l.isa <= detected, "HOTLAP_CPU_ISA=", value, beyond_this_cpu(l.isa, detected),
                 " (unset HOTLAP_CPU_ISA for the best of them)");
    return l.isa;
  }
  throw_error("HOTLAP_CPU_ISA=", value, " is not an instruction-set level; valid values: auto, ",
              levels_up_to(CpuIsa::avx512), " (this CPU supports ", levels_up_to(detected), ")");
}

CpuIsa active_cpu_isa() {
  const int forced = g_isa_override.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<CpuIsa>(forced);
  // A throwing initialiser leaves the static uninitialised, so a bad HOTLAP_CPU_ISA throws every time.
  static const CpuIsa from_env = cpu_isa_from_environment();  // kernels/choice.h
  return from_env;
}

void set_cpu_isa(CpuIsa isa) {
  HOTLAP_CHECK(isa >= CpuIsa::baseline && isa <= CpuIsa::avx512, "set_cpu_isa: unknown level ",
               static_cast<int>(isa));
  HOTLAP_CHECK(isa <= detected_cpu_isa(), "set_cpu_isa(", cpu_isa_name(isa), ")",
               beyond_this_cpu(isa, detected_cpu_isa()));
  g_isa_override.store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace hotlap::kernels::cpu
