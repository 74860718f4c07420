// A self-contained HTML report of a training run: the metrics table, per-fold SVG charts (training
// loss, test PC / MAE / RMSE per epoch, predicted-vs-true scatter of the best epoch) and the
// configuration. One file, no network, no scripts: inline CSS and inline SVG drawn here.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hotlap {

struct ReportEpoch {
  int64_t epoch = 0, step = 0;
  double train_loss = 0, pearson = 0, mae = 0, rmse = 0, lr = 0;
};

struct ReportFold {
  std::string name;                       // "fold1" ... "fold5", or "60-40"
  std::vector<ReportEpoch> epochs;
  int64_t best_epoch = 0;                 // the epoch with the highest PC
  double best_pearson = 0, best_mae = 0, best_rmse = 0;
  std::vector<float> predicted, truth;    // the best epoch's test predictions and true scores
};

struct ReportTable {
  bool show_paper_rows = false;  // five folds: also the SCUT-FBP5500 paper's five-fold rows
};

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
