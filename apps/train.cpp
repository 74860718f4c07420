#include "apps/train.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "apps/compute_threads.h"
#include "apps/loader.h"
#include "apps/progress.h"
#include "apps/run_folder.h"
#include "apps/scut.h"
#include "apps/stop_signal.h"
#include "apps/synth.h"
#include "kernels/error.h"
#include "nn/files/atomic_file.h"
#include "nn/runtime/autograd.h"
#include "nn/files/checkpoint.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/random.h"
#include "nn/files/safetensors.h"
#include "nn/layers/schedule.h"
#include "nn/files/torch_format.h"
#include "resnet/resnet.h"

namespace hotlap {

void apply_recipe(const std::string& recipe, TrainConfig& c) {
  if (recipe == "paper") {
    c.optimizer = "sgd";
    c.lr = 1e-3;
    c.momentum = 0.9;
    c.weight_decay = 1e-4;
    c.schedule = "step";
    c.step_size = 5000;
    c.batch_size = 16;
    c.iterations = 20000;
    c.epochs = 0;
    c.resize = 256;
    c.crop = 224;
    c.whole_image = false;
  } else if (recipe == "seed") {
    c.optimizer = "adamw";
    c.lr = 1e-3;
    c.weight_decay = 0.0;
    c.schedule = "constant";
    c.batch_size = 200;
    c.epochs = 10;
    c.iterations = 0;
    c.crop = 350;
    c.whole_image = true;
    c.protocol = "80-20";
  } else {
    throw_error("train: unknown recipe '", recipe, "' (paper, seed)");
  }
}

namespace {

kernels::LossKind parse_loss(const std::string& s) {
  if (s == "mse") return kernels::LossKind::mse;
  if (s == "l1") return kernels::LossKind::l1;
  if (s == "smooth_l1") return kernels::LossKind::smooth_l1;
  throw_error("train: unknown loss '", s, "' (mse, l1, smooth_l1)");
}

std::unique_ptr<LrSchedule> make_schedule(const TrainConfig& c, int64_t total_steps) {
  if (c.schedule == "step") return std::make_unique<StepLr>(c.lr, c.step_size, 0.1);
  if (c.schedule == "cosine") return std::make_unique<CosineLr>(c.lr, c.warmup, std::max(total_steps, c.warmup + 1));
  if (c.schedule == "constant") return std::make_unique<ConstantLr>(c.lr);
  throw_error("train: unknown schedule '", c.schedule, "' (step, cosine, constant)");
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, Module& model) {
  if (c.optimizer == "sgd") {
    SgdOptions o;
    o.lr = c.lr;
    o.momentum = c.momentum;
    o.weight_decay = c.weight_decay;
    return std::make_unique<SGD>(model.named_parameters(), o);
  }
  if (c.optimizer == "adamw") {
    AdamWOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    return std::make_unique<AdamW>(model.named_parameters(), o);
  }
  throw_error("train: unknown optimizer '", c.optimizer, "' (sgd, adamw)");
}

// Predictions for every sample of a loader, in eval mode.
struct Evaluation {
  RegressionMetrics metrics;
  std::vector<std::string> names;
  std::vector<float> predicted, truth;
};

// A number in a checkpoint's metadata, for resuming: a missing or malformed entry is an Error naming
// the file and the key (a run folder edited by hand, or a checkpoint from elsewhere), never a bare
// std::stod / map::at exception.
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

Evaluation evaluate(Module& model, Loader& loader, Device device, const std::function<void()>& stop_if_asked) {
  model.eval();
  NoGradGuard no_grad;
  Evaluation e;
  loader.start_epoch(0);
  Batch batch;
  while (loader.next(batch)) {
    stop_if_asked();
    adapt_compute_threads();
    const std::vector<float> p = model.forward(batch.images.to(device)).to_vector();
    const std::vector<float> t = batch.targets.to_vector();
    e.predicted.insert(e.predicted.end(), p.begin(), p.end());
    e.truth.insert(e.truth.end(), t.begin(), t.end());
    e.names.insert(e.names.end(), batch.names.begin(), batch.names.end());
  }
  model.train();
  e.metrics = regression_metrics(e.predicted, e.truth);
  return e;
}

std::string fold_name(int fold) {
  return fold < 0 ? "80-20" : fold == 0 ? "60-40" : "fold" + std::to_string(fold);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HOTLAP_CHECK(in.good(), path, ": cannot open");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct EpochRecord {
  int64_t epoch = 0, step = 0;
  double train_loss = 0, pearson = 0, mae = 0, rmse = 0, lr = 0, images_per_s = 0;
};

const char* kCsvHeader = "epoch,step,train_loss,pearson,mae,rmse,lr,images_per_s";

// %.9g: enough digits that reading a value back and writing it again gives the same text, so a
// resumed run's files equal an uninterrupted run's.
std::string csv_line(const EpochRecord& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.1f", static_cast<long long>(r.epoch),
                static_cast<long long>(r.step), r.train_loss, r.pearson, r.mae, r.rmse, r.lr, r.images_per_s);
  return buf;
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

void write_predictions(const std::filesystem::path& dir, const Evaluation& e) {
  std::string csv = "name,true,predicted\n";
  char buf[64];
  for (size_t i = 0; i < e.names.size(); ++i) {
    std::snprintf(buf, sizeof buf, ",%.9g,%.9g\n", e.truth[i], e.predicted[i]);
    csv += e.names[i] + buf;
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

// The labelled samples split 80/20 by a seeded shuffle: the original notebook's protocol, and the one
// for a plain list of labels (--labels, --ratings).
Split split_80_20(std::vector<Sample> samples, uint64_t seed, const std::string& description) {
  HOTLAP_CHECK(samples.size() >= 10, "train: ", samples.size(), " labelled images are too few to split 80/20");
  Rng rng(seed ^ 0x8020802080208020ULL);
  for (size_t i = samples.size() - 1; i > 0; --i)
    std::swap(samples[i], samples[static_cast<size_t>(rng.below(static_cast<int64_t>(i) + 1))]);
  const size_t cut = samples.size() * 4 / 5;
  Split split;
  split.train.assign(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(cut));
  split.test.assign(samples.begin() + static_cast<std::ptrdiff_t>(cut), samples.end());
  split.name = description + ", random 80/20 split (seed " + std::to_string(seed) + ")";
  count_split(split);
  return split;
}

// fold: 1-5 for five-fold, 0 for 60/40, -1 for an 80/20 split.
Split load_split(const TrainConfig& c, int fold) {
  LoadOptions load;
  load.check_images_exist = c.check_images;
  load.stop_on_problems = !c.skip_bad_labels;
  std::vector<Problem> problems;
  Split split;
  const std::string images = c.images_dir.empty() ? c.data_dir + "/Images" : c.images_dir;
  if (!c.labels_file.empty()) {
    split = split_80_20(load_labels(c.labels_file, images, load, &problems), c.seed, c.labels_file);
  } else if (!c.ratings_csv.empty()) {
    split = split_80_20(load_rater_csv(c.ratings_csv, images, load, &problems), c.seed,
                        c.ratings_csv + " (mean of the ratings per image)");
  } else if (fold < 0) {  // all of the 60/40 lists' images, split 80/20
    Split all = load_scut_split(c.data_dir, Protocol::sixty_forty, 0, load);
    problems = all.problems;
    all.train.insert(all.train.end(), all.test.begin(), all.test.end());
    split = split_80_20(all.train, c.seed,
                        (is_synthetic_scut(c.data_dir) ? "hotlap synth's faces (" : "SCUT-FBP5500 (") + c.data_dir + ")");
  } else {
    split = load_scut_split(c.data_dir, fold == 0 ? Protocol::sixty_forty : Protocol::five_fold, fold, load);
    problems = split.problems;
  }
  if (!problems.empty())
    std::printf("warning: skipped what the labels got wrong:\n%s\n", summarize_problems(problems).c_str());
  return split;
}

// Every image of both splits loaded once, before training: a corrupt test image would otherwise be
// found by the first evaluation, after a whole epoch. Failures stop the run with the list, or with
// --skip-bad-labels are left out (reported).
// `known_good`: the images an earlier fold's check loaded, which are not loaded again (the five folds
// share their 5500 images); this check adds the ones it loads.
void check_images_load(const TrainConfig& c, Split& split, std::set<std::string>& known_good) {
  const auto start = std::chrono::steady_clock::now();
  const AugmentConfig view{c.resize, c.crop, false, c.whole_image};
  const int threads = std::max(c.threads, omp_get_max_threads());
  std::vector<std::string> failures;
  for (std::vector<Sample>* part : {&split.train, &split.test}) {
    std::vector<Sample> unknown;
    std::vector<size_t> where;  // unknown[j] is (*part)[where[j]]
    for (size_t i = 0; i < part->size(); ++i)
      if (known_good.count((*part)[i].path) == 0) unknown.push_back((*part)[i]), where.push_back(i);
    const auto found = find_unloadable_samples(unknown, view, threads);
    std::set<size_t> bad;
    for (const auto& f : found) bad.insert(f.first);
    for (size_t j = 0; j < unknown.size(); ++j)
      if (bad.count(j) == 0) known_good.insert(unknown[j].path);
    for (auto it = found.rbegin(); it != found.rend(); ++it) {  // from the back: indices stay valid
      failures.push_back(it->second);
      if (c.skip_bad_labels) part->erase(part->begin() + static_cast<std::ptrdiff_t>(where[it->first]));
    }
  }
  std::reverse(failures.begin(), failures.end());
  if (c.skip_bad_labels && !failures.empty()) count_split(split);  // the lines printed next say what trains
  const size_t total = split.train.size() + split.test.size() + (c.skip_bad_labels ? failures.size() : 0);
  if (!failures.empty()) {
    std::string list;
    for (size_t i = 0; i < failures.size() && i < 10; ++i) list += "\n  " + failures[i];
    if (failures.size() > 10) list += "\n  ... and " + std::to_string(failures.size() - 10) + " more";
    HOTLAP_CHECK(c.skip_bad_labels, "train: ", failures.size(), " of ", total, " images cannot be loaded",
                 " (--skip-bad-labels trains without them):", list);
    std::printf("warning: left out %zu of %zu images that cannot be loaded:%s\n", failures.size(), total,
                list.c_str());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (seconds >= 2.0)
    std::printf("checked that the %zu images load (%.1f s; --no-image-check skips this)\n", total, seconds);
}

FoldResult train_fold(const TrainConfig& c, int fold, Device device, std::set<std::string>& known_good) {
  namespace fs = std::filesystem;
  Split split = load_split(c, fold);
  if (c.check_images) check_images_load(c, split, known_good);
  const fs::path dir = fs::path(c.run_dir) / fold_name(fold);
  fs::create_directories(dir);
  if (const size_t stale = remove_stale_temporaries(dir.string()); stale > 0)
    std::printf("removed %s left in %s by an interrupted run\n",
                counted(static_cast<long long>(stale), "temporary file").c_str(), dir.string().c_str());

  manual_seed(c.seed + static_cast<uint64_t>(fold));
  auto model = resnet::make_resnet({c.depth, 1, c.width});
  if (c.init != "scratch") {
    ImportOptions options;
    // An ImageNet classifier's head gives way to a fresh regression head; a regressor's is kept.
    options.optional_prefixes = {"fc."};
    const ImportReport report = import_torch_state(*model, c.init, options);
    std::printf("init from %s: %s\n", c.init.c_str(), report.summary().c_str());
  }
  model->to(device);  // before the optimizer, so that its state is created on the same device
  auto optimizer = make_optimizer(c, *model);
  // What does not grow with the batch: weights, gradients, optimizer state (about 3-4x the weights).
  size_t state_bytes = 0;
  for (const Tensor& p : model->parameters()) state_bytes += p.nbytes() * (c.optimizer == "adamw" ? 4 : 3);
  const kernels::LossKind loss_kind = parse_loss(c.loss);

  LoaderConfig train_cfg;
  train_cfg.batch_size = c.batch_size;
  train_cfg.threads = c.threads;
  train_cfg.shuffle = true;
  train_cfg.drop_last = true;  // batch norm needs more than one sample
  train_cfg.seed = c.seed;
  train_cfg.augment = {c.resize, c.crop, true, c.whole_image};
  train_cfg.pin_memory = device == Device::cuda;  // batches reach the GPU by asynchronous copies
  LoaderConfig test_cfg = train_cfg;
  test_cfg.shuffle = false;
  test_cfg.drop_last = false;
  test_cfg.augment.train = false;
  Loader train_loader(split.train, train_cfg), test_loader(split.test, test_cfg);
  const int64_t per_epoch = train_loader.batches_per_epoch();
  HOTLAP_CHECK(per_epoch > 0, "train: ", split.train.size(), " training images make no batch of ",
               c.batch_size);
  const int64_t epochs = c.epochs > 0 ? c.epochs : (c.iterations + per_epoch - 1) / per_epoch;
  HOTLAP_CHECK(epochs > 0, "train: give --epochs or --iterations");
  const int64_t total_steps = c.iterations > 0 ? c.iterations : epochs * per_epoch;
  auto schedule = make_schedule(c, total_steps);

  write_text_atomically((dir / "config.json").string(), config_json(c));
  log_line(dir, split.description);  // two lines: each fits 80 columns
  log_line(dir, "ResNet-" + std::to_string(c.depth) + ", " + counted(epochs, "epoch") + " of " +
                    counted(per_epoch, "step") + " (batch " + std::to_string(c.batch_size) + ")");
  std::vector<EpochRecord> history;
  FoldResult result;
  result.fold = fold;
  result.name = fold_name(fold);
  result.best.pearson = -2;
  // The baseline: every test image given the training split's mean score.
  double score_sum = 0, abs_sum = 0, square_sum = 0;
  for (const Sample& s : split.train) score_sum += s.score;
  result.train_mean = score_sum / static_cast<double>(std::max<size_t>(split.train.size(), 1));
  for (const Sample& s : split.test) {
    abs_sum += std::abs(s.score - result.train_mean);
    square_sum += (s.score - result.train_mean) * (s.score - result.train_mean);
  }
  const double test_count = static_cast<double>(std::max<size_t>(split.test.size(), 1));
  result.baseline = {0.0, abs_sum / test_count, std::sqrt(square_sum / test_count), split.test.size()};
  int64_t step = 0, first_epoch = 1;
  const std::string last_path = (dir / "last.safetensors").string(), best_path = (dir / "best.safetensors").string();
  if (c.resume && fs::exists(last_path)) {
    const CheckpointInfo info = load_checkpoint(last_path, *model, optimizer.get());
    first_epoch = info.epoch + 1;
    step = info.step;
    global_rng().state[0] = info.rng_state[0];
    global_rng().state[1] = info.rng_state[1];
    global_rng().state[2] = info.rng_state[2];
    global_rng().state[3] = info.rng_state[3];
    if (fs::exists(dir / "metrics.csv")) history = read_metrics((dir / "metrics.csv").string());
    // Rows of an epoch that was stopped before its `last` was written are done again.
    std::erase_if(history, [&](const EpochRecord& r) { return r.epoch > info.epoch; });
    const auto best_meta = fs::exists(best_path) ? safetensors::read_file(best_path).metadata
                                                 : std::map<std::string, std::string>{};
    const bool best_is_ahead = !best_meta.empty() && metadata_number(best_meta, "epoch", best_path) >
                                                         static_cast<double>(info.epoch);
    if (best_is_ahead)  // written by the unfinished epoch: that epoch runs again and writes it again
      std::printf("%s is from an epoch after the last complete one (%lld): it is written again\n",
                  best_path.c_str(), static_cast<long long>(info.epoch));
    if (!best_meta.empty() && !best_is_ahead) {
      const auto& meta = best_meta;
      result.best.pearson = metadata_number(meta, "extra.pearson", best_path);
      result.best.mae = metadata_number(meta, "extra.mae", best_path);
      result.best.rmse = metadata_number(meta, "extra.rmse", best_path);
      result.best.count = split.test.size();
      result.best_epoch = static_cast<int64_t>(metadata_number(meta, "epoch", best_path));
      if (fs::exists(dir / "predictions.csv"))
        read_predictions((dir / "predictions.csv").string(), result.best_truth, result.best_predicted);
    }
    std::printf("resuming from %s: epoch %lld, step %lld\n", last_path.c_str(),
                static_cast<long long>(first_epoch), static_cast<long long>(step));
  }
  const bool terminal = isatty(fileno(stdout)) != 0;
  const auto columns = [] { return terminal_columns() > 0 ? terminal_columns() : 80; };  // read again: it may change
  int64_t epoch = first_epoch;
  // Ctrl-C or SIGTERM: the unfinished epoch has written nothing yet, so stopping here leaves the
  // folder as the previous epoch left it (its files are written at the epoch's end, `last` last).
  const auto stop_if_asked = [&] {
    const int signal = StopSignals::requested();
    if (signal == 0) return;
    if (terminal) std::printf("\r%*s\r", columns() - 1, "");
    std::fflush(stdout);
    const std::string kept = epoch > 1 ? "it holds epochs 1-" + std::to_string(epoch - 1) + " (" + last_path + ")"
                                       : "no epoch of it was finished, so nothing of it is saved";
    log_line(dir, "stopped by " + std::string(StopSignals::name(signal)) + " during epoch " + std::to_string(epoch) +
                      " (step " + std::to_string(step) + "); the unfinished epoch is dropped");
    throw TrainingStopped(signal, "stopped by " + std::string(StopSignals::name(signal)) + " in " + dir.string() +
                                      " during epoch " + std::to_string(epoch) + ": " + kept);
  };
  // Only while epochs run: before, a signal ends the process at once (loading the data or the model
  // writes nothing, and may wait on a file where no step boundary would ever come).
  const StopSignals stop;
  for (; epoch <= epochs && step < total_steps; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    train_loader.start_epoch(epoch);
    double loss_sum = 0;
    int64_t batches = 0, images = 0;
    Batch batch;
    model->train();
    while (step < total_steps && train_loader.next(batch)) {
      stop_if_asked();
      adapt_compute_threads();  // fewer compute threads while other programs keep the CPUs busy
      optimizer->set_lr(schedule->lr_at(step));
      optimizer->zero_grad();
      Tensor loss;
      try {
        loss = ops::loss(loss_kind, model->forward(batch.images.to(device)), batch.targets.to(device));
        loss.backward();
        optimizer->step();
      } catch (const Error& e) {
        Autograd::clear_tape();
        const std::string message = e.what();
        // cuDNN and cuBLAS report their own allocation failures in words, not as OutOfMemory.
        if (!dynamic_cast<const OutOfMemory*>(&e) && message.find("out of memory") == std::string::npos) throw;
        throw_error(message, "\n", device == Device::cuda ? out_of_memory_advice(c.batch_size, state_bytes)
                                                          : "a smaller --batch needs proportionally less memory");
      }
      const float loss_value = loss.item();
      HOTLAP_CHECK(std::isfinite(loss_value), "train: the loss became ", loss_value, " at epoch ", epoch, ", step ",
                   step + 1, " (learning rate ", optimizer->lr(), "); stopped. The last good checkpoint is ",
                   last_path, fs::exists(last_path) ? "" : " (none yet: it is written after each epoch)");
      loss_sum += loss_value;
      ++batches;
      ++step;
      images += batch.images.dim(0);
      if (terminal) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const int64_t left = std::min(total_steps - step, (epochs - epoch + 1) * per_epoch - batches);
        const Progress progress{epoch, epochs, batches, per_epoch, loss_sum / static_cast<double>(batches),
                                static_cast<double>(images) / std::max(elapsed, 1e-9),
                                elapsed / static_cast<double>(batches) * static_cast<double>(left)};
        std::printf("\r%s", progress_line(progress, columns()).c_str());
        std::fflush(stdout);
      }
    }
    stop_if_asked();
    if (terminal) std::printf("\r%*s\r", columns() - 1, "");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const Evaluation evaluation = evaluate(*model, test_loader, device, stop_if_asked);
    const RegressionMetrics& m = evaluation.metrics;
    const double train_loss = loss_sum / std::max<int64_t>(batches, 1);
    const double speed = static_cast<double>(images) / std::max(seconds, 1e-9);
    // At most 80 columns to 999 epochs, a negative PC and 9999 img/s (the step count is in metrics.csv;
    // four significant digits keep a diverging loss short); img/s is the training's, as in the progress line.
    char line[256];
    const int digits = static_cast<int>(std::to_string(epochs).size());  // "epoch  9/20" above "epoch 10/20"
    std::snprintf(line, sizeof line, "  epoch %*lld/%lld  loss %.4g  test PC %.4f MAE %.4g RMSE %.4g  %.*f img/s",
                  digits, static_cast<long long>(epoch), static_cast<long long>(epochs), train_loss, m.pearson,
                  m.mae, m.rmse, speed < 100 ? 1 : 0, speed);
    log_line(dir, line);
    history.push_back({epoch, step, train_loss, m.pearson, m.mae, m.rmse, optimizer->lr(), speed});

    CheckpointInfo info;
    info.step = step;
    info.epoch = epoch;
    info.arch = "resnet" + std::to_string(c.depth);
    info.rng_state = {global_rng().state[0], global_rng().state[1], global_rng().state[2], global_rng().state[3]};
    char number[32];
    std::snprintf(number, sizeof number, "%.17g", m.pearson);
    info.extra["pearson"] = number;
    std::snprintf(number, sizeof number, "%.17g", m.mae);
    info.extra["mae"] = number;
    std::snprintf(number, sizeof number, "%.17g", m.rmse);
    info.extra["rmse"] = number;
    info.extra["protocol"] = split.description;
    // How a photo is prepared for this model: hotlap score reads these back (apps/scoring_model.h).
    info.extra["input.resize"] = std::to_string(c.resize);
    info.extra["input.crop"] = std::to_string(c.crop);
    info.extra["input.whole_image"] = c.whole_image ? "1" : "0";
    // An epoch's files, `last` last: it is what --resume starts from, so the epoch counts as done only
    // once it is written. A run killed before that resumes from the epoch before, and the resume
    // drops what the unfinished epoch had written already (its metrics rows, a best checkpoint).
    if (m.pearson > result.best.pearson) {
      result.best = m;
      result.best_epoch = epoch;
      save_checkpoint(best_path, *model, nullptr, info);
      write_predictions(dir, evaluation);
      result.best_predicted = evaluation.predicted;
      result.best_truth = evaluation.truth;
    }
    write_metrics(dir, history);
    save_checkpoint(last_path, *model, optimizer.get(), info);
  }
  for (const EpochRecord& r : history)
    result.epochs.push_back({r.epoch, r.step, r.train_loss, r.pearson, r.mae, r.rmse, r.lr, r.images_per_s});
  return result;
}

// Images trained and the time their steps took, over a fold's epochs (resumed ones included): an
// epoch's images are its steps times the batch (the loader drops a last partial batch), its time
// those images over its recorded rate.
struct TrainingTime {
  double images = 0, seconds = 0;
};
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

// The same over every fold of the run.
TrainingTime training_time(const std::vector<FoldResult>& results, int64_t batch_size) {
  TrainingTime all;
  for (const FoldResult& r : results) {
    const TrainingTime t = training_time(r, batch_size);
    all.images += t.images, all.seconds += t.seconds;
  }
  return all;
}

// `device`: the one used (compute_description), not the --device asked for; `run_seconds`: the wall
// clock of the run so far.
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

}  // namespace

std::vector<FoldResult> run_training(const TrainConfig& c) {
  const auto run_start = std::chrono::steady_clock::now();
  const auto seconds_since = [](std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  HOTLAP_CHECK(!c.data_dir.empty() || !c.labels_file.empty() || !c.ratings_csv.empty(),
               "train: give --data (a SCUT-FBP5500 folder), --labels or --ratings");
  HOTLAP_CHECK(c.labels_file.empty() || c.ratings_csv.empty(), "train: --labels and --ratings exclude each other");
  HOTLAP_CHECK(!c.run_dir.empty(), "train: --out is required");
  HOTLAP_CHECK(c.batch_size >= 2, "train: --batch must be at least 2 (batch norm)");
  const Device device = apply_compute_options(c.compute, c.deterministic);
  std::printf("compute: %s\n", compute_description(device).c_str());
  const bool split_files = c.labels_file.empty() && c.ratings_csv.empty();
  HOTLAP_CHECK(c.fold == 0 || (split_files && c.protocol == "5fold"), "train: --fold picks one of the five folds of "
               "--protocol 5fold; ", split_files ? "--protocol " + c.protocol + " has no folds"
                                                 : std::string("--labels and --ratings are split 80/20, without folds"));
  std::vector<int> folds;
  if (!c.labels_file.empty() || !c.ratings_csv.empty() || c.protocol == "80-20") {
    folds = {-1};
  } else {
    const Protocol protocol = parse_protocol(c.protocol);
    if (protocol == Protocol::sixty_forty) folds = {0};
    else if (c.fold == 0) folds = {1, 2, 3, 4, 5};
    else folds = {c.fold};
  }
  HOTLAP_CHECK(!(c.resume && c.overwrite), "train: --resume and --overwrite exclude each other");
  const RunFolderLock lock(c.run_dir);
  std::vector<std::string> fold_folders;
  for (int fold : folds) fold_folders.push_back(fold_name(fold));
  check_run_folder(c.run_dir, fold_folders,
                   c.resume ? ExistingRun::resume : c.overwrite ? ExistingRun::overwrite : ExistingRun::refuse);
  std::vector<FoldResult> results;
  std::set<std::string> known_good;  // images checked by an earlier fold
  for (int fold : folds) {
    const auto fold_start = std::chrono::steady_clock::now();
    results.push_back(train_fold(c, fold, device, known_good));
    results.back().seconds = seconds_since(fold_start);
    write_report(c, results, folds.size() == 5, compute_description(device), seconds_since(run_start));
  }
  if (folds.size() > 1) print_table(results);
  std::printf("report: %s/report.html\n", c.run_dir.c_str());
  // The last line: how long it all took and how fast it trained (under 80 columns).
  const TrainingTime all = training_time(results, c.batch_size);
  std::string speed;
  if (all.seconds > 0) {
    const double rate = all.images / all.seconds;
    char buf[48];
    std::snprintf(buf, sizeof buf, " (%.*f img/s)", rate < 100 ? 1 : 0, rate);
    speed = buf;
  }
  std::printf("trained %s in %s%s\n", counted(static_cast<long long>(results.size()), "fold").c_str(),
              duration_text(seconds_since(run_start)).c_str(), speed.c_str());
  return results;
}

}  // namespace hotlap
