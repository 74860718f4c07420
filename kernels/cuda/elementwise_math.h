// Per-element arithmetic of the CUDA element-wise kernels and losses (kernels/cuda/elementwise.cu),
// readable by nvcc and the host compiler alike, so the CPU tests can run it too.
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>

#include "kernels/activation.h"
#include "kernels/cuda/launch.h"
#include "kernels/elementwise.h"

namespace hotlap::kernels::cuda {

// One element's loss, in double, as kernels/cpu/elementwise.cpp forms it.
HOTLAP_HOST_DEVICE inline double loss_term(LossKind kind, float pred, float target, double beta) {
  const double d = static_cast<double>(pred) - static_cast<double>(target);
  switch (kind) {
    case LossKind::mse:
      return d * d;
    case LossKind::l1:
      return fabs(d);
    default: {  // smooth_l1; beta == 0: never |d| < beta, so |d| (L1)
      const double a = fabs(d);
      return a < beta ? 0.5 * a * a / beta : a - 0.5 * beta;
    }
  }
}

// One element's gradient: k * d(loss)/d(pred) with k = grad_scale / n (2 k for mse, folded in by
// the caller as the CPU does), in fp32 as the CPU forms it.
HOTLAP_HOST_DEVICE inline float loss_grad(LossKind kind, float pred, float target, float beta,
                                          float k) {
  const float d = pred - target;
  switch (kind) {
    case LossKind::mse:
      return k * d;
    case LossKind::l1:
      return d > 0.0f ? k : (d < 0.0f ? -k : 0.0f);
    default: {
      const float g = fabsf(d) < beta ? d / beta : (d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f));
      return k * g;
    }
  }
}

// The loss reduction: kLossThreads-thread blocks, as many as the length needs up to kLossMaxBlocks
// (a function of n alone: the order of the additions depends only on n, so the loss is
// deterministic and the same on every GPU), each writing one double partial sum; one more block
// adds the partials.
constexpr int kLossThreads = 256;
constexpr int64_t kLossMaxBlocks = 256;
inline int64_t loss_blocks(int64_t n) {
  return std::clamp<int64_t>(ceil_div(n, kLossThreads * 16), 1, kLossMaxBlocks);
}

// The loss's workspace (launch.h), in doubles: one partial sum per block, then the total. 0 for
// n <= 0, which loss_forward rejects before any launch.
inline size_t loss_workspace_doubles(int64_t n) {
  return n > 0 ? static_cast<size_t>(loss_blocks(n) + 1) : 0;
}

// The cross-entropy's workspace, in doubles: each row's loss, the total, and the first bad label's
// row + 1 (0: none), an unsigned 64-bit integer in a double's place.
inline size_t cross_entropy_workspace_doubles(int64_t rows) {
  return rows > 0 ? static_cast<size_t>(rows + 2) : 0;
}

}  // namespace hotlap::kernels::cuda
