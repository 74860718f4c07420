// The two storage types of the CUDA kernels' activations, one arithmetic: float, and bf16
// (`__nv_bfloat16` in device code; `bfloat16` at the interfaces of kernels/*.h, the same bits).
// A kernel templated on its storage type T loads with load_as_float (bf16 widens exactly: it is
// the top half of an fp32), computes in fp32, and stores with store_rounded (bf16: round to
// nearest even, __float2bfloat16_rn, which agrees with the CPU's float_to_bf16 on every finite
// value and infinity; a NaN stays a NaN, its payload may differ). So a bf16 kernel moves half the
// bytes of its fp32 twin and rounds once per stored value, never in between.
//
// The float overloads are plain host/device functions, so the *_math.h headers stay readable by
// the host compiler (the CPU tests run them with float); the bf16 ones exist under nvcc only.
#pragma once

#include <cstdint>

#include "kernels/cast.h"
#include "kernels/host_device.h"

#ifdef __CUDACC__
#include <cuda_bf16.h>
#endif

namespace hotlap::kernels::cuda {

HOTLAP_HOST_DEVICE inline float load_as_float(float v) { return v; }
HOTLAP_HOST_DEVICE inline void store_rounded(float* p, float v) { *p = v; }

#ifdef __CUDACC__
HOTLAP_HOST_DEVICE inline float load_as_float(__nv_bfloat16 v) { return __bfloat162float(v); }
HOTLAP_HOST_DEVICE inline void store_rounded(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// The interfaces' bfloat16 pointers as the device type, the same bits (null stays null).
inline const __nv_bfloat16* device_bf16(const bfloat16* p) {
  return reinterpret_cast<const __nv_bfloat16*>(p);
}
inline __nv_bfloat16* device_bf16(bfloat16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
#endif

}  // namespace hotlap::kernels::cuda
