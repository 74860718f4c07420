// The progress line of apps/common/progress.h.
#include "apps/common/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace hotlap {

std::string clock_time(double seconds) {
  const int64_t s = std::isfinite(seconds) && seconds > 0 ? static_cast<int64_t>(seconds + 0.5) : 0;
  char text[40];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(text, sizeof text, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return text;
}

std::string progress_line(const Progress& p, int columns) {
  const size_t room = static_cast<size_t>(std::max(columns - 1, 1));
  char text[64];
  const std::string epoch = "  epoch " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs);
  const std::string steps = std::to_string(p.steps) + "/" + std::to_string(p.per_epoch);
  std::snprintf(text, sizeof text, "loss %.4f", p.loss);
  const std::string loss = text;
  std::snprintf(text, sizeof text, p.images_per_second < 100 ? "%.1f img/s" : "%.0f img/s", p.images_per_second);
  const std::string speed = text;
  const std::string left = "fold ~" + clock_time(p.seconds_left) + " left";

  // The parts after the bar, most dispensable first: each attempt drops one more.
  const std::vector<const std::string*> optional = {&steps, &loss, &speed};
  for (size_t dropped = 0; dropped <= optional.size(); ++dropped) {
    std::string tail;
    for (size_t i = dropped; i < optional.size(); ++i) tail += "  " + *optional[i];
    tail += "  " + left;
    tail.erase(0, 1);  // one space after the bar or the epoch, two between the rest
    if (dropped == 0) {
      const size_t fixed = epoch.size() + 3 + tail.size();  // " [" and "]"
      const size_t bar = std::min<size_t>(24, room > fixed ? room - fixed : 0);
      if (bar >= 8) {
        const int64_t filled = static_cast<int64_t>(bar) * p.steps / std::max<int64_t>(p.per_epoch, 1);
        std::string marks(static_cast<size_t>(std::clamp<int64_t>(filled, 0, static_cast<int64_t>(bar))), '#');
        marks.resize(bar, '.');
        return epoch + " [" + marks + "]" + tail;
      }
    }
    if (epoch.size() + tail.size() <= room) return epoch + tail;
  }
  return (epoch + " " + left).substr(0, room);
}

namespace {
int columns_of(int fd) {
  winsize ws{};
  if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}
}  // namespace

int terminal_columns() { return columns_of(STDOUT_FILENO); }
int stderr_columns() { return columns_of(STDERR_FILENO); }

}  // namespace hotlap
