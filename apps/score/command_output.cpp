#include "apps/score/command_output.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>

#include "kernels/error.h"
#include "nn/files/atomic_file.h"

namespace hotlap {

void check_output_path(const std::string& path, const char* option, const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  const fs::path folder = p.has_parent_path() ? p.parent_path() : fs::path(".");
  HOTLAP_CHECK(fs::is_directory(folder, ec), option, " ", path, ": the folder ", folder.string(),
               " does not exist");
  HOTLAP_CHECK(access(folder.c_str(), W_OK) == 0, option, " ", path, ": the folder ", folder.string(),
               " is not writable");
  HOTLAP_CHECK(!fs::is_directory(p, ec), option, " ", path, " is a folder; give a file name");
  const fs::path resolved = fs::weakly_canonical(p, ec);
  for (const std::string& input : inputs) {
    std::error_code ec2;
    HOTLAP_CHECK(ec || fs::weakly_canonical(input, ec2) != resolved || ec2, option, " ", path,
                 " would overwrite an input (", input, ")");
  }
}

void write_result(const std::string& text, const std::string& out, const char* command) {
  if (out.empty()) {
    errno = 0;
    const bool written = std::fwrite(text.data(), 1, text.size(), stdout) == text.size();
    HOTLAP_CHECK(written && std::fflush(stdout) == 0 && !std::ferror(stdout), command,
                 ": cannot write the results to standard output (", errno ? std::strerror(errno) : "write error",
                 "); use --out FILE");
  } else {
    write_file_atomically(out, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
}

}  // namespace hotlap
