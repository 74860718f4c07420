// CUDA device detection and the versions of the CUDA libraries loaded at run time: it only asks
// the runtimes what is there (cudaGetDeviceCount, cudaDriverGetVersion, cudaRuntimeGetVersion, and
// the cuBLAS/cuDNN version calls in kernels/cudnn/library.cpp).
#include <cuda_runtime.h>

#include <sstream>

#include "kernels/device.h"
#include "kernels/error.h"

#ifdef HOTLAP_HAVE_CUDNN
#include "kernels/cudnn.h"
#endif

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

void cuda_select_device(int ordinal) {
  const cudaError_t status = cudaSetDevice(ordinal);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw Error(std::string("cudaSetDevice(") + std::to_string(ordinal) + "): " + cudaGetErrorString(status));
  }
}

namespace {

// "13.0" from the runtime's encoding (major * 1000 + minor * 10).
std::string cuda_version_string(int v) {
  std::ostringstream os;
  os << v / 1000 << "." << (v % 1000) / 10;
  return os.str();
}

}  // namespace

std::string cuda_device_summary() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  std::ostringstream os;
  if (status != cudaSuccess) {
    cudaGetLastError();
    // With no driver at all the runtime still says "driver version is insufficient" (error 35): name
    // the real cause. With an old driver, say which versions disagree.
    int driver = 0, runtime = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
    cudaGetLastError();
    cudaRuntimeGetVersion(&runtime);
    if (driver == 0)
      os << "no CUDA device (no NVIDIA driver is installed)";
    else if (status == cudaErrorInsufficientDriver)
      os << "no CUDA device (the NVIDIA driver supports CUDA " << cuda_version_string(driver)
         << ", older than this build's CUDA " << cuda_version_string(runtime) << ": update the driver)";
    else
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

std::string cuda_versions() {
  std::ostringstream os;
  int driver = 0, runtime = 0;
  // With no driver installed, cudaDriverGetVersion succeeds and reports 0.
  if (cudaDriverGetVersion(&driver) != cudaSuccess) {
    cudaGetLastError();
    driver = 0;
  }
  if (driver > 0)
    os << "CUDA driver " << cuda_version_string(driver) << "\n";
  else
    os << "CUDA driver: none (no NVIDIA driver on this machine, so no GPU)\n";
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess)
    os << "CUDA runtime " << cuda_version_string(runtime);
  else
    os << "CUDA runtime: version unknown";
  cudaGetLastError();
  os << " (built against " << cuda_version_string(CUDART_VERSION) << ")\n";
#ifdef HOTLAP_HAVE_CUDNN
  os << cudnn::library_versions();
#else
  os << "cuBLAS: not compiled in\ncuDNN: not compiled in (rebuild with cuDNN found and HOTLAP_CUDNN=ON)";
#endif
  return os.str();
}

}  // namespace hotlap::kernels
