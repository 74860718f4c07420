// What a training run says about itself as it goes and at its end: report.html (rewritten after every
// fold, apps/train/report.h), the table of the five folds beside the SCUT-FBP5500 paper's, and the
// images/s of its training steps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apps/train/train.h"

namespace hotlap {

// Images trained and the time their steps took, over a fold's epochs (resumed ones included): an
// epoch's images are its steps times the batch (the loader drops a last partial batch), its time
// those images over its recorded rate.
struct TrainingTime {
  double images = 0, seconds = 0;
};
TrainingTime training_time(const FoldResult& r, int64_t batch_size);
// The same over every fold of the run.
TrainingTime training_time(const std::vector<FoldResult>& results, int64_t batch_size);

// RUN/report.html. `device`: the one used (compute_description), not the --device asked for;
// `run_seconds`: the wall clock of the run so far.
void write_report(const TrainConfig& c, const std::vector<FoldResult>& results, bool five_folds,
                  const std::string& device, double run_seconds);

// The best epoch of each fold, their mean, and the paper's rows.
void print_table(const std::vector<FoldResult>& results);

// A classifier's best epoch: top-1 (and top-5) accuracy beside the most frequent class's, and each
// class's accuracy (up to 20 classes; the report has them all).
void print_class_table(const FoldResult& r);

}  // namespace hotlap
