#include "apps/train/metrics.h"

#include <cmath>
#include <utility>

#include "kernels/error.h"

namespace hotlap {

RegressionMetrics regression_metrics(const std::vector<float>& predicted, const std::vector<float>& truth) {
  HOTLAP_CHECK(predicted.size() == truth.size() && !truth.empty(), "metrics: ", predicted.size(),
               " predictions for ", truth.size(), " targets");
  const double n = static_cast<double>(truth.size());
  double mean_p = 0, mean_t = 0, abs_sum = 0, sq_sum = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    mean_p += predicted[i];
    mean_t += truth[i];
    const double d = static_cast<double>(predicted[i]) - truth[i];
    abs_sum += std::abs(d);
    sq_sum += d * d;
  }
  mean_p /= n;
  mean_t /= n;
  double cov = 0, var_p = 0, var_t = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const double dp = predicted[i] - mean_p, dt = truth[i] - mean_t;
    cov += dp * dt;
    var_p += dp * dp;
    var_t += dt * dt;
  }
  RegressionMetrics m;
  m.count = truth.size();
  m.pearson = (var_p > 0 && var_t > 0) ? cov / std::sqrt(var_p * var_t) : 0.0;
  m.mae = abs_sum / n;
  m.rmse = std::sqrt(sq_sum / n);
  return m;
}

int64_t class_rank(const float* logits, int64_t classes, int64_t label) {
  int64_t rank = 0;
  for (int64_t j = 0; j < classes; ++j) rank += logits[j] > logits[label] ? 1 : 0;
  return rank;
}

std::vector<float> top_classes(const std::vector<float>& logits, int64_t classes) {
  HOTLAP_CHECK(classes > 0 && logits.size() % static_cast<size_t>(classes) == 0, "metrics: ", logits.size(),
               " logits are not rows of ", classes);
  std::vector<float> top(logits.size() / static_cast<size_t>(classes));
  for (size_t i = 0; i < top.size(); ++i) {
    const float* row = logits.data() + i * static_cast<size_t>(classes);
    int64_t best = 0;
    for (int64_t j = 1; j < classes; ++j)
      if (row[j] > row[best]) best = j;
    top[i] = static_cast<float>(best);
  }
  return top;
}

std::vector<int64_t> confusion_matrix(const std::vector<float>& truth, const std::vector<float>& guesses,
                                      int64_t classes, const std::string& what) {
  HOTLAP_CHECK(truth.size() == guesses.size(), what, ": ", guesses.size(), " guesses for ", truth.size(), " labels");
  std::vector<int64_t> confusion(static_cast<size_t>(classes * classes), 0);
  for (size_t i = 0; i < truth.size(); ++i) {
    const auto t = static_cast<int64_t>(truth[i]), g = static_cast<int64_t>(guesses[i]);
    HOTLAP_CHECK(truth[i] >= 0 && t < classes && guesses[i] >= 0 && g < classes, what, ": class ", truth[i], " or ",
                 guesses[i], " of sample ", i + 1, " is not one of ", classes, " classes");
    ++confusion[static_cast<size_t>(t * classes + g)];
  }
  return confusion;
}

ClassTally class_tally(const std::vector<int64_t>& confusion, int64_t classes, int64_t k) {
  ClassTally tally;
  for (int64_t g = 0; g < classes; ++g) tally.total += confusion[static_cast<size_t>(k * classes + g)];
  tally.right = confusion[static_cast<size_t>(k * classes + k)];
  return tally;
}

ClassificationMetrics classification_metrics(const std::vector<float>& logits, const std::vector<float>& labels,
                                             int64_t classes, std::vector<float>* guesses) {
  std::vector<float> top = top_classes(logits, classes);
  HOTLAP_CHECK(top.size() == labels.size() && !labels.empty(), "metrics: ", top.size(), " rows of logits for ",
               labels.size(), " labels");
  ClassificationMetrics m;
  m.count = labels.size();
  m.classes = classes;
  m.confusion = confusion_matrix(labels, top, classes, "metrics");
  int64_t hits1 = 0, hits5 = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto label = static_cast<int64_t>(labels[i]);
    hits1 += static_cast<int64_t>(top[i]) == label ? 1 : 0;  // the confusion matrix's diagonal
    hits5 += class_rank(logits.data() + i * static_cast<size_t>(classes), classes, label) < 5 ? 1 : 0;
  }
  m.top1 = static_cast<double>(hits1) / static_cast<double>(labels.size());
  m.top5 = static_cast<double>(hits5) / static_cast<double>(labels.size());
  if (guesses != nullptr) *guesses = std::move(top);
  return m;
}

}  // namespace hotlap
