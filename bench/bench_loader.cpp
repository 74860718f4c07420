// The data loader's decode + augment throughput, through a Loader with 1 and with 2 worker threads:
//   loader_train_augment     32 JPEGs of 350x350 (a smooth random pattern at quality 90, like
//                            SCUT-FBP5500's photos), the regressor's training configuration (shorter side
//                            -> 256, random 224 crop, flip half)
//   loader_imagenet_augment  32 JPEGs of 500x375 (ImageNet's typical size), a classifier's (torchvision's
//                            RandomResizedCrop 224 with scale 0.08-1, flip half)
//   decode_imagenet_jpeg     the decode alone of those 500x375 JPEGs, one thread: what of the above is
//                            the JPEG's
// Each iteration is one epoch (4 batches of 8). Counters: images/s (wall clock) and images/s per worker
// thread (= per core when the machine has that many free cores). Filter: --benchmark_filter=loader
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

// A temp folder of kImages JPEGs of width x height, written once per process and removed at exit.
struct JpegSet {
  std::filesystem::path dir;
  std::vector<Sample> samples;
  JpegSet(int64_t width, int64_t height) {
    dir = std::filesystem::temp_directory_path() /
          ("hotlap_bench_loader_" + std::to_string(::getpid()) + "_" + std::to_string(width));
    std::filesystem::create_directories(dir);
    Rng rng(2023);
    for (int i = 0; i < kImages; ++i) {
      // A sum of a few low-frequency waves per channel, plus a little noise: smooth, photo-like.
      double fx[3][3], fy[3][3], ph[3][3];
      for (auto* a : {fx, fy, ph})
        for (int c = 0; c < 3; ++c)
          for (int k = 0; k < 3; ++k) a[c][k] = rng.uniform(0.0, a == ph ? 6.283 : 0.05);
      Image img = make_image(height, width);
      for (int64_t y = 0; y < height; ++y)
        for (int64_t x = 0; x < width; ++x)
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

const JpegSet& scut_jpegs() {
  static JpegSet set(350, 350);
  return set;
}

const JpegSet& imagenet_jpegs() {
  static JpegSet set(500, 375);
  return set;
}

// One epoch of `jpegs` per iteration through a Loader of state.range(0) workers.
void run_loader(benchmark::State& state, const JpegSet& jpegs, const AugmentConfig& augment) {
  const int threads = static_cast<int>(state.range(0));
  LoaderConfig config;
  config.batch_size = 8;
  config.threads = threads;
  config.prefetch_batches = 4;
  config.shuffle = true;
  config.augment = augment;
  Loader loader(jpegs.samples, config);
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

void BM_loader_train_augment(benchmark::State& state) {
  run_loader(state, scut_jpegs(), AugmentConfig{});  // 256 -> random 224 + flip
}
BENCHMARK(BM_loader_train_augment)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_loader_imagenet_augment(benchmark::State& state) {
  AugmentConfig augment;  // torchvision's RandomResizedCrop(224) + flip
  augment.random_resized_crop = true;
  run_loader(state, imagenet_jpegs(), augment);
}
BENCHMARK(BM_loader_imagenet_augment)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_decode_imagenet_jpeg(benchmark::State& state) {
  int64_t images = 0;
  for (auto _ : state) {
    for (const Sample& s : imagenet_jpegs().samples) benchmark::DoNotOptimize(decode_image(s.path).pixels.data());
    images += kImages;
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_decode_imagenet_jpeg)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

