// Element-wise kernels and the losses: memory-bound, one pass over the data each.
//
// Test: hotlap_kernel_tests -tc='elementwise*,loss*,cross_entropy*,relu*,cuda elementwise*'; benchmark: hotlap_bench
// --benchmark_filter='ops/(add|relu)'.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cast.h"
#include "kernels/host_device.h"

namespace hotlap::kernels {

enum class LossKind { mse, l1, smooth_l1 };

// Whether a cross-entropy label (a float) names one of `classes` classes: an integer in [0, classes).
// NaN fails every comparison, so it is refused too.
HOTLAP_HOST_DEVICE inline bool is_class_index(float label, int64_t classes) {
  return label >= 0.0f && static_cast<double>(label) < static_cast<double>(classes) &&
         label == static_cast<float>(static_cast<int64_t>(label));
}

namespace cpu {

void fill(int64_t n, float value, float* y);
void copy(int64_t n, const float* x, float* y);
void add(int64_t n, const float* a, const float* b, float* y);                 // y = a + b
void accumulate(int64_t n, const float* x, float* y);                          // y += x
void scale(int64_t n, float alpha, const float* x, float* y);                  // y = alpha * x

// The activations (ReLU, SiLU, ...) are kernels/activation.h.
// y = max(a + b, 0): the end of every residual block. Backward is ReLU's, on y.
void add_relu_forward(int64_t n, const float* a, const float* b, float* y);
// Per-channel PReLU over rows of c (channels last): y[i, j] = x > 0 ? x : slope[j] * x (NaN kept).
void prelu_forward(int64_t rows, int64_t c, const float* x, const float* slope, float* y);
// Softmax over the last dimension of [rows, c], max-subtracted, accumulated in double.
void softmax_forward(int64_t rows, int64_t c, const float* x, float* y);

// bf16 storage (bfloat16, kernels/cast.h): the same loops, fp32 arithmetic, each result rounded
// once to bf16 (copy moves the bits as they are).
void copy(int64_t n, const bfloat16* x, bfloat16* y);
void add(int64_t n, const bfloat16* a, const bfloat16* b, bfloat16* y);
void accumulate(int64_t n, const bfloat16* x, bfloat16* y);  // y = bf16(y + x)
void add_relu_forward(int64_t n, const bfloat16* a, const bfloat16* b, bfloat16* y);

// Per-channel bias over rows of c: y[i, j] += bias[j]; dbias[j] += sum_i dy[i, j].
void bias_add(int64_t rows, int64_t c, const float* bias, float* y);
void bias_backward(int64_t rows, int64_t c, const float* dy, float* dbias);

// Mean over n elements of the loss between prediction and target (beta: smooth-L1 threshold).
// Accumulates in double. Returns the loss.
double loss_forward(LossKind kind, int64_t n, const float* pred, const float* target, float beta);
// dpred = grad_scale * d(loss)/d(pred). Overwrites dpred.
void loss_backward(LossKind kind, int64_t n, const float* pred, const float* target, float beta,
                   float grad_scale, float* dpred);

// Softmax cross-entropy, the classifier's loss, fused: the softmax is never stored, and the log of
// a probability is never taken (it would be -inf when the probability underflows). For logits
// x[rows, classes], labels y[rows] (class indices, stored as floats: exact below 2^24) and label
// smoothing e in [0, 1) (the target puts 1 - e on the label and e spread evenly over every class,
// the label's own included, as PyTorch's label_smoothing):
//   lse_i = m_i + log(sum_j exp(x_ij - m_i)),  m_i = max_j x_ij      (no exp overflows)
//   loss  = mean_i [ lse_i - (1 - e) x_{i,y_i} - (e / classes) sum_j x_ij ]
//   d loss / d x_ij = (softmax_ij - (1 - e) [j == y_i] - e / classes) / rows
// Each row in double, the rows added in order; backward recomputes each row's max and sum (one pass
// over a row of logits is cheaper than a stored softmax). A label that is not an integer in
// [0, classes) throws, naming its row.
double cross_entropy_forward(int64_t rows, int64_t classes, const float* logits, const float* labels,
                             float smoothing);
// dlogits = grad_scale * d(loss)/d(logits). Overwrites dlogits.
void cross_entropy_backward(int64_t rows, int64_t classes, const float* logits, const float* labels,
                            float smoothing, float grad_scale, float* dlogits);

}  // namespace cpu

// The arguments both devices' cross-entropy kernels check before they touch memory: a non-empty
// [rows, classes] and a smoothing in [0, 1). Throws an Error that `op` opens. (The labels are checked
// where they are read: on the CPU before the loop, on the GPU in the kernel.)
void check_cross_entropy_args(const char* op, int64_t rows, int64_t classes, float smoothing);

// The same contracts on the GPU (kernels/cuda/elementwise.cu): device pointers, queued on the
// compute stream; in a build without CUDA each throws. loss_forward returns the loss to the host,
// so it waits for the compute stream. It also takes a workspace for its per-block partial sums,
// device memory the caller owns: at least loss_workspace_bytes(n) bytes (host arithmetic, exact,
// at most 2056 bytes, the same in a build without CUDA), 256-byte aligned
// (kernels/cuda/launch.h); a smaller, null or misaligned one throws. (prelu_forward and
// softmax_forward, used only by the MTCNN face detector's inference, have no GPU version yet.)
namespace cuda {
void fill(int64_t n, float value, float* y);
void copy(int64_t n, const float* x, float* y);
void add(int64_t n, const float* a, const float* b, float* y);
void accumulate(int64_t n, const float* x, float* y);
void scale(int64_t n, float alpha, const float* x, float* y);
void add_relu_forward(int64_t n, const float* a, const float* b, float* y);
// bf16 storage: the same kernels on bf16 values, fp32 arithmetic, rounded once on store.
void copy(int64_t n, const bfloat16* x, bfloat16* y);
void add(int64_t n, const bfloat16* a, const bfloat16* b, bfloat16* y);
void accumulate(int64_t n, const bfloat16* x, bfloat16* y);
void add_relu_forward(int64_t n, const bfloat16* a, const bfloat16* b, bfloat16* y);
void bias_add(int64_t rows, int64_t c, const float* bias, float* y);
void bias_backward(int64_t rows, int64_t c, const float* dy, float* dbias);
size_t loss_workspace_bytes(int64_t n);
double loss_forward(LossKind kind, int64_t n, const float* pred, const float* target, float beta,
                    void* workspace, size_t workspace_bytes);
void loss_backward(LossKind kind, int64_t n, const float* pred, const float* target, float beta,
                   float grad_scale, float* dpred);
// One block a row, the rows' losses added by the loss's final block: the workspace holds a double a
// row, the total and a flag for a bad label (cross_entropy_workspace_bytes(rows), same alignment).
size_t cross_entropy_workspace_bytes(int64_t rows);
double cross_entropy_forward(int64_t rows, int64_t classes, const float* logits, const float* labels,
                             float smoothing, void* workspace, size_t workspace_bytes);
void cross_entropy_backward(int64_t rows, int64_t classes, const float* logits, const float* labels,
                            float smoothing, float grad_scale, float* dlogits);
}  // namespace cuda
}  // namespace hotlap::kernels
