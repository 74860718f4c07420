// Options several commands share: what the computation runs on, and the random seed.
#include <cstdio>

#include "apps/cli/commands.h"

namespace hotlap::cli {

void add_compute_options(CLI::App* command, ComputeOptions& o) {
  command->add_option("--device", o.device, "cpu, cuda, or auto: cuda when a GPU is present")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  command->add_option("--precision", o.precision,
                      "fp32; tf32 (GPU tensor cores); or bf16 (bf16 activations, fp32 weights and sums; on the "
                      "cpu an emulation, slow)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  command->add_option("--conv", o.conv, "GPU convolution backend: native or cudnn (default: $HOTLAP_CONV or native)")
      ->check(CLI::IsMember({"native", "cudnn"}));
  command->add_option("--batchnorm", o.batch_norm,
                      "GPU batch-norm backend: native or cudnn (default: $HOTLAP_BATCHNORM or native)")
      ->check(CLI::IsMember({"native", "cudnn"}));
  command->add_option("--compute-threads", o.compute_threads,
                      "CPU compute threads, fixed (default: as many as the machine has free, fewer while other "
                      "programs keep its CPUs busy; OMP_NUM_THREADS also fixes them; results are the same "
                      "at any count)")
      ->check(CLI::Range(1, 1024))
      ->default_str("");
}

// CLI11 would read "-1" or "2^64" as 2^64-1 without a word; this checks the text first.
void add_seed_option(CLI::App* command, uint64_t& seed, const char* text) {
  command->add_option("--seed", seed, text)
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            const bool digits = !value.empty() && value.size() <= 20 &&
                                value.find_first_not_of("0123456789") == std::string::npos;
            if (digits && (value.size() < 20 || value <= "18446744073709551615")) return {};
            return "a seed is a whole number from 0 to 18446744073709551615, not '" + value + "'";
          },
          "UINT64"));
}

void note_ignored(const CLI::App* command, std::initializer_list<const char*> options, bool ignored,
                  const std::string& because) {
  if (!ignored) return;
  for (const char* option : options)
    if (command->count(option) > 0) std::fprintf(stderr, "hotlap: note: %s does nothing %s\n", option, because.c_str());
}

}  // namespace hotlap::cli
