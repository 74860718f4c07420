#include "apps/train/run_files.h"

#include <omp.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <span>
#include <sstream>

#include "apps/data/image_folder.h"
#include "apps/data/text_lines.h"
#include "kernels/comm.h"
#include "kernels/error.h"
#include "nn/files/atomic_file.h"
#include "nn/files/safetensors.h"
#include "nn/runtime/random.h"

namespace hotlap {

namespace {

using text_lines::csv_field;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HOTLAP_CHECK(in.good(), path, ": cannot open");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

constexpr const char* kCsvHeader = "epoch,step,train_loss,pearson,mae,rmse,lr,images_per_s";
constexpr const char* kClassCsvHeader = "epoch,step,train_loss,top1,top5,lr,images_per_s";

// %.9g: enough digits that reading a value back and writing it again gives the same text, so a
// resumed run's files equal an uninterrupted run's.
std::string csv_line(const EpochRecord& r, bool classify) {
  char buf[256];
  if (classify)
    std::snprintf(buf, sizeof buf, "%lld,%lld,%.9g,%.9g,%.9g,%.9g,%.1f", static_cast<long long>(r.epoch),
                  static_cast<long long>(r.step), r.train_loss, r.top1, r.top5, r.lr, r.images_per_s);
  else
    std::snprintf(buf, sizeof buf, "%lld,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.1f", static_cast<long long>(r.epoch),
                  static_cast<long long>(r.step), r.train_loss, r.pearson, r.mae, r.rmse, r.lr, r.images_per_s);
  return buf;
}

}  // namespace

std::string fold_name(int fold) {
  return fold == -2 ? "train-val" : fold < 0 ? "80-20" : fold == 0 ? "60-40" : "fold" + std::to_string(fold);
}

double metadata_number(const std::map<std::string, std::string>& meta, const std::string& key,
                       const std::string& path) {
  const auto it = meta.find(key);
  HOTLAP_CHECK(it != meta.end(), path, ": its metadata has no \"", key, "\", which resuming needs");
  const std::string& text = it->second;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  HOTLAP_CHECK(!text.empty() && end == text.c_str() + text.size() && errno == 0 && std::isfinite(v), path,
               ": its metadata \"", key, "\" is \"", text.substr(0, 40), "\", not a number");
  return v;
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// metrics.csv and metrics.json: one record per epoch, rewritten (atomically) after every epoch.
void write_metrics(const std::filesystem::path& dir, const std::vector<EpochRecord>& records, bool classify) {
  std::string csv = std::string(classify ? kClassCsvHeader : kCsvHeader) + "\n", json = "[\n";
  for (size_t i = 0; i < records.size(); ++i) {
    const EpochRecord& r = records[i];
    csv += csv_line(r, classify) + "\n";
    char buf[320];
    if (classify)
      std::snprintf(buf, sizeof buf,
                    "  {\"epoch\": %lld, \"step\": %lld, \"train_loss\": %.9g, \"top1\": %.9g, \"top5\": %.9g, "
                    "\"lr\": %.9g, \"images_per_s\": %.1f}%s\n",
                    static_cast<long long>(r.epoch), static_cast<long long>(r.step), r.train_loss, r.top1, r.top5,
                    r.lr, r.images_per_s, i + 1 < records.size() ? "," : "");
    else
      std::snprintf(buf, sizeof buf,
                    "  {\"epoch\": %lld, \"step\": %lld, \"train_loss\": %.9g, \"pearson\": %.9g, \"mae\": %.9g, "
                    "\"rmse\": %.9g, \"lr\": %.9g, \"images_per_s\": %.1f}%s\n",
                    static_cast<long long>(r.epoch), static_cast<long long>(r.step), r.train_loss, r.pearson, r.mae,
                    r.rmse, r.lr, r.images_per_s, i + 1 < records.size() ? "," : "");
    json += buf;
  }
  json += "]\n";
  write_text_atomically((dir / "metrics.csv").string(), csv);
  write_text_atomically((dir / "metrics.json").string(), json);
}

void write_predictions(const std::filesystem::path& dir, const std::vector<std::string>& names,
                       const std::vector<float>& truth, const std::vector<float>& predicted,
                       const std::vector<std::string>& classes) {
  std::string csv = classes.empty() ? "name,true,predicted\n" : "name,true_class,predicted_class,true,predicted\n";
  const auto class_name = [&](float index) {
    const auto k = static_cast<size_t>(index);
    return index >= 0 && k < classes.size() ? csv_field(classes[k]) : std::string("?");
  };
  char buf[64];
  for (size_t i = 0; i < names.size(); ++i) {
    std::snprintf(buf, sizeof buf, ",%.9g,%.9g\n", truth[i], predicted[i]);
    csv += csv_field(names[i]);
    if (!classes.empty()) {
      csv += ',';
      csv += class_name(truth[i]);
      csv += ',';
      csv += class_name(predicted[i]);
    }
    csv += buf;
  }
  write_text_atomically((dir / "predictions.csv").string(), csv);
}

void read_predictions(const std::string& path, std::vector<float>& truth, std::vector<float>& predicted) {
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    const size_t a = line.rfind(',', line.rfind(',') - 1);
    float t = 0, p = 0;
    HOTLAP_CHECK(a != std::string::npos && std::sscanf(line.c_str() + a, ",%f,%f", &t, &p) == 2, path,
                 ": not a predictions line: ", line);
    truth.push_back(t);
    predicted.push_back(p);
  }
}

std::vector<EpochRecord> read_metrics(const std::string& path) {
  std::vector<EpochRecord> records;
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);  // header
  const bool classify = line == kClassCsvHeader;
  int64_t number = 1;
  while (std::getline(in, line)) {
    ++number;
    EpochRecord r;
    long long epoch = 0, step = 0;
    const bool read = classify ? std::sscanf(line.c_str(), "%lld,%lld,%lf,%lf,%lf,%lf,%lf", &epoch, &step, &r.train_loss,
                                             &r.top1, &r.top5, &r.lr, &r.images_per_s) == 7
                               : std::sscanf(line.c_str(), "%lld,%lld,%lf,%lf,%lf,%lf,%lf,%lf", &epoch, &step,
                                             &r.train_loss, &r.pearson, &r.mae, &r.rmse, &r.lr, &r.images_per_s) == 8;
    HOTLAP_CHECK(read, path, ":", number, ": not a metrics line: ", line);
    r.epoch = epoch;
    r.step = step;
    records.push_back(r);
  }
  return records;
}

// The console lines of a fold, also appended to log.txt in its folder.
void log_line(const std::filesystem::path& dir, const std::string& line) {
  if (!kernels::comm::is_root()) return;  // data-parallel: rank 0 speaks for the job
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (std::FILE* f = std::fopen((dir / "log.txt").string().c_str(), "ab")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
  }
}

// The configuration as (key, JSON value) pairs: config.json and the report's table.
std::vector<std::pair<std::string, std::string>> config_entries(const TrainConfig& c) {
  auto str = [](const std::string& v) {
    std::string out = "\"";
    for (char ch : v) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    return out + "\"";
  };
  auto num = [](double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
  };
  auto integer = [](int64_t v) { return std::to_string(v); };
  return {{"task", str(c.task)},
          {"data_dir", str(c.data_dir)},       {"labels", str(c.labels_file)},
          {"ratings", str(c.ratings_csv)},     {"images", str(c.images_dir)},
          {"protocol", str(c.protocol)},       {"fold", integer(c.fold)},
          {"depth", integer(c.depth)},         {"width", integer(c.width)},
          {"init", str(c.init)},               {"optimizer", str(c.optimizer)},
          {"lr", num(c.lr)},                   {"momentum", num(c.momentum)},
          {"weight_decay", num(c.weight_decay)}, {"schedule", str(c.schedule)},
          {"step_size", integer(c.step_size)}, {"warmup", integer(c.warmup)},
          {"step_epochs", integer(c.step_epochs)}, {"warmup_epochs", integer(c.warmup_epochs)},
          {"bias_decay", c.decay_vectors ? "true" : "false"},
          {"loss", str(c.task == "classify" ? "cross_entropy" : c.loss)},
          {"label_smoothing", num(c.label_smoothing)}, {"min_scale", num(c.min_scale)},
          {"batch_size", integer(c.batch_size)},
          {"epochs", integer(c.epochs)},       {"iterations", integer(c.iterations)},
          {"resize", integer(c.resize)},       {"crop", integer(c.crop)},
          {"whole_image", c.whole_image ? "true" : "false"}, {"threads", integer(c.threads)},
          {"seed", std::to_string(c.seed)},
          {"deterministic", c.deterministic ? "true" : "false"},
          {"sync_bn", c.sync_bn ? "true" : "false"},
          {"compute_threads", integer(omp_get_max_threads())},
          {"device", str(c.compute.device)},   {"precision", str(c.compute.precision)}};
}

std::string config_json(const TrainConfig& c) {
  std::string out = "{\n";
  const auto entries = config_entries(c);
  for (size_t i = 0; i < entries.size(); ++i)
    out += "  \"" + entries[i].first + "\": " + entries[i].second + (i + 1 < entries.size() ? ",\n" : "\n");
  return out + "}\n";
}

namespace {

std::string exact(double v) {  // %.17g: read back, the same double
  char number[32];
  std::snprintf(number, sizeof number, "%.17g", v);
  return number;
}

CheckpointInfo common_checkpoint_info(const TrainConfig& c, const std::string& protocol, int64_t epoch, int64_t step) {
  CheckpointInfo info;
  info.step = step;
  info.epoch = epoch;
  info.arch = "resnet" + std::to_string(c.depth);
  info.rng_state = {global_rng().state[0], global_rng().state[1], global_rng().state[2], global_rng().state[3]};
  info.extra["protocol"] = protocol;
  // How a photo is prepared for this model: hotlap score reads these back (apps/score/scoring_model.h).
  info.extra["input.resize"] = std::to_string(c.resize);
  info.extra["input.crop"] = std::to_string(c.crop);
  info.extra["input.whole_image"] = c.whole_image ? "1" : "0";
  return info;
}

}  // namespace

CheckpointInfo epoch_checkpoint_info(const TrainConfig& c, const std::string& protocol, int64_t epoch, int64_t step,
                                     const RegressionMetrics& m) {
  CheckpointInfo info = common_checkpoint_info(c, protocol, epoch, step);
  info.extra["pearson"] = exact(m.pearson);
  info.extra["mae"] = exact(m.mae);
  info.extra["rmse"] = exact(m.rmse);
  return info;
}

CheckpointInfo epoch_checkpoint_info(const TrainConfig& c, const std::string& protocol, int64_t epoch, int64_t step,
                                     const ClassificationMetrics& m, const std::vector<std::string>& classes) {
  CheckpointInfo info = common_checkpoint_info(c, protocol, epoch, step);
  info.extra["task"] = "classify";
  info.extra["classes"] = classes_json(classes);
  info.extra["top1"] = exact(m.top1);
  info.extra["top5"] = exact(m.top5);
  return info;
}

ResumePoint resume_fold(const std::filesystem::path& dir, Module& model, Optimizer* optimizer, size_t test_count,
                        int64_t classes) {
  namespace fs = std::filesystem;
  const std::string last_path = (dir / "last.safetensors").string(), best_path = (dir / "best.safetensors").string();
  ResumePoint r;
  const CheckpointInfo info = load_checkpoint(last_path, model, optimizer);
  r.epoch = info.epoch + 1;
  r.step = info.step;
  global_rng().state[0] = info.rng_state[0];
  global_rng().state[1] = info.rng_state[1];
  global_rng().state[2] = info.rng_state[2];
  global_rng().state[3] = info.rng_state[3];
  if (fs::exists(dir / "metrics.csv")) r.history = read_metrics((dir / "metrics.csv").string());
  // Rows of an epoch that was stopped before its `last` was written are done again.
  std::erase_if(r.history, [&](const EpochRecord& e) { return e.epoch > info.epoch; });
  const auto best_meta = fs::exists(best_path) ? safetensors::read_header(best_path).metadata
                                               : std::map<std::string, std::string>{};
  const bool best_is_ahead = !best_meta.empty() && metadata_number(best_meta, "epoch", best_path) >
                                                       static_cast<double>(info.epoch);
  if (best_is_ahead)  // written by the unfinished epoch: that epoch runs again and writes it again
    std::printf("%s is from an epoch after the last complete one (%lld): it is written again\n",
                best_path.c_str(), static_cast<long long>(info.epoch));
  if (!best_meta.empty() && !best_is_ahead) {
    const auto& meta = best_meta;
    r.best_epoch = static_cast<int64_t>(metadata_number(meta, "epoch", best_path));
    if (fs::exists(dir / "predictions.csv"))
      read_predictions((dir / "predictions.csv").string(), r.best_truth, r.best_predicted);
    if (classes > 0) {
      r.best_classes.top1 = metadata_number(meta, "extra.top1", best_path);
      r.best_classes.top5 = metadata_number(meta, "extra.top5", best_path);
      r.best_classes.count = test_count;
      r.best_classes.classes = classes;
      r.best_classes.confusion =
          confusion_matrix(r.best_truth, r.best_predicted, classes, (dir / "predictions.csv").string());
    } else {
      r.best.pearson = metadata_number(meta, "extra.pearson", best_path);
      r.best.mae = metadata_number(meta, "extra.mae", best_path);
      r.best.rmse = metadata_number(meta, "extra.rmse", best_path);
      r.best.count = test_count;
    }
  }
  std::printf("resuming from %s: epoch %lld, step %lld\n", last_path.c_str(), static_cast<long long>(r.epoch),
              static_cast<long long>(r.step));
  return r;
}

}  // namespace hotlap
