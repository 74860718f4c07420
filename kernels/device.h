// Which compute devices this build and this machine have.
//
// Design rule 7: with no GPU, cudaGetDeviceCount returns an error (35, insufficient driver, on a
// machine without the driver) rather than zero devices. Any error therefore means "no GPU".
#pragma once

#include <string>

namespace hotlap::kernels {

bool cuda_compiled();        // built with the CUDA backend
bool cudnn_compiled();       // built with the cuDNN/cuBLAS backend
int cuda_device_count();     // 0 on any CUDA error, or when not compiled
// Makes device `ordinal` this process's (cudaSetDevice): before any other CUDA work, as each rank of a
// data-parallel job takes the GPU its local rank names. Throws Error naming the ordinal on failure.
void cuda_select_device(int ordinal);
// One line per device (name, compute capability, memory), or the reason there is none.
std::string cuda_device_summary();
// The GPU software as loaded at run time, one line each: "CUDA driver 13.0", "CUDA runtime 13.0
// (built against 13.0)", "cuBLAS 13.1.0 (built against 13.1.0)", "cuDNN 9.19.0 (built against
// 9.19.0)". A line says so plainly when a part is not compiled in or there is no driver. Needs no GPU
// and never throws.
std::string cuda_versions();

}  // namespace hotlap::kernels
