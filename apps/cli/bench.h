// `hotlap bench`: time a ResNet forward pass (inference) or training step on random data, on the CPU,
// and print one JSON line — the figures tools/peer_resnet_cpu.py sets beside PyTorch's.
//
//   hotlap bench --depth 50 --mode train --batch 8 --size 224 --warmup 2 --iters 10
//
// infer: eval mode under NoGradGuard, one forward per iteration.
// train: train mode; zero_grad, forward, MSE loss against random targets [N, 1000] (the 1000-way
//        ImageNet head), backward, SGD step (lr 1e-3, momentum 0.9, weight decay 1e-4).
// With HOTLAP_PROFILE=1 the profile of the timed iterations goes to stderr (per iteration), with a
// summary by kind of work (GEMM, im2col, col2im, batch norm, ...).
// Peak RSS is the process's (getrusage): run one configuration per process. With --device cuda every
// phase ends with a synchronisation of the compute stream, so the times are the GPU's, and the
// caching allocator's peak is reported as the GPU memory figure.
#pragma once

#include <cstdint>
#include <string>

#include "apps/common/compute_options.h"

namespace hotlap {

struct ResNetBenchConfig {
  int depth = 50;
  std::string mode = "train";  // "infer" or "train"
  int64_t batch = 8;
  int64_t size = 224;
  int64_t num_outputs = 1000;
  int warmup = 2;
  int iters = 10;
  // infer: fold batch norm into the convolutions first, as `hotlap score` does (train keeps it)
  bool fuse_bn = true;
  bool show_kernels = false;  // list the kernel each convolution layer ran on (stderr)
  // train with several ranks: the gradients' bucket size. Larger than the model (1000) makes one
  // bucket, sent only after backward: what sending during backward buys, measured.
  int bucket_mb = 25;
  uint64_t seed = 1;
  ComputeOptions compute{"cpu", "fp32", "", ""};  // --device etc.; the benchmark defaults to the cpu
};

struct ResNetBenchResult {
  double ms_median = 0, ms_mean = 0, ms_min = 0;
  double forward_ms = 0, backward_ms = 0, optimizer_ms = 0;  // medians; train only
  double allreduce_ms = 0;  // median; train with several ranks: what the gradients' all-reduce adds after
                            // backward (CPU; on GPUs it runs beside backward and its tail is in backward_ms)
  int ranks = 1;            // mpirun -np N: the batch is shared by N ranks
  int buckets = 0, buckets_in_backward = 0;  // the gradients' buckets; those sent during backward
  double images_per_s = 0;            // batch / median
  double rss_after_build_mb = 0;      // model and inputs built, before the first step
  double rss_after_forward_mb = 0;    // train: after the last timed forward, before its backward
  double peak_rss_mb = 0;             // getrusage ru_maxrss
  double minor_faults_per_iter = 0;   // page faults (first touch of fresh allocations)
  double gpu_peak_mb = 0;              // cuda: the caching allocator's peak bytes in use
  double gpu_reserved_mb = 0;          // cuda: bytes it holds from the device at the end
  std::string compute;                 // compute_description()
  int threads = 0;
  int64_t parameters = 0;
};

// Builds the model, runs warm-up and timed iterations. Throws hotlap::Error on bad arguments.
ResNetBenchResult run_resnet_bench(const ResNetBenchConfig& config);

// The JSON line `hotlap bench` prints.
std::string resnet_bench_json(const ResNetBenchConfig& config, const ResNetBenchResult& result);

// Runs, prints the JSON line to stdout (and the profile to stderr when HOTLAP_PROFILE=1); returns 0.
int run_bench_command(const ResNetBenchConfig& config);

}  // namespace hotlap
