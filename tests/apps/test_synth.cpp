// hotlap synth writes a data set the SCUT loader accepts as it would the real download, with scores
// spread like SCUT's, reproducibly.
#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <fstream>
#include <set>

#include "apps/data/image.h"
#include "apps/data/image_folder.h"
#include "apps/data/scut.h"
#include "apps/data/synth.h"
#include "kernels/error.h"
#include "test_util.h"

namespace hotlap {
namespace {

TEST_CASE("synth: SCUT layout, names, splits and score spread") {
  test::TempDir dir;
  SynthOptions o;
  o.out_dir = dir.file("synth");
  o.count = 110;
  o.size = 64;
  CHECK(write_synthetic_scut(o) == 110);

  for (int fold = 1; fold <= 5; ++fold) {
    Split s = load_scut_split(o.out_dir, Protocol::five_fold, fold);
    CHECK(s.train.size() == 88);
    CHECK(s.test.size() == 22);
  }
  Split sixty = load_scut_split(o.out_dir, Protocol::sixty_forty, 0);
  CHECK(sixty.train.size() == 66);
  CHECK(sixty.test.size() == 44);
  // Drawn faces in SCUT-FBP5500's layout are described as what they are, in the terminal and the log.
  CHECK(sixty.description.rfind("hotlap synth's faces, 60/40 split", 0) == 0);
  CHECK(sixty.description.find("SCUT-FBP5500") == std::string::npos);

  std::set<std::string> names;
  double sum = 0, sq = 0;
  for (const auto& v : {sixty.train, sixty.test})
    for (const Sample& x : v) {
      names.insert(x.name);
      CHECK(x.score >= 1.0f);
      CHECK(x.score <= 5.0f);
      sum += x.score;
      sq += x.score * x.score;
    }
  CHECK(names.size() == 110);
  CHECK(names.count("AF1.jpg") == 1);  // SCUT's prefixes, in SCUT's proportions
  CHECK(names.count("CM15.jpg") == 1);
  const double mean = sum / 110, sd = std::sqrt(sq / 110 - mean * mean);
  CHECK(mean == doctest::Approx(3.0).epsilon(0.1));
  CHECK(sd > 0.4);
  CHECK(sd < 1.0);

  const Image img = decode_image(sixty.train.front().path);
  CHECK(img.height == 64);
  CHECK(img.width == 64);
}

TEST_CASE("synth: the same seed writes the same data set") {
  test::TempDir dir;
  SynthOptions o;
  o.count = 10;
  o.size = 48;
  o.out_dir = dir.file("a");
  write_synthetic_scut(o);
  o.out_dir = dir.file("b");
  write_synthetic_scut(o);
  const std::string f = "/train_test_files/5_folders_cross_validations_files/cross_validation_3/test_3.txt";
  CHECK(test::read_bytes(dir.file("a") + f) == test::read_bytes(dir.file("b") + f));
  CHECK(test::read_bytes(dir.file("a") + "/Images/AM2.jpg") == test::read_bytes(dir.file("b") + "/Images/AM2.jpg"));
  o.count = 3;
  CHECK_THROWS_AS(write_synthetic_scut(o), Error);
  o.count = 20;
  o.out_dir = "";  // not the current folder: an empty --out is a mistake
  CHECK_THROWS_WITH_AS(write_synthetic_scut(o), doctest::Contains("--out is empty"), Error);
}

TEST_CASE("synth --task classify: an image folder of shapes, every fifth of a class in val/") {
  test::TempDir dir;
  SynthOptions o;
  o.out_dir = dir.file("shapes");
  o.count = 100;
  o.size = 40;
  o.classes = 4;
  CHECK(write_synthetic_classes(o) == 100);
  CHECK(is_synthetic_classes(o.out_dir));
  CHECK_FALSE(is_synthetic_scut(o.out_dir));
  const Split split = load_image_folder(o.out_dir);
  CHECK(split.classes == std::vector<std::string>{"circle", "cross", "square", "triangle"});  // sorted
  CHECK(class_counts(split.train, 4) == std::vector<int64_t>{20, 20, 20, 20});
  CHECK(class_counts(split.test, 4) == std::vector<int64_t>{5, 5, 5, 5});
  const Image img = decode_image(split.test.front().path);
  CHECK(img.height == 40);
  CHECK(img.width == 40);
  // Not an empty folder: refused, and --overwrite replaces train/ and val/ and keeps the rest.
  std::ofstream(o.out_dir + "/mine.txt") << "keep";
  o.classes = 2;
  CHECK_THROWS_WITH_AS(write_synthetic_classes(o), doctest::Contains("train/ and val/"), Error);
  o.overwrite = true;
  write_synthetic_classes(o);
  CHECK(load_image_folder(o.out_dir).classes == std::vector<std::string>{"circle", "square"});
  CHECK(test::read_text(o.out_dir + "/mine.txt") == "keep");
  o.classes = 7;
  CHECK_THROWS_WITH_AS(write_synthetic_classes(o), doctest::Contains("--classes"), Error);
  o.classes = 6;
  o.count = 29;
  CHECK_THROWS_WITH_AS(write_synthetic_classes(o), doctest::Contains("at least 5 images a class"), Error);
}

TEST_CASE("synth --task classify: the same seed writes the same images at any thread count") {
  test::TempDir dir;
  SynthOptions o;
  o.count = 24;
  o.size = 48;
  o.classes = 3;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  o.out_dir = dir.file("a");
  write_synthetic_classes(o);
  omp_set_num_threads(3);
  o.out_dir = dir.file("b");
  write_synthetic_classes(o);
  omp_set_num_threads(saved);
  for (const char* f : {"/train/square/00002.jpg", "/val/triangle/00004.jpg"})
    CHECK(test::read_bytes(dir.file("a") + f) == test::read_bytes(dir.file("b") + f));
  o.seed = 2;
  o.out_dir = dir.file("c");
  write_synthetic_classes(o);
  CHECK(test::read_bytes(dir.file("a") + "/train/square/00002.jpg") !=
        test::read_bytes(dir.file("c") + "/train/square/00002.jpg"));
}

}  // namespace
}  // namespace hotlap
