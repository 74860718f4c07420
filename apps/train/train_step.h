// The heart of `hotlap train`: one step of training on one batch, and one pass over the test split.
// Everything else in apps/train/ feeds these two (the data, the schedule) or records what they did
// (the run folder's files, the report).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "apps/data/loader.h"
#include "apps/train/metrics.h"
#include "kernels/elementwise.h"
#include "nn/layers/module.h"
#include "nn/layers/optim.h"

namespace hotlap {

// One step of gradient descent on one batch, as every textbook writes it: forget the last step's
// gradients, run the network forward, measure the loss, run it backward (the gradient of the loss
// with respect to every weight, nn/runtime/autograd.h), and let the optimizer move the weights.
// `images` and `targets` are on the model's device. Returns the loss, a scalar tensor, before the
// update. On an error (OutOfMemory: the batch does not fit) the autograd tape is cleared and the error
// goes on.
// The loss of a batch's predictions against its targets: a regression loss (ops::loss) or the
// classifier's cross-entropy (ops::cross_entropy), a scalar tensor.
using LossFunction = std::function<Tensor(const Tensor& predicted, const Tensor& targets)>;
Tensor train_step(Module& model, Optimizer& optimizer, const LossFunction& loss, const Tensor& images,
                  const Tensor& targets);

// Predictions for every sample of a loader, in eval mode.
struct Evaluation {
  RegressionMetrics metrics;                 // score
  ClassificationMetrics classification;      // classify
  std::vector<std::string> names;
  std::vector<float> predicted, truth;       // classify: the first guesses and the true classes
};

// The model's prediction for every sample of `loader`, in eval mode (batch norm uses its running
// statistics, no tape), and the metrics of those predictions. `stop_if_asked` runs before each batch.
// With a loader shared by the ranks (LoaderConfig::shards), each rank predicts its slice of every
// batch and every rank gathers all of them, in the loader's order (the same predictions and metrics as one process; `names` is left empty then:
// the samples' names, in the loader's order, are the caller's to give).
// With `classes` > 0 the model is a classifier with that many outputs: the metrics are top-1 and top-5
// accuracy (Evaluation::classification) instead of the regression's.
Evaluation evaluate(Module& model, Loader& loader, Device device, const std::function<void()>& stop_if_asked,
                    int64_t classes = 0);

}  // namespace hotlap
