// A build without NCCL (no CUDA, or no NCCL in the CUDA toolkit): GPU tensors' collectives go
// through host memory and MPI (nn/runtime/collective.cpp).
#include "kernels/comm.h"
#include "kernels/error.h"

namespace hotlap::kernels::comm {

bool nccl_compiled() { return false; }
std::string nccl_version() { return "not compiled in"; }
void allreduce_mean_device(float*, int64_t, cuda::Stream, const char* what) {
  throw_error(what, ": this hotlap was built without NCCL");
}

}  // namespace hotlap::kernels::comm
