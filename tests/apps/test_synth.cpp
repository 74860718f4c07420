// hotlap synth writes a data set the SCUT loader accepts as it would the real download, with scores
// spread like SCUT's, reproducibly.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "apps/data/image.h"
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

}  // namespace
}  // namespace hotlap
