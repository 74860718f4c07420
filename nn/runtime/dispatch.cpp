// Kernel routing by device and backend: see dispatch.h.
#include "nn/runtime/dispatch.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cudnn.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"

namespace hotlap::dispatch {

namespace kc = kernels::cpu;
namespace kcu = kernels::cuda;
namespace kdn = kernels::cudnn;

namespace {

// The CPU kernels' scratch (the im2col buffer), one per thread, grown as needed and reused.
float* cpu_scratch(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < floats) buffer.resize(static_cast<size_t>(floats));
  return buffer.data();
}

// A GPU workspace for one call: a block from the caching allocator, returned to it when the call
// ends. The kernels using it are queued on the one compute stream, so the next op's kernels, which
// may get the same block, run after them.
struct GpuWorkspace {
  explicit GpuWorkspace(size_t bytes)
      : tensor(bytes ? Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::f32, Device::cuda) : Tensor()),
        size(bytes) {}
  void* data() const { return tensor.defined() ? tensor.raw() : nullptr; }
  Tensor tensor;
  size_t size;
};

bool cudnn_batch_norm() { return kernels::choose_batch_norm_gpu() == Backend::cudnn; }

}  // namespace

Backends backends() {
  const kernels::KernelOptions o = kernels::kernel_options();
  return {o.conv, o.batch_norm};
}

void set_backends(const Backends& b) {
  kernels::KernelOptions o = kernels::kernel_options();
  o.conv = b.conv;
  o.batch_norm = b.batch_norm;
  kernels::set_kernel_options(o);
}

const char* conv_backend_description() {
  if (kernels::kernel_options().reference) return "native, simple kernels (HOTLAP_REFERENCE=1)";
  return backends().conv == Backend::cudnn ? "cudnn" : "native (hand-written implicit GEMM)";
}

// ---- what runs where ------------------------------------------------------------------------------

namespace {

// The op families, each routed one way (the functions below).
enum class Family { conv, batch_norm, activation, sum, pool, linear, loss, cpu_forward_only };

struct OpEntry {
  std::string name;
  Family family;
};

const std::vector<OpEntry>& op_entries() {
  static const std::vector<OpEntry> entries = [] {
    std::vector<OpEntry> e{{"conv2d", Family::conv}, {"batch_norm", Family::batch_norm}};
#define HOTLAP_ACTIVATION_ENTRY(Act) e.push_back({kernels::Act::name, Family::activation});
    HOTLAP_ACTIVATIONS(HOTLAP_ACTIVATION_ENTRY)
#undef HOTLAP_ACTIVATION_ENTRY
    for (const char* op : {"add", "add_relu"}) e.push_back({op, Family::sum});
    for (const char* op : {"max_pool2d", "global_avg_pool"}) e.push_back({op, Family::pool});
    e.push_back({"linear", Family::linear});
    for (const char* op : {"mse_loss", "l1_loss", "smooth_l1_loss", "cross_entropy"}) e.push_back({op, Family::loss});
    for (const char* op : {"prelu", "softmax"}) e.push_back({op, Family::cpu_forward_only});
    return e;
  }();
  return entries;
}

}  // namespace

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const OpEntry& e : op_entries()) n.push_back(e.name);
    return n;
  }();
  return names;
}

const char* support_name(Support s) {
  switch (s) {
    case Support::native: return "own";
    case Support::emulated: return "emu";
    case Support::library: return "lib";
    case Support::fp32: return "fp32";
    default: return "-";
  }
}

Support supports(std::string_view op, Device device, Backend backend, DType dtype) {
  const auto it = std::find_if(op_entries().begin(), op_entries().end(), [&](const OpEntry& e) { return e.name == op; });
  HOTLAP_CHECK(it != op_entries().end(), "dispatch::supports: unknown op '", std::string(op), "'");
  const bool cpu = device == Device::cpu, bf16 = dtype == DType::bf16;
  switch (it->family) {
    case Family::conv:  // the CPU's bf16 convolution widens to fp32; cuDNN when chosen
    case Family::batch_norm:
      if (cpu) return bf16 ? Support::emulated : Support::native;
      return backend == Backend::cudnn ? Support::library : Support::native;
    case Family::activation:  // one template per storage type on both devices
      return Support::native;
    case Family::sum:  // one loop per storage type on both devices
      return Support::native;
    case Family::pool:  // the CPU's bf16 pools widen to fp32
      return cpu && bf16 ? Support::emulated : Support::native;
    case Family::linear:  // cuBLAS on the GPU whatever the backend
      if (bf16) return Support::fp32;
      return cpu ? Support::native : Support::library;
    case Family::loss:
      return bf16 ? Support::fp32 : Support::native;
    case Family::cpu_forward_only:  // the face detector's inference
      return cpu && !bf16 ? Support::native : Support::none;
  }
  return Support::none;
}

// ---- convolution: CPU im2col + GEMM or Winograd; GPU hand-written implicit GEMM or cuDNN -----------

namespace {

using kernels::ConvPass;
using kernels::cuda::ConvVariant;

// The part of a convolution's epilogue after its bias, as kernels of their own on y (in place).
template <typename T>
void residual_relu_after(Device d, const kernels::ConvShape& s, T* y, const T* residual, bool relu) {
  const int64_t n = s.n * s.p() * s.q() * s.k;
  if (residual != nullptr)
    relu ? add_relu_forward(d, n, y, residual, y) : add(d, n, y, residual, y);
  else if (relu)
    activation_forward<kernels::Relu>(d, n, y, y);
}

// Notes the kernel this convolution pass runs on (kernels/choice.h), when notes are on.
void note_conv(Device d, const kernels::ConvShape& s, ConvPass pass, bool bf16) {
  if (!kernels::choice_notes_on()) return;
  const kernels::ConvChoice c = d == Device::cpu ? kernels::choose_conv_cpu(s, pass) : kernels::choose_conv_gpu(s, pass, bf16);
  const std::string layer = std::string(kernels::conv_family(s)) + ", " + std::to_string(s.h) + "x" + std::to_string(s.w) +
                            "x" + std::to_string(s.c) + " -> " + std::to_string(s.k) + ", batch " + std::to_string(s.n) +
                            ", " + device_name(d) + (bf16 ? " bf16" : "");
  kernels::note_choice(layer, kernels::conv_pass_name(pass),
                       c.name() + (d == Device::cpu && bf16 ? ", bf16 by emulation" : ""));
}

// One pass of a GPU convolution as kernels/choice.h chooses it: cuDNN with its workspace, or the
// hand-written variant named with its own.
template <typename OnCudnn, typename OnNative>
void run_gpu_conv(const kernels::ConvShape& s, ConvPass pass, bool bf16, OnCudnn on_cudnn, OnNative on_native) {
  const kernels::ConvChoice choice = kernels::choose_conv_gpu(s, pass, bf16);
  if (choice.kernel == kernels::ConvKernel::cudnn) {
    GpuWorkspace ws(bf16 ? kdn::conv2d_workspace_bytes_bf16(s, pass) : kdn::conv2d_workspace_bytes(s, pass));
    on_cudnn(ws);
  } else {
    GpuWorkspace ws(kcu::conv2d_workspace_bytes(s, pass, choice.variant));
    on_native(ws, choice.variant);
  }
}

}  // namespace

template <typename T>
void conv2d_forward(Device d, const kernels::ConvShape& s, const T* x, const T* w, const float* bias, T* y,
                    const T* residual, bool relu) {
  constexpr bool bf16 = std::is_same_v<T, bfloat16>;
  note_conv(d, s, ConvPass::forward, bf16);
  if (d == Device::cpu) {
    if constexpr (!bf16)  // the epilogue in the GEMM's or Winograd's store
      return kc::conv2d_forward(s, x, w, kernels::ConvEpilogue{bias, residual, relu}, y,
                                cpu_scratch(kc::conv2d_workspace_floats(s)));
    kc::conv2d_forward(s, x, w, bias, y, cpu_scratch(kc::conv2d_workspace_floats(s)));
  } else {
    run_gpu_conv(
        s, ConvPass::forward, bf16,
        [&](const GpuWorkspace& ws) { kdn::conv2d_forward(s, x, w, bias, y, ws.data(), ws.size); },
        [&](const GpuWorkspace& ws, ConvVariant v) {
          kcu::conv2d_forward_variant(s, x, w, bias, y, ws.data(), ws.size, v);
        });
  }
  residual_relu_after(d, s, y, residual, relu);
}

template <typename T>
void conv2d_backward_data(Device d, const kernels::ConvShape& s, const T* dy, const T* w, T* dx) {
  constexpr bool bf16 = std::is_same_v<T, bfloat16>;
  note_conv(d, s, ConvPass::backward_data, bf16);
  if (d == Device::cpu) return kc::conv2d_backward_data(s, dy, w, dx, cpu_scratch(kc::conv2d_workspace_floats(s)));
  run_gpu_conv(
      s, ConvPass::backward_data, bf16,
      [&](const GpuWorkspace& ws) { kdn::conv2d_backward_data(s, dy, w, dx, ws.data(), ws.size); },
      [&](const GpuWorkspace& ws, ConvVariant v) {
        kcu::conv2d_backward_data_variant(s, dy, w, dx, ws.data(), ws.size, v);
      });
}

template <typename T>
void conv2d_backward_filter(Device d, const kernels::ConvShape& s, const T* x, const T* dy, float* dw, float* dbias) {
  constexpr bool bf16 = std::is_same_v<T, bfloat16>;
  note_conv(d, s, ConvPass::backward_filter, bf16);
  if (d == Device::cpu)
    return kc::conv2d_backward_filter(s, x, dy, dw, dbias, cpu_scratch(kc::conv2d_workspace_floats(s)));
  run_gpu_conv(
      s, ConvPass::backward_filter, bf16,
      [&](const GpuWorkspace& ws) { kdn::conv2d_backward_filter(s, x, dy, dw, dbias, ws.data(), ws.size); },
      [&](const GpuWorkspace& ws, ConvVariant v) {
        kcu::conv2d_backward_filter_variant(s, x, dy, dw, dbias, ws.data(), ws.size, v);
      });
}

// ---- batch norm: CPU; GPU hand-written or cuDNN ---------------------------------------------------

// bf16 on cuDNN, unless cuDNN refuses bf16 batch norm (kernels/cudnn.h): then the hand-written bf16
// kernels, for the refused call (cuDNN queued nothing) and, without asking cuDNN again, every later one.
// The eval-mode backward needs no such fallback: it makes no bf16 cuDNN batch-norm call.
void run_batch_norm_bf16_on_cudnn_or_native(const std::function<void()>& on_cudnn,
                                           const std::function<void()>& native) {
  if (!kdn::batch_norm_bf16_refused()) {
    try {
      on_cudnn();
      return;
    } catch (const Error& e) {
      if (!kdn::batch_norm_bf16_refused()) throw;
      static std::once_flag notice;
      std::call_once(notice, [&] {
        std::string why = e.what();
        std::replace(why.begin(), why.end(), '\n', ' ');
        std::fprintf(stderr,
                     "hotlap: cuDNN refuses bf16 batch norm here; bf16 batch norm runs on hotlap's hand-written "
                     "CUDA kernels from now on (%s)\n",
                     why.c_str());
      });
    }
  }
  native();
}

namespace {

// One GPU batch norm call: cuDNN when chosen, else the hand-written kernel. A bf16 call that cuDNN
// may refuse goes through run_batch_norm_bf16_on_cudnn_or_native.
template <typename T, typename OnCudnn, typename OnNative>
void run_gpu_batch_norm(const kernels::BatchNormShape& s, const char* pass, bool cudnn_may_refuse, OnCudnn on_cudnn,
                       OnNative on_native) {
  if (kernels::choice_notes_on())  // the CPU has one batch norm; on the GPU the backend is a choice
    kernels::note_choice("batch norm, " + std::to_string(s.rows) + " rows x " + std::to_string(s.c) + " channels, cuda" +
                             (std::is_same_v<T, bfloat16> ? " bf16" : ""),
                         pass,
                         !cudnn_batch_norm() ? "native"
                         : std::is_same_v<T, bfloat16> && cudnn_may_refuse && kdn::batch_norm_bf16_refused()
                             ? "native (cuDNN refuses bf16 batch norm here)"
                             : "cudnn");
  if (!cudnn_batch_norm()) return on_native();
  if (std::is_same_v<T, bfloat16> && cudnn_may_refuse) return run_batch_norm_bf16_on_cudnn_or_native(on_cudnn, on_native);
  on_cudnn();
}

}  // namespace

template <typename T>
void batch_norm_forward_train(Device d, const kernels::BatchNormShape& s, const T* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean, float* running_var,
                             T* y, float* save_mean, float* save_invstd, const kernels::BatchNormEpilogueOf<T>& epilogue) {
  if (d == Device::cpu)
    return kc::batch_norm_forward_train(s, x, gamma, beta, eps, momentum, running_mean, running_var, y, save_mean,
                                       save_invstd, epilogue);
  run_gpu_batch_norm<T>(
      s, "forward (training)", true,
      [&] {
        GpuWorkspace ws(kdn::batch_norm_forward_train_workspace_bytes(s));
        kdn::batch_norm_forward_train(s, x, gamma, beta, eps, momentum, running_mean, running_var, y, save_mean,
                                     save_invstd, epilogue, ws.data(), ws.size);
      },
      [&] {
        GpuWorkspace ws(kcu::batch_norm_forward_train_workspace_bytes(s));
        kcu::batch_norm_forward_train(s, x, gamma, beta, eps, momentum, running_mean, running_var, y, save_mean,
                                     save_invstd, epilogue, ws.data(), ws.size);
      });
}

template <typename T>
void batch_norm_forward_eval(Device d, const kernels::BatchNormShape& s, const T* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var, float eps, T* y,
                            const kernels::BatchNormEpilogueOf<T>& epilogue) {
  if (d == Device::cpu)
    return kc::batch_norm_forward_eval(s, x, gamma, beta, running_mean, running_var, eps, y, epilogue);
  run_gpu_batch_norm<T>(
      s, "forward (eval)", true,
      [&] {
        GpuWorkspace ws(kdn::batch_norm_forward_eval_workspace_bytes(s));
        kdn::batch_norm_forward_eval(s, x, gamma, beta, running_mean, running_var, eps, y, epilogue, ws.data(), ws.size);
      },
      [&] {
        GpuWorkspace ws(kcu::batch_norm_forward_eval_workspace_bytes(s));
        kcu::batch_norm_forward_eval(s, x, gamma, beta, running_mean, running_var, eps, y, epilogue, ws.data(), ws.size);
      });
}

template <typename T>
void batch_norm_backward(Device d, const kernels::BatchNormShape& s, const T* x, const T* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, T* dx, float* dgamma, float* dbeta) {
  if (d == Device::cpu) return kc::batch_norm_backward(s, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
  run_gpu_batch_norm<T>(
      s, "backward (training)", true,
      [&] {
        GpuWorkspace ws(kdn::batch_norm_backward_workspace_bytes(s));
        kdn::batch_norm_backward(s, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta, ws.data(), ws.size);
      },
      [&] {
        GpuWorkspace ws(kcu::batch_norm_backward_workspace_bytes(s));
        kcu::batch_norm_backward(s, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta, ws.data(), ws.size);
      });
}

// (cuDNN's eval-mode backward is element-wise kernels of hotlap's own: no bf16 batch-norm call for
// cuDNN to refuse.)
template <typename T>
void batch_norm_backward_eval(Device d, const kernels::BatchNormShape& s, const T* x, const T* dy, const float* gamma,
                             const float* running_mean, const float* running_var, float eps, T* dx, float* dgamma,
                             float* dbeta) {
  if (d == Device::cpu)
    return kc::batch_norm_backward_eval(s, x, dy, gamma, running_mean, running_var, eps, dx, dgamma, dbeta);
  run_gpu_batch_norm<T>(
      s, "backward (eval)", false,
      [&] {
        GpuWorkspace ws(kdn::batch_norm_backward_eval_workspace_bytes(s));
        kdn::batch_norm_backward_eval(s, x, dy, gamma, running_mean, running_var, eps, dx, dgamma, dbeta, ws.data(),
                                     ws.size);
      },
      [&] {
        GpuWorkspace ws(kcu::batch_norm_backward_eval_workspace_bytes(s));
        kcu::batch_norm_backward_eval(s, x, dy, gamma, running_mean, running_var, eps, dx, dgamma, dbeta, ws.data(),
                                     ws.size);
      });
}

// Both storage types of every templated route above.
#define HOTLAP_DISPATCH_STORAGE(T)                                                                                   \
  template void conv2d_forward<T>(Device, const kernels::ConvShape&, const T*, const T*, const float*, T*, const T*, \
                                  bool);                                                                            \
  template void conv2d_backward_data<T>(Device, const kernels::ConvShape&, const T*, const T*, T*);                 \
  template void conv2d_backward_filter<T>(Device, const kernels::ConvShape&, const T*, const T*, float*, float*);   \
  template void batch_norm_forward_train<T>(Device, const kernels::BatchNormShape&, const T*, const float*,          \
                                           const float*, float, float, float*, float*, T*, float*, float*,           \
                                           const kernels::BatchNormEpilogueOf<T>&);                                 \
  template void batch_norm_forward_eval<T>(Device, const kernels::BatchNormShape&, const T*, const float*,           \
                                          const float*, const float*, const float*, float, T*,                       \
                                          const kernels::BatchNormEpilogueOf<T>&);                                  \
  template void batch_norm_backward<T>(Device, const kernels::BatchNormShape&, const T*, const T*, const float*,    \
                                      const float*, const float*, T*, float*, float*);                              \
  template void batch_norm_backward_eval<T>(Device, const kernels::BatchNormShape&, const T*, const T*,             \
                                           const float*, const float*, const float*, float, T*, float*, float*);
HOTLAP_DISPATCH_STORAGE(float)
HOTLAP_DISPATCH_STORAGE(bfloat16)
#undef HOTLAP_DISPATCH_STORAGE

// ---- element-wise, pooling: the same contract on both devices --------------------------------------

void fill(Device d, int64_t n, float value, float* y) {
  d == Device::cpu ? kc::fill(n, value, y) : kcu::fill(n, value, y);
}

void convert(Device d, int64_t n, const float* x, bfloat16* y) {
  d == Device::cpu ? kc::f32_to_bf16(n, x, y) : kcu::f32_to_bf16(n, x, y);
}

void convert(Device d, int64_t n, const bfloat16* x, float* y) {
  d == Device::cpu ? kc::bf16_to_f32(n, x, y) : kcu::bf16_to_f32(n, x, y);
}

void prelu_forward(Device d, int64_t rows, int64_t c, const float* x, const float* slope, float* y) {
  HOTLAP_CHECK(d == Device::cpu, "prelu: no GPU kernel (the face detector runs on the CPU; hotlap ops lists "
               "what runs where)");
  kc::prelu_forward(rows, c, x, slope, y);
}

void softmax_forward(Device d, int64_t rows, int64_t c, const float* x, float* y) {
  HOTLAP_CHECK(d == Device::cpu, "softmax: no GPU kernel (the face detector runs on the CPU; hotlap ops lists "
               "what runs where)");
  kc::softmax_forward(rows, c, x, y);
}

// ---- linear: CPU GEMM; cuBLAS on the GPU -----------------------------------------------------------

void linear_forward(Device d, const kernels::LinearShape& s, const float* x, const float* w, const float* b,
                    float* y) {
  d == Device::cpu ? kc::linear_forward(s, x, w, b, y) : kdn::linear_forward(s, x, w, b, y);
}

void linear_backward(Device d, const kernels::LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db) {
  d == Device::cpu ? kc::linear_backward(s, x, w, dy, dx, dw, db) : kdn::linear_backward(s, x, w, dy, dx, dw, db);
}

// ---- losses and optimizers -------------------------------------------------------------------------

double loss_forward(Device d, kernels::LossKind kind, int64_t n, const float* pred, const float* target,
                    float beta) {
  if (d == Device::cpu) return kc::loss_forward(kind, n, pred, target, beta);
  GpuWorkspace ws(kcu::loss_workspace_bytes(n));
  return kcu::loss_forward(kind, n, pred, target, beta, ws.data(), ws.size);
}

void loss_backward(Device d, kernels::LossKind kind, int64_t n, const float* pred, const float* target,
                   float beta, float scale, float* dpred) {
  d == Device::cpu ? kc::loss_backward(kind, n, pred, target, beta, scale, dpred)
                   : kcu::loss_backward(kind, n, pred, target, beta, scale, dpred);
}

double cross_entropy_forward(Device d, int64_t rows, int64_t classes, const float* logits, const float* labels,
                             float smoothing) {
  if (d == Device::cpu) return kc::cross_entropy_forward(rows, classes, logits, labels, smoothing);
  GpuWorkspace ws(kcu::cross_entropy_workspace_bytes(rows));
  return kcu::cross_entropy_forward(rows, classes, logits, labels, smoothing, ws.data(), ws.size);
}

void cross_entropy_backward(Device d, int64_t rows, int64_t classes, const float* logits, const float* labels,
                            float smoothing, float scale, float* dlogits) {
  d == Device::cpu ? kc::cross_entropy_backward(rows, classes, logits, labels, smoothing, scale, dlogits)
                   : kcu::cross_entropy_backward(rows, classes, logits, labels, smoothing, scale, dlogits);
}

void sgd_update(Device d, const kernels::SgdArgs& a, int64_t n, float* p, const float* g, float* momentum_buf) {
  d == Device::cpu ? kc::sgd_update(a, n, p, g, momentum_buf) : kcu::sgd_update(a, n, p, g, momentum_buf);
}

void adamw_update(Device d, const kernels::AdamWArgs& a, int64_t n, float* p, const float* g, float* m, float* v) {
  d == Device::cpu ? kc::adamw_update(a, n, p, g, m, v) : kcu::adamw_update(a, n, p, g, m, v);
}

}  // namespace hotlap::dispatch
