// What the fuzz targets share: which exceptions are a clean refusal of a bad input, what else is a
// finding, and scratch files for the APIs that take paths.
//
// A clean refusal is a hotlap::Error and nothing else. kernels/error.h makes it the one exception type
// every layer throws, naming the file and what is wrong, and "nothing in hotlap aborts on bad input".
// The hotlap command catches std::exception at the top, so a std::bad_alloc or a std::out_of_range
// from a stray .at() would not crash it either; but its one line would then read "std::bad_alloc" or
// "map::at" with no file named, which is the bug the design rule is there to prevent. So any other
// exception is reported like a crash: a finding, with the input that threw it saved by libFuzzer.
#pragma once

#include <cxxabi.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <typeinfo>

#include "kernels/error.h"

namespace hotlap::fuzz {

// Stops the process so that libFuzzer counts the input as a finding; `what` is the call that failed.
[[noreturn]] inline void finding(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "\n==hotlap fuzz== FINDING in %s: %s\n", what.c_str(), detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// A property the code documents did not hold: a finding too (a wrong answer rather than a crash). A
// macro, so that the message is only put together when it is needed (some checks run per pixel).
#define HOTLAP_FUZZ_REQUIRE(ok, what, detail)             \
  do {                                                    \
    if (!(ok)) ::hotlap::fuzz::finding((what), (detail)); \
  } while (0)

inline std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                              std::free);
  return status == 0 && name ? name.get() : type.name();
}

// Runs fn(): returns true when it finished, false when it refused the input with a hotlap::Error.
// Any other exception is a finding.
template <typename Fn>
bool refuses_cleanly(const char* what, Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    finding(what, "threw " + type_name(typeid(e)) + " (not a hotlap::Error): " + e.what());
  } catch (...) {
    finding(what, "threw something that is not a std::exception");
  }
}

// A folder of this process's own under $TMPDIR (or /tmp), removed with everything in it when the
// process exits normally (libFuzzer's -runs and -max_total_time end with exit()). A run that stops
// on a finding leaves it behind: it holds only what the target wrote there.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/hotlap-fuzz-" + name + "-XXXXXX";
    if (!::mkdtemp(pattern.data())) finding("ScratchDir", "cannot create a folder like " + pattern);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// One OpenMP thread: an input runs the same way every time (some kernels split sums by thread), and
// two fuzzers side by side on a small machine do not fight over its cores.
inline void single_threaded() { omp_set_num_threads(1); }

// Writes the bytes to `path`, replacing it; a failure here is the harness's, not the library's.
inline void write_bytes(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) finding("write_bytes", "cannot write " + path);
}

inline void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, text.data(), text.size());
}

}  // namespace hotlap::fuzz
