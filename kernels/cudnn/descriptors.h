// Owning wrappers for cuDNN's legacy descriptors (cudnnCreate*Descriptor / cudnnDestroy*Descriptor)
// and the NHWC set-ups the backend uses (fp32, or bf16 for the *_bf16 entry points) (cudnnSetTensor4dDescriptor with CUDNN_TENSOR_NHWC;
// cudnnSetFilter4dDescriptor with CUDNN_TENSOR_NHWC, which is OHWI: K x R x S x C). Descriptors are
// host objects: creating one costs microseconds and needs no GPU.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <limits>

#include "kernels/cudnn/check.h"
#include "kernels/error.h"

namespace hotlap::kernels::cudnn {

// cuDNN's legacy API takes dimensions as int.
inline int to_int(int64_t v, const char* op, const char* what) {
  HOTLAP_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), op, ": ", what, " = ", v,
               " does not fit cuDNN's int dimensions");
  return static_cast<int>(v);
}

class TensorDesc {
 public:
  TensorDesc() { HOTLAP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_), "creating a tensor descriptor"); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d_); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  // An NHWC tensor with logical dims n x c x h x w (cuDNN's argument order); fp32 unless told.
  void set_nhwc(int64_t n, int64_t c, int64_t h, int64_t w, const char* op,
                cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    HOTLAP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d_, CUDNN_TENSOR_NHWC, type,
                                                  to_int(n, op, "N"), to_int(c, op, "C"),
                                                  to_int(h, op, "H"), to_int(w, op, "W")),
                       op, ": NHWC tensor descriptor N=", n, " C=", c, " H=", h, " W=", w);
  }
  cudnnTensorDescriptor_t get() const { return d_; }

 private:
  cudnnTensorDescriptor_t d_ = nullptr;
};

class FilterDesc {
 public:
  FilterDesc() { HOTLAP_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d_), "creating a filter descriptor"); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d_); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  // OHWI weights: K x R x S x C in memory, CUDNN_TENSOR_NHWC in cuDNN's terms.
  void set_ohwi(int64_t k, int64_t c, int64_t r, int64_t s, const char* op,
                cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    HOTLAP_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d_, type, CUDNN_TENSOR_NHWC,
                                                  to_int(k, op, "K"), to_int(c, op, "C"),
                                                  to_int(r, op, "R"), to_int(s, op, "S")),
                       op, ": OHWI filter descriptor K=", k, " C=", c, " R=", r, " S=", s);
  }
  cudnnFilterDescriptor_t get() const { return d_; }

 private:
  cudnnFilterDescriptor_t d_ = nullptr;
};

class ConvDesc {
 public:
  ConvDesc() {
    HOTLAP_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d_), "creating a convolution descriptor");
  }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d_); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  cudnnConvolutionDescriptor_t get() const { return d_; }

 private:
  cudnnConvolutionDescriptor_t d_ = nullptr;
};

}  // namespace hotlap::kernels::cudnn
