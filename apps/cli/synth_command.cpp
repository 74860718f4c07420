// hotlap synth: a generated data set in SCUT-FBP5500's layout (apps/data/synth.h).
#include <cstdio>
#include <memory>

#include "apps/cli/commands.h"
#include "apps/data/synth.h"

namespace hotlap::cli {

Command add_synth_command(CLI::App& app) {
  auto synth_options = std::make_shared<SynthOptions>();
  auto* synth = app.add_subcommand(
      "synth", "write a procedural data set in SCUT-FBP5500's layout whose scores are a known function "
               "of the drawn faces");
  synth->add_option("--out", synth_options->out_dir, "directory to write (Images/, train_test_files/)")
      ->required();
  synth->add_option("--n", synth_options->count, "number of images (SCUT has 5500)")->check(CLI::Range(10, 1000000));
  synth->add_option("--size", synth_options->size, "image side in pixels (SCUT: 350)")->check(CLI::Range(32, 2048));
  add_seed_option(synth, synth_options->seed, "random seed");
  synth->add_flag("--overwrite", synth_options->overwrite,
                  "replace what --out holds (its Images/ and train_test_files/ are deleted first); without it, "
                  "a folder that is not empty is refused");
  synth->footer("Examples:\n"
                "  hotlap synth --out synth-data\n"
                "  hotlap synth --out small --n 500 --size 128 --seed 7 --overwrite");
  return {synth, [synth_options](const CommandLine&) {
            const int64_t n = write_synthetic_scut(*synth_options);
            std::printf("wrote %lld drawn faces to %s\n  in SCUT-FBP5500's layout: Images/, train_test_files/ and %s\n",
                        static_cast<long long>(n), synth_options->out_dir.c_str(), kSynthMarker);
            return 0;
          }};
}

}  // namespace hotlap::cli
