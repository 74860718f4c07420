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
    if (!r.classes.empty()) {
      f.classes = r.classes;
      f.best_top1 = r.best_classes.top1, f.best_top5 = r.best_classes.top5;
      f.confusion = r.best_classes.confusion;
      f.majority_accuracy = r.majority_accuracy;
    }
    const TrainingTime t = training_time(r, c.batch_size);
    if (t.seconds > 0) f.images_per_s = t.images / t.seconds;
    folds.push_back(std::move(f));
  }
  ReportTable table;
  table.classify = c.task == "classify";
  table.show_paper_rows = five_folds;
  table.data = training_data_name(c.data_dir, c.labels_file, c.ratings_csv);
  table.loss = table.classify ? "cross-entropy" : c.loss;
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

void print_class_table(const FoldResult& r) {
  const auto k = static_cast<int64_t>(r.classes.size());
  if (k == 0 || r.best_classes.confusion.size() != static_cast<size_t>(k * k)) return;
  std::printf("\nepoch %lld (the best): top-1 %.1f%%", static_cast<long long>(r.best_epoch), 100 * r.best_classes.top1);
  if (k > 5) std::printf(", top-5 %.1f%%", 100 * r.best_classes.top5);
  std::printf(" of %zu held-out images (the most frequent class: %.1f%%)\n", r.best_classes.count,
              100 * r.majority_accuracy);
  if (k > 20) return;  // the report lists every class
  for (int64_t t = 0; t < k; ++t) {
    const auto [right, total] = class_tally(r.best_classes.confusion, k, t);
    std::string name = r.classes[static_cast<size_t>(t)];
    if (name.size() > 40) name = name.substr(0, 37) + "...";
    std::printf("  %-40s %6.1f%%  (%lld of %lld)\n", name.c_str(),
                total > 0 ? 100.0 * static_cast<double>(right) / static_cast<double>(total) : 0.0,
                static_cast<long long>(right), static_cast<long long>(total));
  }
}

}  // namespace hotlap
