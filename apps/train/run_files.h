// What a training run writes in each fold's folder (RUN/fold1, RUN/60-40, ...), besides its
// checkpoints (nn/files/checkpoint.h): config.json, metrics.csv and metrics.json (a record per epoch),
// predictions.csv (the best epoch's test predictions) and log.txt (the console lines), and what
// --resume reads back. Every file but the log is written whole or not at all (nn/files/atomic_file.h).
// Who may write the folder, and when a run in it is replaced: apps/train/run_folder.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "apps/train/metrics.h"
#include "apps/train/train.h"
#include "nn/files/checkpoint.h"

namespace hotlap {

// A fold's folder in the run directory: fold1..fold5, 60-40 (fold 0), 80-20 (fold -1), train-val (fold
// -2: an image folder's own split).
std::string fold_name(int fold);

// One epoch's line of metrics.csv: a regressor's PC, MAE and RMSE, or a classifier's top-1 and top-5
// accuracy (the others' fields are then unused).
struct EpochRecord {
  int64_t epoch = 0, step = 0;
  double train_loss = 0, pearson = 0, mae = 0, rmse = 0, lr = 0, images_per_s = 0;
  double top1 = 0, top5 = 0;
};

// metrics.csv and metrics.json in `dir`: one record per epoch, rewritten (atomically) after every
// epoch, with digits enough that a resumed run's files equal an uninterrupted run's. A classifier's
// (`classify`) have the columns epoch,step,train_loss,top1,top5,lr,images_per_s.
void write_metrics(const std::filesystem::path& dir, const std::vector<EpochRecord>& records, bool classify = false);
// metrics.csv back, either kind (its header says which); an Error names the file and line of a
// malformed line.
std::vector<EpochRecord> read_metrics(const std::string& path);

// predictions.csv in `dir`: name,true,predicted per test image. With `classes` (a classifier's), the
// class names too: name,true_class,predicted_class,true,predicted, the last two the class indices.
void write_predictions(const std::filesystem::path& dir, const std::vector<std::string>& names,
                       const std::vector<float>& truth, const std::vector<float>& predicted,
                       const std::vector<std::string>& classes = {});
// Either kind back: the last two columns.
void read_predictions(const std::string& path, std::vector<float>& truth, std::vector<float>& predicted);

// `line` on stdout, and appended to log.txt in `dir` (by rank 0 alone in a data-parallel job).
void log_line(const std::filesystem::path& dir, const std::string& line);

// The configuration as (key, JSON value) pairs: config.json and the report's table.
std::vector<std::pair<std::string, std::string>> config_entries(const TrainConfig& c);
// config.json's text.
std::string config_json(const TrainConfig& c);

void write_text_atomically(const std::string& path, const std::string& text);

// A number in a checkpoint's metadata, for resuming: a missing or malformed entry is an Error naming
// the file and the key (a run folder edited by hand, or a checkpoint from elsewhere), never a bare
// std::stod / map::at exception.
double metadata_number(const std::map<std::string, std::string>& meta, const std::string& key,
                       const std::string& path);

// What an epoch's checkpoints carry besides the weights: the step, the epoch, the random state (so a
// resumed run draws what an uninterrupted one would), the test metrics, and how a photo is prepared
// for the model (input.resize, input.crop, input.whole_image: hotlap score reads them back). A
// classifier's also name its task ("task" = "classify") and its classes ("classes", classes_json),
// which hotlap predict reads back.
CheckpointInfo epoch_checkpoint_info(const TrainConfig& c, const std::string& protocol, int64_t epoch, int64_t step,
                                     const RegressionMetrics& metrics);
CheckpointInfo epoch_checkpoint_info(const TrainConfig& c, const std::string& protocol, int64_t epoch, int64_t step,
                                     const ClassificationMetrics& metrics, const std::vector<std::string>& classes);


// Where --resume continues a fold: its last.safetensors loaded into the model and optimizer (and the
// random state restored), the metrics of the epochs it holds, and the best epoch so far, unless
// best.safetensors was written by the epoch that was stopped (then that epoch writes it again).
struct ResumePoint {
  int64_t epoch = 1, step = 0;       // the epoch to run next, the steps done
  std::vector<EpochRecord> history;  // metrics.csv up to the last complete epoch
  int64_t best_epoch = 0;            // 0: no best epoch to keep
  RegressionMetrics best;
  ClassificationMetrics best_classes;  // a classifier's (`classes` > 0), its confusion matrix from predictions.csv
  std::vector<float> best_truth, best_predicted;  // predictions.csv
};
ResumePoint resume_fold(const std::filesystem::path& dir, Module& model, Optimizer* optimizer, size_t test_count,
                        int64_t classes = 0);

}  // namespace hotlap
