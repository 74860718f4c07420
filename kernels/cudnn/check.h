// Checking every cuDNN and cuBLAS status (design rule 5), and the backend's two library handles.
//
//   HOTLAP_CUDNN_CHECK(cudnnConvolutionForward(...), "conv2d_forward ", describe_shape(s));
//   HOTLAP_CUBLAS_CHECK(cublasSgemm(...), "gemm m=", m, " n=", n, " k=", k);
//
// A failed call becomes a hotlap::Error naming the op and its shape (the `what...` pieces, only
// formatted on failure), the library call, and the status by name and in the library's words
// (cudnnGetErrorString; cublasGetStatusName and cublasGetStatusString), with a hint for the
// statuses a user can do something about.
//
// The handles: one cudnnHandle_t and one cublasHandle_t for the process, created on first use
// (cudnnCreate, cublasCreate) and bound to the compute stream (cudnnSetStream, cublasSetStream), so
// the libraries' kernels are ordered with every other kernel of hotlap. They are never destroyed:
// tearing them down in a static destructor, after the CUDA runtime may have gone, can crash at exit.
//
// Internal to kernels/cudnn (it includes the libraries' headers); everything else sees Errors.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <sstream>
#include <string>

#include "kernels/conv.h"

namespace hotlap::kernels::cudnn {

// The message a failed call's Error carries; exposed so it can be tested without a GPU.
std::string cudnn_error_message(cudnnStatus_t status, const char* call, const std::string& what);
std::string cublas_error_message(cublasStatus_t status, const char* call, const std::string& what);

[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call, const std::string& what);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call,
                                     const std::string& what);

// Whether a failed status says that cuDNN does not take the call's configuration (its data type,
// say) rather than that something went wrong: every CUDNN_STATUS_NOT_SUPPORTED* code, and the plain
// CUDNN_STATUS_BAD_PARAM, which some cuDNN versions give for a data type an API lacks (hotlap checks
// its pointers, shapes and eps before calling; BAD_PARAM's own sub-codes, a null or misaligned
// pointer and the like, are errors).
inline bool cudnn_refuses_configuration(cudnnStatus_t status) {
  return CUDNN_STATUS_CATEGORY(static_cast<int>(status)) == CUDNN_STATUS_NOT_SUPPORTED ||
         status == CUDNN_STATUS_BAD_PARAM;
}

template <typename... Parts>
std::string describe(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

// "x[N=2,H=56,W=56,C=64] w[K=64,R=3,S=3] stride 1x1 pad 1x1", as the CPU convolution's errors say.
std::string describe_shape(const ConvShape& s);

// The process's handles, created and bound to the compute stream on first use. Throw an Error when
// there is no usable GPU.
cudnnHandle_t cudnn_handle();
cublasHandle_t cublas_handle();

}  // namespace hotlap::kernels::cudnn

#define HOTLAP_CUDNN_CHECK(call, ...)                                                             \
  do {                                                                                            \
    const cudnnStatus_t hotlap_cudnn_status_ = (call);                                            \
    if (hotlap_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                             \
      ::hotlap::kernels::cudnn::throw_cudnn_error(hotlap_cudnn_status_, #call,                    \
                                                  ::hotlap::kernels::cudnn::describe(__VA_ARGS__)); \
  } while (0)

#define HOTLAP_CUBLAS_CHECK(call, ...)                                                             \
  do {                                                                                             \
    const cublasStatus_t hotlap_cublas_status_ = (call);                                           \
    if (hotlap_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::hotlap::kernels::cudnn::throw_cublas_error(hotlap_cublas_status_, #call,                   \
                                                   ::hotlap::kernels::cudnn::describe(__VA_ARGS__)); \
  } while (0)
