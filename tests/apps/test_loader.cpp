// apps/data/loader: every sample once per epoch, determinism across thread counts and Loader instances,
// per-epoch shuffles and crops, eval mode (centre crop, no flip), whole_image, drop_last and the partial
// batch, targets, normalisation, and a corrupt image (an Error naming the file; clean shutdown).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "apps/data/image.h"
#include "apps/data/loader.h"
#include "kernels/error.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::TempDir;

// A w x h image whose content depends on k (so crops, flips and samples are all distinguishable).
Image pattern_image(int64_t h, int64_t w, int k) {
  Image img = make_image(h, w);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        img.at(y, x, c) = static_cast<float>(((y * 7 + x * 13 + c * 29 + k * 37) % 251) / 250.0);
  return img;
}

// n PNGs of 20 x 24 (height x width) in dir; scores 1 + i / 10.
std::vector<Sample> make_samples(const TempDir& dir, int n, int64_t h = 20, int64_t w = 24) {
  std::vector<Sample> samples;
  for (int i = 0; i < n; ++i) {
    Sample s;
    s.name = "img" + std::to_string(i) + ".png";
    s.path = dir.file(s.name);
    s.score = 1.0f + static_cast<float>(i) / 10.0f;
    write_png(s.path, pattern_image(h, w, i));
    samples.push_back(s);
  }
  return samples;
}

LoaderConfig small_config(int threads = 2) {
  LoaderConfig config;
  config.batch_size = 3;
  config.threads = threads;
  config.prefetch_batches = 2;
  config.shuffle = true;
  config.seed = 42;
  config.augment.resize = 16;  // 20 x 24 -> 16 x 19
  config.augment.crop = 12;
  config.augment.train = true;
  return config;
}

struct EpochData {
  std::vector<std::string> names;
  std::vector<float> pixels, targets;
  std::vector<int64_t> batch_sizes;
};

EpochData run_epoch(Loader& loader, int64_t epoch) {
  EpochData data;
  loader.start_epoch(epoch);
  Batch batch;
  while (loader.next(batch)) {
    data.batch_sizes.push_back(batch.images.dim(0));
    data.names.insert(data.names.end(), batch.names.begin(), batch.names.end());
    auto px = batch.images.to_vector();
    data.pixels.insert(data.pixels.end(), px.begin(), px.end());
    auto t = batch.targets.to_vector();
    data.targets.insert(data.targets.end(), t.begin(), t.end());
  }
  return data;
}

EpochData run_epoch(const std::vector<Sample>& samples, const LoaderConfig& config, int64_t epoch) {
  Loader loader(samples, config);
  return run_epoch(loader, epoch);
}

TEST_CASE("loader: every sample exactly once per epoch, batches of B and a final partial one") {
  TempDir dir;
  auto samples = make_samples(dir, 10);
  Loader loader(samples, small_config());
  CHECK(loader.size() == 10);
  CHECK(loader.batches_per_epoch() == 4);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    EpochData d = run_epoch(loader, epoch);
    CHECK(d.batch_sizes == std::vector<int64_t>{3, 3, 3, 1});
    std::vector<std::string> sorted = d.names;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::string> expected;
    for (const auto& s : samples) expected.push_back(s.name);
    std::sort(expected.begin(), expected.end());
    CHECK(sorted == expected);
  }
  Batch batch;
  CHECK_FALSE(loader.next(batch));  // stays done
}

TEST_CASE("loader: drop_last drops the final partial batch") {
  TempDir dir;
  auto samples = make_samples(dir, 10);
  LoaderConfig config = small_config();
  config.drop_last = true;
  Loader loader(samples, config);
  CHECK(loader.batches_per_epoch() == 3);
  EpochData d = run_epoch(loader, 0);
  CHECK(d.batch_sizes == std::vector<int64_t>{3, 3, 3});
  CHECK(std::set<std::string>(d.names.begin(), d.names.end()).size() == 9);
}

TEST_CASE("loader: batch shapes, targets are the samples' scores, no shuffle keeps file order") {
  TempDir dir;
  auto samples = make_samples(dir, 5);
  LoaderConfig config = small_config();
  config.shuffle = false;
  Loader loader(samples, config);
  loader.start_epoch(0);
  Batch batch;
  REQUIRE(loader.next(batch));
  CHECK(batch.images.shape() == Shape{3, 12, 12, 3});
  CHECK(batch.targets.shape() == Shape{3, 1});
  CHECK(batch.names == std::vector<std::string>{"img0.png", "img1.png", "img2.png"});
  REQUIRE(loader.next(batch));
  CHECK(batch.images.shape() == Shape{2, 12, 12, 3});
  CHECK(batch.names == std::vector<std::string>{"img3.png", "img4.png"});
  CHECK_FALSE(loader.next(batch));

  config.shuffle = true;
  EpochData d = run_epoch(samples, config, 3);
  REQUIRE(d.names.size() == 5);
  for (size_t i = 0; i < d.names.size(); ++i) {
    auto it = std::find_if(samples.begin(), samples.end(), [&](const Sample& s) { return s.name == d.names[i]; });
    REQUIRE(it != samples.end());
    CHECK(d.targets[i] == it->score);
  }
}

TEST_CASE("loader: identical for 1, 2 and 4 threads and across Loaders with the same seed") {
  TempDir dir;
  auto samples = make_samples(dir, 11);
  for (int64_t epoch : {0, 5}) {
    EpochData ref = run_epoch(samples, small_config(1), epoch);
    for (int threads : {1, 2, 4}) {
      CAPTURE(threads);
      EpochData d = run_epoch(samples, small_config(threads), epoch);
      CHECK(d.names == ref.names);
      CHECK(d.pixels == ref.pixels);  // bit for bit
      CHECK(d.targets == ref.targets);
    }
  }
  // prefetch depth does not matter either
  LoaderConfig deep = small_config(3);
  deep.prefetch_batches = 8;
  CHECK(run_epoch(samples, deep, 0).pixels == run_epoch(samples, small_config(1), 0).pixels);
}

TEST_CASE("loader: the shards of every batch, side by side, are one process's batch, crops and flips included") {
  TempDir dir;
  auto samples = make_samples(dir, 11);  // batches of 3: 3, 3, 3 and a last one of 2
  const LoaderConfig one = small_config(2);
  for (int shards : {2, 3, 4}) {
    CAPTURE(shards);
    for (int64_t epoch : {0, 4}) {
      Loader whole(samples, one);
      whole.start_epoch(epoch);
      std::vector<std::unique_ptr<Loader>> parts;
      for (int r = 0; r < shards; ++r) {
        LoaderConfig c = one;
        c.shard = r;
        c.shards = shards;
        parts.push_back(std::make_unique<Loader>(samples, c));
        CHECK(parts.back()->batches_per_epoch() == whole.batches_per_epoch());
        parts.back()->start_epoch(epoch);
      }
      Batch batch;
      while (whole.next(batch)) {
        std::vector<std::string> names;
        std::vector<float> pixels;
        int64_t rows = 0;
        for (int r = 0; r < shards; ++r) {
          Batch part;
          REQUIRE(parts[static_cast<size_t>(r)]->next(part));
          // An even split: slices differ by at most one image (a slice may be empty).
          CHECK(std::abs(part.images.dim(0) * shards - batch.images.dim(0)) < shards);
          rows += part.images.dim(0);
          names.insert(names.end(), part.names.begin(), part.names.end());
          if (part.images.dim(0) > 0) {
            const std::vector<float> px = part.images.to_vector();
            pixels.insert(pixels.end(), px.begin(), px.end());
          }
        }
        CHECK(rows == batch.images.dim(0));
        CHECK(names == batch.names);
        CHECK(pixels == batch.images.to_vector());  // bit for bit: the same crop and flip per position
      }
      for (auto& part : parts) CHECK_FALSE(part->next(batch));
    }
  }
  LoaderConfig bad = one;
  bad.shard = 2;
  bad.shards = 2;
  CHECK_THROWS_WITH_AS(Loader(samples, bad), doctest::Contains("shard 2 of 2"), Error);
}

TEST_CASE("loader: another epoch or seed gives another order and other crops") {
  TempDir dir;
  auto samples = make_samples(dir, 12);
  EpochData e0 = run_epoch(samples, small_config(), 0);
  EpochData e1 = run_epoch(samples, small_config(), 1);
  CHECK(e0.names != e1.names);
  LoaderConfig other_seed = small_config();
  other_seed.seed = 43;
  CHECK(run_epoch(samples, other_seed, 0).names != e0.names);

  // Without shuffle the order is fixed, yet the crops (and flips) change with the epoch.
  LoaderConfig fixed = small_config();
  fixed.shuffle = false;
  EpochData f0 = run_epoch(samples, fixed, 0);
  EpochData f1 = run_epoch(samples, fixed, 1);
  CHECK(f0.names == f1.names);
  const size_t per_image = 12 * 12 * 3;
  int differing = 0;
  for (size_t i = 0; i < samples.size(); ++i)
    differing += !std::equal(f0.pixels.begin() + i * per_image, f0.pixels.begin() + (i + 1) * per_image,
                             f1.pixels.begin() + i * per_image);
  CHECK(differing >= 6);  // 40 crop positions x 2 flips: a repeat is rare
  // Random crops differ from one another within an epoch too (not all at the same place).
  int differs_from_centre = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    std::vector<float> centre(per_image);
    AugmentConfig eval = fixed.augment;
    eval.train = false;
    load_sample(samples[i], eval, 0, 0, 0, centre.data());
    differs_from_centre += !std::equal(centre.begin(), centre.end(), f0.pixels.begin() + i * per_image);
  }
  CHECK(differs_from_centre >= 6);
}

TEST_CASE("loader: eval mode is the deterministic centre crop, no flip") {
  TempDir dir;
  auto samples = make_samples(dir, 7);
  LoaderConfig config = small_config();
  config.shuffle = false;
  config.augment.train = false;
  EpochData e0 = run_epoch(samples, config, 0);
  EpochData e1 = run_epoch(samples, config, 9);
  LoaderConfig other_seed = config;
  other_seed.seed = 1234;
  CHECK(e0.pixels == e1.pixels);
  CHECK(e0.pixels == run_epoch(samples, other_seed, 0).pixels);
  const size_t per_image = 12 * 12 * 3;
  for (size_t i = 0; i < samples.size(); ++i) {
    Image img = center_crop(resize_shorter_side(decode_image(samples[i].path), 16), 12);
    std::vector<float> expected(per_image), via_load(per_image);
    to_normalized_nhwc(img, kImageNetMean, kImageNetStd, expected.data());
    load_sample(samples[i], config.augment, 77, 3, static_cast<int64_t>(i) + 5, via_load.data());
    CHECK(std::equal(expected.begin(), expected.end(), e0.pixels.begin() + i * per_image));
    CHECK(via_load == expected);
  }
}

TEST_CASE("loader: load_sample's random crop is a crop of the resized image, maybe flipped") {
  TempDir dir;
  auto samples = make_samples(dir, 1);
  AugmentConfig aug = small_config().augment;
  Image resized = resize_shorter_side(decode_image(samples[0].path), 16);
  REQUIRE(resized.height == 16);
  REQUIRE(resized.width == 19);
  const size_t per_image = 12 * 12 * 3;
  int flipped = 0, found = 0;
  for (int64_t position = 0; position < 32; ++position) {
    std::vector<float> got(per_image);
    load_sample(samples[0], aug, 7, 0, position, got.data());
    bool match = false;
    for (int64_t top = 0; top <= 4 && !match; ++top)
      for (int64_t left = 0; left <= 7 && !match; ++left)
        for (int flip = 0; flip < 2 && !match; ++flip) {
          Image c = crop(resized, top, left, 12, 12);
          if (flip) flip_horizontal(c);
          std::vector<float> expected(per_image);
          to_normalized_nhwc(c, kImageNetMean, kImageNetStd, expected.data());
          if (expected == got) {
            match = true;
            flipped += flip;
          }
        }
    found += match;
  }
  CHECK(found == 32);
  CHECK(flipped > 4);   // about half of 32
  CHECK(flipped < 28);
}

TEST_CASE("loader: whole_image resizes the whole image to crop x crop") {
  TempDir dir;
  auto samples = make_samples(dir, 4, 30, 18);
  LoaderConfig config = small_config();
  config.augment.whole_image = true;
  config.augment.crop = 10;
  config.shuffle = false;
  Loader loader(samples, config);
  loader.start_epoch(0);
  Batch batch;
  REQUIRE(loader.next(batch));
  CHECK(batch.images.shape() == Shape{3, 10, 10, 3});
  std::vector<float> expected(10 * 10 * 3);
  to_normalized_nhwc(resize(decode_image(samples[0].path), 10, 10), kImageNetMean, kImageNetStd, expected.data());
  auto px = batch.images.to_vector();
  CHECK(std::equal(expected.begin(), expected.end(), px.begin()));
}

TEST_CASE("loader: a constant grey image normalises to (grey - mean) / std") {
  TempDir dir;
  const float grey = 128.0f / 255.0f;
  Sample s{"grey.png", dir.file("grey.png"), 3.0f};
  write_png(s.path, make_image(20, 24, grey));
  LoaderConfig config = small_config(1);
  Loader loader({s}, config);
  loader.start_epoch(0);
  Batch batch;
  REQUIRE(loader.next(batch));
  auto px = batch.images.to_vector();
  REQUIRE(px.size() == 12 * 12 * 3);
  for (size_t i = 0; i < px.size(); ++i) {
    const int c = static_cast<int>(i % 3);
    REQUIRE(px[i] == doctest::Approx((grey - kImageNetMean[c]) / kImageNetStd[c]).epsilon(1e-5));
  }
  CHECK(std::abs(px[0] - (0.5f - kImageNetMean[0]) / kImageNetStd[0]) < 0.02f);
  CHECK(batch.targets.item() == 3.0f);
}

TEST_CASE("loader: a corrupt image is an Error naming the file, the loader recovers and shuts down") {
  TempDir dir;
  auto samples = make_samples(dir, 9);
  Sample bad{"bad.jpg", dir.file("bad.jpg"), 2.0f};
  {
    std::ofstream out(bad.path, std::ios::binary);
    out << "this is not a JPEG at all";
  }
  samples.insert(samples.begin() + 4, bad);  // position 4: batch 1 (batch size 3)
  for (int threads : {1, 3}) {
    CAPTURE(threads);
    LoaderConfig config = small_config(threads);
    config.shuffle = false;
    {
      Loader loader(samples, config);
      for (int round = 0; round < 2; ++round) {  // start_epoch works again after the error
        loader.start_epoch(round);
        Batch batch;
        REQUIRE(loader.next(batch));  // batch 0 is fine
        CHECK(batch.names.front() == "img0.png");
        std::string message;
        try {
          loader.next(batch);
        } catch (const Error& e) {
          message = e.what();
        }
        CHECK(message.find(bad.path) != std::string::npos);
        CHECK_FALSE(loader.next(batch));  // the epoch ended with the error
      }
    }  // destroyed cleanly (no hang)
    {
      Loader loader(samples, config);  // destroyed while workers hold the error, never consumed
      loader.start_epoch(0);
    }
  }
}

TEST_CASE("loader: start_epoch mid-epoch abandons it, destroying mid-epoch does not hang") {
  TempDir dir;
  auto samples = make_samples(dir, 12);
  LoaderConfig config = small_config(3);
  EpochData fresh = run_epoch(samples, config, 1);
  {
    Loader loader(samples, config);
    loader.start_epoch(0);
    Batch batch;
    REQUIRE(loader.next(batch));
    EpochData d = run_epoch(loader, 1);
    CHECK(d.names == fresh.names);
    CHECK(d.pixels == fresh.pixels);
    loader.start_epoch(2);
    REQUIRE(loader.next(batch));
  }
  {
    Loader loader(samples, config);  // never started
  }
  {
    Loader loader(samples, config);
    Batch batch;
    CHECK_FALSE(loader.next(batch));  // no epoch started
  }
}

TEST_CASE("loader: bad configurations throw") {
  TempDir dir;
  auto samples = make_samples(dir, 2);
  LoaderConfig config = small_config();
  config.batch_size = 0;
  CHECK_THROWS_AS(Loader(samples, config), Error);
  config = small_config();
  config.augment.resize = 8;  // smaller than the crop
  CHECK_THROWS_AS(Loader(samples, config), Error);
}

}  // namespace
}  // namespace hotlap

namespace hotlap {
namespace {

// torchvision's own boxes (RandomResizedCrop.get_params with a scale no try can meet, so that it falls
// back to the centred box, torchvision 0.30): (height, width) -> (top, left, height, width).
TEST_CASE("random resized crop: the fallback box is torchvision's") {
  struct Case {
    int64_t h, w;
    CropBox box;
  };
  const Case cases[] = {{10, 1000, {0, 493, 10, 13}}, {1000, 10, {493, 0, 13, 10}}, {300, 400, {0, 0, 300, 400}},
                        {400, 300, {0, 0, 400, 300}}, {375, 500, {0, 0, 375, 500}},  {7, 11, {0, 1, 7, 9}},
                        {100, 133, {0, 0, 100, 133}}, {100, 134, {0, 0, 100, 133}}, {101, 75, {0, 0, 100, 75}},
                        {99, 75, {0, 0, 99, 75}}};
  for (const Case& c : cases) {
    CAPTURE(c.h);
    CAPTURE(c.w);
    // min_scale 1: every try asks for the whole image's area at a ratio in [3/4, 4/3], which only a
    // box of the image's own shape could hold; for these shapes all ten tries miss (the seed is fixed)
    // and the fallback decides.
    Rng rng(1);
    const CropBox got = random_resized_crop_box(c.h, c.w, 1.0, rng);
    CHECK(got.top == c.box.top);
    CHECK(got.left == c.box.left);
    CHECK(got.height == c.box.height);
    CHECK(got.width == c.box.width);
  }
}

TEST_CASE("random resized crop: boxes lie inside the image, with torchvision's areas and ratios") {
  const int64_t h = 375, w = 500;  // an ImageNet-sized photo
  Rng rng(7);
  double smallest = 1, largest = 0, area_sum = 0;
  int fallbacks = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const CropBox b = random_resized_crop_box(h, w, 0.08, rng);
    REQUIRE(b.height >= 1);
    REQUIRE(b.width >= 1);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= h);
    REQUIRE(b.left + b.width <= w);
    if (b.height == h && b.width == w) ++fallbacks;
    const double scale = double(b.height * b.width) / double(h * w);
    const double ratio = double(b.width) / double(b.height);
    // Each side is rounded to a whole pixel: the ratio may stray from [3/4, 4/3] by that rounding.
    CHECK(ratio >= 0.75 * (1 - 1.0 / std::min<double>(b.height, b.width)) - 1e-9);
    CHECK(ratio <= 4.0 / 3.0 * (1 + 1.0 / std::min<double>(b.height, b.width)) + 1e-9);
    smallest = std::min(smallest, scale);
    largest = std::max(largest, scale);
    area_sum += scale;
  }
  CHECK(smallest < 0.085);  // the whole range of scales is drawn
  CHECK(smallest > 0.07);
  CHECK(largest > 0.95);
  // Uniform scale in [0.08, 1] has mean 0.54; large boxes that do not fit the 3:4 image are redrawn,
  // which lowers it a little.
  CHECK(area_sum / n > 0.40);
  CHECK(area_sum / n < 0.56);
  CHECK(fallbacks < n / 50);
  Rng a(99), b(99);
  const CropBox x = random_resized_crop_box(h, w, 0.08, a), y = random_resized_crop_box(h, w, 0.08, b);
  CHECK((x.top == y.top && x.left == y.left && x.height == y.height && x.width == y.width));
  Rng r(1);
  CHECK_THROWS_AS(random_resized_crop_box(h, w, 0.0, r), Error);
  CHECK_THROWS_AS(random_resized_crop_box(0, w, 0.08, r), Error);
}

TEST_CASE("loader: load_sample's random resized crop is the drawn box resized to crop x crop, maybe flipped") {
  TempDir dir;
  auto samples = make_samples(dir, 1, 40, 52);
  AugmentConfig aug;
  aug.crop = 16;
  aug.train = true;
  aug.random_resized_crop = true;
  const Image image = decode_image(samples[0].path);
  int flipped = 0;
  std::set<std::vector<float>> distinct;
  for (int64_t position = 0; position < 24; ++position) {
    std::vector<float> got(16 * 16 * 3);
    load_sample(samples[0], aug, 5, 2, position, got.data());
    Rng rng = sample_rng(5, 2, position);
    const CropBox box = random_resized_crop_box(image.height, image.width, aug.min_scale, rng);
    const bool flip = rng.uniform() < 0.5;
    Image expected = resize(crop(image, box.top, box.left, box.height, box.width), 16, 16);
    if (flip) flip_horizontal(expected);
    std::vector<float> want(got.size());
    to_normalized_nhwc(expected, kImageNetMean, kImageNetStd, want.data());
    CHECK(got == want);
    flipped += flip;
    distinct.insert(got);
  }
  CHECK(flipped > 2);
  CHECK(flipped < 22);
  CHECK(distinct.size() == 24);  // every position its own box
  // Evaluation is untouched by the option: the resize and centre crop.
  aug.train = false;
  aug.resize = 40;
  std::vector<float> eval(16 * 16 * 3), want(eval.size());
  load_sample(samples[0], aug, 5, 2, 0, eval.data());
  to_normalized_nhwc(center_crop(resize_shorter_side(image, 40), 16), kImageNetMean, kImageNetStd, want.data());
  CHECK(eval == want);
}

TEST_CASE("loader: a sample's class index is its target") {
  TempDir dir;
  auto samples = make_samples(dir, 4);
  for (size_t i = 0; i < samples.size(); ++i) samples[i].label = static_cast<int64_t>(3 - i);
  LoaderConfig config = small_config(1);
  config.shuffle = false;
  config.batch_size = 4;
  const EpochData data = run_epoch(samples, config, 0);
  CHECK(data.targets == std::vector<float>{3, 2, 1, 0});
}

}  // namespace
}  // namespace hotlap
