// HOTLAP_HOST_DEVICE marks a function that both the host compiler and nvcc compile, for the host and
// (under nvcc) for the device: arithmetic that the CPU and the CUDA kernels must share exactly.
#pragma once

#ifdef __CUDACC__
#define HOTLAP_HOST_DEVICE __host__ __device__
#else
#define HOTLAP_HOST_DEVICE
#endif
