// hotlap: the command-line front end. Each subcommand catches hotlap::Error (and any other exception)
// and prints one line, exiting non-zero: bad input never crashes the program.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "apps/cli/commands.h"
#include "apps/common/cli_help.h"
#include "apps/common/omp_wait_policy.h"  // OpenMP threads sleep when they wait (see there)
#include "kernels/choice.h"
#include "kernels/comm.h"
#include "kernels/comm_environment.h"
#include "kernels/cpu_isa.h"
#include "kernels/error.h"

namespace {

// One line on stderr and exit status 1; in a data-parallel job (mpirun), the whole job ends: the
// other ranks would otherwise wait for this one in their next collective.
int fail(const std::string& message) {
  if (hotlap::kernels::comm::in_job()) hotlap::kernels::comm::abort_job(message, 1);
  std::fprintf(stderr, "%s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = hotlap::cli;
  CLI::App app{"hotlap: train and run convolutional networks, from JPEG bytes to the weight update", "hotlap"};
  app.require_subcommand(1);
  // Before any option is added: subcommands and options copy these when they are made.
  app.formatter(std::make_shared<hotlap::HelpFormatter>(hotlap::help_width()));
  app.option_defaults()->always_capture_default();
  app.footer("Run 'hotlap COMMAND --help' for a command's options and examples. Start with 'hotlap demo'.");

  // In the order --help lists them.
  const std::vector<cli::Command> commands = {
      cli::add_demo_command(app),  cli::add_info_command(app),    cli::add_ops_command(app),
      cli::add_bench_command(app), cli::add_convert_command(app), cli::add_synth_command(app),
      cli::add_train_command(app), cli::add_score_command(app), cli::add_predict_command(app),
  };

  // A mistyped command ("hotlap scor"): CLI11 alone would say only that a subcommand is required.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      const std::string guess = hotlap::closest_word(argv[1], names);
      std::string all;
      for (const std::string& name : names) all += (all.empty() ? "" : ", ") + name;
      std::fprintf(stderr, "hotlap: '%s' is not a command%s\n  the commands: %s (hotlap --help says what each does)\n",
                   hotlap::elide_long_words(argv[1]).c_str(),
                   guess.empty() ? "" : ("; did you mean '" + guess + "'?").c_str(), all.c_str());
      return static_cast<int>(CLI::ExitCodes::ExtrasError);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    // A bad HOTLAP_CPU_ISA, HOTLAP_GEMM, ... is one line here, before any work, rather than in the
    // middle of it (kernels/choice.h).
    hotlap::kernels::cpu::active_cpu_isa();
    hotlap::kernels::kernel_options();
    for (const cli::Command& command : commands) {
      if (!*command.subcommand) continue;
      // Started by mpirun as one of several processes: only a command built for it runs; the others
      // would each do the whole work and race to write the same files.
      if (const int ranks = hotlap::kernels::comm::launcher_world_size(); ranks > 1 && !command.ranks)
        return fail("hotlap: error: " + command.subcommand->get_name() + " runs as one process, not as one of " +
                    std::to_string(ranks) + " started by mpirun (only train, bench and info do)");
      return command.run({app, argc, argv});
    }
  } catch (const std::bad_alloc&) {  // where no layer said what it was building
    return fail("hotlap: error: out of memory");
  } catch (const std::exception& e) {
    return fail("hotlap: error: " + hotlap::elide_long_words(e.what()));
  }
  return 0;
}
