// Where and how an app computes: the --device, --precision, --conv and --batchnorm options that
// `hotlap train`, `hotlap score` and `hotlap bench` share, turned into the process-wide settings of
// kernels/ (math mode, determinism) and nn/ (backends), and the device to put the model on.
//
//   --device auto|cpu|cuda   auto (the default): cuda when a GPU is present, otherwise cpu
//   --precision fp32|tf32|bf16
//                            tf32: convolutions and GEMMs on the GPU's tensor cores with 10-bit
//                            mantissa products (about 1e-3 relative error); no effect on the cpu.
//                            bf16: bf16 activations and weight copies, fp32 sums, master weights,
//                            optimizer state and batch-norm statistics (about 1e-2 relative); on
//                            the cpu partly an emulation: it works, slowly (for checking)
//   --conv, --batchnorm      native (hand-written) or cudnn, for GPU work; default from HOTLAP_CONV /
//                            HOTLAP_BATCHNORM, else native
//   --compute-threads N      the CPU's compute threads, fixed; by default as many as the machine has
//                            free, followed as it gets busy (apps/common/compute_threads.h). The CPU's
//                            results do not depend on it: every sum is split by the shapes alone
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/comm.h"
#include "nn/runtime/tensor.h"

namespace hotlap {

struct ComputeOptions {
  std::string device = "auto";
  std::string precision = "fp32";
  std::string conv;       // empty: keep the environment's choice
  std::string batch_norm;  // empty: keep the environment's choice
  int compute_threads = 0;  // 0: the policy of apps/common/compute_threads.h
};

// Checks the options and applies them (math mode, determinism, backends). Throws hotlap::Error with
// the reason on an unknown value, on --device cuda without a usable GPU, or on a precision this
// build cannot run.
Device apply_compute_options(const ComputeOptions& options, bool deterministic = false);

// Several ranks on a host with GPUs (mpirun): each rank takes the GPU its local rank names (local
// rank modulo the GPU count), before any other CUDA work. Nothing for one rank, for --device cpu, or
// without a GPU.
void select_rank_device(const kernels::comm::World& world, const ComputeOptions& options);

// One line for logs and reports: "cpu" or "cuda: NVIDIA H100 80GB HBM3 (conv cudnn, batchnorm native, tf32)".
std::string compute_description(Device device);

// After a GPU out-of-memory error in a training step at `batch`: a line suggesting a batch size that
// should fit, estimated from what was in use when it failed beyond `state_bytes` (the weights,
// gradients and optimizer state, which do not grow with the batch) and the device's memory. The
// activations were still growing when the step failed, so the estimate halves what it sees as room.
std::string out_of_memory_advice(int64_t batch, size_t state_bytes);

}  // namespace hotlap
