// Reverse-mode automatic differentiation with a tape.
//
// During the forward pass every differentiable op that has an input requiring a gradient appends one
// entry to the tape: its inputs, its output and a closure that, given d(loss)/d(output), adds
// d(loss)/d(input) into each input's gradient. Because entries are appended in execution order, the
// tape is already topologically sorted: backward() walks it once, last entry first, runs the entries
// the loss depends on, and frees the whole tape (so nothing recorded, used or not, outlives a step).
// A tensor whose entry was freed cannot be back-propagated through again: a second backward() of
// the same loss, or of another loss recorded before the first one's backward(), is an error that
// says so, not a silently missing gradient. (Sum the losses and call backward() once.)
//
//   Tensor y = ops::relu(ops::conv2d(x, w, ...));   // two entries
//   Tensor loss = ops::mse_loss(y, target);          // three
//   loss.backward();                                  // runs the closures 3, 2, 1; w.grad() is set
//
// Leaf tensors (parameters, inputs) keep their gradients and accumulate across backward passes until
// zero_grad(); gradients of intermediate results are freed as soon as they have been propagated.
//
// A gradient's dtype: an overwriting kernel's (GradSink) is the input's own dtype, so a bf16
// activation (MathMode::bf16, nn/layers/ops.cpp) gets a bf16 gradient; an accumulating kernel's
// (grad_accumulator: weight, bias, batch-norm parameter gradients) is always f32, so a convolution
// writes the gradient of a bf16 weight copy in fp32 and the cast op hands it on to the fp32
// parameter unrounded. Contributions of another dtype are converted to the first one's.
// The tape is per thread. Under a NoGradGuard nothing is recorded (evaluation, optimizer steps).
#pragma once

#include <functional>
#include <vector>

#include "nn/runtime/tensor.h"

namespace hotlap {

struct Autograd {
  using BackwardFn = std::function<void(const Tensor& grad_output)>;

  // Appends an entry when gradient mode is on and any input requires a gradient; marks `output` as a
  // non-leaf that requires a gradient. Returns whether it recorded.
  static bool record(const char* op, std::vector<Tensor> inputs, Tensor& output, BackwardFn backward);
  // Whether record() would append an entry for these inputs (undefined ones are ignored): for an op
  // that must decide before it runs, e.g. whether it may overwrite an input.
  static bool would_record(const std::vector<Tensor>& inputs);
  static void backward(const Tensor& root);
  // backward(root), calling leaf_final(leaf) for each leaf that requires a gradient (a parameter,
  // an input) as soon as its gradient is final: once the walk has passed the earliest entry that
  // uses it, since no entry left can add to it. Each such leaf of the tape is named once, whether
  // a gradient reached it or not (then its gradient is undefined), in the order the walk finishes
  // them: the same on every run of the same network. Data-parallel training starts the all-reduce
  // of a bucket of gradients there, while backward goes on (nn/runtime/collective.h).
  using LeafFinal = std::function<void(const Tensor& leaf)>;
  static void backward(const Tensor& root, const LeafFinal& leaf_final);
  static void clear_tape();
  static size_t tape_size();

  static bool grad_enabled();
  static void set_grad_enabled(bool on);

  // For backward closures. The kernel that computes an input's gradient either overwrites its output
  // or adds into it; these give the right buffer either way.
  //   grad_accumulator: the input's gradient tensor, created as zeros if absent (for `+=` kernels).
  static float* grad_accumulator(const Tensor& input);
};

// The typed data pointer of a tensor with storage type T (float for f32, bfloat16 for bf16); the
// ops are written once over T.
template <typename T>
T* tensor_data(const Tensor& t) {
  if constexpr (sizeof(T) == sizeof(float))
    return t.f32();
  else
    return t.bf16();
}

// Writes an input's gradient with an overwriting kernel, in the input's dtype: on the first
// contribution the kernel writes straight into the new gradient; otherwise into scratch that
// commit() adds on (converted to the existing gradient's dtype when that differs).
class GradSink {
 public:
  explicit GradSink(const Tensor& input);
  float* data() { return target_.f32(); }
  template <typename T>
  T* data() {
    return tensor_data<T>(target_);
  }
  const Tensor& target() const { return target_; }
  void commit();

 private:
  Tensor input_, target_;
  bool scratch_ = false;
};

// Turns recording off for its lifetime: evaluation, optimizer updates, weight loading.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(Autograd::grad_enabled()) { Autograd::set_grad_enabled(false); }
  ~NoGradGuard() { Autograd::set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace hotlap
