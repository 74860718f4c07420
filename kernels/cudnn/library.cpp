// The cuDNN and cuBLAS libraries as the backend uses them: the error messages of
// HOTLAP_CUDNN_CHECK / HOTLAP_CUBLAS_CHECK (cudnnGetErrorString, cudnnGetLastErrorString,
// cublasGetStatusName, cublasGetStatusString), the two process-wide handles (cudnnCreate +
// cudnnSetStream, cublasCreate + cublasSetStream on the compute stream), and the versions loaded at
// run time (cudnnGetVersion, cublasGetProperty), which need no GPU.
#include <cuda_runtime.h>

#include <sstream>

#include "kernels/cuda_memory.h"
#include "kernels/cudnn.h"
#include "kernels/cudnn/check.h"
#include "kernels/error.h"

namespace hotlap::kernels::cudnn {

namespace {

const char* cudnn_hint(cudnnStatus_t status) {
  switch (CUDNN_STATUS_CATEGORY(static_cast<int>(status))) {
    case CUDNN_STATUS_NOT_INITIALIZED:  // 1000s: the library or the GPU could not be used at all
      return "cuDNN could not start: no usable GPU, or its sub-libraries (libcudnn_*.so.9) are "
             "missing or of another version (`hotlap info` lists what was loaded)";
    case CUDNN_STATUS_BAD_PARAM:
      return "cuDNN rejected the arguments: a shape, stride or pointer it does not accept";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "cuDNN has no kernel for this shape, layout or GPU; the hand-written backend "
             "(--conv native, --batchnorm native) may still run it";
    case CUDNN_STATUS_INTERNAL_ERROR:
      return status == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED
                 ? "cuDNN ran out of GPU memory: use a smaller batch or image size"
                 : "an error inside cuDNN";
    case CUDNN_STATUS_EXECUTION_FAILED:
      return "a cuDNN kernel failed on the GPU (a bad pointer, or an earlier kernel's fault)";
    default:
      return nullptr;
  }
}

const char* cublas_hint(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "cuBLAS could not start: no usable GPU or driver";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "cuBLAS ran out of memory: use a smaller batch or image size";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "cuBLAS rejected a size or leading dimension";
    case CUBLAS_STATUS_ARCH_MISMATCH:
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "cuBLAS does not support this on this GPU";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "a cuBLAS kernel failed on the GPU (a bad pointer, or an earlier kernel's fault)";
    default:
      return nullptr;
  }
}

// "9.19.0" from cuDNN 9's encoding (major * 10000 + minor * 100 + patch).
std::string cudnn_version_string(size_t v) {
  std::ostringstream os;
  os << v / 10000 << "." << (v % 10000) / 100 << "." << v % 100;
  return os.str();
}

}  // namespace

std::string cudnn_error_message(cudnnStatus_t status, const char* call, const std::string& what) {
  std::ostringstream os;
  os << what << ": cuDNN error " << static_cast<int>(status) << " (" << cudnnGetErrorString(status)
     << ") in " << call;
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));  // also clears it
  if (detail[0] != '\0') os << "; cuDNN says: " << detail;
  if (const char* hint = cudnn_hint(status)) os << "; hint: " << hint;
  return os.str();
}

std::string cublas_error_message(cublasStatus_t status, const char* call, const std::string& what) {
  std::ostringstream os;
  os << what << ": cuBLAS error " << static_cast<int>(status) << " (" << cublasGetStatusName(status)
     << ": " << cublasGetStatusString(status) << ") in " << call;
  if (const char* hint = cublas_hint(status)) os << "; hint: " << hint;
  return os.str();
}

void throw_cudnn_error(cudnnStatus_t status, const char* call, const std::string& what) {
  throw Error(cudnn_error_message(status, call, what));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const std::string& what) {
  throw Error(cublas_error_message(status, call, what));
}

std::string describe_shape(const ConvShape& s) {
  return describe("x[N=", s.n, ",H=", s.h, ",W=", s.w, ",C=", s.c, "] w[K=", s.k, ",R=", s.r,
                  ",S=", s.s, "] stride ", s.stride_h, "x", s.stride_w, " pad ", s.pad_h, "x",
                  s.pad_w);
}

// A function-local static whose initialiser throws stays uninitialised: with no GPU every call
// throws the same Error again, and none leaves a half-made handle behind.
cudnnHandle_t cudnn_handle() {
  static const cudnnHandle_t handle = [] {
    cuda::Stream stream = cuda::compute_stream();  // throws first, and clearly, without a GPU
    cudnnHandle_t h = nullptr;
    HOTLAP_CUDNN_CHECK(cudnnCreate(&h), "creating the cuDNN handle");
    const cudnnStatus_t bound = cudnnSetStream(h, stream);
    if (bound != CUDNN_STATUS_SUCCESS) {
      cudnnDestroy(h);
      throw_cudnn_error(bound, "cudnnSetStream", "binding the cuDNN handle to the compute stream");
    }
    return h;
  }();
  return handle;
}

cublasHandle_t cublas_handle() {
  static const cublasHandle_t handle = [] {
    cuda::Stream stream = cuda::compute_stream();
    cublasHandle_t h = nullptr;
    HOTLAP_CUBLAS_CHECK(cublasCreate(&h), "creating the cuBLAS handle");
    const cublasStatus_t bound = cublasSetStream(h, stream);
    if (bound != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(h);
      throw_cublas_error(bound, "cublasSetStream", "binding the cuBLAS handle to the compute stream");
    }
    return h;
  }();
  return handle;
}

std::string library_versions() {
  std::ostringstream os;
  int major = 0, minor = 0, patch = 0;
  if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
    os << "cuBLAS " << major << "." << minor << "." << patch;
  else
    os << "cuBLAS: version unknown (cublasGetProperty failed)";
  os << " (built against " << CUBLAS_VER_MAJOR << "." << CUBLAS_VER_MINOR << "."
     << CUBLAS_VER_PATCH << ")\n";
  os << "cuDNN " << cudnn_version_string(cudnnGetVersion()) << " (built against "
     << cudnn_version_string(CUDNN_VERSION) << ")";
  return os.str();
}

}  // namespace hotlap::kernels::cudnn
