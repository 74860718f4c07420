// Headless Chromium for the report tests: find it, run it on a page, read what it wrote. The tests
// that need it skip with a message when HOTLAP_SKIP_BROWSER_TESTS=1 (scripts/install-deps.sh --test
// installs Debian's chromium, so make test has it).
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "test_util.h"

namespace hotlap::test {

// The browser's path, or "" when there is none on PATH.
inline std::string find_chromium() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, end - start)) / "chromium";
    std::error_code ec;
    if (!candidate.parent_path().empty() && std::filesystem::is_regular_file(candidate, ec) &&
        ::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
    start = end + 1;
  }
  return "";
}

// Whether a browser test should be skipped (HOTLAP_SKIP_BROWSER_TESTS=1); says so when it is.
inline bool skip_browser_tests(const char* what) {
  const char* skip = std::getenv("HOTLAP_SKIP_BROWSER_TESTS");
  if (skip == nullptr || std::string(skip) != "1") return false;
  MESSAGE("SKIPPED: the headless-browser test of ", what, " (HOTLAP_SKIP_BROWSER_TESTS=1)");
  return true;
}

inline std::string quoted(const std::string& s) {  // for /bin/sh: single quotes, ' written as '\''
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs the browser on `page` with the given extra flags, stdout to `out`; returns the exit status.
inline int run_chromium(const std::string& chromium, const TempDir& dir, const std::string& page,
                        const std::string& flags, const std::string& out) {
  const std::string command = "timeout 60 " + quoted(chromium) +
                              " --headless=new --no-sandbox --disable-gpu --allow-file-access-from-files"
                              " --no-first-run --disable-dev-shm-usage --user-data-dir=" +
                              quoted(dir.file("profile")) + " " + flags + " " + quoted("file://" + page) + " >" +
                              quoted(out) + " 2>>" + quoted(dir.file("chromium.log"));
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace hotlap::test
