// A self-contained HTML report of a training run: the metrics table, per-fold SVG charts (training
// loss, test PC / MAE / RMSE per epoch, predicted-vs-true scatter of the best epoch; a classifier's:
// training loss, top-1 / top-5 accuracy per epoch, the confusion matrix and each class's accuracy)
// and the configuration. One file, no network, no scripts: inline CSS and inline SVG drawn here.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace hotlap {

struct ReportEpoch {
  int64_t epoch = 0, step = 0;
  double train_loss = 0, pearson = 0, mae = 0, rmse = 0, lr = 0;
  double images_per_s = 0;  // training images per second of the epoch's steps; 0 when not measured
  double top1 = 0, top5 = 0;  // a classifier's held-out accuracy (fractions), instead of PC, MAE, RMSE
};

inline constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();

struct ReportFold {
  std::string name;                       // "fold1" ... "fold5", or "60-40"
  std::vector<ReportEpoch> epochs;
  int64_t best_epoch = 0;                 // the epoch with the highest PC
  double best_pearson = 0, best_mae = 0, best_rmse = 0;
  std::vector<float> predicted, truth;    // the best epoch's test predictions and true scores
  // Every test image given the training split's mean score: the error a model has to beat (its PC is
  // 0, a constant correlates with nothing). NaN when not known: no baseline row or chart line.
  double train_mean = kNotMeasured, baseline_mae = kNotMeasured, baseline_rmse = kNotMeasured;
  // A classifier's: its class names, the best epoch's (by top-1) accuracy and confusion matrix (row = true
  // class, column = the first guess), and the accuracy of always guessing the training split's most
  // frequent class.
  std::vector<std::string> classes;
  double best_top1 = 0, best_top5 = 0, majority_accuracy = kNotMeasured;
  std::vector<int64_t> confusion;
  double seconds = kNotMeasured;       // wall clock of the fold (loading, training, evaluation)
  double images_per_s = kNotMeasured;  // training throughput over its epochs
};

struct ReportTable {
  bool classify = false;         // a classifier's run: accuracy and confusion instead of PC, MAE, RMSE
  bool show_paper_rows = false;  // five folds: also the SCUT-FBP5500 paper's five-fold rows
  std::string data{};            // what was trained on (training_data_name), in the page's subtitle
  std::string loss{};            // the training loss ("mse", ...), named on its charts' axes
  double run_seconds = kNotMeasured;   // wall clock of the whole run so far
  double images_per_s = kNotMeasured;  // training throughput over all folds
  bool resumed = false;                // the times are this session's: earlier ones are not counted
};

// What a run was trained on, from what it read: "labels file NAME", "ratings file NAME", "synthetic
// faces from hotlap synth (FOLDER)" for a folder `hotlap synth` wrote (it leaves a marker), else
// "FOLDER" (such as SCUT-FBP5500_v2): last path parts only, short enough for a title (the configuration
// table has the full paths).
std::string training_data_name(const std::string& data_dir, const std::string& labels_file,
                               const std::string& ratings_csv);

// The report's configuration table from config.json's (key, JSON value) pairs: strings without their
// quotes, fractional numbers with up to 6 significant digits (config.json keeps every digit), the
// device actually used instead of the one asked for ("auto") when `device` is not empty, and the
// settings that did not apply left out (momentum for adamw, step_size or warmup for another schedule,
// fold without five folds, empty paths, a zero epochs or iterations).
std::vector<std::pair<std::string, std::string>> training_report_config(
    const std::vector<std::pair<std::string, std::string>>& json_entries, const std::string& device);

// A duration for people: "8.3 s", "42 s", "12 min 05 s", "1 h 02 min".
std::string duration_text(double seconds);

// The HTML text. Non-finite values are skipped in charts and shown as "nan" / "inf" in tables;
// all text (title, names, configuration) is escaped.
std::string render_training_report(const std::string& title,
                                   const std::vector<std::pair<std::string, std::string>>& config,
                                   const std::vector<ReportFold>& folds, const ReportTable& table = {});

// Renders and writes `path` atomically. Throws hotlap::Error naming `path` if it cannot be written.
void write_training_report(const std::string& path, const std::string& title,
                           const std::vector<std::pair<std::string, std::string>>& config,
                           const std::vector<ReportFold>& folds, const ReportTable& table = {});

}  // namespace hotlap
