// The data loader's decode + augment throughput: 32 JPEGs of 350x350 (a smooth random pattern at
// quality 90, like SCUT-FBP5500's photos), the training configuration (shorter side -> 256, random
// 224 crop, flip half), through a Loader with 1 and with 2 worker threads. Each iteration is one epoch
// (4 batches of 8). Counters: images/s (wall clock) and images/s per worker thread (= per core when
// the machine has that many free cores). Filter: --benchmark_filter=loader
//

#include <benchmark/benchmark.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "apps/data/image.h"
#include "apps/data/loader.h"
#include "nn/runtime/random.h"

namespace {

using namespace hotlap;

constexpr int kImages = 32;
constexpr int64_t kSide = 350;

// A temp folder of kImages JPEGs, written once per process and removed at exit.
struct JpegSet {
  std::filesystem::path dir;
  std::vector<Sample> samples;
  JpegSet() {
    dir = std::filesystem::temp_directory_path() / ("hotlap_bench_loader_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    Rng rng(2023);
    for (int i = 0; i < kImages; ++i) {
      // A sum of a few low-frequency waves per channel, plus a little noise: smooth, photo-like.
      double fx[3][3], fy[3][3], ph[3][3];
      for (auto* a : {fx, fy, ph})
        for (int c = 0; c < 3; ++c)
          for (int k = 0; k < 3; ++k) a[c][k] = rng.uniform(0.0, a == ph ? 6.283 : 0.05);
      Image img = make_image(kSide, kSide);
      for (int64_t y = 0; y < kSide; ++y)
        for (int64_t x = 0; x < kSide; ++x)
          for (int c = 0; c < 3; ++c) {
            double v = 0.5;
            for (int k = 0; k < 3; ++k) v += 0.15 * std::sin(fx[c][k] * x + fy[c][k] * y + ph[c][k]);
            v += rng.uniform(-0.02, 0.02);
            img.at(y, x, c) = static_cast<float>(v);
          }
      Sample s;
      s.name = "face" + std::to_string(i) + ".jpg";
      s.path = (dir / s.name).string();
      s.score = 3.0f;
      write_jpeg(s.path, img, 90);
      samples.push_back(s);
    }
  }
  ~JpegSet() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const JpegSet& jpegs() {
  static JpegSet set;
  return set;
}

void BM_loader_train_augment(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  LoaderConfig config;
  config.batch_size = 8;
  config.threads = threads;
  config.prefetch_batches = 4;
  config.shuffle = true;
  config.augment = AugmentConfig{};  // 256 -> random 224 + flip
  Loader loader(jpegs().samples, config);
  int64_t epoch = 0, images = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    Batch batch;
    while (loader.next(batch)) {
      images += batch.images.dim(0);
      benchmark::DoNotOptimize(batch.images.f32());
    }
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
  state.counters["images/s/core"] =
      benchmark::Counter(static_cast<double>(images) / threads, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_loader_train_augment)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

