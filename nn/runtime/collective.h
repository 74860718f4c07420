// Tensors across the ranks of a data-parallel job (the pointer-level collectives: kernels/comm.h).
//
// Data-parallel training keeps one copy of the model per rank. The copies start equal (the root's
// parameters and buffers are broadcast) and stay equal: each rank computes the gradients of its slice
// of the batch, and allreduce_mean makes every rank's gradients the mean over the ranks, which is the
// gradient of the whole batch's mean loss, so every rank takes the same optimizer step. Tensors are
// sent in buckets of about `bucket_bytes` (fewer, larger messages: PyTorch DDP's default is 25 MiB).
//
// A training step does not wait for backward to end before it sends: GradientReducer starts each
// bucket's mean as soon as backward has finished every gradient in it, and backward goes on with the
// layers before while the bucket travels (PyTorch DDP's overlap). GPU buckets are averaged by NCCL
// on the comm stream beside the compute stream (not yet run across GPUs); CPU ones by MPI on a
// thread of their own. allreduce_mean does the same after the fact, all at once.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "nn/runtime/tensor.h"

namespace hotlap {

inline constexpr size_t kGradientBucketBytes = size_t{25} << 20;

// Every rank's tensors replaced by the mean over the ranks (f32 tensors, the same shapes on every
// rank, in the same order). Undefined tensors are skipped (on every rank alike: the ranks run the same
// network). A world of one returns at once.
void allreduce_mean(const std::vector<Tensor>& tensors, size_t bucket_bytes = kGradientBucketBytes);

// loss.backward() on every rank, each parameter's gradient then the mean over the ranks, with each
// bucket's all-reduce started during backward.
//
// The parameters are cut into buckets of about bucket_bytes, last parameter first, since backward
// finishes the last layers' gradients first. When backward has finished every gradient of a bucket
// (Autograd's leaf_final) and every bucket before it has started, the bucket starts:
//  - on GPUs (NCCL compiled in): an event on the compute stream, which the comm stream waits for;
//    then on the comm stream the bucket is packed, averaged by NCCL and unpacked. The host does not
//    wait, and backward's next kernels run beside it on the compute stream.
//  - on CPUs: a thread of its own packs it, sums it (hotlap's own sum: the same bits as
//    allreduce_mean) on the gradients' channel (kernels/comm.h), scales and unpacks it, while the
//    training thread goes on with backward; where MPI allows no second thread, at once, on the
//    training thread.
// After backward, the buckets not yet started (parameters backward never reached) start, and the
// step waits for all: on GPUs the compute stream waits for the comm stream, with no host wait. The
// order of buckets is the same on every rank, since every rank runs the same network. A world of
// one runs loss.backward() alone, unless one_rank_too (the GPU check's test, on one GPU).
class GradientReducer {
 public:
  explicit GradientReducer(std::vector<Tensor> parameters, size_t bucket_bytes = kGradientBucketBytes,
                           bool one_rank_too = false);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void backward(const Tensor& loss);

  // What the last backward() did, for the benchmark and the tests.
  struct Report {
    int buckets = 0;              // the buckets the parameters make
    int started_in_backward = 0;  // of them, started before backward had finished
    double tail_ms = 0.0;         // host time from backward's end until every bucket was done (CPU)
                                  // or queued behind (GPU)
  };
  const Report& report() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Every rank's tensors replaced by the root's (rank 0's).
void broadcast_from_root(const std::vector<Tensor>& tensors, size_t bucket_bytes = kGradientBucketBytes);

}  // namespace hotlap
