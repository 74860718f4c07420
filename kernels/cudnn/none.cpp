// The cuDNN/cuBLAS backend's entry points for builds without it (no CUDA, or cuDNN not found, or
// HOTLAP_CUDNN=OFF): every op throws "built without cuDNN", so callers (nn's dispatch) compile and
// link either way; the workspace queries that are host arithmetic give the same numbers as in a
// cuDNN build. No cuDNN or cuBLAS call, no CUDA header. Compiled instead of the rest of this folder.
#include "kernels/cudnn.h"
#include "kernels/error.h"

namespace hotlap::kernels::cudnn {

namespace {
[[noreturn]] void no_cudnn(const char* op) {
  throw_error("cudnn::", op, ": hotlap was built without the cuDNN/cuBLAS backend (it needs CUDA "
                             "and cuDNN at build time; `hotlap info` says what this build has)");
}
}  // namespace

size_t conv2d_workspace_bytes(const ConvShape&, ConvPass) { no_cudnn("conv2d_workspace_bytes"); }
void conv2d_forward(const ConvShape&, const float*, const float*, const float*, float*, void*, size_t) {
  no_cudnn("conv2d_forward");
}
void conv2d_backward_data(const ConvShape&, const float*, const float*, float*, void*, size_t) {
  no_cudnn("conv2d_backward_data");
}
void conv2d_backward_filter(const ConvShape&, const float*, const float*, float*, float*, void*,
                            size_t) {
  no_cudnn("conv2d_backward_filter");
}
ConvAlgoChoice conv2d_algorithm(const ConvShape&, ConvPass) { no_cudnn("conv2d_algorithm"); }
size_t conv2d_algorithm_cache_size() { return 0; }

size_t batch_norm_forward_train_workspace_bytes(const BatchNormShape&) { return 0; }
size_t batch_norm_forward_eval_workspace_bytes(const BatchNormShape&) { return 0; }
size_t batch_norm_backward_workspace_bytes(const BatchNormShape&) { return 0; }
size_t batch_norm_backward_eval_workspace_bytes(const BatchNormShape& s) {
  return s.rows > 0 && s.c > 0 ? static_cast<size_t>(s.rows) * static_cast<size_t>(s.c) * sizeof(float)
                               : 0;
}

void batch_norm_forward_train(const BatchNormShape&, const float*, const float*, const float*, float,
                             float, float*, float*, float*, float*, float*, const BatchNormEpilogue&,
                             void*, size_t) {
  no_cudnn("batch_norm_forward_train");
}
void batch_norm_forward_eval(const BatchNormShape&, const float*, const float*, const float*,
                            const float*, const float*, float, float*, const BatchNormEpilogue&,
                            void*, size_t) {
  no_cudnn("batch_norm_forward_eval");
}
void batch_norm_backward(const BatchNormShape&, const float*, const float*, const float*, const float*,
                        const float*, float*, float*, float*, void*, size_t) {
  no_cudnn("batch_norm_backward");
}
void batch_norm_backward_eval(const BatchNormShape&, const float*, const float*, const float*,
                             const float*, const float*, float, float*, float*, float*, void*,
                             size_t) {
  no_cudnn("batch_norm_backward_eval");
}

size_t conv2d_workspace_bytes_bf16(const ConvShape&, ConvPass) { no_cudnn("conv2d_workspace_bytes_bf16"); }
ConvAlgoChoice conv2d_algorithm_bf16(const ConvShape&, ConvPass) { no_cudnn("conv2d_algorithm_bf16"); }
void conv2d_forward(const ConvShape&, const bfloat16*, const bfloat16*, const float*, bfloat16*, void*,
                         size_t) {
  no_cudnn("conv2d_forward");
}
void conv2d_backward_data(const ConvShape&, const bfloat16*, const bfloat16*, bfloat16*, void*, size_t) {
  no_cudnn("conv2d_backward_data");
}
void conv2d_backward_filter(const ConvShape&, const bfloat16*, const bfloat16*, float*, float*, void*,
                                 size_t) {
  no_cudnn("conv2d_backward_filter");
}
void batch_norm_forward_train(const BatchNormShape&, const bfloat16*, const float*, const float*, float,
                                  float, float*, float*, bfloat16*, float*, float*,
                                  const BatchNormEpilogueBf16&, void*, size_t) {
  no_cudnn("batch_norm_forward_train");
}
void batch_norm_forward_eval(const BatchNormShape&, const bfloat16*, const float*, const float*,
                                 const float*, const float*, float, bfloat16*, const BatchNormEpilogueBf16&,
                                 void*, size_t) {
  no_cudnn("batch_norm_forward_eval");
}
void batch_norm_backward(const BatchNormShape&, const bfloat16*, const bfloat16*, const float*,
                             const float*, const float*, bfloat16*, float*, float*, void*, size_t) {
  no_cudnn("batch_norm_backward");
}
void batch_norm_backward_eval(const BatchNormShape&, const bfloat16*, const bfloat16*, const float*,
                                  const float*, const float*, float, bfloat16*, float*, float*, void*,
                                  size_t) {
  no_cudnn("batch_norm_backward_eval");
}

void gemm(const GemmArgs&) { no_cudnn("gemm"); }
void linear_forward(const LinearShape&, const float*, const float*, const float*, float*) {
  no_cudnn("linear_forward");
}
void linear_backward(const LinearShape&, const float*, const float*, const float*, float*, float*,
                     float*) {
  no_cudnn("linear_backward");
}

std::string library_versions() { return "cuBLAS: not compiled in\ncuDNN: not compiled in"; }

}  // namespace hotlap::kernels::cudnn
