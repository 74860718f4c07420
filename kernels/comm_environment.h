// What the job launcher and the user say about a job through the environment (kernels/comm.h):
// read by the MPI build and by the stand-in alike.
#pragma once

#include <cstdlib>
#include <string>

#include "kernels/error.h"

namespace hotlap::kernels::comm {

// The number of processes the launcher started, as it tells each of them: Open MPI's mpirun
// (OMPI_COMM_WORLD_SIZE), MPICH, Intel MPI and Slurm's srun (PMI_SIZE); 1 when none says.
inline int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return std::atoi(v);
  return 1;
}

// HOTLAP_COMM_TIMEOUT, seconds (default 300): how long a collective may wait for the other ranks
// before the job ends (abort_job). Read once.
inline double collective_timeout_seconds() {
  static const double seconds = [] {
    const char* v = std::getenv("HOTLAP_COMM_TIMEOUT");
    if (v == nullptr || *v == '\0') return 300.0;
    char* end = nullptr;
    const double s = std::strtod(v, &end);
    HOTLAP_CHECK(end != v && *end == '\0' && s > 0 && s < 1e7, "HOTLAP_COMM_TIMEOUT='", v,
                 "': give the seconds a collective may wait, a number above 0");
    return s;
  }();
  return seconds;
}

}  // namespace hotlap::kernels::comm
