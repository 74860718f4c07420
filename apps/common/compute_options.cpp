// The apps' compute options: see compute_options.h.
#include "apps/common/compute_options.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "apps/common/compute_threads.h"
#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"
#include "nn/runtime/caching_allocator.h"
#include "nn/runtime/dispatch.h"

namespace hotlap {

Device apply_compute_options(const ComputeOptions& o, bool deterministic) {
  Device device = Device::cpu;
  if (o.device == "cuda") {
    HOTLAP_CHECK(kernels::cuda_device_count() > 0, "--device cuda: no usable GPU (",
                 kernels::cuda_device_summary(), ")");
    device = Device::cuda;
  } else if (o.device == "auto") {
    device = kernels::cuda_device_count() > 0 ? Device::cuda : Device::cpu;
  } else {
    HOTLAP_CHECK(o.device == "cpu", "--device: unknown device '", o.device, "' (auto, cpu or cuda)");
  }

  if (o.precision == "fp32") {
    kernels::set_math_mode(kernels::MathMode::fp32);
  } else if (o.precision == "tf32") {
    kernels::set_math_mode(kernels::MathMode::tf32);
  } else if (o.precision == "bf16") {
    // bf16 activations and weight copies; fp32 master weights, optimizer state, BN statistics. On
    // the cpu an emulation (slow, for checking).
    kernels::set_math_mode(kernels::MathMode::bf16);
  } else {
    throw_error("--precision: unknown precision '", o.precision, "' (fp32, tf32 or bf16)");
  }
  // The CPU kernels give the same bits at any thread count (their sums are split by the shapes alone),
  // so a deterministic run keeps the adaptive thread count; on the GPU it restricts cuDNN's choice.
  kernels::set_deterministic(deterministic);
  HOTLAP_CHECK(o.compute_threads >= 0, "--compute-threads must be at least 1");
  set_compute_threads(o.compute_threads);

  dispatch::Backends b = dispatch::backends();
  if (!o.conv.empty()) b.conv = dispatch::parse_backend("--conv", o.conv.c_str());
  if (!o.batch_norm.empty()) b.batch_norm = dispatch::parse_backend("--batchnorm", o.batch_norm.c_str());
  HOTLAP_CHECK(device == Device::cpu || kernels::cudnn_compiled(),
               "--device cuda: this build has no cuDNN/cuBLAS backend, which GPU convolutions and linear "
               "layers need (rebuild with cuDNN found and HOTLAP_CUDNN=ON)");
  dispatch::set_backends(b);
  // GPU-only choices on the cpu change nothing; said once, so that a user does not read a CPU run
  // as a tf32 or cuDNN one.
  if (device == Device::cpu) {
    if (o.precision == "tf32")
      std::fprintf(stderr, "hotlap: note: --precision tf32 is for GPU tensor cores; on the cpu the maths is fp32\n");
    for (const auto& [option, value] : {std::pair{"--conv", o.conv}, std::pair{"--batchnorm", o.batch_norm}})
      if (value == "cudnn")
        std::fprintf(stderr, "hotlap: note: %s cudnn chooses a GPU backend; the cpu runs hotlap's own kernels\n",
                     option);
  }
  return device;
}

std::string compute_description(Device device) {
  if (device == Device::cpu) return "cpu";
  const dispatch::Backends b = dispatch::backends();
  return "cuda: " + kernels::cuda_device_summary() + " (conv " + dispatch::conv_backend_description() +
         ", batchnorm " + dispatch::backend_name(b.batch_norm) + ", " +
         kernels::math_mode_name(kernels::math_mode()) + ")";
}

std::string out_of_memory_advice(int64_t batch, size_t state_bytes) {
  const AllocatorStats s = cuda_allocator().stats();
  const double total = static_cast<double>(kernels::cuda::device_memory_info().total_bytes);
  if (batch < 2 || s.in_use <= state_bytes) return "a smaller --batch needs proportionally less memory";
  const double per_image = static_cast<double>(s.in_use - state_bytes) / static_cast<double>(batch);
  const double room = 0.9 * total - static_cast<double>(state_bytes);
  const auto fit = std::max<int64_t>(1, static_cast<int64_t>(room / per_image / 2));
  return "at batch " + std::to_string(batch) + " the step had " + std::to_string(s.in_use >> 20) +
         " MiB in use when it failed; try --batch " + std::to_string(std::min(fit, batch - 1)) + " or smaller";
}

void select_rank_device(const kernels::comm::World& world, const ComputeOptions& options) {
  if (world.size == 1 || options.device == "cpu") return;
  if (const int gpus = kernels::cuda_device_count(); gpus > 0) kernels::cuda_select_device(world.local_rank % gpus);
}

}  // namespace hotlap
