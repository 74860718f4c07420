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

#include "kernels/error.h"
#include "nn/files/atomic_file.h"

namespace hotlap {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HOTLAP_CHECK(in.good(), path, ": cannot open");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

constexpr const char* kCsvHeader = "epoch,step,train_loss,pearson,mae,rmse,lr,images_per_s";

// %.9g: enough digits that reading a value back and writing it again gives the same text, so a
// resumed run's files equal an uninterrupted run's.
std::string csv_line(const EpochRecord& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.1f", static_cast<long long>(r.epoch),
                static_cast<long long>(r.step), r.train_loss, r.pearson, r.mae, r.rmse, r.lr, r.images_per_s);
  return buf;
}

}  // namespace

std::string fold_name(int fold) {
  return fold < 0 ? "80-20" : fold == 0 ? "60-40" : "fold" + std::to_string(fold);
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
void write_metrics(const std::filesystem::path& dir, const std::vector<EpochRecord>& records) {
  std::string csv = std::string(kCsvHeader) + "\n", json = "[\n";
  for (size_t i = 0; i < records.size(); ++i) {
    const EpochRecord& r = records[i];
    csv += csv_line(r) + "\n";
    char buf[320];
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
                       const std::vector<float>& truth, const std::vector<float>& predicted) {
  std::string csv = "name,true,predicted\n";
  char buf[64];
  for (size_t i = 0; i < names.size(); ++i) {
    std::snprintf(buf, sizeof buf, ",%.9g,%.9g\n", truth[i], predicted[i]);
    csv += names[i] + buf;
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
  int64_t number = 1;
  while (std::getline(in, line)) {
    ++number;
    EpochRecord r;
    long long epoch = 0, step = 0;
    HOTLAP_CHECK(std::sscanf(line.c_str(), "%lld,%lld,%lf,%lf,%lf,%lf,%lf,%lf", &epoch, &step, &r.train_loss,
                             &r.pearson, &r.mae, &r.rmse, &r.lr, &r.images_per_s) == 8,
                 path, ":", number, ": not a metrics line: ", line);
    r.epoch = epoch;
    r.step = step;
    records.push_back(r);
  }
  return records;
}

// The console lines of a fold, also appended to log.txt in its folder.
void log_line(const std::filesystem::path& dir, const std::string& line) {
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
  return {{"data_dir", str(c.data_dir)},       {"labels", str(c.labels_file)},
          {"ratings", str(c.ratings_csv)},     {"images", str(c.images_dir)},
          {"protocol", str(c.protocol)},       {"fold", integer(c.fold)},
          {"depth", integer(c.depth)},         {"width", integer(c.width)},
          {"init", str(c.init)},               {"optimizer", str(c.optimizer)},
          {"lr", num(c.lr)},                   {"momentum", num(c.momentum)},
          {"weight_decay", num(c.weight_decay)}, {"schedule", str(c.schedule)},
          {"step_size", integer(c.step_size)}, {"warmup", integer(c.warmup)},
          {"loss", str(c.loss)},               {"batch_size", integer(c.batch_size)},
          {"epochs", integer(c.epochs)},       {"iterations", integer(c.iterations)},
          {"resize", integer(c.resize)},       {"crop", integer(c.crop)},
          {"whole_image", c.whole_image ? "true" : "false"}, {"threads", integer(c.threads)},
          {"seed", std::to_string(c.seed)},
          {"deterministic", c.deterministic ? "true" : "false"},
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

}  // namespace hotlap
