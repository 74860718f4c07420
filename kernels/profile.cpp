// The opt-in profiler behind kernels/profile.h. Cost when on: two clock reads, a mutex and a map
// lookup per scope; the scopes sit around whole kernels (microseconds to milliseconds each), so the
// overhead stays far below the times measured. It lives in kernels/cpu/ only because that folder is
// what the build globs; it is not CPU-specific.
#include "kernels/profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <sys/resource.h>

namespace hotlap::kernels {

namespace detail {

static bool profile_from_env() {
  const char* env = std::getenv("HOTLAP_PROFILE");
  return env != nullptr && *env != '\0' && std::strcmp(env, "0") != 0;
}

bool g_profile_enabled = profile_from_env();

}  // namespace detail

namespace {

struct Accum {
  int depth = 0;
  int64_t calls = 0;
  int64_t total_ns = 0;
  int64_t self_ns = 0;
  double flops = 0.0;
  int64_t self_faults = 0;
};

struct Registry {
  std::mutex mutex;
  std::map<std::string, Accum> by_name;
  int64_t outermost_ns = 0;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: scopes may close during static teardown
  return *r;
}

thread_local ProfileScope* t_current = nullptr;
thread_local int t_depth = 0;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Minor page faults of the whole process so far (all threads: OpenMP workers fault too).
int64_t minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

}  // namespace

void profile_set_enabled(bool on) { detail::g_profile_enabled = on; }

void ProfileScope::begin(const char* name, double flops) {
  name_ = name;
  flops_ = flops;
  parent_ = t_current;
  t_current = this;
  ++t_depth;
  start_faults_ = minor_faults();
  start_ns_ = now_ns();
}

void ProfileScope::end() {
  const int64_t elapsed = now_ns() - start_ns_;
  const int64_t faults = minor_faults() - start_faults_;
  t_current = parent_;
  const int depth = --t_depth;
  if (parent_ != nullptr) {
    parent_->child_ns_ += elapsed;
    parent_->child_faults_ += faults;
  }
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto [it, inserted] = r.by_name.try_emplace(name_);
  Accum& a = it->second;
  if (inserted) a.depth = depth;
  a.calls += 1;
  a.total_ns += elapsed;
  a.self_ns += elapsed - child_ns_;
  a.flops += flops_;
  a.self_faults += faults - child_faults_;
  if (parent_ == nullptr) r.outermost_ns += elapsed;
}

std::vector<ProfileEntry> profile_entries() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<ProfileEntry> out;
  out.reserve(r.by_name.size());
  for (const auto& [name, a] : r.by_name)
    out.push_back({name, a.depth, a.calls, a.total_ns * 1e-6, a.self_ns * 1e-6, a.flops, a.self_faults});
  std::stable_sort(out.begin(), out.end(),
                   [](const ProfileEntry& x, const ProfileEntry& y) { return x.total_ms > y.total_ms; });
  return out;
}

double profile_total_ms() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.outermost_ns * 1e-6;
}

std::string profile_report(int64_t per) {
  const double div = per > 0 ? double(per) : 1.0;
  const std::vector<ProfileEntry> entries = profile_entries();
  const double total = profile_total_ms();
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-40s %9s %11s %11s %10s %7s %7s %8s %12s\n", "scope", "calls",
                per > 1 ? "total ms/it" : "total ms", per > 1 ? "self ms/it" : "self ms", "ms/call",
                "%total", "%self", "GFLOP/s", per > 1 ? "self flt/it" : "self faults");
  out += line;
  for (const ProfileEntry& e : entries) {
    const std::string name = std::string(size_t(2 * e.depth), ' ') + e.name;
    char gflops[16] = "";
    if (e.flops > 0 && e.total_ms > 0) std::snprintf(gflops, sizeof gflops, "%.1f", e.flops / (e.total_ms * 1e6));
    std::snprintf(line, sizeof line, "%-40s %9.1f %11.2f %11.2f %10.3f %6.1f%% %6.1f%% %8s %12.0f\n",
                  name.c_str(), double(e.calls) / div, e.total_ms / div, e.self_ms / div,
                  e.calls ? e.total_ms / double(e.calls) : 0.0,
                  total > 0 ? 100.0 * e.total_ms / total : 0.0,
                  total > 0 ? 100.0 * e.self_ms / total : 0.0, gflops, double(e.self_faults) / div);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-40s %9s %11.2f   (outermost scopes; %%self adds up to 100%%)\n",
                "total", "", total / div);
  out += line;
  return out;
}

void profile_reset() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.by_name.clear();
  r.outermost_ns = 0;
}

}  // namespace hotlap::kernels
