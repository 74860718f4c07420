// Small training runs the app tests share: a generated data set in a temp folder and a config for a
// narrow ResNet-18 that trains on it in a fraction of a second (one epoch, 32x32 crops).
#pragma once

#include <cstdint>

#include "apps/data/synth.h"
#include "apps/train/train.h"
#include "test_util.h"

namespace hotlap::test {

// The narrow network and its 36 -> 32 input, on whatever data the caller names.
inline TrainConfig narrow_run(const TempDir& dir) {
  TrainConfig c;
  c.run_dir = dir.file("run");
  c.depth = 18;
  c.width = 4;
  c.batch_size = 6;
  c.epochs = 1;
  c.resize = 36;
  c.crop = 32;
  return c;
}

// hotlap synth's faces, `count` of side `size`, in dir/data (SCUT-FBP5500's layout).
inline TrainConfig small_scut_run(const TempDir& dir, int64_t count, int64_t size = 40) {
  write_synthetic_scut({.out_dir = dir.file("data"), .count = count, .size = size});
  TrainConfig c = narrow_run(dir);
  c.data_dir = dir.file("data");
  return c;
}

// hotlap synth's shapes, `count` of side `size` in `classes` classes, in dir/shapes (an image folder),
// and a classifier's run on them.
inline TrainConfig small_shapes_run(const TempDir& dir, int64_t count, int64_t classes, int64_t size) {
  write_synthetic_classes({.out_dir = dir.file("shapes"), .count = count, .classes = classes, .size = size});
  TrainConfig c = narrow_run(dir);
  c.task = "classify";
  c.data_dir = dir.file("shapes");
  return c;
}

}  // namespace hotlap::test
