// hotlap bench: the options of the ResNet timing (apps/cli/bench.h).
#include <memory>

#include "apps/cli/commands.h"
#include "apps/cli/bench.h"

namespace hotlap::cli {

Command add_bench_command(CLI::App& app) {
  auto bench_config = std::make_shared<ResNetBenchConfig>();
  auto* bench = app.add_subcommand("bench", "time a ResNet forward pass or training step on random data "
                                            "(one JSON line; HOTLAP_PROFILE=1 adds a profile on stderr)");
  bench->add_option("--depth", bench_config->depth, "ResNet depth")->check(CLI::IsMember({18, 34, 50, 101}));
  bench->add_option("--mode", bench_config->mode, "infer (eval, no grad) or train (forward, backward, SGD)")
      ->check(CLI::IsMember({"infer", "train"}));
  bench->add_option("--batch", bench_config->batch, "images per batch")->check(CLI::Range(1, 4096));
  bench->add_option("--size", bench_config->size, "image height and width")->check(CLI::Range(32, 4096));
  bench->add_option("--outputs", bench_config->num_outputs, "width of the final linear layer")
      ->check(CLI::Range(1, 100000));
  bench->add_option("--warmup", bench_config->warmup, "untimed iterations first")->check(CLI::Range(0, 1000));
  bench->add_option("--iters", bench_config->iters, "timed iterations")->check(CLI::Range(1, 100000));
  bench->add_option("--bucket-mb", bench_config->bucket_mb,
                    "train under mpirun: the gradients' bucket size in MiB (default 25); one larger than the "
                    "model sends them all after backward instead of during it")
      ->check(CLI::Range(1, 65536));
  bench->add_flag("!--no-fuse-bn", bench_config->fuse_bn,
                  "infer: keep each batch norm as a pass of its own (by default it is folded into the "
                  "convolution before it, as score runs a model)");
  bench->add_flag("--kernels", bench_config->show_kernels,
                  "list on stderr the kernel each convolution layer ran on, per pass (also with "
                  "HOTLAP_PROFILE=1; HOTLAP_REFERENCE=1 runs the readable ones)");
  add_compute_options(bench, bench_config->compute);
  bench->footer("Examples:\n"
                "  hotlap bench --mode train --batch 8\n"
                "  hotlap bench --mode infer --batch 1 --no-fuse-bn\n"
                "  hotlap bench --mode train --kernels\n"
                "  HOTLAP_PROFILE=1 hotlap bench --depth 18 --device cpu");
  return {bench, [bench_config](const CommandLine&) { return run_bench_command(*bench_config); }, true};
}

}  // namespace hotlap::cli
