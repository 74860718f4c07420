// hotlap predict: a classifier's top classes for photos (apps/score/predict.h).
#include <memory>

#include "apps/cli/commands.h"
#include "apps/score/predict.h"

namespace hotlap::cli {

Command add_predict_command(CLI::App& app) {
  auto o = std::make_shared<PredictOptions>();
  auto* predict = app.add_subcommand(
      "predict", "classify photos with a trained classifier (hotlap train --task classify): the most probable "
                 "classes of each, with their probabilities");
  predict->add_option("--model", o->model_path,
                      "RUN/train-val/best.safetensors from hotlap train --task classify, or a PyTorch-format "
                      "ResNet classifier")
      ->required();
  predict->add_option("photos", o->photos, "photo files, folders (their images, not their subfolders) or globs")
      ->required()
      ->default_str("");
  predict->add_option("--top", o->top, "classes listed for each photo, the most probable first")
      ->check(CLI::Range(1, 100000));
  predict->add_option("--format", o->format, "table, csv or json (default: from --out's extension; else table)")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  predict->add_option("--out", o->out, "write the result to this file instead of stdout");
  auto* resize = predict->add_option("--resize", o->resize,
                                     "shorter side before the centre crop, overriding the model file's (needed "
                                     "for a PyTorch file that does not say: 256 for torchvision's)");
  resize->check(CLI::Range(32, 4096))->default_str("");
  auto* size = predict->add_option("--size", o->size, "network input size (the centre crop, at most --resize)");
  size->check(CLI::Range(32, 4096))->default_str("");
  resize->needs(size);
  size->needs(resize);
  predict->add_flag("--quiet", o->quiet, "no progress lines on stderr");
  add_compute_options(predict, o->compute);
  predict->footer("Examples:\n"
                  "  hotlap predict --model runs/shapes/train-val/best.safetensors photo.jpg\n"
                  "  hotlap predict --model best.safetensors photos/ --top 3 --out classes.csv");
  return {predict, [o](const CommandLine&) { return run_predict(*o); }};
}

}  // namespace hotlap::cli
