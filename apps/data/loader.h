// The data loader: decodes and augments images on worker threads ahead of the training step, so the
// step never waits on JPEG decoding (as long as the workers keep up: `hotlap_bench` reports decode +
// augment images/s per core).
//
// Deterministic: the order of an epoch is a permutation drawn from (seed, epoch), and each image's
// random crop and flip from (seed, epoch, position in the epoch), so a batch is the same whatever
// the number of threads or their timing -- and a resumed run sees the same data as an uninterrupted
// one. Batches come out in order.
//
// Augmentation, as the SCUT-FBP5500 paper: training resizes the shorter side to `resize` (256),
// takes a random `crop` x `crop` (224) window and flips half the images horizontally; evaluation
// resizes the same way and takes the centre crop. `whole_image` instead resizes the whole image to
// crop x crop (the original notebook's 350x350 recipe); `random_resized_crop` trains on ImageNet's
// random boxes instead. Pixels are normalised with ImageNet's mean and standard deviation, NHWC.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apps/data/image.h"
#include "apps/data/scut.h"
#include "nn/runtime/random.h"
#include "nn/runtime/tensor.h"

namespace hotlap {

struct AugmentConfig {
  int64_t resize = 256;      // shorter side before cropping
  int64_t crop = 224;        // network input size
  bool train = true;         // random crop + flip; false: centre crop, no flip
  bool whole_image = false;  // resize the whole image to crop x crop instead (no crop, no flip)
  // Training: ImageNet's augmentation instead of resize + random crop: torchvision's
  // RandomResizedCrop(crop, scale=(min_scale, 1), ratio=(3/4, 4/3)) (random_resized_crop_box), then
  // the flip. Evaluation is unchanged (resize, centre crop).
  bool random_resized_crop = false;
  double min_scale = 0.08;
};

// A rectangle of an image: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// torchvision's RandomResizedCrop.get_params, step for step: up to ten tries of an area drawn
// uniformly from [min_scale, 1] of the image's and an aspect ratio (width / height) drawn
// log-uniformly from [3/4, 4/3]; the sides are rounded half to even (Python's round), and the first
// box that fits is placed uniformly at random. When none fits (a very long or thin image), the
// largest centred box whose ratio is clamped to [3/4, 4/3]. The box is then resized to crop x crop.
CropBox random_resized_crop_box(int64_t height, int64_t width, double min_scale, Rng& rng);

// What the network sees of an image in evaluation: the whole image resized to crop x crop
// (whole_image), or its shorter side resized to `resize` and the centre crop x crop taken. The test
// split is loaded this way, and `hotlap score` prepares photos (or their face crops) with it.
Image evaluation_view(const Image& img, const AugmentConfig& augment);

struct LoaderConfig {
  int64_t batch_size = 16;
  int threads = 2;            // decoding workers
  int prefetch_batches = 4;   // how far ahead the workers may run
  bool shuffle = true;
  bool drop_last = false;     // drop a final partial batch (training: batch norm wants > 1 sample)
  uint64_t seed = 0;
  bool pin_memory = false;    // batches in pinned host memory, so their copies to the GPU are asynchronous
  AugmentConfig augment;
  // Data-parallel training: this process is rank `shard` of `shards`, and takes its slice of every
  // batch: of a batch of L images, positions [L * shard / shards, L * (shard + 1) / shards). The
  // batches, their order and every image's crop and flip are those of one process (batch_size is the
  // global batch), so the ranks together see exactly what one process would.
  int shard = 0, shards = 1;
};

struct Batch {
  Tensor images;                   // [B, crop, crop, 3], normalised
  Tensor targets;                  // [B, 1], the scores, or a classifier's class indices (Sample::label)
  std::vector<std::string> names;  // the samples' names, in batch order
};

// Loads every sample once as evaluation would (decode, resize, centre crop) on `threads` threads and
// returns the ones that fail, as (index, message naming the file) in sample order: a corrupt or
// truncated image found before training rather than in the middle of it.
std::vector<std::pair<size_t, std::string>> find_unloadable_samples(const std::vector<Sample>& samples,
                                                                    const AugmentConfig& augment, int threads);

class Loader {
 public:
  Loader(std::vector<Sample> samples, LoaderConfig config);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts an epoch (shuffling with (seed, epoch)) and the workers on it. Starting an epoch while one
  // is in progress abandons it (prefetched batches are dropped).
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch; false when the epoch is done (or none was started). Batches
  // come out strictly in order; this blocks (no busy-wait) until the next one is ready. A worker's
  // error (a corrupt image) is rethrown here as a hotlap::Error naming the file, when its batch comes
  // up (the batches before it are returned first); that ends the epoch: later calls return false until
  // start_epoch is called again.
  bool next(Batch& batch);
  int64_t batches_per_epoch() const;
  int64_t size() const;
  int shards() const;  // the ranks sharing each batch (LoaderConfig::shards); 1 for one process

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The random stream of one sample's augmentation in an epoch: an Rng seeded from a splitmix-style
// hash of (seed, epoch, position). load_sample draws its crop (or box) from it, then its flip.
Rng sample_rng(uint64_t seed, int64_t epoch, int64_t position);

// Decodes and augments one image into out[crop * crop * 3]: what a worker does for one sample.
// `position` selects the random crop/flip (with seed and epoch): an Rng seeded from a splitmix-style
// hash of (seed, epoch, position), so the result never depends on which thread runs it. Errors are
// hotlap::Error naming sample.path.
void load_sample(const Sample& sample, const AugmentConfig& augment, uint64_t seed, int64_t epoch,
                 int64_t position, float* out);

}  // namespace hotlap
