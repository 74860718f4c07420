// hotlap train end to end on a small synthetic data set: checkpoints, metrics and the command line.
#include <doctest/doctest.h>

#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "apps/data/synth.h"
#include "apps/train/train.h"
#include "kernels/error.h"
#include "nn/files/checkpoint.h"
#include "nn/files/safetensors.h"
#include "resnet/resnet.h"
#include "test_util.h"
#include "train_fixtures.h"

namespace hotlap {
namespace {

namespace fs = std::filesystem;

// A synthetic data set of `count` images (side `size`) in dir/data and a narrow ResNet-18's run on it.
TrainConfig small_run(const test::TempDir& dir, int64_t count, int64_t size = 40) {
  return test::small_scut_run(dir, count, size);
}

TEST_CASE("train: a narrow ResNet-18 trains on synthetic SCUT data and leaves its checkpoints") {
  test::TempDir dir;
  TrainConfig c = small_run(dir, 40, 48);
  c.protocol = "5fold";
  c.fold = 2;
  c.width = 8;
  c.optimizer = "adamw";
  c.schedule = "constant";
  c.weight_decay = 0.0;
  c.batch_size = 8;
  c.epochs = 2;
  c.resize = 40;
  std::vector<FoldResult> results = run_training(c);
  REQUIRE(results.size() == 1);
  CHECK(results[0].fold == 2);
  CHECK(results[0].best.count == 8);  // the test fold: 40 / 5
  CHECK(std::isfinite(results[0].best.rmse));

  const fs::path fold = fs::path(c.run_dir) / "fold2";
  CHECK(fs::exists(fold / "last.safetensors"));
  CHECK(fs::exists(fold / "best.safetensors"));
  CHECK(fs::exists(fold / "config.json"));
  CHECK(fs::exists(fold / "metrics.json"));
  CHECK(fs::exists(fold / "log.txt"));
  const std::vector<uint8_t> csv = test::read_bytes((fold / "metrics.csv").string());
  const std::string text(csv.begin(), csv.end());
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);  // header + 2 epochs
  auto model = resnet::make_resnet({18, 1, 8});
  CheckpointInfo info = load_checkpoint((fold / "last.safetensors").string(), *model, nullptr);
  CHECK(info.epoch == 2);
  CHECK(info.step == 2 * (32 / 8));
}

TEST_CASE("train: resuming after an epoch gives the bits of an uninterrupted run") {
  test::TempDir dir;
  TrainConfig c = small_run(dir, 30);
  c.protocol = "60-40";
  c.optimizer = "sgd";
  c.schedule = "step";
  c.step_size = 3;  // the learning rate changes inside the run
  c.lr = 0.01;
  // A fixed thread count: without one, a busy machine may change it between the two runs, and with it
  // the last bits of the sums (apps/common/compute_threads.h).
  c.compute.compute_threads = 2;

  c.run_dir = dir.file("straight");
  c.epochs = 3;
  run_training(c);

  c.run_dir = dir.file("resumed");
  c.epochs = 1;
  run_training(c);
  c.epochs = 3;
  c.resume = true;
  std::vector<FoldResult> r = run_training(c);

  const auto a = test::read_bytes(dir.file("straight") + "/60-40/last.safetensors");
  const auto b = test::read_bytes(dir.file("resumed") + "/60-40/last.safetensors");
  CHECK(a == b);
  // metrics.csv agrees in everything but its last column, the measured images/s.
  const std::string straight = test::metrics_without_speed(dir.file("straight") + "/60-40/metrics.csv");
  CHECK(std::count(straight.begin(), straight.end(), '\n') == 4);
  CHECK(straight == test::metrics_without_speed(dir.file("resumed") + "/60-40/metrics.csv"));
  CHECK(r[0].best_epoch >= 1);
}

TEST_CASE("train: a run resumed with another number of compute threads gives the bits of an uninterrupted run") {
  // The CPU kernels split their sums by the shapes alone, so a resume on a machine with other
  // defaults (or a busy one, where the adaptive count drops) goes on bit for bit; nothing is pinned.
  test::TempDir dir;
  TrainConfig c = small_run(dir, 30);
  c.protocol = "60-40";
  c.deterministic = true;
  const int before = omp_get_max_threads();
  c.compute.compute_threads = 2;
  c.run_dir = dir.file("straight");
  c.epochs = 3;
  run_training(c);

  c.run_dir = dir.file("resumed");
  c.epochs = 1;
  run_training(c);  // epoch 1 on 2 threads
  c.resume = true;
  c.epochs = 2;
  c.compute.compute_threads = 1;  // epoch 2 on 1, as on a one-core machine
  run_training(c);
  c.epochs = 3;
  c.compute.compute_threads = 3;  // epoch 3 on 3
  run_training(c);
  CHECK(test::read_bytes(dir.file("straight") + "/60-40/last.safetensors") ==
        test::read_bytes(dir.file("resumed") + "/60-40/last.safetensors"));
  omp_set_num_threads(before);
}

TEST_CASE("train: resuming with a checkpoint whose metadata lacks or garbles a number names the file and key") {
  test::TempDir dir;
  TrainConfig c = small_run(dir, 20);
  c.protocol = "60-40";
  c.epochs = 1;
  run_training(c);
  const std::string best = dir.file("run") + "/60-40/best.safetensors";
  safetensors::File f = safetensors::read_file(best);
  f.metadata.erase("extra.pearson");
  safetensors::write_file(best, f);
  // A checkpoint half-written by a process killed mid-write (its PID is gone): cleaned up on the
  // next start.
  const pid_t dead = fork();
  REQUIRE(dead >= 0);
  if (dead == 0) _exit(0);
  REQUIRE(waitpid(dead, nullptr, 0) == dead);
  const std::string stale = dir.file("run") + "/60-40/last.safetensors.tmp." + std::to_string(dead) + ".7";
  std::ofstream(stale) << "half a checkpoint";
  c.resume = true;
  c.epochs = 2;
  CHECK_THROWS_WITH_AS(run_training(c), (best + ": its metadata has no \"extra.pearson\", which resuming needs").c_str(),
                       Error);
  CHECK_FALSE(fs::exists(stale));
  f.metadata["extra.pearson"] = "0.5x";
  safetensors::write_file(best, f);
  CHECK_THROWS_WITH_AS(run_training(c), (best + ": its metadata \"extra.pearson\" is \"0.5x\", not a number").c_str(),
                       Error);
}

TEST_CASE("train: a loss that becomes NaN stops the run with a message naming the step") {
  test::TempDir dir;
  TrainConfig c = small_run(dir, 20);
  c.protocol = "60-40";
  c.batch_size = 4;
  c.schedule = "constant";
  c.lr = 1e30;  // diverges at once
  c.epochs = 2;
  CHECK_THROWS_WITH_AS(run_training(c), doctest::Contains("the loss became"), Error);
}

TEST_CASE("train: learns the synthetic task (held-out Pearson well above 0.8)") {
  test::TempDir dir;
  TrainConfig c = small_run(dir, 1100, 96);
  c.fold = 1;
  c.width = 16;
  c.optimizer = "adamw";
  c.lr = 2e-3;
  c.schedule = "cosine";
  c.epochs = 12;
  c.batch_size = 32;
  c.resize = 72;
  c.crop = 64;
  const FoldResult r = run_training(c).at(0);
  MESSAGE("held-out Pearson " << r.best.pearson << ", MAE " << r.best.mae << ", RMSE " << r.best.rmse
                              << " (best of 12 epochs, epoch " << r.best_epoch << ")");
  // Twelve epochs carry any change of summation order (ISA level, GEMM; the thread count changes
  // no bit here) into another trajectory: measured best Pearson 0.856-0.871, RMSE 0.308-0.322 across
  // those. Both bounds sit several times that spread outside it, and far from a run that does not
  // learn (Pearson ~0, RMSE ~0.69, the mean's).
  CHECK(r.best.pearson > 0.8);
  CHECK(r.best.rmse < 0.4);
}

TEST_CASE("train: --labels and the 80/20 protocol split the labelled images by seed") {
  test::TempDir dir;
  const TrainConfig base = small_run(dir, 50);
  // A plain label list: the 60/40 files' lines together.
  const std::string split = base.data_dir + "/train_test_files/split_of_60%training and 40%testing/";
  const std::vector<uint8_t> a = test::read_bytes(split + "train.txt"), b = test::read_bytes(split + "test.txt");
  std::string labels(a.begin(), a.end());
  labels.append(b.begin(), b.end());
  {
    std::ofstream out(dir.file("labels.txt"));
    out << labels;
  }
  TrainConfig c = base;
  c.data_dir.clear();
  c.labels_file = dir.file("labels.txt");
  c.images_dir = base.data_dir + "/Images";
  c.batch_size = 8;
  FoldResult r = run_training(c).at(0);
  CHECK(r.fold == -1);
  CHECK(r.best.count == 10);  // 20% of 50
  CHECK(fs::exists(fs::path(c.run_dir) / "80-20" / "last.safetensors"));

  TrainConfig d = c;
  d.labels_file.clear();
  d.data_dir = base.data_dir;
  d.protocol = "80-20";
  d.run_dir = dir.file("run2");
  CHECK(run_training(d).at(0).best.count == 10);
}

TEST_CASE("train: with no fold, 5fold trains all five and reports each in the run folder") {
  test::TempDir dir;
  TrainConfig c = small_run(dir, 30);
  c.protocol = "5fold";
  std::vector<FoldResult> r = run_training(c);
  REQUIRE(r.size() == 5);
  for (int k = 0; k < 5; ++k) {
    CHECK(r[static_cast<size_t>(k)].fold == k + 1);
    CHECK(r[static_cast<size_t>(k)].best.count == 6);
    CHECK(fs::exists(fs::path(c.run_dir) / ("fold" + std::to_string(k + 1)) / "best.safetensors"));
  }
  const std::vector<uint8_t> html = test::read_bytes(c.run_dir + "/report.html");
  const std::string text(html.begin(), html.end());
  CHECK(text.find("fold5") != std::string::npos);
  CHECK(text.find("ResNeXt-50") != std::string::npos);  // the paper's rows beside all five folds
}

TEST_CASE("train: bad configurations are clear errors") {
  test::TempDir dir;
  TrainConfig c;
  c.run_dir = dir.file("run");
  c.data_dir = dir.file("nowhere");
  c.epochs = 1;
  CHECK_THROWS_WITH_AS(run_training(c), doctest::Contains("nowhere"), Error);
  c.protocol = "7fold";
  CHECK_THROWS_AS(run_training(c), Error);
  TrainConfig r;
  CHECK_THROWS_WITH_AS(apply_recipe("fast", r), doctest::Contains("fast"), Error);
  apply_recipe("paper", r);
  CHECK(r.iterations == 20000);
  CHECK(r.batch_size == 16);
  CHECK(r.step_size == 5000);
}

}  // namespace
}  // namespace hotlap
