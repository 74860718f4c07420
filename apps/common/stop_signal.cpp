// SIGINT/SIGTERM as a request to stop: see stop_signal.h.
#include "apps/common/stop_signal.h"

#include <atomic>

namespace hotlap {
namespace {

std::atomic<int> g_requested{0};

// Async-signal-safe: an atomic store, or for the second signal, the default action raised again.
void on_signal(int signal) {
  int none = 0;
  if (g_requested.compare_exchange_strong(none, signal)) return;
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(signal, &fallback, nullptr);
  raise(signal);
}

}  // namespace

StopSignals::StopSignals() {
  g_requested = 0;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and writes in progress go on; the job polls the flag
  sigaction(SIGINT, &action, &old_int_);
  sigaction(SIGTERM, &action, &old_term_);
  // A signal the process was started ignoring (a job started with nohup, or in the background by a
  // shell without job control) stays ignored, as the shell meant.
  if (old_int_.sa_handler == SIG_IGN) sigaction(SIGINT, &old_int_, nullptr);
  if (old_term_.sa_handler == SIG_IGN) sigaction(SIGTERM, &old_term_, nullptr);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

int StopSignals::requested() { return g_requested.load(); }

const char* StopSignals::name(int signal) {
  return signal == SIGINT ? "SIGINT (Ctrl-C)" : signal == SIGTERM ? "SIGTERM" : "a signal";
}

}  // namespace hotlap
