// hotlap demo: a small CNN learns a generated regression task (apps/train/toy_task.h), epoch by epoch.
#include <cstdio>
#include <memory>

#include "apps/cli/commands.h"
#include "apps/train/toy_task.h"

namespace hotlap::cli {

namespace {

int run_demo(ToyTrainConfig config, const ComputeOptions& compute) {
  config.device = apply_compute_options(compute);
  std::printf("hotlap demo: a small CNN learns a synthetic regression task (compute: %s)\n",
              compute_description(config.device).c_str());
  std::printf("  %lld training and %lld held-out %lldx%lld images of an ellipse;\n  its target: 1 + 3 * size "
              "+ elongation\n",
              static_cast<long long>(config.train_count), static_cast<long long>(config.test_count),
              static_cast<long long>(config.image_size), static_cast<long long>(config.image_size));
  std::printf("%6s %12s %10s %8s %8s %10s\n", "epoch", "train MSE", "Pearson", "MAE", "RMSE", "images/s");
  auto report = train_toy_task(config, [](const EpochReport& r) {
    std::printf("%6lld %12.4f %10.4f %8.4f %8.4f %10.0f\n", static_cast<long long>(r.epoch), r.train_loss,
                r.test.pearson, r.test.mae, r.test.rmse, r.images_per_second);
    std::fflush(stdout);
  });
  std::printf("held-out Pearson %.3f (a model predicting the mean scores 0)\n", report.test.pearson);
  return 0;
}

}  // namespace

Command add_demo_command(CLI::App& app) {
  struct Options {
    ToyTrainConfig config;
    ComputeOptions compute;
  };
  auto o = std::make_shared<Options>();
  auto* demo = app.add_subcommand("demo", "train a small CNN on generated data and show it learning");
  demo->add_option("--epochs", o->config.epochs, "training epochs")->check(CLI::Range(1, 1000));
  demo->add_option("--train", o->config.train_count, "training images")->check(CLI::Range(2, 1000000));
  add_seed_option(demo, o->config.seed, "random seed");
  add_compute_options(demo, o->compute);
  demo->footer("Examples:\n"
               "  hotlap demo\n"
               "  hotlap demo --epochs 20 --device cpu");
  return {demo, [o](const CommandLine&) { return run_demo(o->config, o->compute); }};
}

}  // namespace hotlap::cli
