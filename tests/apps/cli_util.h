// Running the hotlap binary from the app tests: its exit status and what it printed.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace hotlap::test {

struct Run {
  int status;          // the exit status, -1 if it did not exit normally (a crash)
  std::string output;  // stdout and stderr together
};

// `env` is prepended to the command line (VAR=value ...); args are passed through the shell.
inline Run run_env(const std::string& env, const std::string& args) {
  const std::string command = env + " " + std::string(HOTLAP_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

inline Run run(const std::string& args) { return run_env("", args); }

}  // namespace hotlap::test
