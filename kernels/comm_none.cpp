// A build without MPI: every process is a world of one. Started by mpirun as a rank of a larger job,
// it refuses, rather than training N unconnected copies that each believe they are the only one.
#include <cstdio>
#include <cstdlib>

#include "kernels/comm.h"
#include "kernels/comm_environment.h"
#include "kernels/error.h"

namespace hotlap::kernels::comm {

bool mpi_compiled() { return false; }
std::string mpi_version() { return "not compiled in"; }

const World& init() {
  static const World w = [] {
    const int size = launcher_world_size();
    HOTLAP_CHECK(size <= 1, "this process is one of ", size,
                 " started by mpirun (or srun), but this hotlap was built without MPI: install "
                 "libopenmpi-dev (scripts/install-deps.sh) and build again");
    return World{};
  }();
  return w;
}

const World& world() { return init(); }
bool in_job() { return false; }
bool concurrent_channels() { return false; }
void allreduce_sum(float*, int64_t, const char*, Channel) {}
void allreduce_sum(double*, int64_t, const char*, Channel) {}
void broadcast(void*, int64_t, int, const char*) {}
std::vector<float> allgather(const std::vector<float>& mine, const char*) { return mine; }
void barrier(const char*) {}

[[noreturn]] void abort_job(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::exit(code);
}

void finalize() {}

}  // namespace hotlap::kernels::comm
