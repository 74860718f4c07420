// The hand-written CUDA convolution's entry points (kernels/conv.h, namespace cuda): shape, pointer,
// variant and workspace checks, the choice of variant, and the hand-off to its kernels
// (conv_simple.cu: one thread per output, fp32 or bf16 tensors; conv_tiled.cu: shared-memory tiles
// through registers, fp32 or TF32; conv_tensor_core.cu: cp.async tiles on the tensor cores, TF32
// or bf16). The arithmetic, the tiling plans and the variant rule are in conv_math.h, where the
// CPU tests reach them.
//
// No kernel here: the FLOPs and bytes of each variant are in the opening comments of its file.
#include <cuda_runtime.h>

#include <cstdint>
#include <ostream>
#include <type_traits>

#include "kernels/conv.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"

namespace hotlap::kernels::cuda {

namespace {

struct ShapeText {
  const ConvShape& s;
};
std::ostream& operator<<(std::ostream& os, const ShapeText& t) {
  const ConvShape& s = t.s;
  return os << "x[" << s.n << "," << s.h << "," << s.w << "," << s.c << "] w[" << s.k << "," << s.r
            << "," << s.s << "," << s.c << "] stride " << s.stride_h << "x" << s.stride_w << " pad "
            << s.pad_h << "x" << s.pad_w;
}

void check_shape(const ConvShape& s, const char* op) {
  const bool positive = s.n > 0 && s.h > 0 && s.w > 0 && s.c > 0 && s.k > 0 && s.r > 0 && s.s > 0 &&
                        s.stride_h > 0 && s.stride_w > 0 && s.pad_h >= 0 && s.pad_w >= 0;
  const bool fits = s.h + 2 * s.pad_h >= s.r && s.w + 2 * s.pad_w >= s.s;
  HOTLAP_CHECK(positive && fits, op, ": bad shape ", ShapeText{s},
               " (every size positive, padding >= 0, the padded input at least the filter)");
  HOTLAP_CHECK(conv_fits_int32(s), op, ": shape too large ", ShapeText{s},
               " (every tensor must have fewer than 2^31 elements; split the batch)");
}

void check_workspace(const char* op, const ConvShape& s, size_t needed, const void* workspace,
                     size_t workspace_bytes) {
  if (needed == 0) return;
  HOTLAP_CHECK(workspace != nullptr && workspace_bytes >= needed, op, ": workspace for ",
               ShapeText{s}, ": needs ", needed, " bytes, given ", workspace_bytes,
               workspace == nullptr ? " (null)" : "", " (size it with cuda::conv2d_workspace_bytes)");
  HOTLAP_CHECK(reinterpret_cast<uintptr_t>(workspace) % kWorkspaceAlignment == 0, op,
               ": workspace at ", workspace, " for ", ShapeText{s}, " is not ",
               kWorkspaceAlignment, "-byte aligned");
}

// The variant takes tensors of type T (bf16 variants bf16 bits, the others fp32), and the shape
// when it is a plain-GEMM variant.
template <class T>
void check_variant(const char* op, const ConvShape& s, ConvVariant v) {
  constexpr bool bf16 = std::is_same_v<T, bfloat16>;
  HOTLAP_CHECK(conv_variant_is_bf16(v) == bf16, op, ": variant ", conv_variant_text(v), " takes ",
               bf16 ? "fp32" : "bf16", " tensors (call the ", bf16 ? "fp32" : "bf16",
               " entry point)");
  HOTLAP_CHECK(!conv_variant_is_1x1(v) || s.is_pointwise(), op, ": variant ", conv_variant_text(v),
               " runs 1x1 stride-1 unpadded convolutions only, not ", ShapeText{s});
}

template <class T>
void forward(const char* op, const ConvShape& s, const T* x, const T* w, const float* bias, T* y,
             void* workspace, size_t workspace_bytes, ConvVariant variant) {
  check_shape(s, op);
  HOTLAP_CHECK(x && w && y, op, ": null tensor pointer for ", ShapeText{s});
  check_variant<T>(op, s, variant);
  check_workspace(op, s, conv_variant_workspace_bytes(s, ConvPass::forward, variant), workspace,
                  workspace_bytes);
  if (conv_variant_is_simple(variant))
    detail::conv2d_forward_simple(s, x, w, bias, y);
  else if (conv_variant_is_async(variant))
    detail::conv2d_forward_async(s, x, w, bias, y, variant);
  else if constexpr (std::is_same_v<T, float>)
    detail::conv2d_forward_tiled(s, x, w, bias, y, variant);
}

template <class T>
void backward_data(const char* op, const ConvShape& s, const T* dy, const T* w, T* dx,
                   void* workspace, size_t workspace_bytes, ConvVariant variant) {
  check_shape(s, op);
  HOTLAP_CHECK(dy && w && dx, op, ": null tensor pointer for ", ShapeText{s});
  check_variant<T>(op, s, variant);
  check_workspace(op, s, conv_variant_workspace_bytes(s, ConvPass::backward_data, variant),
                  workspace, workspace_bytes);
  if (conv_variant_is_simple(variant))
    detail::conv2d_backward_data_simple(s, dy, w, dx);
  else if (conv_variant_is_async(variant))
    detail::conv2d_backward_data_async(s, dy, w, dx, variant);
  else if constexpr (std::is_same_v<T, float>)
    detail::conv2d_backward_data_tiled(s, dy, w, dx, variant);
}

template <class T>
void backward_filter(const char* op, const ConvShape& s, const T* x, const T* dy, float* dw,
                     float* dbias, void* workspace, size_t workspace_bytes, ConvVariant variant) {
  check_shape(s, op);
  HOTLAP_CHECK(x && dy && dw, op, ": null tensor pointer for ", ShapeText{s});
  check_variant<T>(op, s, variant);
  check_workspace(op, s, conv_variant_workspace_bytes(s, ConvPass::backward_filter, variant),
                  workspace, workspace_bytes);
  float* ws = static_cast<float*>(workspace);
  if (conv_variant_is_simple(variant))
    detail::conv2d_backward_filter_simple(s, x, dy, dw, dbias);
  else if (conv_variant_is_async(variant))
    detail::conv2d_backward_filter_async(s, x, dy, dw, dbias, ws, variant);
  else if constexpr (std::is_same_v<T, float>)
    detail::conv2d_backward_filter_tiled(s, x, dy, dw, dbias, ws, variant);
}

}  // namespace

void conv2d_forward_variant(const ConvShape& s, const float* x, const float* w, const float* bias,
                            float* y, void* workspace, size_t workspace_bytes, ConvVariant variant) {
  forward("cuda::conv2d_forward", s, x, w, bias, y, workspace, workspace_bytes, variant);
}

void conv2d_backward_data_variant(const ConvShape& s, const float* dy, const float* w, float* dx,
                                  void* workspace, size_t workspace_bytes, ConvVariant variant) {
  backward_data("cuda::conv2d_backward_data", s, dy, w, dx, workspace, workspace_bytes, variant);
}

void conv2d_backward_filter_variant(const ConvShape& s, const float* x, const float* dy, float* dw,
                                    float* dbias, void* workspace, size_t workspace_bytes,
                                    ConvVariant variant) {
  backward_filter("cuda::conv2d_backward_filter", s, x, dy, dw, dbias, workspace, workspace_bytes,
                  variant);
}

void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                    void* workspace, size_t workspace_bytes) {
  conv2d_forward_variant(s, x, w, bias, y, workspace, workspace_bytes,
                         conv2d_variant(s, ConvPass::forward));
}

void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx,
                          void* workspace, size_t workspace_bytes) {
  conv2d_backward_data_variant(s, dy, w, dx, workspace, workspace_bytes,
                               conv2d_variant(s, ConvPass::backward_data));
}

void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw,
                            float* dbias, void* workspace, size_t workspace_bytes) {
  conv2d_backward_filter_variant(s, x, dy, dw, dbias, workspace, workspace_bytes,
                                 conv2d_variant(s, ConvPass::backward_filter));
}

void conv2d_forward_variant(const ConvShape& s, const bfloat16* x, const bfloat16* w,
                                 const float* bias, bfloat16* y, void* workspace,
                                 size_t workspace_bytes, ConvVariant variant) {
  forward("cuda::conv2d_forward", s, x, w, bias, y, workspace, workspace_bytes, variant);
}

void conv2d_backward_data_variant(const ConvShape& s, const bfloat16* dy, const bfloat16* w,
                                       bfloat16* dx, void* workspace, size_t workspace_bytes,
                                       ConvVariant variant) {
  backward_data("cuda::conv2d_backward_data", s, dy, w, dx, workspace, workspace_bytes,
                variant);
}

void conv2d_backward_filter_variant(const ConvShape& s, const bfloat16* x, const bfloat16* dy,
                                         float* dw, float* dbias, void* workspace,
                                         size_t workspace_bytes, ConvVariant variant) {
  backward_filter("cuda::conv2d_backward_filter", s, x, dy, dw, dbias, workspace,
                  workspace_bytes, variant);
}

void conv2d_forward(const ConvShape& s, const bfloat16* x, const bfloat16* w, const float* bias,
                         bfloat16* y, void* workspace, size_t workspace_bytes) {
  conv2d_forward_variant(s, x, w, bias, y, workspace, workspace_bytes,
                              conv2d_bf16_variant(s, ConvPass::forward));
}

void conv2d_backward_data(const ConvShape& s, const bfloat16* dy, const bfloat16* w,
                               bfloat16* dx, void* workspace, size_t workspace_bytes) {
  conv2d_backward_data_variant(s, dy, w, dx, workspace, workspace_bytes,
                                    conv2d_bf16_variant(s, ConvPass::backward_data));
}

void conv2d_backward_filter(const ConvShape& s, const bfloat16* x, const bfloat16* dy,
                                 float* dw, float* dbias, void* workspace, size_t workspace_bytes) {
  conv2d_backward_filter_variant(s, x, dy, dw, dbias, workspace, workspace_bytes,
                                      conv2d_bf16_variant(s, ConvPass::backward_filter));
}

}  // namespace hotlap::kernels::cuda
