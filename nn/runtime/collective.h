// Tensors across the ranks of a data-parallel job (the pointer-level collectives: kernels/comm.h).
//
// Data-parallel training keeps one copy of the model per rank. The copies start equal (the root's
// parameters and buffers are broadcast) and stay equal: each rank computes the gradients of its slice
// of the batch, and allreduce_mean makes every rank's gradients the mean over the ranks, which is the
// gradient of the whole batch's mean loss, so every rank takes the same optimizer step. Tensors are
// sent in buckets of about `bucket_bytes` (fewer, larger messages: PyTorch DDP's default is 25 MiB).
// GPU tensors are summed on the GPU by NCCL where it is compiled in (on the compute stream, after
// backward; not yet run on a GPU), else through host memory and MPI.
#pragma once

#include <cstddef>
#include <vector>

#include "nn/runtime/tensor.h"

namespace hotlap {

inline constexpr size_t kGradientBucketBytes = size_t{25} << 20;

// Every rank's tensors replaced by the mean over the ranks (f32 tensors, the same shapes on every
// rank, in the same order). Undefined tensors are skipped (on every rank alike: the ranks run the same
// network). A world of one returns at once.
void allreduce_mean(const std::vector<Tensor>& tensors, size_t bucket_bytes = kGradientBucketBytes);

// Every rank's tensors replaced by the root's (rank 0's).
void broadcast_from_root(const std::vector<Tensor>& tensors, size_t bucket_bytes = kGradientBucketBytes);

}  // namespace hotlap
