#include "apps/train/train.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>

#include "apps/common/compute_threads.h"
#include "apps/common/progress.h"
#include "apps/common/stop_signal.h"
#include "apps/data/image_folder.h"
#include "apps/data/loader.h"
#include "apps/train/run_files.h"
#include "apps/train/run_folder.h"
#include "apps/train/splits.h"
#include "apps/train/summary.h"
#include "apps/train/train_step.h"
#include "kernels/comm.h"
#include "kernels/error.h"
#include "nn/files/atomic_file.h"
#include "nn/files/checkpoint.h"
#include "nn/files/torch_format.h"
#include "nn/layers/ops.h"
#include "nn/layers/schedule.h"
#include "nn/runtime/collective.h"
#include "nn/runtime/random.h"
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
  } else if (recipe == "imagenet") {
    c.task = "classify";
    c.depth = 50;
    c.optimizer = "sgd";
    c.momentum = 0.9;
    c.weight_decay = 1e-4;
    c.decay_vectors = false;
    c.batch_size = 256;
    c.lr = imagenet_lr(c.batch_size);
    c.schedule = "step";
    c.step_epochs = 30;
    c.warmup_epochs = 5;  // with --schedule cosine
    c.epochs = 90;
    c.iterations = 0;
    c.resize = 256;
    c.crop = 224;
    c.whole_image = false;
    c.min_scale = 0.08;
  } else {
    throw_error("train: unknown recipe '", recipe, "' (paper, seed, imagenet)");
  }
}

double imagenet_lr(int64_t batch_size) { return 0.1 * static_cast<double>(batch_size) / 256.0; }


namespace {

kernels::LossKind parse_loss(const std::string& s) {
  if (s == "mse") return kernels::LossKind::mse;
  if (s == "l1") return kernels::LossKind::l1;
  if (s == "smooth_l1") return kernels::LossKind::smooth_l1;
  throw_error("train: unknown loss '", s, "' (mse, l1, smooth_l1)");
}

// The schedule over the run's steps; the lengths given in epochs become steps of `per_epoch`.
std::unique_ptr<LrSchedule> make_schedule(const TrainConfig& c, int64_t total_steps, int64_t per_epoch) {
  const int64_t step_size = c.step_epochs > 0 ? c.step_epochs * per_epoch : c.step_size;
  const int64_t warmup = c.warmup_epochs > 0 ? c.warmup_epochs * per_epoch : c.warmup;
  if (c.schedule == "step") return std::make_unique<StepLr>(c.lr, step_size, 0.1);
  if (c.schedule == "cosine") return std::make_unique<CosineLr>(c.lr, warmup, std::max(total_steps, warmup + 1));
  if (c.schedule == "constant") return std::make_unique<ConstantLr>(c.lr);
  throw_error("train: unknown schedule '", c.schedule, "' (step, cosine, constant)");
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, Module& model) {
  if (c.optimizer == "sgd") {
    SgdOptions o;
    o.lr = c.lr;
    o.momentum = c.momentum;
    o.weight_decay = c.weight_decay;
    o.decay_vectors = c.decay_vectors;
    return std::make_unique<SGD>(model.named_parameters(), o);
  }
  if (c.optimizer == "adamw") {
    AdamWOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    o.decay_vectors = c.decay_vectors;
    return std::make_unique<AdamW>(model.named_parameters(), o);
  }
  throw_error("train: unknown optimizer '", c.optimizer, "' (sgd, adamw)");
}

FoldResult train_fold(const TrainConfig& c, int fold, Device device, std::set<std::string>& known_good) {
  namespace fs = std::filesystem;
  Split split = load_split(c, fold);
  if (c.check_images) check_images_load(c, split, known_good);
  const fs::path dir = fs::path(c.run_dir) / fold_name(fold);
  // Data-parallel (mpirun -np N): every rank trains; rank 0 alone writes the run folder.
  const kernels::comm::World& world = kernels::comm::world();
  const bool root = world.rank == 0;
  if (root) {
    fs::create_directories(dir);
    if (const size_t stale = remove_stale_temporaries(dir.string()); stale > 0)
      std::printf("removed %s left in %s by an interrupted run\n",
                  counted(static_cast<long long>(stale), "temporary file").c_str(), dir.string().c_str());
  }

  const bool classify = c.task == "classify";
  const auto classes = static_cast<int64_t>(split.classes.size());  // a classifier's; 0 for scores
  manual_seed(c.seed + static_cast<uint64_t>(fold));
  auto model = resnet::make_resnet({c.depth, classify ? classes : 1, c.width});
  set_sync_batch_norm(*model, c.sync_bn);
  if (c.init != "scratch") {
    ImportOptions options;
    // An ImageNet classifier's head gives way to a fresh head (a regressor's, or one of this data's
    // classes); a head that fits already is kept.
    options.optional_prefixes = {"fc."};
    const ImportReport report = import_torch_state(*model, c.init, options);
    std::printf("init from %s: %s\n", c.init.c_str(), report.summary().c_str());
  }
  model->to(device);  // before the optimizer, so that its state is created on the same device
  auto optimizer = make_optimizer(c, *model);
  // What does not grow with the batch: weights, gradients, optimizer state (about 3-4x the weights).
  size_t state_bytes = 0;
  for (const Tensor& p : model->parameters()) state_bytes += p.nbytes() * (c.optimizer == "adamw" ? 4 : 3);
  LossFunction loss_of;
  if (classify) {
    loss_of = [smoothing = static_cast<float>(c.label_smoothing)](const Tensor& p, const Tensor& t) {
      return ops::cross_entropy(p, t, smoothing);
    };
  } else {
    loss_of = [kind = parse_loss(c.loss)](const Tensor& p, const Tensor& t) { return ops::loss(kind, p, t); };
  }

  LoaderConfig train_cfg;
  train_cfg.batch_size = c.batch_size;
  train_cfg.threads = c.threads;
  train_cfg.shuffle = true;
  train_cfg.drop_last = true;  // batch norm needs more than one sample
  train_cfg.seed = c.seed;
  train_cfg.augment = {c.resize, c.crop, true, c.whole_image};
  train_cfg.augment.random_resized_crop = classify;  // ImageNet's augmentation for a classifier
  train_cfg.augment.min_scale = c.min_scale;
  train_cfg.pin_memory = device == Device::cuda;  // batches reach the GPU by asynchronous copies
  train_cfg.shard = world.rank;                    // each rank its slice of every batch
  train_cfg.shards = world.size;
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
  auto schedule = make_schedule(c, total_steps, per_epoch);

  if (root) write_text_atomically((dir / "config.json").string(), config_json(c));
  log_line(dir, split.description);  // two lines: each fits 80 columns
  log_line(dir, "ResNet-" + std::to_string(c.depth) + ", " + counted(epochs, "epoch") + " of " +
                    counted(per_epoch, "step") + " (batch " + std::to_string(c.batch_size) + ")");
  std::vector<EpochRecord> history;
  FoldResult result;
  result.fold = fold;
  result.name = fold_name(fold);
  result.best.pearson = -2;
  result.best_classes.top1 = -1;
  result.classes = split.classes;
  if (classify) {  // the baseline: always guessing the training split's most frequent class
    const std::vector<int64_t> train_counts = class_counts(split.train, split.classes.size());
    const auto most = std::max_element(train_counts.begin(), train_counts.end()) - train_counts.begin();
    result.majority_accuracy = static_cast<double>(class_counts(split.test, split.classes.size())[most]) /
                               static_cast<double>(std::max<size_t>(split.test.size(), 1));
  }
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
    const ResumePoint resumed = resume_fold(dir, *model, optimizer.get(), split.test.size(), classes);
    step = resumed.step;
    first_epoch = resumed.epoch;
    history = resumed.history;
    if (resumed.best_epoch > 0) {
      result.best = resumed.best;
      result.best_classes = resumed.best_classes;
      result.best_epoch = resumed.best_epoch;
      result.best_truth = resumed.best_truth;
      result.best_predicted = resumed.best_predicted;
    }
  }
  // Every rank starts from rank 0's weights and running statistics (the same seed made them equal
  // already; this makes it so whatever a rank read).
  std::vector<Tensor> state;
  for (const auto& [name, t] : model->state()) state.push_back(t);
  broadcast_from_root(state);
  const bool terminal = root && isatty(fileno(stdout)) != 0;
  const auto columns = [] { return terminal_columns() > 0 ? terminal_columns() : 80; };  // read again: it may change
  int64_t epoch = first_epoch;
  // Ctrl-C or SIGTERM: the unfinished epoch has written nothing yet, so stopping here leaves the
  // folder as the previous epoch left it (its files are written at the epoch's end, `last` last).
  const auto stop_if_asked = [&] {
    int signal = StopSignals::requested();
    if (world.size > 1) {  // a signal to any rank stops them all at the same step
      const std::vector<float> all = kernels::comm::allgather({static_cast<float>(signal)}, "the stop signal");
      signal = static_cast<int>(*std::max_element(all.begin(), all.end()));
    }
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
      Tensor loss;
      try {
        loss = train_step(*model, *optimizer, loss_of, batch.images.to(device), batch.targets.to(device));
      } catch (const Error& e) {
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
      images += batch.images.dim(0) * world.size;
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
    if (world.size > 1) {
      // The epoch's loss over every rank's slices, as one process would log it; and rank 0's running
      // statistics everywhere (each rank's batch norm saw its own slice), so that all evaluate and
      // save one model.
      kernels::comm::allreduce_sum(&loss_sum, 1, "the epoch's loss");
      loss_sum /= world.size;
      std::vector<Tensor> buffers;
      for (const auto& [name, b] : model->named_buffers()) buffers.push_back(b);
      broadcast_from_root(buffers);
    }
    Evaluation evaluation = evaluate(*model, test_loader, device, stop_if_asked, classify ? classes : 0);
    if (evaluation.names.empty())  // gathered from the ranks: the test split's order
      for (const Sample& s : split.test) evaluation.names.push_back(s.name);
    const RegressionMetrics& m = evaluation.metrics;
    const ClassificationMetrics& k = evaluation.classification;
    const double train_loss = loss_sum / std::max<int64_t>(batches, 1);
    const double speed = static_cast<double>(images) / std::max(seconds, 1e-9);
    // At most 80 columns to 999 epochs, a negative PC and 9999 img/s (the step count is in metrics.csv;
    // four significant digits keep a diverging loss short); img/s is the training's, as in the progress line.
    char line[256];
    const int digits = static_cast<int>(std::to_string(epochs).size());  // "epoch  9/20" above "epoch 10/20"
    char test[96];
    if (classify && classes > 5)
      std::snprintf(test, sizeof test, "val top-1 %.1f%% top-5 %.1f%%", 100 * k.top1, 100 * k.top5);
    else if (classify)
      std::snprintf(test, sizeof test, "val top-1 %.1f%%", 100 * k.top1);
    else
      std::snprintf(test, sizeof test, "test PC %.4f MAE %.4g RMSE %.4g", m.pearson, m.mae, m.rmse);
    std::snprintf(line, sizeof line, "  epoch %*lld/%lld  loss %.4g  %s  %.*f img/s", digits,
                  static_cast<long long>(epoch), static_cast<long long>(epochs), train_loss, test, speed < 100 ? 1 : 0,
                  speed);
    log_line(dir, line);
    EpochRecord record{epoch, step, train_loss, m.pearson, m.mae, m.rmse, optimizer->lr(), speed};
    record.top1 = k.top1;
    record.top5 = k.top5;
    history.push_back(record);

    const CheckpointInfo info = classify ? epoch_checkpoint_info(c, split.description, epoch, step, k, split.classes)
                                         : epoch_checkpoint_info(c, split.description, epoch, step, m);
    // An epoch's files, `last` last: it is what --resume starts from, so the epoch counts as done only
    // once it is written. A run killed before that resumes from the epoch before, and the resume
    // drops what the unfinished epoch had written already (its metrics rows, a best checkpoint).
    if (classify ? k.top1 > result.best_classes.top1 : m.pearson > result.best.pearson) {
      result.best = m;
      result.best_classes = k;
      result.best_epoch = epoch;
      if (root) {
        save_checkpoint(best_path, *model, nullptr, info);
        write_predictions(dir, evaluation.names, evaluation.truth, evaluation.predicted, split.classes);
      }
      result.best_predicted = evaluation.predicted;
      result.best_truth = evaluation.truth;
    }
    if (root) {
      write_metrics(dir, history, classify);
      save_checkpoint(last_path, *model, optimizer.get(), info);
    }
  }
  for (const EpochRecord& r : history) {
    result.epochs.push_back({r.epoch, r.step, r.train_loss, r.pearson, r.mae, r.rmse, r.lr, r.images_per_s});
    result.epochs.back().top1 = r.top1;
    result.epochs.back().top5 = r.top5;
  }
  return result;
}

}  // namespace

std::vector<FoldResult> run_training(const TrainConfig& c) {
  const auto run_start = std::chrono::steady_clock::now();
  const auto seconds_since = [](std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  HOTLAP_CHECK(c.task == "score" || c.task == "classify", "train: unknown task '", c.task, "' (score, classify)");
  const bool classify = c.task == "classify";
  HOTLAP_CHECK(!c.data_dir.empty() || !c.labels_file.empty() || !c.ratings_csv.empty(),
               classify ? "train: give --data (an image folder: train/CLASS/..., val/CLASS/...) or --labels (a path,label CSV)"
                        : "train: give --data (a SCUT-FBP5500 folder), --labels or --ratings");
  HOTLAP_CHECK(!classify || c.ratings_csv.empty(), "train: --ratings holds scores; a classifier reads --data (an "
               "image folder) or --labels (a path,label CSV)");
  HOTLAP_CHECK(!classify || !c.whole_image, "train: --whole-image is a regressor's transform; a classifier trains on "
               "random resized crops and is tested on the centre crop of --resize");
  HOTLAP_CHECK(!classify || c.fold == 0, "train: --fold picks a fold of SCUT-FBP5500; a classifier has one split");
  HOTLAP_CHECK(c.label_smoothing >= 0 && c.label_smoothing < 1, "train: --label-smoothing must be in [0, 1), got ",
               c.label_smoothing);
  HOTLAP_CHECK(c.min_scale > 0 && c.min_scale <= 1, "train: --min-scale must be in (0, 1], got ", c.min_scale);
  HOTLAP_CHECK(c.labels_file.empty() || c.ratings_csv.empty(), "train: --labels and --ratings exclude each other");
  HOTLAP_CHECK(!c.run_dir.empty(), "train: --out is required");
  HOTLAP_CHECK(c.batch_size >= 2, "train: --batch must be at least 2 (batch norm)");
  const kernels::comm::World& world = kernels::comm::init();
  HOTLAP_CHECK(c.batch_size % world.size == 0 && c.batch_size / world.size >= 2, "train: --batch ", c.batch_size,
               " is the global batch, shared by ", world.size,
               " ranks: give a multiple of the rank count, at least 2 images a rank (batch norm)");
  // Rank 0 speaks for the job; the others print nothing (their errors still go to stderr).
  if (world.rank != 0 && std::freopen("/dev/null", "w", stdout) == nullptr) throw_error("train: cannot silence rank ", world.rank);
  select_rank_device(world, c.compute);
  const Device device = apply_compute_options(c.compute, c.deterministic);
  std::printf("compute: %s\n", compute_description(device).c_str());
  const bool split_files = c.labels_file.empty() && c.ratings_csv.empty();
  HOTLAP_CHECK(c.fold == 0 || classify || (split_files && c.protocol == "5fold"), "train: --fold picks one of the five folds of "
               "--protocol 5fold; ", split_files ? "--protocol " + c.protocol + " has no folds"
                                                 : std::string("--labels and --ratings are split 80/20, without folds"));
  std::vector<int> folds;
  if (classify) {
    folds = {c.labels_file.empty() ? -2 : -1};
  } else if (!c.labels_file.empty() || !c.ratings_csv.empty() || c.protocol == "80-20") {
    folds = {-1};
  } else {
    const Protocol protocol = parse_protocol(c.protocol);
    if (protocol == Protocol::sixty_forty) folds = {0};
    else if (c.fold == 0) folds = {1, 2, 3, 4, 5};
    else folds = {c.fold};
  }
  HOTLAP_CHECK(!(c.resume && c.overwrite), "train: --resume and --overwrite exclude each other");
  std::optional<RunFolderLock> lock;
  if (world.rank == 0) {
    lock.emplace(c.run_dir);
    std::vector<std::string> fold_folders;
    for (int fold : folds) fold_folders.push_back(fold_name(fold));
    check_run_folder(c.run_dir, fold_folders,
                     c.resume ? ExistingRun::resume : c.overwrite ? ExistingRun::overwrite : ExistingRun::refuse);
  }
  // The other ranks wait until rank 0 holds the folder and has checked it (or failed, ending the job).
  kernels::comm::barrier("the run folder's check");
  std::vector<FoldResult> results;
  std::set<std::string> known_good;  // images checked by an earlier fold
  for (int fold : folds) {
    const auto fold_start = std::chrono::steady_clock::now();
    results.push_back(train_fold(c, fold, device, known_good));
    results.back().seconds = seconds_since(fold_start);
    if (world.rank == 0)
      write_report(c, results, folds.size() == 5, compute_description(device), seconds_since(run_start));
  }
  if (folds.size() > 1) print_table(results);
  if (classify) print_class_table(results.front());
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
