// Device detection for builds without CUDA (HOTLAP_CUDA=OFF or no nvcc).
#include "kernels/device.h"

namespace hotlap::kernels {

bool cuda_compiled() { return false; }
bool cudnn_compiled() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_device_summary() { return "no CUDA device (built without CUDA)"; }

}  // namespace hotlap::kernels
