// Atomic file replacement with POSIX calls: open(O_EXCL) a temporary file next to the target, write
// through a small ostream over the file descriptor, fsync, rename, fsync the directory.
#include "nn/files/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <exception>
#include <streambuf>
#include <vector>

#include "kernels/error.h"

namespace hotlap {
namespace {

// Crash-consistency tests: with HOTLAP_TEST_EXIT_AFTER_RENAMES=N in the environment the process ends
// at once (exit status 137, as if killed by SIGKILL, no destructors, no further writes) right after
// its N-th completed rename. Read once; without the variable this costs one branch per file written.
void exit_here_if_asked() {
  static const long limit = [] {
    const char* v = std::getenv("HOTLAP_TEST_EXIT_AFTER_RENAMES");
    return v && *v ? std::strtol(v, nullptr, 10) : 0L;
  }();
  static std::atomic<long> renames{0};
  if (limit > 0 && ++renames == limit) ::_exit(137);
}

std::string errno_text(int err) { return std::strerror(err); }

// write(2) until every byte is out; retries on EINTR and on short writes. Returns 0 or an errno.
int write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // should not happen for regular files; do not spin
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// A buffered output streambuf over a file descriptor. The first write error is kept (as an errno)
// and makes every later write fail, which sets the ostream's badbit.
class FdStreambuf : public std::streambuf {
 public:
  explicit FdStreambuf(int fd) : fd_(fd), buffer_(1 << 16) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n <= 0) return 0;
    if (static_cast<size_t>(n) <= static_cast<size_t>(epptr() - pptr())) {
      std::memcpy(pptr(), s, static_cast<size_t>(n));
      pbump(static_cast<int>(n));
      return n;
    }
    // Large write: empty the buffer, then hand the caller's bytes straight to write(2).
    if (!flush_buffer()) return 0;
    if (error_ != 0) return 0;
    error_ = write_all(fd_, s, static_cast<size_t>(n));
    return error_ == 0 ? n : 0;
  }

  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  bool flush_buffer() {
    if (error_ != 0) return false;
    size_t pending = static_cast<size_t>(pptr() - pbase());
    if (pending > 0) error_ = write_all(fd_, pbase(), pending);
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return error_ == 0;
  }

  int fd_;
  std::vector<char> buffer_;
  int error_ = 0;
};

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Owns the temporary file until it has been renamed into place: closes and unlinks it otherwise.
struct TempFile {
  std::string name;
  int fd = -1;
  bool renamed = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!renamed) ::unlink(name.c_str());
  }
};

}  // namespace

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& writer) {
  static std::atomic<uint64_t> counter{0};
  HOTLAP_CHECK(!path.empty(), "write_file_atomically: empty path");

  TempFile tmp;
  tmp.name = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  tmp.fd = ::open(tmp.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (tmp.fd < 0) {
    int err = errno;
    tmp.renamed = true;  // nothing was created: do not unlink a file someone else may own
    throw_error(path, ": cannot create temporary file ", tmp.name, ": ", errno_text(err));
  }

  {
    FdStreambuf buf(tmp.fd);
    std::ostream os(&buf);
    try {
      writer(os);
    } catch (const std::exception& e) {
      throw_error(path, ": writing failed, file left unchanged: ", e.what());
    }
    os.flush();
    if (buf.error() != 0) throw_error(path, ": write failed: ", errno_text(buf.error()));
    if (!os.good()) throw_error(path, ": write failed (output stream in error state)");
  }

  if (::fsync(tmp.fd) != 0) throw_error(path, ": fsync of ", tmp.name, " failed: ", errno_text(errno));
  int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) throw_error(path, ": close of ", tmp.name, " failed: ", errno_text(errno));

  if (::rename(tmp.name.c_str(), path.c_str()) != 0) {
    throw_error(path, ": cannot rename ", tmp.name, " over it: ", errno_text(errno));
  }
  tmp.renamed = true;

  // Make the rename durable. Some filesystems cannot fsync a directory (EINVAL): the data is in
  // place regardless, so only real I/O errors are reported.
  std::string dir = directory_of(path);
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) throw_error(path, ": cannot open directory ", dir, " to sync it: ", errno_text(errno));
  int rc = ::fsync(dir_fd);
  int err = errno;
  ::close(dir_fd);
  if (rc != 0 && err != EINVAL && err != ENOTSUP) {
    throw_error(path, ": fsync of directory ", dir, " failed: ", errno_text(err));
  }
  exit_here_if_asked();
}

void write_file_atomically(const std::string& path, std::span<const uint8_t> bytes) {
  write_file_atomically(path, [&](std::ostream& os) {
    os.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  });
}

size_t remove_stale_temporaries(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  size_t removed = 0;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // NAME.tmp.PID.N: the last two dot-separated fields are decimal, the one before is "tmp".
    const size_t last = name.rfind('.');
    if (last == std::string::npos || last == 0) continue;
    const size_t mid = name.rfind('.', last - 1);
    if (mid == std::string::npos || mid < 4 || name.compare(mid - 4, 5, ".tmp.") != 0) continue;
    const std::string pid_text = name.substr(mid + 1, last - mid - 1), n_text = name.substr(last + 1);
    auto decimal = [](const std::string& t) {
      return !t.empty() && t.size() <= 10 && t.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!decimal(pid_text) || !decimal(n_text)) continue;
    const long pid = std::stol(pid_text);
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;  // alive, or unknown
    std::error_code rm;
    if (it->is_regular_file(rm) && fs::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

}  // namespace hotlap
