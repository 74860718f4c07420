// CUDA device detection. The first CUDA code of hotlap: it only asks the runtime what is there.
#include <cuda_runtime.h>

#include <sstream>

#include "kernels/device.h"

namespace hotlap::kernels {

bool cuda_compiled() { return true; }

bool cudnn_compiled() {
#ifdef HOTLAP_HAVE_CUDNN
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return count;
}

std::string cuda_device_summary() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  std::ostringstream os;
  if (status != cudaSuccess) {
    cudaGetLastError();
    os << "no CUDA device (" << cudaGetErrorString(status) << ")";
    return os.str();
  }
  if (count == 0) return "no CUDA device";
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    os << "cuda:" << i << " " << prop.name << ", sm_" << prop.major << prop.minor << ", "
       << (prop.totalGlobalMem >> 20) << " MiB, runtime " << runtime << ", driver " << driver;
    if (i + 1 < count) os << "\n";
  }
  return os.str();
}

}  // namespace hotlap::kernels
