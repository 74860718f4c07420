// Where nn/ meets kernels/: every compute kernel nn/ runs (the ops', autograd's gradient sums, the
// tensors' casts and fills), routed by the device the tensors live on and by the kernel chosen for
// the op family (kernels/choice.h; design rule 2). Memory itself (allocation, copies between
// devices, events) goes to the device runtime, kernels/cuda_memory.h.
//
//   cpu                  kernels::cpu (hand-written, OpenMP; GEMM hand-written or OpenBLAS)
//   cuda, backend native the hand-written kernels of kernels/cuda (implicit-GEMM convolution, batch
//                        norm, pooling, element-wise, losses, optimizers)
//   cuda, backend cudnn  kernels/cudnn: cuDNN convolution and batch norm, cuBLAS GEMM
//   linear on cuda       always cuBLAS
//
// The choice is process-wide: `--conv`, `--batchnorm` on the command line, or HOTLAP_CONV /
// HOTLAP_BATCHNORM = native | cudnn in the environment (read once, at first use); each convolution
// asks kernels/choice.h's choice function which kernel runs it (HOTLAP_REFERENCE=1: the simple ones). Scratch memory
// the kernels ask for (the CPU im2col buffer, GPU workspaces) is allocated here: on the CPU a
// buffer per thread, reused; on the GPU a block from the caching allocator for the call.
// nn/ never calls a CUDA API itself; everything below goes through kernels/.
//
// bf16 activations (MathMode::bf16): every activation function has an overload on bfloat16
// pointers (parameters, statistics, dW, dgamma, dbeta stay float*), routed the same way: cpu to
// the CPU's bf16 loops (element-wise) or its bf16 emulation (convolution, batch norm, pools), cuda to the hand-written bf16 kernels (the convolution's bf16
// tensor-core variants included) or cuDNN's bf16 paths; where cuDNN refuses bf16 batch norm, the
// hand-written bf16 batch norm stands in for it (run_batch_norm_bf16_on_cudnn_or_native).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/choice.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "nn/runtime/tensor.h"

namespace hotlap::dispatch {

// The GPU backends are two of the kernel settings (kernels/choice.h, where every setting that picks
// a kernel is read and every choice made).
using kernels::Backend;
using kernels::backend_name;
using kernels::parse_backend;

struct Backends {
  Backend conv = Backend::native;
  Backend batch_norm = Backend::native;
};
// The current choice (from HOTLAP_CONV / HOTLAP_BATCHNORM on first use).
Backends backends();
void set_backends(const Backends& b);
// What runs a GPU convolution under the current choice, for hotlap info and logs.
const char* conv_backend_description();

// What runs `op` (by its name in ops and the op table: "conv2d", "batch_norm", "relu", "mse_loss",
// ...) on `device` under `backend` for activations of `dtype` (bf16: MathMode::bf16). What `hotlap
// ops` prints, and what the op table's test holds every kernel to: an op said to run must match its
// float64 reference there, one said not to must throw a clear error. An unknown op throws.
enum class Support : uint8_t {
  none,      // no kernel: the op throws
  native,    // hotlap's own kernel for that dtype
  emulated,  // bf16 on the CPU by emulation: widened to fp32, the fp32 kernel, rounded once
  library,   // cuDNN or cuBLAS
  fp32,      // a bf16 input is cast up and the op computes in fp32 (the head: linear, the losses)
};
Support supports(std::string_view op, Device device, Backend backend, DType dtype);
const char* support_name(Support s);  // "own", "emu", "lib", "fp32", "-"
// Every op supports knows, in the order `hotlap ops` lists them.
const std::vector<std::string>& supported_ops();

// All pointers live on `device`. Each function has the contract of the kernels it routes to. T is
// the activations' storage: float, or bfloat16 (parameters, statistics and their
// gradients stay float). One template per op: the kernels are overloads on the storage type, so
// the same body routes both (defined in dispatch.cpp for both types, or inline below).
//
// conv2d_forward: y = relu?((conv(x, w) + bias) + residual), the epilogue of kernels/conv_shape.h (residual
// laid out as y and not overlapping it; null for none). The fp32 CPU convolution applies it as it
// stores y; elsewhere (the GPU backends, bf16) the convolution with its bias is followed by the add
// and ReLU kernels, in place on y, which gives the same bits.
template <typename T>
void conv2d_forward(Device d, const kernels::ConvShape& s, const T* x, const T* w, const float* bias, T* y,
                    const T* residual = nullptr, bool relu = false);
template <typename T>
void conv2d_backward_data(Device d, const kernels::ConvShape& s, const T* dy, const T* w, T* dx);
template <typename T>
void conv2d_backward_filter(Device d, const kernels::ConvShape& s, const T* x, const T* dy, float* dw, float* dbias);

template <typename T>
void batch_norm_forward_train(Device d, const kernels::BatchNormShape& s, const T* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean, float* running_var,
                             T* y, float* save_mean, float* save_invstd, const kernels::BatchNormEpilogueOf<T>& epilogue);
template <typename T>
void batch_norm_forward_eval(Device d, const kernels::BatchNormShape& s, const T* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var, float eps, T* y,
                            const kernels::BatchNormEpilogueOf<T>& epilogue);
template <typename T>
void batch_norm_backward(Device d, const kernels::BatchNormShape& s, const T* x, const T* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, T* dx, float* dgamma, float* dbeta);
template <typename T>
void batch_norm_backward_eval(Device d, const kernels::BatchNormShape& s, const T* x, const T* dy, const float* gamma,
                             const float* running_mean, const float* running_var, float eps, T* dx, float* dgamma,
                             float* dbeta);

// How the bf16 batch norms above run under the cudnn backend: `on_cudnn`, unless cuDNN refuses bf16
// batch norm on this machine (kernels/cudnn.h: the refused call notes it before it throws); then
// `native`, the hand-written kernel, for that call and for every later one without asking cuDNN
// again, after a one-line notice on stderr (once per process). Any other Error from `on_cudnn`
// propagates. Exposed so that the decision is tested without a GPU.
void run_batch_norm_bf16_on_cudnn_or_native(const std::function<void()>& on_cudnn,
                                           const std::function<void()>& native);

void fill(Device d, int64_t n, float value, float* y);
// dtype casts (kernels/cast.h): the same bits on both devices.
void convert(Device d, int64_t n, const float* x, bfloat16* y);
void convert(Device d, int64_t n, const bfloat16* x, float* y);
// The face detector's forward-only ops: the CPU's kernels; on the GPU an Error (dispatch::supports).
void prelu_forward(Device d, int64_t rows, int64_t c, const float* x, const float* slope, float* y);
void softmax_forward(Device d, int64_t rows, int64_t c, const float* x, float* y);

// The element-wise ops and pools: the same kernel names on both devices, either storage.
template <typename T>
void copy(Device d, int64_t n, const T* x, T* y) {
  d == Device::cpu ? kernels::cpu::copy(n, x, y)
                   : kernels::cuda::copy(n, x, y);
}
template <typename T>
void add(Device d, int64_t n, const T* a, const T* b, T* y) {
  d == Device::cpu ? kernels::cpu::add(n, a, b, y)
                   : kernels::cuda::add(n, a, b, y);
}
template <typename T>
void accumulate(Device d, int64_t n, const T* x, T* y) {  // y += x (bf16: y = bf16(y + x))
  d == Device::cpu ? kernels::cpu::accumulate(n, x, y)
                   : kernels::cuda::accumulate(n, x, y);
}
template <typename T>
void add_relu_forward(Device d, int64_t n, const T* a, const T* b, T* y) {
  d == Device::cpu ? kernels::cpu::add_relu_forward(n, a, b, y)
                   : kernels::cuda::add_relu_forward(n, a, b, y);
}
// Every activation of kernels/activation.h (Act: kernels::Relu, kernels::Silu, ...).
template <typename Act, typename T>
void activation_forward(Device d, int64_t n, const T* x, T* y) {
  d == Device::cpu ? kernels::cpu::activation_forward<Act>(n, x, y)
                   : kernels::cuda::activation_forward<Act>(n, x, y);
}
template <typename Act, typename T>
void activation_backward(Device d, int64_t n, const T* saved, const T* dy, T* dx) {
  d == Device::cpu ? kernels::cpu::activation_backward<Act>(n, saved, dy, dx)
                   : kernels::cuda::activation_backward<Act>(n, saved, dy, dx);
}
template <typename T>
void max_pool2d_forward(Device d, const kernels::PoolShape& s, const T* x, T* y, int32_t* indices) {
  d == Device::cpu ? kernels::cpu::max_pool2d_forward(s, x, y, indices)
                   : kernels::cuda::max_pool2d_forward(s, x, y, indices);
}
template <typename T>
void max_pool2d_backward(Device d, const kernels::PoolShape& s, const T* dy, const int32_t* indices, T* dx) {
  d == Device::cpu ? kernels::cpu::max_pool2d_backward(s, dy, indices, dx)
                   : kernels::cuda::max_pool2d_backward(s, dy, indices, dx);
}
template <typename T>
void global_avg_pool_forward(Device d, int64_t n, int64_t hw, int64_t c, const T* x, T* y) {
  d == Device::cpu ? kernels::cpu::global_avg_pool_forward(n, hw, c, x, y)
                   : kernels::cuda::global_avg_pool_forward(n, hw, c, x, y);
}
template <typename T>
void global_avg_pool_backward(Device d, int64_t n, int64_t hw, int64_t c, const T* dy, T* dx) {
  d == Device::cpu ? kernels::cpu::global_avg_pool_backward(n, hw, c, dy, dx)
                   : kernels::cuda::global_avg_pool_backward(n, hw, c, dy, dx);
}

void linear_forward(Device d, const kernels::LinearShape& s, const float* x, const float* w, const float* b,
                    float* y);
void linear_backward(Device d, const kernels::LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db);

double loss_forward(Device d, kernels::LossKind kind, int64_t n, const float* pred, const float* target,
                    float beta);
void loss_backward(Device d, kernels::LossKind kind, int64_t n, const float* pred, const float* target,
                   float beta, float scale, float* dpred);
double cross_entropy_forward(Device d, int64_t rows, int64_t classes, const float* logits, const float* labels,
                             float smoothing);
void cross_entropy_backward(Device d, int64_t rows, int64_t classes, const float* logits, const float* labels,
                            float smoothing, float scale, float* dlogits);

void sgd_update(Device d, const kernels::SgdArgs& a, int64_t n, float* p, const float* g, float* momentum_buf);
void adamw_update(Device d, const kernels::AdamWArgs& a, int64_t n, float* p, const float* g, float* m, float* v);

}  // namespace hotlap::dispatch
