// Differentiable operations: each runs a kernel from kernels/ and records its backward on the tape.
//
// Activations are NHWC; convolution weights OHWI [K, R, S, C]. Every op checks its inputs' shapes and
// throws hotlap::Error naming the op and the shapes.
//
// Precision follows kernels::math_mode(). fp32 and tf32: every activation is f32. bf16 (like an
// autocast): conv2d casts its input to bf16 and its weight to a fresh bf16 copy on every call
// (differentiable casts: the weight's gradient is computed in fp32 and lands in the fp32
// parameter's gradient), and returns bf16; batch_norm, the activations, add, add_relu, max_pool2d and
// global_avg_pool keep their input's dtype (a batch norm's residual is cast to its input's), with
// every sum in fp32 and parameters, statistics and their gradients fp32; linear and the losses cast
// a bf16 input up to f32 and compute in fp32 (the head is tiny, and the loss wants the precision).
// A bf16 activation's gradient is bf16 (nn/runtime/autograd.h).
#pragma once

#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/tensor.h"

namespace hotlap::ops {

// A copy of x in `dtype` (x itself when it already is), recorded: the gradient flows back converted
// to x's dtype. What the bf16 rules above insert at the op boundaries.
Tensor cast(const Tensor& x, DType dtype);

// x[N,H,W,C], weight[K,R,S,C], bias[K] or undefined -> [N,P,Q,K].
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding);
// relu?(conv2d(x, weight, bias) + residual) (residual [N,P,Q,K] or undefined): the end of a ResNet block
// whose batch norm is folded into the convolution. With nothing to record (inference), one op whose
// kernel adds the bias and residual and applies the ReLU as it stores the output (kernels/conv_shape.h:
// ConvEpilogue); when a gradient is wanted, conv2d, add/add_relu and relu as separate recorded ops.
// The same values either way.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              const Tensor& residual, bool relu);

// A batch norm's mode and constants, and the epilogue fused into its pass, named at the call:
//   ops::batch_norm(x, gamma, beta, mean, var, {.training = false, .residual = shortcut, .relu = true})
struct BatchNormOptions {
  bool training = true;   // batch statistics (updating the running ones), or the running ones (eval)
  float momentum = 0.1f;  // PyTorch's: running = (1 - momentum) * running + momentum * batch statistic
  float eps = 1e-5f;
  Tensor residual = {};   // the epilogue: y = relu?(bn(x) + residual); undefined for none
  bool relu = false;
};

// Batch norm over the channels (last dimension). In training mode uses the batch statistics and
// updates running_mean/running_var in place (when defined); in eval mode uses the running ones.
// The optional epilogue, fused into the same pass: y = relu(bn(x) + residual) (either part may be
// left out). Fused, the batch norm's own output is never stored: a ResNet saves one activation per
// convolution less, and makes one pass less over memory.
//
// x is taken by value: a caller that hands over its only handle (std::move) lets an eval-mode batch
// norm on the CPU that records nothing write its result over x instead of into a new tensor.
Tensor batch_norm(Tensor x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, const BatchNormOptions& options);

// Batch norm in training mode with the statistics of the whole batch of a data-parallel job: each
// rank holds its slice, and the per-channel sums (for the mean, then the variance; in backward, of
// the gradient and of the gradient times the normalised input) are summed over the ranks
// (kernels/comm.h), as PyTorch's SyncBatchNorm does. With one rank it is batch_norm. The parameters'
// gradients are this rank's share (the gradients' all-reduce averages them, as the others).
// f32 only. On the CPU, plain loops with double sums (nn/layers/sync_batch_norm.cpp); on the GPU,
// sync_batch_norm_by_kernels.
Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, const BatchNormOptions& options);
// The same from the batch-norm kernels of x's device (dispatch) and C-sized sums on the host, for
// any device: this rank's mean and variance from the training kernel, combined over the ranks;
// the output from the eval-mode kernel given the job's statistics; in backward the eval-mode kernel
// twice. A world of one runs it too (its sums are then the rank's own), which is how one GPU checks
// it against batch_norm.
Tensor sync_batch_norm_by_kernels(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                  const Tensor& running_var, const BatchNormOptions& options);

// y = Act::forward(x) element by element, for any activation of kernels/activation.h, in x's dtype.
template <typename Act>
Tensor activation(const Tensor& x);
inline Tensor relu(const Tensor& x) { return activation<kernels::Relu>(x); }
inline Tensor silu(const Tensor& x) { return activation<kernels::Silu>(x); }  // x * sigmoid(x)
Tensor add(const Tensor& a, const Tensor& b);       // same shapes
Tensor add_relu(const Tensor& a, const Tensor& b);  // relu(a + b): the end of a residual block

// ceil_mode: PyTorch's (output size rounded up; the last window may be partial). See PoolShape.
Tensor max_pool2d(const Tensor& x, int64_t window, int64_t stride, int64_t padding,
                  bool ceil_mode = false);
Tensor global_avg_pool(const Tensor& x);  // [N,H,W,C] -> [N,C]

// x[rows, in], weight[out, in], bias[out] or undefined -> [rows, out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// Inference only (MTCNN): these two record no backward, and throw if gradient mode is on and an
// input requires a gradient, rather than silently cutting the graph.
// PReLU with one slope per channel (last dimension): y = x > 0 ? x : slope[c] * x. x[..., C], slope[C].
Tensor prelu(const Tensor& x, const Tensor& slope);
// Softmax over the last dimension.
Tensor softmax(const Tensor& x);

// Mean loss over all elements; pred and target have the same number of elements. `beta` is the
// smooth-L1 threshold. The target never receives a gradient.
Tensor loss(kernels::LossKind kind, const Tensor& pred, const Tensor& target, float beta = 1.0f);
inline Tensor mse_loss(const Tensor& p, const Tensor& t) { return loss(kernels::LossKind::mse, p, t); }
inline Tensor l1_loss(const Tensor& p, const Tensor& t) { return loss(kernels::LossKind::l1, p, t); }
inline Tensor smooth_l1_loss(const Tensor& p, const Tensor& t, float beta = 1.0f) {
  return loss(kernels::LossKind::smooth_l1, p, t, beta);
}

// Softmax cross-entropy, the classifier's loss: the mean over the rows of logits[N, K] of
// -log softmax(row)[label], with label smoothing e in [0, 1) (the target is 1 - e on the label plus
// e / K on every class, as PyTorch's F.cross_entropy(..., label_smoothing=e)). labels holds N class
// indices as floats ([N] or [N, 1]); an index that is not an integer in [0, K) throws. Fused and
// stable (kernels/elementwise.h): no softmax is stored, no log of 0 is taken. The labels never
// receive a gradient.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, float label_smoothing = 0.0f);

}  // namespace hotlap::ops
