#include "apps/train/summary.h"

#include <cstdio>
#include <utility>

#include "apps/data/scut.h"
#include "apps/train/report.h"
#include "apps/train/run_files.h"

namespace hotlap {

TrainingTime training_time(const FoldResult& r, int64_t batch_size) {
  TrainingTime t;
  int64_t previous_step = 0;
  for (const ReportEpoch& e : r.epochs) {
    const double images = static_cast<double>((e.step - previous_step) * batch_size);
    previous_step = e.step;
    if (e.images_per_s > 0 && images > 0) t.images += images, t.seconds += images / e.images_per_s;
  }
  return t;
}

TrainingTime training_time(const std::vector<FoldResult>& results, int64_t batch_size) {
  TrainingTime all;
  for (const FoldResult& r : results) {
    const TrainingTime t = training_time(r, batch_size);
    all.images += t.images, all.seconds += t.seconds;
  }
  return all;
}

void write_report(const TrainConfig& c, const std::vector<FoldResult>& results, bool five_folds,
                  const std::string& device, double run_seconds) {
  std::vector<ReportFold> folds;
  for (const FoldResult& r : results) {
    ReportFold f;
    f.name = r.name;
    f.epochs = r.epochs;
    f.best_epoch = r.best_epoch;
    f.best_pearson = r.best.pearson, f.best_mae = r.best.mae, f.best_rmse = r.best.rmse;
    f.predicted = r.best_predicted;
    f.truth = r.best_truth;
    f.train_mean = r.train_mean;
    f.baseline_mae = r.baseline.mae, f.baseline_rmse = r.baseline.rmse;
    f.seconds = r.seconds;
    const TrainingTime t = training_time(r, c.batch_size);
    if (t.seconds > 0) f.images_per_s = t.images / t.seconds;
    folds.push_back(std::move(f));
  }
  ReportTable table;
  table.show_paper_rows = five_folds;
  table.data = training_data_name(c.data_dir, c.labels_file, c.ratings_csv);
  table.loss = c.loss;
  table.run_seconds = run_seconds;
  if (const TrainingTime all = training_time(results, c.batch_size); all.seconds > 0) table.images_per_s = all.images / all.seconds;
  table.resumed = c.resume;
  write_training_report(c.run_dir + "/report.html",
                        "hotlap train: ResNet-" + std::to_string(c.depth) + (table.data.empty() ? "" : " on " + table.data),
                        training_report_config(config_entries(c), device), folds, table);
}

void print_table(const std::vector<FoldResult>& results) {
  std::printf("\n%-22s %8s %8s %8s\n", "", "PC", "MAE", "RMSE");
  RegressionMetrics mean;
  for (const FoldResult& r : results) {
    std::printf("%-22s %8.4f %8.4f %8.4f\n", fold_name(r.fold).c_str(), r.best.pearson, r.best.mae, r.best.rmse);
    mean.pearson += r.best.pearson / static_cast<double>(results.size());
    mean.mae += r.best.mae / static_cast<double>(results.size());
    mean.rmse += r.best.rmse / static_cast<double>(results.size());
  }
  std::printf("%-22s %8.4f %8.4f %8.4f\n", "hotlap (average)", mean.pearson, mean.mae, mean.rmse);
  // The SCUT-FBP5500 paper's five-fold results (ImageNet-pretrained networks).
  std::printf("%-22s %8.4f %8s %8s\n", "paper ResNet-18", 0.8900, "-", "-");
  std::printf("%-22s %8.4f %8.4f %8.4f\n", "paper ResNeXt-50", 0.8997, 0.2291, 0.3017);
}

}  // namespace hotlap
