// What the two-rank tests share (tests/nn/test_collective.cpp, tests/resnet/test_resnet_ranks.cpp):
// SGD-momentum steps taken data-parallel or as one process, and a model's state as one vector.
#pragma once

#include <vector>

#include "kernels/comm.h"
#include "nn/layers/module.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/collective.h"

namespace hotlap::test {

// `steps` SGD steps (momentum 0.9, weight decay 1e-4) of `net` on `images`: data-parallel
// (`parallel`: this rank's slice of the batch, then the mean of the ranks' gradients, which is the
// whole batch's) or as one process (every image). `root_buffers`: rank 0's running statistics on
// every rank before each step, as PyTorch's DistributedDataParallel does. Returns each step's loss.
inline std::vector<float> sgd_steps(Module& net, const Tensor& images, const Tensor& targets, bool parallel,
                                    int steps, double lr, bool root_buffers = false) {
  SgdOptions options;
  options.lr = lr;
  options.momentum = 0.9;
  options.weight_decay = 1e-4;
  SGD sgd(net.named_parameters(), options);
  const kernels::comm::World& w = kernels::comm::world();
  const int64_t per_rank = images.dim(0) / w.size, first = parallel ? w.rank * per_rank : 0;
  const int64_t count = parallel ? per_rank : images.dim(0);
  std::vector<Tensor> buffers;
  for (const auto& [name, b] : net.named_buffers()) buffers.push_back(b);
  std::vector<float> losses;
  GradientReducer ranks(sgd.parameters());
  for (int step = 0; step < steps; ++step) {
    if (root_buffers) broadcast_from_root(buffers);
    sgd.zero_grad();
    Tensor loss = ops::mse_loss(net.forward(images.slice(first, first + count)), targets.slice(first, first + count));
    if (parallel)
      ranks.backward(loss);  // the gradients' mean over the ranks, each bucket sent during backward
    else
      loss.backward();
    sgd.step();
    losses.push_back(loss.item());
  }
  return losses;
}

// Parameters and buffers (running statistics), flattened in state order.
inline std::vector<float> flat_state(const Module& m) {
  std::vector<float> all;
  for (const auto& [name, t] : m.state()) {
    const std::vector<float> v = t.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

}  // namespace hotlap::test
