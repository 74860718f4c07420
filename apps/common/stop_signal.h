// Ctrl-C (SIGINT) and kill (SIGTERM) during a long job: the first one asks the job to stop at a point
// where its files are consistent; a second one ends the process at once.
//
// While a StopSignals object lives (a job holds one only where it polls often), both signals only set
// a flag that the job polls (requested()) at the boundaries it chooses -- hotlap train after each step, abandoning the unfinished epoch, whose
// files it has not begun to write. The files it has written are whole (nn/files/atomic_file.h), so even the
// second signal's immediate end leaves a run that --resume continues. The destructor restores the
// previous handlers.
#pragma once

#include <signal.h>

namespace hotlap {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal that asked to stop (SIGINT or SIGTERM), 0 if none has.
  static int requested();
  // "SIGINT (Ctrl-C)" or "SIGTERM".
  static const char* name(int signal);

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace hotlap
