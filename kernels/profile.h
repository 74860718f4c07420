// A tiny opt-in wall-clock profiler: where does a training step spend its time?
//
//   HOTLAP_PROFILE=1 hotlap bench --mode train      # prints the table to stderr
//
//   { ProfileScope scope("conv2d.forward.gemm", 2.0 * m * n * k); gemm(...); }
//
// Each scope adds its wall time (and, when given, its FLOPs) to a per-name total. Scopes nest: the
// report gives each name's inclusive time, its self time (inclusive minus the scopes opened inside
// it on the same thread), and shares of the total of the outermost scopes, so the self column adds
// up to 100%. Only the thread that opens a scope times it; OpenMP regions inside the scope count as
// its wall time. It also counts the process's minor page faults inside each scope (getrusage): a
// kernel writing to freshly allocated memory pays the kernel's page zeroing, and that shows up here. The totals are guarded by a mutex, so scopes may be opened on several threads.
//
// Off unless the environment says HOTLAP_PROFILE=1 (read once, at start-up) or profile_set_enabled
// turns it on; when off a scope costs one load and one branch, so it can stay in the kernels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hotlap::kernels {

namespace detail {
extern bool g_profile_enabled;
}

inline bool profile_enabled() { return detail::g_profile_enabled; }
void profile_set_enabled(bool on);

class ProfileScope {
 public:
  // `name` must outlive the program's last report (a string literal). `flops` is optional: when
  // given, the report shows the GFLOP/s achieved inside the scope.
  explicit ProfileScope(const char* name, double flops = 0.0) {
    if (detail::g_profile_enabled) begin(name, flops);
  }
  ~ProfileScope() {
    if (name_ != nullptr) end();
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  void begin(const char* name, double flops);
  void end();
  const char* name_ = nullptr;
  double flops_ = 0.0;
  int64_t start_ns_ = 0;
  int64_t child_ns_ = 0;          // time spent in scopes opened inside this one
  int64_t start_faults_ = 0;
  int64_t child_faults_ = 0;
  ProfileScope* parent_ = nullptr;
};

struct ProfileEntry {
  std::string name;
  int depth = 0;          // nesting depth at the first call (0 = outermost)
  int64_t calls = 0;
  double total_ms = 0.0;  // inclusive
  double self_ms = 0.0;   // exclusive of nested scopes
  double flops = 0.0;
  int64_t self_faults = 0;  // minor page faults, exclusive of nested scopes
};

// Entries sorted by inclusive time, longest first.
std::vector<ProfileEntry> profile_entries();
// Total time of the outermost scopes: the denominator of the shares.
double profile_total_ms();
// A text table: name (indented by depth), calls, total ms, self ms, ms per call, shares, GFLOP/s,
// self page faults.
// `per` divides the times (e.g. the number of iterations measured) so the table reads per step.
std::string profile_report(int64_t per = 1);
void profile_reset();

}  // namespace hotlap::kernels
