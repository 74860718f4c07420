// The hotlap commands as main() sees them: each one's file (apps/cli/<name>_command.cpp) adds its
// subcommand, options, help and examples to the command line, and hands back what runs it once the
// line is parsed. main.cpp lists them, parses, runs the one given and turns errors into one line.
// Adding a command: its file, one line in commands.h and one in main.cpp (docs/contributing.md).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

#include "apps/common/compute_options.h"

namespace hotlap::cli {

// The whole command line, for a command that parses it again (train over a --recipe) or repeats it
// (train's "continue with" line).
struct CommandLine {
  CLI::App& app;
  int argc;
  char** argv;
};

struct Command {
  CLI::App* subcommand;                          // set once parsed, when it is the one given
  std::function<int(const CommandLine&)> run;    // the exit status
  bool ranks = false;  // may run as one of several processes under mpirun (train, bench, info)
};

Command add_demo_command(CLI::App& app);
Command add_info_command(CLI::App& app);
Command add_ops_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_convert_command(CLI::App& app);
Command add_synth_command(CLI::App& app);
Command add_train_command(CLI::App& app);
Command add_score_command(CLI::App& app);
Command add_predict_command(CLI::App& app);

// Options several commands share (apps/cli/options.cpp).

// --device, --precision, --conv, --batchnorm, --compute-threads.
void add_compute_options(CLI::App* command, ComputeOptions& options);
// --seed: any whole number from 0 to 2^64-1.
void add_seed_option(CLI::App* command, uint64_t& seed, const char* text);
// Options given that the rest of the command line makes do nothing: one note each on stderr, so that
// nobody believes a setting took effect.
void note_ignored(const CLI::App* command, std::initializer_list<const char*> options, bool ignored,
                  const std::string& because);

}  // namespace hotlap::cli
