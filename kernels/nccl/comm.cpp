// The GPUs' all-reduce on NCCL (kernels/comm.h). Run at one rank on an H200; not yet across GPUs.
//
// One NCCL communicator for the job, made on the first call: rank 0 draws NCCL's unique id, MPI
// broadcasts it (kernels/mpi/comm.cpp), and every rank joins with ncclCommInitRank on the device it
// has selected (cuda_select_device, by local rank). The mean runs on the stream the caller names:
// training's gradient buckets on the comm stream, each after an event that says backward has
// written it (nn/runtime/collective.cpp), with no host wait.
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "kernels/comm.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"

namespace hotlap::kernels::comm {

namespace {

void check(ncclResult_t status, const char* call, const char* what) {
  if (status == ncclSuccess) return;
  throw_error(call, " failed in ", what, ": ", ncclGetErrorString(status));
}

ncclComm_t communicator(const char* what) {
  static ncclComm_t comm = [what] {
    const World& w = world();
    ncclUniqueId id{};
    if (w.rank == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId", what);
    broadcast(&id, static_cast<int64_t>(sizeof id), 0, "NCCL's unique id");
    ncclComm_t c = nullptr;
    check(ncclCommInitRank(&c, w.size, id, w.rank), "ncclCommInitRank", what);
    return c;
  }();
  return comm;
}

}  // namespace

bool nccl_compiled() { return true; }

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL (version unknown)";
  // NCCL 2.9+ encodes major * 10000 + minor * 100 + patch.
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + "." + std::to_string(v % 100);
}

void allreduce_mean_device(float* data, int64_t n, cuda::Stream stream, const char* what) {
  // A world of one goes through NCCL too (a communicator of one rank): the GPU check runs this code on
  // a single GPU. Training never asks at one rank (nn/runtime/collective.cpp returns first).
  if (n == 0) return;
  check(ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat, ncclAvg, communicator(what), stream),
        "ncclAllReduce", what);
}

}  // namespace hotlap::kernels::comm
