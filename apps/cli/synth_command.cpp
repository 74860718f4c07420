// hotlap synth: a generated data set in SCUT-FBP5500's layout, or of shapes for a classifier
// (apps/data/synth.h).
#include <cstdio>
#include <memory>
#include <string>

#include "apps/cli/commands.h"
#include "apps/data/synth.h"

namespace hotlap::cli {

Command add_synth_command(CLI::App& app) {
  auto synth_options = std::make_shared<SynthOptions>();
  auto task = std::make_shared<std::string>("score");
  auto* synth = app.add_subcommand(
      "synth", "write a procedural data set: drawn faces in SCUT-FBP5500's layout whose scores are a known "
               "function of the figure, or (--task classify) shapes in classes for a classifier");
  synth->add_option("--out", synth_options->out_dir,
                    "directory to write (score: Images/ and train_test_files/; classify: train/ and val/)")
      ->required();
  synth->add_option("--task", *task, "score: faces with scores, as SCUT-FBP5500; classify: shapes, a class each")
      ->check(CLI::IsMember({"score", "classify"}))
      ->capture_default_str();
  synth->add_option("--n", synth_options->count, "number of images (SCUT has 5500)")->check(CLI::Range(10, 1000000));
  synth->add_option("--classes", synth_options->classes,
                    "--task classify: how many of circle, square, triangle, cross, ring, bar")
      ->check(CLI::Range(2, 6));
  synth->add_option("--size", synth_options->size, "image side in pixels (SCUT: 350)")->check(CLI::Range(32, 2048));
  add_seed_option(synth, synth_options->seed, "random seed");
  synth->add_flag("--overwrite", synth_options->overwrite,
                  "replace what --out holds (the parts of a data set of this task are deleted first); without it, "
                  "a folder that is not empty is refused");
  synth->footer("Examples:\n"
                "  hotlap synth --out synth-data\n"
                "  hotlap synth --out small --n 500 --size 128 --seed 7 --overwrite\n"
                "  hotlap synth --task classify --out shapes --n 1200 --size 64");
  return {synth, [synth, synth_options, task](const CommandLine&) {
            if (*task == "classify") {
              const int64_t n = write_synthetic_classes(*synth_options);
              std::printf("wrote %lld drawn shapes of %lld classes to %s\n  in torchvision's ImageFolder "
                          "layout: train/CLASS/, val/CLASS/ and %s\n",
                          static_cast<long long>(n), static_cast<long long>(synth_options->classes),
                          synth_options->out_dir.c_str(), kSynthMarker);
              return 0;
            }
            note_ignored(synth, {"--classes"}, true, "with --task score (it draws faces, not classes)");
            const int64_t n = write_synthetic_scut(*synth_options);
            std::printf("wrote %lld drawn faces to %s\n  in SCUT-FBP5500's layout: Images/, train_test_files/ and %s\n",
                        static_cast<long long>(n), synth_options->out_dir.c_str(), kSynthMarker);
            return 0;
          }};
}

}  // namespace hotlap::cli
