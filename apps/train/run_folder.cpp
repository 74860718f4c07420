// Run-folder lock and existing-run check: see run_folder.h.
#include "apps/train/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "kernels/error.h"

namespace hotlap {

namespace fs = std::filesystem;

RunFolderLock::RunFolderLock(const std::string& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  HOTLAP_CHECK(!ec, folder, ": cannot create the run folder (", ec.message(), ")");
  const std::string path = (fs::path(folder) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  HOTLAP_CHECK(fd_ >= 0, path, ": cannot open the run folder's lock (", std::strerror(errno), ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    fd_ = -1;
    HOTLAP_CHECK(err == EWOULDBLOCK, path, ": cannot lock the run folder (", std::strerror(err), ")");
    std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : std::string();
    holder.erase(holder.find_last_not_of(" \n") + 1);
    throw_error("train: another hotlap train", holder.empty() ? "" : " (process " + holder + ")",
                " is writing ", folder, "; wait for it to finish, or give another --out");
  }
  // Who holds it, for the message above; the lock itself is the flock, not this text.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t written = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

RunFolderLock::~RunFolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

const std::vector<std::string>& run_file_names() {
  static const std::vector<std::string> names = {"last.safetensors", "best.safetensors", "metrics.csv",
                                                 "metrics.json",     "predictions.csv",  "log.txt",
                                                 "config.json"};
  return names;
}

namespace {

// "3 epochs" from metrics.csv (one line per finished epoch after the header), or "" if unreadable.
std::string epochs_recorded(const fs::path& fold) {
  std::ifstream in(fold / "metrics.csv", std::ios::binary);
  if (!in) return "";
  const auto lines = std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
  const long epochs = std::max<long>(0, static_cast<long>(lines) - 1);
  return counted(epochs, "epoch");
}

}  // namespace

void check_run_folder(const std::string& run, const std::vector<std::string>& fold_folders, ExistingRun mode) {
  if (mode == ExistingRun::resume) return;
  for (const std::string& name : fold_folders) {
    const fs::path fold = fs::path(run) / name;
    std::error_code ec;
    bool holds_run = false;
    for (const char* file : {"last.safetensors", "best.safetensors", "metrics.csv"})
      holds_run = holds_run || fs::exists(fold / file, ec);
    if (!holds_run) continue;
    if (mode == ExistingRun::refuse) {
      const std::string done = epochs_recorded(fold);
      throw_error("train: ", fold.string(), " already holds a run", done.empty() ? "" : " (" + done + " recorded)",
                  "; continue it with --resume, or start again with --overwrite (which deletes its checkpoints "
                  "and metrics)");
    }
    for (const std::string& file : run_file_names()) {
      fs::remove(fold / file, ec);
      HOTLAP_CHECK(!ec, (fold / file).string(), ": cannot remove it for --overwrite (", ec.message(), ")");
    }
  }
}

}  // namespace hotlap
