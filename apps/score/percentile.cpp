#include "apps/score/percentile.h"

#include <cmath>
#include <iterator>

namespace hotlap {

namespace {
#include "apps/score/scut_distribution.inc"
constexpr int kSixtieths = static_cast<int>(std::size(kScutCountsPerSixtieth));
}  // namespace

int64_t scut_score_count() { return kScutImageCount; }

int64_t scut_count_at_sixtieth(int k) {
  const int i = k - kScutFirstSixtieth;
  return (i >= 0 && i < kSixtieths) ? kScutCountsPerSixtieth[i] : 0;
}

double scut_percentile(double score) {
  if (std::isnan(score)) return score;
  int64_t below = 0, equal = 0;
  for (int i = 0; i < kSixtieths; ++i) {
    const double value = static_cast<double>(kScutFirstSixtieth + i) / 60.0;
    if (std::abs(value - score) <= 1e-6)
      equal += kScutCountsPerSixtieth[i];
    else if (value < score)
      below += kScutCountsPerSixtieth[i];
  }
  return 100.0 * (static_cast<double>(below) + 0.5 * static_cast<double>(equal)) / kScutImageCount;
}

}  // namespace hotlap
