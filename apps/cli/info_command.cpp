// hotlap info (the compiled backends, the CPU level, the devices found) and hotlap ops (every op and
// what runs it on each device, backend and dtype): what this build of hotlap has.
#include <cstdio>
#include <string>

#include "apps/cli/commands.h"
#include "apps/cli/op_matrix.h"
#include "apps/common/compute_threads.h"
#include "kernels/choice.h"
#include "kernels/comm.h"
#include "kernels/cpu_isa.h"
#include "kernels/device.h"
#include "kernels/gemm.h"
#include "nn/runtime/dispatch.h"

namespace hotlap::cli {

namespace {

int run_info() {
  namespace k = kernels;
  std::printf("hotlap\n");
  const std::string core = k::cpu::openblas_core();
  std::printf("  cpu gemm:  %s (openblas %s)\n", k::cpu::cpu_gemm_name(k::cpu::cpu_gemm_impl()),
              !k::cpu::openblas_available() ? "not compiled in"
              : core.empty()               ? "compiled in"
                                           : ("compiled in, " + core + " kernels").c_str());
  const k::cpu::CpuIsa level = k::cpu::active_cpu_isa();
  if (k::cpu::openblas_available() && k::cpu::openblas_below(core, level)) {
    // An OpenBLAS older than the CPU: it fell back to old kernels (kernels/gemm.h: default_cpu_gemm).
    const bool stepped_around = k::cpu::cpu_gemm_impl() == k::CpuGemm::blocked;
    std::printf("             (OpenBLAS's %s kernels are below the %s level%s\n"
                "             OPENBLAS_CORETYPE=%s makes OpenBLAS pick the right ones)\n",
                core.c_str(), k::cpu::cpu_isa_name(level),
                stepped_around ? ": the\n             hand-written GEMM runs unless HOTLAP_GEMM=openblas;" : ";",
                level == k::cpu::CpuIsa::avx512 ? "SkylakeX" : "Haswell");
  }
  std::printf("  cpu isa:   %s (the level the CPU kernels run at)\n", k::cpu::cpu_isa_name(level));
  std::printf("  cpu best:  %s (detected on this CPU)\n", k::cpu::cpu_isa_name(k::cpu::detected_cpu_isa()));
  std::printf("  cpu cap:   HOTLAP_CPU_ISA=baseline|avx2|avx512 forces a lower level\n");
  std::printf("  kernels:   %s\n", k::kernel_options().reference
                                       ? "reference: the readable ones (HOTLAP_REFERENCE=1)"
                                       : "chosen per shape for speed (HOTLAP_REFERENCE=1: the readable ones)");
  set_compute_threads(0);
  std::printf("  threads:   %s\n", compute_threads_description().c_str());
  std::printf("  mpi:       %s\n", k::comm::mpi_compiled()
                                       ? (k::comm::mpi_version() + ", compiled in").c_str()
                                       : "not compiled in (one process)");
  std::printf("  nccl:      %s\n", k::comm::nccl_compiled()
                                       ? (k::comm::nccl_version() + ", compiled in (GPU gradients' all-reduce)").c_str()
                                       : "not compiled in (GPU gradients go through host memory)");
  std::printf("  cuda:      %s\n", k::cuda_compiled() ? "compiled in" : "not compiled in");
  std::printf("  cudnn:     %s\n", k::cudnn_compiled() ? "compiled in" : "not compiled in");
  std::printf("  devices:   %s\n", k::cuda_device_summary().c_str());
  if (k::cuda_compiled()) {
    const dispatch::Backends b = dispatch::backends();
    std::printf("  gpu conv:  %s\n", dispatch::conv_backend_description());
    std::printf("  gpu batchnorm: %s\n", dispatch::backend_name(b.batch_norm));
    std::string versions = k::cuda_versions();
    for (size_t start = 0; start < versions.size();) {
      size_t end = versions.find('\n', start);
      if (end == std::string::npos) end = versions.size();
      std::printf("  %s\n", versions.substr(start, end - start).c_str());
      start = end + 1;
    }
  }
  return 0;
}

}  // namespace

Command add_info_command(CLI::App& app) {
  auto* info = app.add_subcommand("info", "show the compiled backends and the devices found");
  info->footer("Example:\n  hotlap info");
  return {info, [](const CommandLine&) { return run_info(); }, true};  // read-only: each rank's view
}

Command add_ops_command(CLI::App& app) {
  auto* ops = app.add_subcommand("ops", "list every op and what runs it on each device, backend and dtype");
  ops->footer("Example:\n  hotlap ops");
  return {ops, [](const CommandLine&) {
            std::fputs(op_matrix_text().c_str(), stdout);
            return 0;
          }};
}

}  // namespace hotlap::cli
