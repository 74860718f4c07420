// The data loader: see loader.h. One mutex guards the whole shared state; workers claim whole batches
// (batch b = positions [b*B, min((b+1)*B, n)) of the epoch's order), build them without the lock and
// hand them back keyed by batch index; next() waits (condition variable) for the batch it owes next,
// so batches come out strictly in order whatever the workers' timing. A generation counter, bumped by
// start_epoch, lets a worker that finishes a batch of an abandoned epoch throw it away.
#include "apps/data/loader.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "apps/data/image.h"
#include "kernels/error.h"
#include "nn/runtime/random.h"

namespace hotlap {

namespace {

// splitmix64's finaliser: a bijective avalanche of 64 bits.
uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Folds v into the running hash h (order matters: combine(combine(t, a), b) != combine(combine(t, b), a)).
uint64_t combine(uint64_t h, uint64_t v) { return mix64(h ^ mix64(v ^ 0x243f6a8885a308d3ULL)); }

// Distinct tags keep the epoch-order stream and the per-sample streams apart.
constexpr uint64_t kOrderTag = 0x6f72646572ULL;    // "order"
constexpr uint64_t kSampleTag = 0x73616d706c65ULL;  // "sample"

uint64_t order_seed(uint64_t seed, int64_t epoch) {
  return combine(combine(kOrderTag, seed), static_cast<uint64_t>(epoch));
}

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t position) {
  return combine(combine(combine(kSampleTag, seed), static_cast<uint64_t>(epoch)), static_cast<uint64_t>(position));
}

}  // namespace

Rng sample_rng(uint64_t seed, int64_t epoch, int64_t position) { return Rng(sample_seed(seed, epoch, position)); }

CropBox random_resized_crop_box(int64_t height, int64_t width, double min_scale, Rng& rng) {
  HOTLAP_CHECK(height > 0 && width > 0, "random_resized_crop: empty image ", height, "x", width);
  HOTLAP_CHECK(min_scale > 0.0 && min_scale <= 1.0, "random_resized_crop: the smallest scale must be in (0, 1], got ",
               min_scale);
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_min = std::log(3.0 / 4.0), log_max = std::log(4.0 / 3.0);
  // std::nearbyint rounds half to even in the default rounding mode, as Python's round does.
  const auto round = [](double v) { return static_cast<int64_t>(std::nearbyint(v)); };
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(min_scale, 1.0);
    const double ratio = std::exp(rng.uniform(log_min, log_max));
    const int64_t w = round(std::sqrt(target * ratio)), h = round(std::sqrt(target / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height)
      return {rng.below(height - h + 1), rng.below(width - w + 1), h, w};
  }
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < 3.0 / 4.0)
    h = round(static_cast<double>(w) / (3.0 / 4.0));
  else if (in_ratio > 4.0 / 3.0)
    w = round(static_cast<double>(h) * (4.0 / 3.0));
  return {(height - h) / 2, (width - w) / 2, h, w};
}

Image evaluation_view(const Image& img, const AugmentConfig& augment) {
  if (augment.whole_image) return resize(img, augment.crop, augment.crop);
  return center_crop(resize_shorter_side(img, augment.resize), augment.crop);
}

void load_sample(const Sample& sample, const AugmentConfig& augment, uint64_t seed, int64_t epoch,
                 int64_t position, float* out) {
  try {
    Image img = decode_image(sample.path);
    if (augment.train && augment.random_resized_crop) {
      Rng rng = sample_rng(seed, epoch, position);
      const CropBox box = random_resized_crop_box(img.height, img.width, augment.min_scale, rng);
      const bool flip = rng.uniform() < 0.5;
      img = resize(crop(img, box.top, box.left, box.height, box.width), augment.crop, augment.crop);
      if (flip) flip_horizontal(img);
    } else if (augment.train && !augment.whole_image) {
      img = resize_shorter_side(img, augment.resize);
      Rng rng = sample_rng(seed, epoch, position);
      HOTLAP_CHECK(img.height >= augment.crop && img.width >= augment.crop, "loader: crop ", augment.crop,
                   " is larger than the resized image (", img.height, "x", img.width, ")");
      const int64_t top = rng.below(img.height - augment.crop + 1);
      const int64_t left = rng.below(img.width - augment.crop + 1);
      const bool flip = rng.uniform() < 0.5;
      img = crop(img, top, left, augment.crop, augment.crop);
      if (flip) flip_horizontal(img);
    } else {
      img = evaluation_view(img, augment);
    }
    to_normalized_nhwc(img, kImageNetMean, kImageNetStd, out);
  } catch (const Error& e) {
    // decode errors already start with the path; name the file in the others (resize, crop) too.
    const std::string message = e.what();
    if (message.rfind(sample.path, 0) == 0) throw;
    throw Error(sample.path + ": " + message);
  }
}

struct Loader::State {
  std::vector<Sample> samples;
  LoaderConfig config;

  std::mutex mutex;
  std::condition_variable work_cv;   // workers wait here for a batch to claim (or stop)
  std::condition_variable ready_cv;  // next() waits here for the batch it owes
  bool stop = false;

  // The current epoch; all guarded by mutex.
  bool active = false;      // an epoch is in progress (false after its end or an error)
  uint64_t generation = 0;  // bumped by start_epoch and on error: stale results are dropped
  int64_t epoch = 0;
  std::shared_ptr<const std::vector<int64_t>> order;
  int64_t num_batches = 0;
  int64_t claimed = 0;   // batches [0, claimed) have been taken by workers
  int64_t returned = 0;  // batches [0, returned) have been handed out by next()
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Result> results;  // finished batches not yet handed out

  std::vector<std::thread> workers;

  int64_t batches() const {
    const int64_t n = static_cast<int64_t>(samples.size()), b = config.batch_size;
    return config.drop_last ? n / b : (n + b - 1) / b;
  }

  bool can_claim() const {
    return active && claimed < num_batches && claimed < returned + config.prefetch_batches;
  }

  Batch build(const std::vector<int64_t>& ord, int64_t ep, int64_t b) const {
    const int64_t n = static_cast<int64_t>(samples.size()), bs = config.batch_size;
    const int64_t first = b * bs, length = std::min(n, first + bs) - first;
    // This rank's slice of the batch (all of it for one process).
    const int64_t begin = first + length * config.shard / config.shards;
    const int64_t end = first + length * (config.shard + 1) / config.shards, count = end - begin;
    const int64_t crop = config.augment.crop, per_image = crop * crop * 3;
    Batch batch;
    const Shape image_shape = {count, crop, crop, 3}, target_shape = {count, 1};
    batch.images = config.pin_memory ? Tensor::empty_pinned(image_shape) : Tensor::empty(image_shape);
    batch.targets = config.pin_memory ? Tensor::empty_pinned(target_shape) : Tensor::empty(target_shape);
    batch.names.reserve(static_cast<size_t>(count));
    float* images = batch.images.f32();
    float* targets = batch.targets.f32();
    for (int64_t i = 0; i < count; ++i) {
      const int64_t position = begin + i;
      const Sample& s = samples[static_cast<size_t>(ord[static_cast<size_t>(position)])];
      load_sample(s, config.augment, config.seed, ep, position, images + i * per_image);
      targets[i] = s.label >= 0 ? static_cast<float>(s.label) : s.score;
      batch.names.push_back(s.name);
    }
    return batch;
  }

  void worker_loop() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work_cv.wait(lock, [&] { return stop || can_claim(); });
      if (stop) return;
      const int64_t b = claimed++;
      const uint64_t gen = generation;
      const int64_t ep = epoch;
      std::shared_ptr<const std::vector<int64_t>> ord = order;
      lock.unlock();
      Result result;
      try {
        result.batch = build(*ord, ep, b);
      } catch (...) {
        result.error = std::current_exception();
      }
      lock.lock();
      if (gen != generation) continue;  // the epoch was abandoned meanwhile
      results.emplace(b, std::move(result));
      ready_cv.notify_all();
    }
  }
};

Loader::Loader(std::vector<Sample> samples, LoaderConfig config) : state_(std::make_unique<State>()) {
  HOTLAP_CHECK(config.batch_size >= 1, "loader: batch_size must be >= 1, got ", config.batch_size);
  HOTLAP_CHECK(config.augment.crop >= 1, "loader: crop must be >= 1, got ", config.augment.crop);
  HOTLAP_CHECK(config.shards >= 1 && config.shard >= 0 && config.shard < config.shards, "loader: shard ",
               config.shard, " of ", config.shards, " is not a rank");
  HOTLAP_CHECK(config.augment.whole_image || config.augment.resize >= config.augment.crop,
               "loader: resize (", config.augment.resize, ") must be >= crop (", config.augment.crop, ")");
  config.threads = std::max(1, config.threads);
  config.prefetch_batches = std::max(1, config.prefetch_batches);
  state_->samples = std::move(samples);
  state_->config = config;
  state_->workers.reserve(static_cast<size_t>(config.threads));
  try {
    for (int i = 0; i < config.threads; ++i) state_->workers.emplace_back([s = state_.get()] { s->worker_loop(); });
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
    }
    state_->work_cv.notify_all();
    for (auto& t : state_->workers) t.join();
    throw;
  }
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
    state_->active = false;
  }
  state_->work_cv.notify_all();
  for (auto& t : state_->workers) t.join();
}

void Loader::start_epoch(int64_t epoch) {
  State& s = *state_;
  const int64_t n = static_cast<int64_t>(s.samples.size());
  auto order = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(n));
  std::iota(order->begin(), order->end(), int64_t{0});
  if (s.config.shuffle) {
    Rng rng(order_seed(s.config.seed, epoch));
    for (int64_t i = n - 1; i > 0; --i) std::swap((*order)[static_cast<size_t>(i)], (*order)[static_cast<size_t>(rng.below(i + 1))]);
  }
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    ++s.generation;
    s.results.clear();
    s.epoch = epoch;
    s.order = std::move(order);
    s.num_batches = s.batches();
    s.claimed = 0;
    s.returned = 0;
    s.active = true;
  }
  s.work_cv.notify_all();
}

bool Loader::next(Batch& batch) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  if (!s.active) return false;
  if (s.returned >= s.num_batches) {
    s.active = false;
    return false;
  }
  const int64_t b = s.returned;
  s.ready_cv.wait(lock, [&] { return s.results.count(b) != 0; });
  auto node = s.results.extract(b);
  ++s.returned;
  if (node.mapped().error) {
    // The epoch ends here: drop what was prefetched, and let in-flight work be discarded.
    s.active = false;
    ++s.generation;
    s.results.clear();
    lock.unlock();
    std::rethrow_exception(node.mapped().error);
  }
  batch = std::move(node.mapped().batch);
  lock.unlock();
  s.work_cv.notify_all();  // a prefetch slot is free
  return true;
}

int64_t Loader::batches_per_epoch() const { return state_->batches(); }

int64_t Loader::size() const { return static_cast<int64_t>(state_->samples.size()); }
int Loader::shards() const { return state_->config.shards; }

std::vector<std::pair<size_t, std::string>> find_unloadable_samples(const std::vector<Sample>& samples,
                                                                    const AugmentConfig& augment, int threads) {
  AugmentConfig view = augment;
  view.train = false;  // the centre view: the same decode, resize and size checks as a random crop
  std::vector<std::string> errors(samples.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    std::vector<float> pixels(static_cast<size_t>(view.crop * view.crop * 3));
    for (size_t i = next++; i < samples.size(); i = next++) {
      try {
        load_sample(samples[i], view, 0, 0, 0, pixels.data());
      } catch (const std::exception& e) {  // a corrupt file, one too small for the crop, out of memory
        errors[i] = e.what();
      }
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < std::max(threads, 1); ++t) workers.emplace_back(work);
  work();
  for (std::thread& w : workers) w.join();
  std::vector<std::pair<size_t, std::string>> found;
  for (size_t i = 0; i < errors.size(); ++i)
    if (!errors[i].empty()) found.emplace_back(i, std::move(errors[i]));
  return found;
}

}  // namespace hotlap
