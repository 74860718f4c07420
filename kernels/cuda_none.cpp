// The CUDA kernels' entry points for builds without CUDA: each throws, so code that dispatches to
// kernels::cuda compiles and links in every build (callers check cuda_device_count() first). The
// workspace-size queries are not here: they are host arithmetic, built in every build
// (kernels/cuda/workspace.cpp), so they give the real numbers without CUDA too.
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"
#include "kernels/optim.h"
#include "kernels/pool.h"

namespace hotlap::kernels::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  throw_error("cuda::", op, ": hotlap was built without CUDA (rebuild with nvcc available and "
                            "-DHOTLAP_CUDA=ON)");
}
}  // namespace

#define HOTLAP_NO_CUDA(name, ...) \
  void name(__VA_ARGS__) { no_cuda(#name); }

HOTLAP_NO_CUDA(batch_norm_forward_train, const BatchNormShape&, const float*, const float*,
               const float*, float, float, float*, float*, float*, float*, float*,
               const BatchNormEpilogue&, void*, size_t)
HOTLAP_NO_CUDA(batch_norm_forward_eval, const BatchNormShape&, const float*, const float*,
               const float*, const float*, const float*, float, float*, const BatchNormEpilogue&,
               void*, size_t)
HOTLAP_NO_CUDA(batch_norm_backward, const BatchNormShape&, const float*, const float*, const float*,
               const float*, const float*, float*, float*, float*, void*, size_t)
HOTLAP_NO_CUDA(batch_norm_backward_eval, const BatchNormShape&, const float*, const float*,
               const float*, const float*, const float*, float, float*, float*, float*, void*,
               size_t)

HOTLAP_NO_CUDA(max_pool2d_forward, const PoolShape&, const float*, float*, int32_t*)
HOTLAP_NO_CUDA(max_pool2d_backward, const PoolShape&, const float*, const int32_t*, float*)
HOTLAP_NO_CUDA(global_avg_pool_forward, int64_t, int64_t, int64_t, const float*, float*)
HOTLAP_NO_CUDA(global_avg_pool_backward, int64_t, int64_t, int64_t, const float*, float*)

HOTLAP_NO_CUDA(fill, int64_t, float, float*)
HOTLAP_NO_CUDA(copy, int64_t, const float*, float*)
HOTLAP_NO_CUDA(add, int64_t, const float*, const float*, float*)
HOTLAP_NO_CUDA(accumulate, int64_t, const float*, float*)
HOTLAP_NO_CUDA(scale, int64_t, float, const float*, float*)
HOTLAP_NO_CUDA(add_relu_forward, int64_t, const float*, const float*, float*)
HOTLAP_NO_CUDA(bias_add, int64_t, int64_t, const float*, float*)
HOTLAP_NO_CUDA(bias_backward, int64_t, int64_t, const float*, float*)
HOTLAP_NO_CUDA(loss_backward, LossKind, int64_t, const float*, const float*, float, float, float*)
double loss_forward(LossKind, int64_t, const float*, const float*, float, void*, size_t) {
  no_cuda("loss_forward");
}
HOTLAP_NO_CUDA(cross_entropy_backward, int64_t, int64_t, const float*, const float*, float, float, float*)
double cross_entropy_forward(int64_t, int64_t, const float*, const float*, float, void*, size_t) {
  no_cuda("cross_entropy_forward");
}

HOTLAP_NO_CUDA(sgd_update, const SgdArgs&, int64_t, float*, const float*, float*)
HOTLAP_NO_CUDA(adamw_update, const AdamWArgs&, int64_t, float*, const float*, float*, float*)

// bf16 activations
HOTLAP_NO_CUDA(batch_norm_forward_train, const BatchNormShape&, const bfloat16*, const float*,
               const float*, float, float, float*, float*, bfloat16*, float*, float*,
               const BatchNormEpilogueBf16&, void*, size_t)
HOTLAP_NO_CUDA(batch_norm_forward_eval, const BatchNormShape&, const bfloat16*, const float*,
               const float*, const float*, const float*, float, bfloat16*,
               const BatchNormEpilogueBf16&, void*, size_t)
HOTLAP_NO_CUDA(batch_norm_backward, const BatchNormShape&, const bfloat16*, const bfloat16*,
               const float*, const float*, const float*, bfloat16*, float*, float*, void*, size_t)
HOTLAP_NO_CUDA(batch_norm_backward_eval, const BatchNormShape&, const bfloat16*, const bfloat16*,
               const float*, const float*, const float*, float, bfloat16*, float*, float*, void*,
               size_t)
HOTLAP_NO_CUDA(max_pool2d_forward, const PoolShape&, const bfloat16*, bfloat16*, int32_t*)
HOTLAP_NO_CUDA(max_pool2d_backward, const PoolShape&, const bfloat16*, const int32_t*, bfloat16*)
HOTLAP_NO_CUDA(global_avg_pool_forward, int64_t, int64_t, int64_t, const bfloat16*, bfloat16*)
HOTLAP_NO_CUDA(global_avg_pool_backward, int64_t, int64_t, int64_t, const bfloat16*, bfloat16*)
HOTLAP_NO_CUDA(copy, int64_t, const bfloat16*, bfloat16*)
HOTLAP_NO_CUDA(add, int64_t, const bfloat16*, const bfloat16*, bfloat16*)
HOTLAP_NO_CUDA(accumulate, int64_t, const bfloat16*, bfloat16*)
HOTLAP_NO_CUDA(add_relu_forward, int64_t, const bfloat16*, const bfloat16*, bfloat16*)

HOTLAP_NO_CUDA(f32_to_bf16, int64_t, const float*, bfloat16*)
HOTLAP_NO_CUDA(bf16_to_f32, int64_t, const bfloat16*, float*)

#undef HOTLAP_NO_CUDA

}  // namespace hotlap::kernels::cuda

// ---- convolution (kernels/conv.h): the calls throw; the variant choice and the workspace queries
// are host arithmetic, built in both configurations (kernels/cuda/workspace.cpp).
#include "kernels/conv.h"

namespace hotlap::kernels::cuda {

#define HOTLAP_NO_CUDA(name, ...) \
  void name(__VA_ARGS__) { no_cuda(#name); }

HOTLAP_NO_CUDA(conv2d_forward, const ConvShape&, const float*, const float*, const float*, float*,
               void*, size_t)
HOTLAP_NO_CUDA(conv2d_backward_data, const ConvShape&, const float*, const float*, float*, void*,
               size_t)
HOTLAP_NO_CUDA(conv2d_backward_filter, const ConvShape&, const float*, const float*, float*, float*,
               void*, size_t)
HOTLAP_NO_CUDA(conv2d_forward_variant, const ConvShape&, const float*, const float*, const float*,
               float*, void*, size_t, ConvVariant)
HOTLAP_NO_CUDA(conv2d_backward_data_variant, const ConvShape&, const float*, const float*, float*,
               void*, size_t, ConvVariant)
HOTLAP_NO_CUDA(conv2d_backward_filter_variant, const ConvShape&, const float*, const float*, float*,
               float*, void*, size_t, ConvVariant)
HOTLAP_NO_CUDA(conv2d_forward, const ConvShape&, const bfloat16*, const bfloat16*, const float*,
               bfloat16*, void*, size_t)
HOTLAP_NO_CUDA(conv2d_backward_data, const ConvShape&, const bfloat16*, const bfloat16*,
               bfloat16*, void*, size_t)
HOTLAP_NO_CUDA(conv2d_backward_filter, const ConvShape&, const bfloat16*, const bfloat16*,
               float*, float*, void*, size_t)
HOTLAP_NO_CUDA(conv2d_forward_variant, const ConvShape&, const bfloat16*, const bfloat16*,
               const float*, bfloat16*, void*, size_t, ConvVariant)
HOTLAP_NO_CUDA(conv2d_backward_data_variant, const ConvShape&, const bfloat16*,
               const bfloat16*, bfloat16*, void*, size_t, ConvVariant)
HOTLAP_NO_CUDA(conv2d_backward_filter_variant, const ConvShape&, const bfloat16*,
               const bfloat16*, float*, float*, void*, size_t, ConvVariant)

#undef HOTLAP_NO_CUDA


// Every activation (kernels/activation.h), both storage types.
template <typename Act, typename T>
void activation_forward(int64_t, const T*, T*) {
  no_cuda(Act::name);
}
template <typename Act, typename T>
void activation_backward(int64_t, const T*, const T*, T*) {
  no_cuda(Act::name);
}
HOTLAP_ACTIVATIONS(HOTLAP_ACTIVATION_KERNELS)

}  // namespace hotlap::kernels::cuda
