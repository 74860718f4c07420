// How many CPU threads hotlap computes with (OpenMP's, which OpenBLAS's OpenMP build follows), and
// how that number follows a busy machine.
//
// The problem. Every CPU kernel ends its parallel loop at a barrier, and a ResNet step has thousands
// of them. A barrier is passed only when the last thread arrives. With more runnable threads on the
// machine than CPUs (a laptop with a browser, a shared server, a CI runner running two jobs), the
// scheduler shares each CPU between hotlap's threads and the other programs in slices of several
// milliseconds, so at almost every barrier some hotlap thread is waiting for its next slice. On a
// 2-core machine with two CPU-bound programs beside it, the demo's training ran at 23 images/s with
// two threads against 570 with one (979 idle): waiting costs a scheduling slice per barrier, where
// one thread never waits for another. (Spinning while waiting makes it worse: apps/common/omp_wait_policy.h.)
//
// The policy. Unless the count is fixed, hotlap computes with as many threads as there are CPUs that
// nothing else is using:
//   fixed     --compute-threads N, or OMP_NUM_THREADS in the environment
//   adaptive  the default: between 1 and the CPUs this process may use (its affinity mask, capped by a
//             cgroup CPU quota: a container limited to 2 CPUs on a 64-core host computes with 2).
//             It starts from the programs running at that instant (/proc/loadavg). Between units of
//             work (a training step, a photo, a benchmark iteration) it looks, at most every quarter
//             second, at how busy those CPUs were since its last look, leaving out its own CPU time:
//             others = (busy time of the CPUs - hotlap's CPU time) / wall time, in CPUs. It computes
//             with round(CPUs - others) threads, at least 1: fewer at once, more only when two looks
//             in a row agree, so one quiet moment does not bring back threads that would stall.
// An idle machine keeps every CPU. Results are the same at any thread count, training included: the
// kernels split their sums by the shapes alone (kernels/cpu/conv.cpp: backward filter's shares).
#pragma once

#include <string>

namespace hotlap {

// Fixes the thread count (n >= 1), or with n = 0 leaves it to the policy above: adaptive unless
// OMP_NUM_THREADS is set. Call once, before the work; applies omp_set_num_threads at once.
void set_compute_threads(int n);

// Between units of work: in adaptive mode, and at most every quarter second, measures the machine and
// changes the thread count if it should. Cheap otherwise (one clock read).
void adapt_compute_threads();

// The CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota ("cpu.max").
int usable_cpus();

// "2 (adaptive, 1-2 as the machine is busy)" or "2 (fixed: --compute-threads)": for logs and reports.
std::string compute_threads_description();

// The fewest and most threads used since set_compute_threads (both the current count until then).
int fewest_compute_threads();
int most_compute_threads();

// The thread count for a measured machine: `cpus` usable CPUs of which `others` (in CPUs, measured)
// were busy with other programs. Exposed for tests.
int threads_for_load(int cpus, double others);

}  // namespace hotlap
