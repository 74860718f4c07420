#include "apps/train/train_step.h"

#include "apps/common/compute_threads.h"
#include "kernels/comm.h"
#include "nn/layers/ops.h"
#include "nn/runtime/collective.h"
#include "nn/runtime/autograd.h"

namespace hotlap {

Tensor train_step(Module& model, Optimizer& optimizer, const LossFunction& loss_of, const Tensor& images,
                  const Tensor& targets) {
  try {
    optimizer.zero_grad();                                   // forget the last step's gradients
    const Tensor predicted = model.forward(images);          // forward: the tape records every op
    Tensor loss = loss_of(predicted, targets);               // one number: how far from the truth
    GradientReducer ranks(optimizer.parameters());           // data-parallel (alone: nothing to do)
    ranks.backward(loss);                                    // the tape in reverse: d loss / d weights,
                                                             // their mean over the ranks sent meanwhile
    optimizer.step();                                        // each weight moves against its gradient
    return loss;
  } catch (...) {
    Autograd::clear_tape();  // a step that failed half-way leaves nothing recorded for the next
    throw;
  }
}

Evaluation evaluate(Module& model, Loader& loader, Device device, const std::function<void()>& stop_if_asked,
                    int64_t classes) {
  model.eval();
  NoGradGuard no_grad;
  Evaluation e;
  const bool ranks = loader.shards() > 1;
  loader.start_epoch(0);
  Batch batch;
  while (loader.next(batch)) {
    stop_if_asked();
    adapt_compute_threads();
    std::vector<float> p, t = batch.targets.to_vector();
    if (batch.images.dim(0) > 0) p = model.forward(batch.images.to(device)).to_vector();
    if (ranks) {  // each rank holds its slice of the batch: the slices in rank order are the batch
      p = kernels::comm::allgather(p, "the test predictions' gather");
      t = kernels::comm::allgather(t, "the test scores' gather");
    } else {
      e.names.insert(e.names.end(), batch.names.begin(), batch.names.end());
    }
    e.predicted.insert(e.predicted.end(), p.begin(), p.end());
    e.truth.insert(e.truth.end(), t.begin(), t.end());
  }
  model.train();
  if (classes > 0) {  // the rows of logits become the first guesses
    std::vector<float> guesses;
    e.classification = classification_metrics(e.predicted, e.truth, classes, &guesses);
    e.predicted = std::move(guesses);
  } else {
    e.metrics = regression_metrics(e.predicted, e.truth);
  }
  return e;
}

}  // namespace hotlap
