// A small regression task with a known answer, for the demo and the learning tests.
//
// Each image (NHWC, 3 channels) holds one soft ellipse at a random place and angle, in a random
// colour and brightness, on a noisy background. The target is a fixed function of its geometry, in
// SCUT's 1-5 range: 1 + 3 * size + elongation, with both factors in [0, 1]. Brightness and
// colour are nuisances, and elongation leaves the area (so the mean intensity) unchanged: a network
// must see the shape, not just count bright pixels. A model that predicts the mean scores Pearson 0.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "apps/train/metrics.h"
#include "nn/layers/module.h"

namespace hotlap {

struct ToyDataset {
  Tensor images;   // [N, size, size, 3]
  Tensor targets;  // [N, 1]
};

ToyDataset make_toy_dataset(int64_t count, int64_t image_size, uint64_t seed);

// conv3x3(3->w)-bn-relu-maxpool-conv3x3/2(w->2w)-bn-relu-avgpool-linear(2w->1).
std::shared_ptr<Module> make_small_cnn(int64_t width = 16);

struct ToyTrainConfig {
  int64_t train_count = 768, test_count = 256, image_size = 16;
  int64_t epochs = 12, batch_size = 32;
  double lr = 3e-3, weight_decay = 1e-4;
  uint64_t seed = 7;
  Device device = Device::cpu;  // where the model and the batches live
};

struct EpochReport {
  int64_t epoch = 0;
  double train_loss = 0.0;    // mean over the epoch's batches
  RegressionMetrics test;     // on the held-out images
  double images_per_second = 0.0;
};

// Trains make_small_cnn on the toy task with AdamW and a cosine schedule; calls `on_epoch` after each
// epoch's evaluation. Returns the last epoch's report.
EpochReport train_toy_task(const ToyTrainConfig& config,
                           const std::function<void(const EpochReport&)>& on_epoch = {});

}  // namespace hotlap
