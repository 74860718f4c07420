#include "nn/runtime/autograd.h"

#include <unordered_set>

#include "nn/runtime/dispatch.h"

namespace hotlap {

namespace {

struct TapeEntry {
  const char* op;
  std::vector<Tensor> inputs;
  Tensor output;
  Autograd::BackwardFn backward;
};

thread_local std::vector<TapeEntry> tape;
thread_local bool grad_mode = true;

}  // namespace

bool Autograd::grad_enabled() { return grad_mode; }
void Autograd::set_grad_enabled(bool on) { grad_mode = on; }
size_t Autograd::tape_size() { return tape.size(); }
void Autograd::clear_tape() { tape.clear(); }

bool Autograd::would_record(const std::vector<Tensor>& inputs) {
  if (!grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool Autograd::record(const char* op, std::vector<Tensor> inputs, Tensor& output, BackwardFn backward) {
  if (!would_record(inputs)) return false;
  output.impl().requires_grad = true;
  output.impl().is_leaf = false;
  tape.push_back({op, std::move(inputs), output, std::move(backward)});
  return true;
}

float* Autograd::grad_accumulator(const Tensor& input) {
  if (!input.impl().grad) input.impl().grad = Tensor::zeros(input.shape(), DType::f32, input.device()).impl_;
  HOTLAP_CHECK(input.grad().dtype() == DType::f32, "autograd: an fp32 gradient is to be added into ",
               input.describe(), ", whose gradient is already ", input.grad().describe());
  return input.grad().f32();
}

GradSink::GradSink(const Tensor& input) : input_(input) {
  scratch_ = input.grad().defined();
  target_ = Tensor::empty(input.shape(), input.dtype(), input.device());
  if (!scratch_) input_.set_grad(target_);
}

void GradSink::commit() {
  if (!scratch_) return;
  const Tensor grad = input_.grad();
  const Tensor add = target_.dtype() == grad.dtype() ? target_ : target_.to(grad.dtype());
  const int64_t n = add.numel();
  if (grad.dtype() == DType::bf16)
    dispatch::accumulate(add.device(), n, add.bf16(), grad.bf16());
  else
    dispatch::accumulate(add.device(), n, add.f32(), grad.f32());
}

void Autograd::backward(const Tensor& root) { backward(root, LeafFinal{}); }

void Autograd::backward(const Tensor& root, const LeafFinal& leaf_final) {
  HOTLAP_CHECK(root.requires_grad(), "backward: the tensor does not require a gradient "
               "(no parameter or input with requires_grad took part in computing it)");
  HOTLAP_CHECK(root.numel() == 1, "backward: needs a single-element loss, got ", root.describe());
  // d(root)/d(root) = 1, added so that a leaf root accumulates like any other leaf.
  float* g = grad_accumulator(root);
  dispatch::accumulate(root.device(), 1, Tensor::scalar(1.0f).to(root.device()).f32(), g);
  HOTLAP_CHECK(!root.impl().backward_done, "backward: the graph of ", root.describe(), " was freed by an earlier "
               "backward() (each one frees the whole tape): compute it again, or sum the losses and call "
               "backward() once");
  // Walk the tape newest first. An entry whose output received a gradient leads to the root and
  // runs; one that did not (a branch that does not lead to the root) is skipped. Every entry is
  // freed as the walk passes it (its saved activations with it), and its output marked, so that no
  // later backward() can silently stop there.
  std::vector<TapeEntry> entries = std::move(tape);
  tape.clear();
  // For leaf_final: final_after[i] holds the leaves whose earliest use is entry i.
  std::vector<std::vector<Tensor>> final_after(leaf_final ? entries.size() : 0);
  if (leaf_final) {
    std::unordered_set<const void*> seen;
    for (size_t i = 0; i < entries.size(); ++i)
      for (const Tensor& in : entries[i].inputs)
        if (in.defined() && in.impl().is_leaf && in.requires_grad() && seen.insert(&in.impl()).second)
          final_after[i].push_back(in);
  }
  for (size_t i = entries.size(); i-- > 0;) {
    TapeEntry& e = entries[i];
    Tensor grad_out = e.output.grad();
    if (grad_out.defined()) {
      for (const Tensor& in : e.inputs)
        HOTLAP_CHECK(!in.defined() || !in.impl().backward_done, "backward: ", e.op, " needs the gradient of ",
                     in.describe(), ", whose part of the graph an earlier backward() freed: compute it again, "
                     "or sum the losses and call backward() once");
      e.backward(grad_out);
      e.output.zero_grad();  // a non-leaf: its gradient has been passed on and is not kept
    }
    e.output.impl().backward_done = true;
    entries[i] = TapeEntry{};
    if (leaf_final)
      for (const Tensor& leaf : final_after[i]) leaf_final(leaf);
  }
}

void Tensor::backward() const { Autograd::backward(*this); }

// reshape lives here because it records: the gradient of a view is the output gradient reshaped back.
Tensor Tensor::reshape(const Shape& requested) const {
  Shape shape = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      HOTLAP_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else {
      HOTLAP_CHECK(shape[i] >= 0, "reshape: negative dimension in ", shape_str(requested));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    HOTLAP_CHECK(known > 0 && numel() % known == 0, "reshape: cannot reshape ", describe(), " to ",
                 shape_str(requested));
    shape[static_cast<size_t>(infer)] = numel() / known;
  }
  HOTLAP_CHECK(shape_numel(shape) == numel(), "reshape: cannot reshape ", describe(), " to ",
               shape_str(requested));
  Tensor out = detach();
  out.impl().shape = shape;
  Shape original = this->shape();
  Tensor self = *this;
  Autograd::record("reshape", {self}, out, [self, original](const Tensor& g) {
    GradSink sink(self);
    HOTLAP_CHECK(g.dtype() == self.dtype(), "reshape: a ", g.describe(), " gradient for ", self.describe());
    Tensor target = sink.target();  // a handle to the gradient buffer: copy_from writes into it
    target.copy_from(g.detach().reshape(original));  // on g's device, whichever it is
    sink.commit();
  });
  return out;
}

}  // namespace hotlap
