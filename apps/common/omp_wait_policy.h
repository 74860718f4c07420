// hotlap's threading default for OpenMP: threads that wait at the end of a parallel region sleep
// instead of spinning, unless the user chose otherwise (OMP_WAIT_POLICY or GOMP_SPINCOUNT set).
//
// Why. Every kernel ends its parallel loop at a barrier. With GCC's OpenMP (libgomp) left at its
// default, a thread that reaches the barrier first spins on the CPU for up to 300,000 iterations
// (a fraction of a millisecond) before it sleeps. On an idle machine that saves a wake-up. On a busy
// one (a laptop with a browser, a shared server, a CI runner) the spinning threads take the very
// time slices the thread everyone waits for needs, and a ResNet-50 step, thousands of barriers,
// collapses (on 2 cores with two CPU-bound programs beside it, an epoch of the demo's training ran
// at 2% of its idle speed). Sleeping threads cost one futex wake per region instead. Sleeping alone
// does not save a busy machine (the same epoch: 2% too); fewer threads do (apps/common/compute_threads.h,
// docs/threads.md), and with them the threads should not spin away the CPU they share. OpenBLAS (its OpenMP build) follows the same policy.
//
// How. libgomp reads OMP_WAIT_POLICY once, in its own initialiser, before main() runs, so setting it
// in main() would be too late. A function in the executable's .preinit_array runs before the
// initialiser of any shared library (the ELF rule that sanitizers rely on for the same reason), so
// it sets the variable in time, and only for this process and the programs it starts.
//
// Include this header in exactly one source file of each executable (its main), nowhere else: the
// entry is the translation unit's own.
#pragma once

#include <cstdlib>

namespace hotlap::omp_wait_policy_detail {

inline void default_to_passive(int, char**, char**) {
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("GOMP_SPINCOUNT") == nullptr)
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
}

// The entry itself: a pointer in .preinit_array (an array of void (*)(int, char**, char**)).
[[gnu::section(".preinit_array"), gnu::used]] static void (*const preinit_entry)(int, char**, char**) =
    &default_to_passive;

}  // namespace hotlap::omp_wait_policy_detail
