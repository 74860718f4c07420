// Checking every CUDA runtime status (design rule 5): HOTLAP_CUDA_CHECK(call, what...) turns a
// failed call into a hotlap::Error that names the op and its shapes (the `what...` pieces, only
// formatted on failure), the call and the CUDA error, with a hint for the common causes.
//
//   HOTLAP_CUDA_CHECK(cudaMalloc(&p, bytes), "device_allocate of ", bytes, " bytes");
//   kernel<<<grid, block, 0, stream>>>(...);
//   HOTLAP_CUDA_CHECK_LAUNCH("batch_norm_forward_train rows=", s.rows, " c=", s.c);
//
// Internal to the CUDA code of kernels/ (it includes cuda_runtime.h); everything else sees Errors.
#pragma once

#include <cuda_runtime.h>

#include <sstream>
#include <string>

namespace hotlap::kernels::cuda {

// Throws the Error; also clears the runtime's last-error state where the error is not sticky.
[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const std::string& what);

template <typename... Parts>
std::string describe(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

}  // namespace hotlap::kernels::cuda

#define HOTLAP_CUDA_CHECK(call, ...)                                                            \
  do {                                                                                          \
    const cudaError_t hotlap_cuda_status_ = (call);                                             \
    if (hotlap_cuda_status_ != cudaSuccess)                                                     \
      ::hotlap::kernels::cuda::throw_cuda_error(hotlap_cuda_status_, #call,                     \
                                                ::hotlap::kernels::cuda::describe(__VA_ARGS__)); \
  } while (0)

// After a launch: catches a bad configuration at once. Faults inside the kernel surface later, at
// the next synchronising call (synchronize(), a blocking copy).
#define HOTLAP_CUDA_CHECK_LAUNCH(...) HOTLAP_CUDA_CHECK(cudaGetLastError(), __VA_ARGS__)
