// hotlap convert: the options of the checkpoint conversion (apps/cli/convert.h).
#include <memory>

#include "apps/cli/commands.h"
#include "apps/cli/convert.h"

namespace hotlap::cli {

Command add_convert_command(CLI::App& app) {
  auto convert_options = std::make_shared<ConvertOptions>();
  auto* convert = app.add_subcommand(
      "convert", "import a torchvision/timm ResNet checkpoint into a hotlap one, or export a hotlap "
                 "checkpoint to PyTorch format (the direction follows the input); the input transform "
                 "(input.resize, input.crop, input.whole_image), step, epoch and metrics go along as "
                 "hotlap.* metadata both ways");
  convert->add_option("input", convert_options->input, "safetensors file to read")->required();
  convert->add_option("output", convert_options->output, "safetensors file to write")->required();
  convert->add_flag("--new-head", convert_options->new_head,
                    "import: replace the classifier (fc) with a fresh head of --outputs units");
  convert->add_option("--outputs", convert_options->outputs, "units of the new head (1: regression)")
      ->check(CLI::Range(1, 100000));
  convert->add_flag("!--non-strict", convert_options->strict,
                    "import: load what fits and report the rest instead of refusing");
  add_seed_option(convert, convert_options->seed, "random seed for the new head");
  convert->footer("Examples:\n"
                  "  hotlap convert resnet50-imagenet.safetensors start.safetensors --new-head\n"
                  "  hotlap convert runs/r50/fold1/best.safetensors best-pytorch.safetensors");
  return {convert, [convert_options](const CommandLine&) { return run_convert(*convert_options); }};
}

}  // namespace hotlap::cli
