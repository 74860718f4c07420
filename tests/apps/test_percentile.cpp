// Percentiles among the SCUT-FBP5500 scores: known points of the real distribution, ties counted half.
#include <doctest/doctest.h>

#include "apps/score/percentile.h"

namespace hotlap {
namespace {

TEST_CASE("percentile: the table is SCUT-FBP5500's 5500 scores") {
  CHECK(scut_score_count() == 5500);
  int64_t total = 0;
  for (int k = 0; k <= 300; ++k) total += scut_count_at_sixtieth(k);
  CHECK(total == 5500);
  CHECK(scut_count_at_sixtieth(60) == 0);        // nobody scored 1.0 (the lowest is 1.017 = 61/60)
  CHECK(scut_count_at_sixtieth(61) >= 1);
  CHECK(scut_count_at_sixtieth(285) >= 1);       // the highest, 4.75 = 285/60
  CHECK(scut_count_at_sixtieth(286) == 0);
}

TEST_CASE("percentile: known points of the distribution") {
  // The median score is 2.833 (170/60); 4.03 sits at the 90th percentile.
  CHECK(scut_percentile(2.83) == doctest::Approx(49.1).epsilon(0.01));
  CHECK(scut_percentile(4.03) == doctest::Approx(89.7).epsilon(0.01));
  CHECK(scut_percentile(1.0) == 0.0);
  CHECK(scut_percentile(5.0) == 100.0);
  CHECK(scut_percentile(0.0) == 0.0);
}

TEST_CASE("percentile: ties count half, and the value is monotonic") {
  // At exactly 173/60 (2.883333 in all_scores.txt): below it, all images under 173/60, plus half of
  // those at it.
  int64_t below = 0;
  for (int k = 0; k < 173; ++k) below += scut_count_at_sixtieth(k);
  const double expected = 100.0 * (below + 0.5 * scut_count_at_sixtieth(173)) / 5500.0;
  CHECK(scut_percentile(173.0 / 60.0) == doctest::Approx(expected));
  CHECK(scut_percentile(2.883333) == doctest::Approx(expected));  // six decimals, as the file has them
  CHECK(scut_percentile(173.0 / 60.0 + 0.001) == doctest::Approx(100.0 * (below + scut_count_at_sixtieth(173)) / 5500.0));
  double previous = -1;
  for (double s = 0.9; s <= 5.1; s += 0.01) {
    const double p = scut_percentile(s);
    CHECK(p >= previous);
    previous = p;
  }
}

}  // namespace
}  // namespace hotlap
