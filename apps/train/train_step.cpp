#include "apps/train/train_step.h"

#include "apps/common/compute_threads.h"
#include "nn/layers/ops.h"
#include "nn/runtime/autograd.h"

namespace hotlap {

Tensor train_step(Module& model, Optimizer& optimizer, kernels::LossKind loss_kind, const Tensor& images,
                  const Tensor& targets) {
  try {
    optimizer.zero_grad();                                   // forget the last step's gradients
    const Tensor predicted = model.forward(images);          // forward: the tape records every op
    Tensor loss = ops::loss(loss_kind, predicted, targets);  // one number: how far from the truth
    loss.backward();                                         // the tape in reverse: d loss / d weights
    optimizer.step();                                        // each weight moves against its gradient
    return loss;
  } catch (...) {
    Autograd::clear_tape();  // a step that failed half-way leaves nothing recorded for the next
    throw;
  }
}

Evaluation evaluate(Module& model, Loader& loader, Device device, const std::function<void()>& stop_if_asked) {
  model.eval();
  NoGradGuard no_grad;
  Evaluation e;
  loader.start_epoch(0);
  Batch batch;
  while (loader.next(batch)) {
    stop_if_asked();
    adapt_compute_threads();
    const std::vector<float> p = model.forward(batch.images.to(device)).to_vector();
    const std::vector<float> t = batch.targets.to_vector();
    e.predicted.insert(e.predicted.end(), p.begin(), p.end());
    e.truth.insert(e.truth.end(), t.begin(), t.end());
    e.names.insert(e.names.end(), batch.names.begin(), batch.names.end());
  }
  model.train();
  e.metrics = regression_metrics(e.predicted, e.truth);
  return e;
}

}  // namespace hotlap
