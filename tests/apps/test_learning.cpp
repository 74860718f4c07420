// The network really learns: a small CNN trained on the toy regression task (apps/train/toy_task.h, whose
// target is a known function of the drawn shape) predicts held-out images with Pearson above 0.9.
// The first epoch's score is recorded too, so the test shows improvement, not a task solved by luck.
#include <doctest/doctest.h>

#include <cmath>

#include "apps/train/toy_task.h"

namespace hotlap {
namespace {

TEST_CASE("learning: a small CNN reaches held-out Pearson > 0.9 on the toy task") {
  ToyTrainConfig config;
  config.epochs = 8;
  std::vector<EpochReport> reports;
  EpochReport last = train_toy_task(config, [&](const EpochReport& r) { reports.push_back(r); });
  REQUIRE(reports.size() == 8);
  MESSAGE("held-out Pearson after epoch 1: " << reports.front().test.pearson << ", after epoch 8: "
          << last.test.pearson << " (RMSE " << last.test.rmse << ")");
  CHECK(reports.front().test.pearson < 0.85);
  CHECK(last.test.pearson > 0.9);
  CHECK(last.test.rmse < 0.5);
  CHECK(last.train_loss < reports.front().train_loss / 2);
}

TEST_CASE("learning: training is deterministic for a seed") {
  ToyTrainConfig config;
  config.train_count = 128;
  config.test_count = 32;
  config.epochs = 2;
  EpochReport a = train_toy_task(config), b = train_toy_task(config);
  CHECK(a.train_loss == b.train_loss);
  CHECK(a.test.pearson == b.test.pearson);
}

TEST_CASE("metrics: Pearson, MAE and RMSE against hand-computed values") {
  RegressionMetrics m = regression_metrics({1, 2, 3, 4}, {2, 4, 6, 8});
  CHECK(m.pearson == doctest::Approx(1.0));
  CHECK(m.mae == doctest::Approx(2.5));
  CHECK(m.rmse == doctest::Approx(std::sqrt(7.5)));
  CHECK(regression_metrics({3, 3, 3}, {1, 2, 3}).pearson == 0.0);  // constant prediction
  CHECK(regression_metrics({1, 2, 3}, {3, 2, 1}).pearson == doctest::Approx(-1.0));
  CHECK_THROWS_AS(regression_metrics({1, 2}, {1}), Error);
}

}  // namespace
}  // namespace hotlap
