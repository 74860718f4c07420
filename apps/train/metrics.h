// Regression metrics as the SCUT-FBP5500 paper reports them: Pearson correlation (PC), mean absolute
// error (MAE) and root mean squared error (RMSE), accumulated in double.
#pragma once

#include <cstddef>
#include <vector>

namespace hotlap {

struct RegressionMetrics {
  double pearson = 0.0, mae = 0.0, rmse = 0.0;
  size_t count = 0;
};

// Pearson is 0 when either side has no variance (a constant prediction correlates with nothing).
RegressionMetrics regression_metrics(const std::vector<float>& predicted, const std::vector<float>& truth);

}  // namespace hotlap
