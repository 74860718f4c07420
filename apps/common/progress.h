// The line `hotlap train` redraws in place while an epoch runs, and the width it has. A line that
// reaches the terminal's last column wraps on many terminals, and a wrapped line cannot be redrawn with
// "\r": each step then scrolls a new line. So the line is built for the width it is given, dropping
// what matters least first.
#pragma once

#include <cstdint>
#include <string>

namespace hotlap {

struct Progress {
  int64_t epoch = 0, epochs = 0;     // this epoch, of how many
  int64_t steps = 0, per_epoch = 0;  // steps done in this epoch, of how many
  double loss = 0;                   // mean training loss of this epoch's steps so far
  double images_per_second = 0;      // training images a second this epoch (decoding and steps; no testing)
  double seconds_left = 0;           // estimated time for this fold's remaining training steps
};

// "  epoch 3/12 [#####.....] 45/120  loss 0.1234  38.2 img/s  fold ~4:05 left", at most columns - 1
// characters long. When that does not fit, the bar shrinks (to 8 marks), then goes, then the step
// count, the loss and the speed go in that order; the epoch and the time left stay.
std::string progress_line(const Progress& p, int columns);

// "4:05", "1:02:03": minutes and seconds, with hours when there are any.
std::string clock_time(double seconds);

// The width of the terminal stdout is, or 0 when stdout is not a terminal or does not say.
int terminal_columns();
// The same for stderr, where progress and warnings go.
int stderr_columns();

}  // namespace hotlap
