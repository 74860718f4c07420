// The compute-thread policy (apps/common/compute_threads.h): the count for a measured load, fixed counts,
// and, with real competing processes, the drop to one thread on a machine whose CPUs are all busy.
#include <doctest/doctest.h>
#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "apps/common/compute_threads.h"

namespace hotlap {

namespace {

// Restores what a test changed: the OpenMP thread count and OMP_NUM_THREADS.
struct RestoreThreads {
  int threads = omp_get_max_threads();
  const char* env = std::getenv("OMP_NUM_THREADS");
  std::string saved_env = env ? env : "";
  ~RestoreThreads() {
    if (env) setenv("OMP_NUM_THREADS", saved_env.c_str(), 1);
    else unsetenv("OMP_NUM_THREADS");
    set_compute_threads(threads);
  }
};

}  // namespace

TEST_CASE("compute threads: the count for a measured load") {
  CHECK(threads_for_load(8, 0.0) == 8);
  CHECK(threads_for_load(8, 0.3) == 8);  // a little background work keeps every CPU
  CHECK(threads_for_load(8, 2.0) == 6);
  CHECK(threads_for_load(8, 2.6) == 5);
  CHECK(threads_for_load(2, 2.0) == 1);  // two busy programs on two CPUs: one thread
  CHECK(threads_for_load(2, 7.0) == 1);  // never fewer than one
  CHECK(threads_for_load(4, -0.5) == 4);  // measurement noise below zero
  CHECK(threads_for_load(1, 0.0) == 1);
  CHECK(usable_cpus() >= 1);
}

TEST_CASE("compute threads: --compute-threads and OMP_NUM_THREADS fix the count") {
  RestoreThreads restore;
  set_compute_threads(3);
  CHECK(omp_get_max_threads() == 3);
  CHECK(compute_threads_description() == "3 (fixed: --compute-threads)");
  adapt_compute_threads();
  CHECK(omp_get_max_threads() == 3);

  setenv("OMP_NUM_THREADS", "2", 1);
  omp_set_num_threads(2);
  set_compute_threads(0);
  CHECK(compute_threads_description() == "2 (fixed: OMP_NUM_THREADS)");

  unsetenv("OMP_NUM_THREADS");
  set_compute_threads(0);  // starts from what is running at this instant: anything from 1 to all CPUs
  CHECK(omp_get_max_threads() >= 1);
  CHECK(omp_get_max_threads() <= usable_cpus());
  CHECK(compute_threads_description().find("adaptive") != std::string::npos);
}

TEST_CASE("compute threads: with every CPU kept busy by other programs, hotlap computes with one thread") {
  const int cpus = usable_cpus();
  if (cpus < 2) {
    MESSAGE("one usable CPU: nothing to adapt");
    return;
  }
  RestoreThreads restore;
  unsetenv("OMP_NUM_THREADS");
  set_compute_threads(0);  // before the load: on a quiet machine this starts at every CPU
  // As many busy processes as CPUs (processes, not threads: hotlap's own threads are not "others").
  std::vector<pid_t> busy;
  for (int i = 0; i < cpus; ++i) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      volatile unsigned long spin = 0;
      for (;;) spin = spin + 1;
    }
    busy.push_back(pid);
  }
  // Within a few looks a quarter second apart the count must be one. Give it up to 3 seconds.
  const auto start = std::chrono::steady_clock::now();
  while (omp_get_max_threads() > 1 && std::chrono::steady_clock::now() - start < std::chrono::seconds(3)) {
    adapt_compute_threads();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const int threads = omp_get_max_threads();
  for (pid_t pid : busy) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  CHECK(threads == 1);
  CHECK(fewest_compute_threads() == 1);
  CHECK(most_compute_threads() <= cpus);
}

}  // namespace hotlap
