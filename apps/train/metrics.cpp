#include "apps/train/metrics.h"

#include <cmath>

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

}  // namespace hotlap
