// hotlap train: ResNet regression on SCUT-FBP5500 (or a data set in its layout, such as `hotlap
// synth`'s), with the paper's metrics -- Pearson correlation, MAE, RMSE on the test split after
// every epoch -- and its protocols (five-fold cross-validation, the 60/40 split).
//
// A run directory receives, for each fold trained (RUN/fold1 ... RUN/fold5, or RUN/60-40):
// config.json, last.safetensors and best.safetensors (hotlap checkpoints; best by Pearson correlation
// on the test split), metrics.csv and metrics.json (one record per epoch), all written atomically,
// and log.txt (the console lines, appended). A NaN or infinite loss stops the run with a message
// naming the step; last.safetensors, written only after a finite epoch, stays the last good state. --resume continues a fold from last.safetensors at the next epoch: the
// model, the optimizer state, the step (hence the learning rate) and, since the loader's order and
// augmentation are functions of (seed, epoch), the data are those an uninterrupted run would see --
// the result is bit-identical. A folder that holds a run is refused unless --resume or --overwrite
// says what to do with it, and one train at a time writes a folder (apps/train/run_folder.h). Ctrl-C or
// SIGTERM stops at the end of the current step; the unfinished epoch is dropped, so the folder holds
// the epochs before it, and the message says how to resume.
//
// On a terminal, a progress bar (epoch, step, loss, images/s, ETA) is redrawn in place during an
// epoch; otherwise only the per-epoch lines are printed.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/common/compute_options.h"
#include "apps/train/metrics.h"
#include "apps/train/report.h"

namespace hotlap {

struct TrainConfig {
  // score: a regressor of SCUT-FBP5500 scores (everything above); classify: a classifier of an image
  // folder (data_dir: train/CLASS/..., val/CLASS/...) or a path,label CSV (labels_file, split 80/20),
  // trained with softmax cross-entropy and torchvision's RandomResizedCrop, and judged by top-1 and
  // top-5 accuracy on the held-out images (apps/data/image_folder.h).
  std::string task = "score";
  std::string data_dir;          // SCUT-FBP5500_v2 layout, or an image folder
  std::string protocol = "5fold";// 5fold, 60-40, or 80-20 (all labelled images, a seeded random split)
  int fold = 0;                  // 1..5; 0 with 5fold: all five, then the paper-style table
  std::string labels_file;       // instead of the layout's split files: NAME SCORE lines, split 80/20
  std::string ratings_csv;       // or per-rater ratings (Filename,Rating,...), averaged per image
  std::string images_dir;        // where --labels/--ratings names are; default DATA/Images
  std::string run_dir;
  bool check_images = true;      // before training, every image of both splits exists and loads

  int depth = 50;
  int64_t width = 64;            // stem channels (64 = torchvision; smaller for quick runs)
  std::string init = "scratch";  // or a torchvision/timm safetensors file (its head is replaced)

  std::string optimizer = "sgd"; // sgd | adamw
  double lr = 1e-3, momentum = 0.9, weight_decay = 1e-4;
  std::string schedule = "step"; // step (x0.1 every step_size iterations) | cosine | constant
  int64_t step_size = 5000;
  int64_t warmup = 0;            // cosine warm-up iterations
  int64_t step_epochs = 0;       // when > 0: step_size is this many epochs (the ImageNet recipe's 30)
  int64_t warmup_epochs = 0;     // when > 0: warmup is this many epochs
  bool decay_vectors = true;     // false: no weight decay on biases and batch norm's parameters
  std::string loss = "mse";      // mse | l1 | smooth_l1 (score); classify: cross-entropy
  double label_smoothing = 0.0;  // classify: the target is 1 - e on the label, e spread over every class
  double min_scale = 0.08;       // classify: RandomResizedCrop's smallest share of the image's area
  int64_t batch_size = 16;
  int64_t epochs = 0;            // one of epochs or iterations; iterations rounds up to epochs
  int64_t iterations = 0;

  int64_t resize = 256, crop = 224;
  bool whole_image = false;
  int threads = 2;               // loader workers
  uint64_t seed = 0;
  bool resume = false;           // continue each fold from its last.safetensors, if there is one
  bool overwrite = false;        // replace the run in --out (without it or --resume, train refuses one)
  // On the CPU runs are bit-identical at any number of compute threads (every reduction is split by
  // the shapes alone, kernels/cpu/conv.cpp), so a run resumed with another count, on another machine
  // of the same instruction-set level, goes on bit for bit. --deterministic restricts the GPU to
  // algorithms that are (cuDNN's deterministic ones).
  bool deterministic = false;
  ComputeOptions compute;        // --device, --precision, --conv, --batchnorm, --compute-threads
  bool sync_bn = false;          // data-parallel: batch norm over every rank's slice (ops::sync_batch_norm)
  bool skip_bad_labels = false;  // drop malformed label lines and missing images (reported) instead
                                 // of stopping before training
};

// Fills a config from a named recipe: "paper" (ImageNet start, SGD lr 1e-3 /10 every 5000
// iterations, momentum 0.9, batch 16, 20000 iterations, weight decay 1e-4, 256 -> 224), "seed"
// (the original notebook: AdamW lr 1e-3 without decay, batch 200, 10 epochs, a random 80/20 split,
// whole image at 350) or "imagenet" (the reference ResNet-50 classifier recipe, torchvision's: a
// classifier, SGD momentum 0.9, lr 0.1 per 256 images of the global batch (imagenet_lr), batch 256,
// weight decay 1e-4 but not on biases and batch norm, 90 epochs, x0.1 every 30 (or, with --schedule
// cosine, a 5-epoch warm-up), RandomResizedCrop 224 with scale 0.08-1, testing 256 -> 224).
void apply_recipe(const std::string& recipe, TrainConfig& config);

// The ImageNet recipe's learning rate for a global batch: 0.1 per 256 images (Goyal et al.'s linear
// scaling, torchvision's reference: 0.1 at 256).
double imagenet_lr(int64_t batch_size);

struct FoldResult {
  int fold = 0;                 // 0 for the 60/40 split, -1 for an 80/20 split, -2 for an image folder's train/val
  std::string name;             // fold1..fold5, 60-40, 80-20, train-val: its folder in the run directory
  RegressionMetrics best;       // score: the epoch with the highest Pearson correlation
  int64_t best_epoch = 0;
  std::vector<ReportEpoch> epochs;
  std::vector<float> best_predicted, best_truth;  // the best epoch's test predictions (classify: class indices)
  // classify: the classes, the best epoch by top-1 accuracy (its confusion matrix included), and the
  // accuracy of always guessing the training split's most frequent class: the number to beat.
  std::vector<std::string> classes;
  ClassificationMetrics best_classes;
  double majority_accuracy = 0;
  // Every test image given the training split's mean score (train_mean): the MAE and RMSE a model has
  // to beat; its Pearson correlation is 0 (a constant correlates with nothing).
  double train_mean = 0;
  RegressionMetrics baseline;
  double seconds = 0;  // wall clock of the fold in this run: loading, training, testing
};

// Thrown when SIGINT or SIGTERM stopped the training (apps/common/stop_signal.h): what() says where it
// stopped and what the run folder holds; --resume continues it.
struct TrainingStopped : std::runtime_error {
  TrainingStopped(int signal, const std::string& message) : std::runtime_error(message), signal(signal) {}
  int signal;
};

// Trains every fold the config asks for, printing progress lines and, for all five folds, the table
// beside the paper's rows. Returns the per-fold results.
std::vector<FoldResult> run_training(const TrainConfig& config);

}  // namespace hotlap
