// The compute-thread policy: see compute_threads.h.
#include "apps/common/compute_threads.h"

#include <omp.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace hotlap {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kLookEvery = 0.25;  // seconds between looks at the machine

// The cgroup v2 CPU quota in CPUs ("cpu.max": "QUOTA PERIOD" or "max PERIOD"), 0 when none.
double cgroup_cpu_quota() {
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (!(f >> quota >> period) || quota == "max" || period <= 0) return 0;
  char* end = nullptr;
  const double q = std::strtod(quota.c_str(), &end);
  return end != quota.c_str() && q > 0 ? q / period : 0;
}

// The CPUs in this process's affinity mask, in order.
std::vector<int> affinity_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  if (cpus.empty())
    for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < std::max(1L, n); ++i) cpus.push_back(static_cast<int>(i));
  return cpus;
}

// Busy time of the given CPUs in seconds, from /proc/stat's "cpuN" lines: user, nice, system, irq,
// softirq and steal (a hypervisor's other guests) count as busy; idle and iowait do not. Negative
// when /proc/stat cannot be read.
double busy_seconds(const std::vector<int>& cpus) {
  std::ifstream f("/proc/stat");
  if (!f) return -1;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::vector<bool> wanted;
  for (int c : cpus) {
    if (static_cast<size_t>(c) >= wanted.size()) wanted.resize(static_cast<size_t>(c) + 1);
    wanted[static_cast<size_t>(c)] = true;
  }
  double busy = 0;
  std::string line;
  bool any = false;
  while (std::getline(f, line)) {
    if (line.rfind("cpu", 0) != 0 || line.size() < 4 || line[3] < '0' || line[3] > '9') continue;
    std::istringstream in(line.substr(3));
    size_t cpu = 0;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    if (!in && !in.eof()) continue;
    if (cpu < wanted.size() && wanted[cpu]) {
      busy += user + nice + system + irq + softirq + steal;
      any = true;
    }
  }
  return any ? busy / ticks : -1;
}

// Programs running on the machine at this instant besides this process's one running thread: the
// "running" count of /proc/loadavg ("0.50 0.40 0.30 3/245 12345") less one; -1 when unreadable. A
// snapshot, good enough for the first guess, before any interval has been measured.
double others_running_now() {
  std::ifstream f("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  int running = 0;
  char slash = 0;
  if (!(f >> a >> b >> c >> running >> slash) || slash != '/') return -1;
  return std::max(0, running - 1);
}

// This process's CPU time (all threads) in seconds.
double own_cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

// The CPUs of the mask `cpus` this process may use: all of them, or fewer under a cgroup CPU quota.
int usable_of(const std::vector<int>& cpus) {
  const int in_mask = static_cast<int>(cpus.size());
  const double quota = cgroup_cpu_quota();
  if (quota <= 0) return in_mask;
  return std::clamp(static_cast<int>(std::floor(quota + 1e-9)), 1, in_mask);
}

struct State {
  bool adaptive = false;
  std::string fixed_by;  // what fixed the count, when not adaptive
  int cpus = 1;
  std::vector<int> cpu_list;
  int current = 1, fewest = 1, most = 1;
  int proposed = 0;  // the last look's count, waiting for a second look to agree
  Clock::time_point last_look{};
  double last_busy = -1, last_own = 0;
};

State& state() {
  static State s;
  return s;
}

void use(State& s, int n) {
  s.current = n;
  s.fewest = std::min(s.fewest, n);
  s.most = std::max(s.most, n);
  omp_set_num_threads(n);
}

}  // namespace

int usable_cpus() { return usable_of(affinity_cpus()); }

int threads_for_load(int cpus, double others) {
  if (!(others >= 0)) others = 0;
  const double free_cpus = static_cast<double>(cpus) - others;
  return std::clamp(static_cast<int>(std::lround(free_cpus)), 1, std::max(1, cpus));
}

void set_compute_threads(int n) {
  State& s = state();
  s = State{};
  s.cpu_list = affinity_cpus();
  s.cpus = usable_of(s.cpu_list);
  if (n > 0) {
    s.fixed_by = "--compute-threads";
    s.fewest = s.most = n;
    use(s, n);
    return;
  }
  if (const char* env = std::getenv("OMP_NUM_THREADS"); env && *env) {
    s.fixed_by = "OMP_NUM_THREADS";
    s.current = s.fewest = s.most = omp_get_max_threads();
    return;
  }
  s.adaptive = true;
  // The first guess, from what is running right now; the looks at the CPU time then correct it.
  const double now = others_running_now();
  const int first = now < 0 ? s.cpus : threads_for_load(s.cpus, now);
  s.fewest = s.most = first;
  use(s, first);
  s.last_look = Clock::now();
  s.last_busy = busy_seconds(s.cpu_list);
  s.last_own = own_cpu_seconds();
}

void adapt_compute_threads() {
  State& s = state();
  if (!s.adaptive || s.cpus <= 1 || s.last_busy < 0) return;
  const Clock::time_point now = Clock::now();
  const double wall = std::chrono::duration<double>(now - s.last_look).count();
  if (wall < kLookEvery) return;
  const double busy = busy_seconds(s.cpu_list), own = own_cpu_seconds();
  if (busy < 0) return;
  const double others = ((busy - s.last_busy) - (own - s.last_own)) / wall;
  s.last_look = now;
  s.last_busy = busy;
  s.last_own = own;
  const int want = threads_for_load(s.cpus, others);
  // Fewer threads at once (a busy machine costs the most), more only when two looks in a row agree
  // (so that one quiet moment does not bring back threads that will stall).
  if (want < s.current || (want > s.current && want == s.proposed)) {
    use(s, want);
    s.proposed = 0;
  } else {
    s.proposed = want > s.current ? want : 0;
  }
}

std::string compute_threads_description() {
  const State& s = state();
  if (!s.adaptive) {
    const std::string by = s.fixed_by.empty() ? "OpenMP's default" : s.fixed_by;
    return std::to_string(omp_get_max_threads()) + " (fixed: " + by + ")";
  }
  return std::to_string(s.current) + " (adaptive, 1-" + std::to_string(s.cpus) + " as the machine is busy)";
}

int fewest_compute_threads() { return state().fewest; }
int most_compute_threads() { return state().most; }

}  // namespace hotlap
