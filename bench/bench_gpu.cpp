// GPU kernels at the pointer level, against their peaks, on ResNet-50 shapes at batch 64.
//
//   gpu_bn/<op>/<fp32|bf16>/<N>x<H>x<W>x<C>/<backend>
//                                       batch norm, the hand-written kernels (backend "cuda",
//                                       kernels/cuda/batch_norm.cu) against cuDNN ("cudnn"); ops:
//                                       forward_train, forward_train_add_relu (the fused residual +
//                                       ReLU epilogue), backward (training mode), forward_eval; on
//                                       fp32 or bf16 activations (half the bytes, same statistics).
//                                       Filter: --benchmark_filter=gpu_bn/
//   gpu_conv/<pass>/<math>/<H>x<W>x<C>-><K>/<R>x<S>s<stride>/<native|cudnn>   (batch 64)
//   gpu_conv_b128/...                                                          (the same at batch 128)
//                                       hotlap's convolution (native: the variant its entry points
//                                       choose, kernels/cuda/conv_math.h) against cuDNN, forward,
//                                       backward_data, backward_filter, in fp32, tf32
//                                       (kernels/math_mode.h) and bf16 (the *_bf16 entry points),
//                                       on every distinct convolution of ResNet-50 v1.5 at 224x224.
//                                       The bf16 table's cuDNN rows are cuDNN's bf16 convolution
//                                       (kernels/cudnn.h, fp32 sums).
//                                       Filter: --benchmark_filter=gpu_conv/ (one table:
//                                       gpu_conv/forward/tf32/, say)
//   gpu_conv_variant/<pass>/<math>/<shape>/<variant>                           (batch 64)
//                                       every tiled variant side by side, each named
//                                       (kernels/conv.h: ConvVariant): tiled and tiled_1x1 (fp32);
//                                       tf32 (register double buffer), tf32_async (cp.async) and
//                                       tf32_1x1; bf16 and bf16_1x1. The *_1x1 rows only on the 1x1
//                                       stride-1 shapes. Filter: --benchmark_filter=gpu_conv_variant/
//
// Timing. Every kernel is queued on the one compute stream and the calls return before the GPU is
// done, so timing the host call alone measures the launch, not the kernel; a synchronize after
// every call adds its latency (and the next launch's) to every call, a large part of a 7x7 layer's
// ~20 us. So the timed unit is a batch of `calls` back-to-back calls followed by ONE synchronize,
// timed with the host's steady clock from before the first launch to the synchronize's return (the
// stream is idle at the start: the previous batch ended with a synchronize):
//
//   while (state.KeepRunningBatch(calls)) {
//     t0; calls x op(); synchronize(); t1; state.SetIterationTime(t1 - t0);
//   }
//
// UseManualTime with KeepRunningBatch makes the reported time per call = batch time / calls. While
// the GPU works through the batch the host queues the rest, so the GPU never waits on the host
// (each call is 1-3 launches, a few us of host time, against >= ~13 us of GPU time for the
// smallest case here); what is left over is one launch latency and one synchronize (~10 us) a
// batch, which `calls` makes <= 1% (below). No CUDA events: this file is plain host C++ on
// kernels/cuda_memory.h. Before timing, every case runs its op twice and synchronizes (module
// loading, cuDNN's algorithm choice and its cache, first touch of the memory).
//
// What is counted, per call:
//   batch norm  T = rows * c * 4 bytes, one activation tensor. The passes as kernels/cuda/
//               batch_norm.cu counts them (the per-channel vectors, c floats each, are left out):
//                 forward_train          reads x twice, writes y                 3T
//                 forward_train_add_relu reads x twice and the residual, writes y 4T
//                 backward               reads x and dy twice, writes dx        5T
//                 forward_eval           reads x, writes y                       2T
//               cuDNN is charged the same bytes, so its "bytes/s" is an effective bandwidth (the
//               time ratio of the two backends), not what its kernels move: its fused epilogue,
//               for one, is a second pass over y (kernels/cudnn.h). bytes/s against the H100 SXM's
//               3.35 TB/s HBM3: peak%. ResNet-50's 64x56x56x256 tensor is 206 MB, far over the
//               50 MB L2; the 7x7x2048 one is 25.7 MB, so its passes can be partly served from L2
//               and may show more than HBM gives.
//   convolution FLOPs = 2 * N*P*Q * K * R*S*C per pass (kernels/conv.h), for all three passes.
//               peak% against ~67 TFLOP/s (fp32 on the FMA units, H100 SXM), ~495 TFLOP/s (TF32
//               tensor cores, dense) or ~989 TFLOP/s (bf16 tensor cores, dense). The label names the algorithm cuDNN's heuristics chose
//               (kernels/cudnn.h: no timing runs), its math type and workspace; in_net is how many
//               times ResNet-50 has the shape (of its 53 convolutions).
// Counters: bytes or FLOP per call, bytes/s or FLOP/s (a rate: per call x iterations / time,
// printed with an SI prefix: "2.51T/s" is 2.51 TB/s), peak% (computed from the same totals).
//
// Budget. Batch size: `calls` = ceil(2 ms / the call's time at peak), clamped to [2, 64], so a
// batch takes >= ~2 ms and the per-batch overhead stays <= ~1%. MinTime 0.05 s of measured time a
// case; Google Benchmark reaches it in ~3 rounds (1 batch, ~10 batches, then enough for 1.4x the
// min time), ~0.1 s of GPU time, plus ~0.05 s of setup (cudaMalloc, filling a tensor of up to
// 206 MB over PCIe, warm-up, cudaFree). 40 batch-norm cases + 414 convolution cases at batch 64
// (23 shapes x 3 passes x 3 precisions x 2 backends) at ~0.15-0.2 s: ~70-90 s for the default
// gpu_bn/|gpu_conv/ filter on an H100, plus the CUDA context and cuDNN's library loading (~1-2 s);
// the batch-128 and the per-variant tables are as many again each. Memory: at most ~1 GB a case (batch-norm
// backward on 64x56x56x256: x, y, dy, dx of 206 MB; a convolution's x, w, y and workspace, capped
// at 256 MB by kernels/cudnn.h). These estimates come from the peaks above: this file was written
// and built on a machine without a GPU, where none of these figures was ever measured; the files
// in bench/results/ say on which device a result was taken.
//
// Without a GPU (kernels::cuda_device_count() == 0; or a build without CUDA, or without cuDNN for
// the cuDNN cases) every case calls SkipWithError before it allocates anything; the binary still
// exits 0 (Google Benchmark 1.7 has no SkipWithMessage; an errored case does not change the exit
// status), so the CPU suites run as before.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/conv.h"
#include "kernels/cuda_memory.h"
#include "kernels/cudnn.h"
#include "kernels/device.h"
#include "kernels/math_mode.h"

namespace {

namespace kernels = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace gpu = hotlap::kernels::cuda;
using kernels::BatchNormEpilogue;
using kernels::BatchNormShape;
using kernels::ConvShape;
using kernels::MathMode;
using kernels::cudnn::ConvPass;

// H100 SXM5 peaks.
constexpr double kPeakBytesPerSecond = 3.35e12;  // HBM3
constexpr double kPeakFp32FlopsPerSecond = 67e12;  // fp32 on the FMA units (non-tensor)
constexpr double kPeakTf32FlopsPerSecond = 495e12;  // TF32 tensor cores, dense
constexpr double kPeakBf16FlopsPerSecond = 989e12;  // bf16 tensor cores, dense

constexpr double kMinTime = 0.05;          // seconds of measured time per case
constexpr double kBatchSeconds = 2e-3;     // one batch of calls at peak speed

// ---- the device, once ---------------------------------------------------------------------------

// Empty when the cases can run, else why not (for SkipWithError).
const std::string& gpu_unavailable() {
  static const std::string reason = [] {
    if (!kernels::cuda_compiled()) return std::string("no CUDA device: built without CUDA");
    if (kernels::cuda_device_count() == 0) {
      std::string summary = kernels::cuda_device_summary();
      const std::string prefix = "no CUDA device";
      if (summary.rfind(prefix, 0) == 0) summary = summary.substr(prefix.size());
      while (!summary.empty() && (summary[0] == ' ' || summary[0] == ':' || summary[0] == '('))
        summary.erase(0, 1);
      if (!summary.empty() && summary.back() == ')') summary.pop_back();
      return "no CUDA device: " + (summary.empty() ? std::string("cudaGetDeviceCount found none")
                                                   : summary);
    }
    return std::string();
  }();
  return reason;
}

// Skips the case (before it allocates anything) when it cannot run; true when skipped.
bool skip_without_gpu(benchmark::State& state, bool needs_cudnn) {
  if (!gpu_unavailable().empty()) {
    state.SkipWithError(gpu_unavailable().c_str());
    return true;
  }
  if (needs_cudnn && !kernels::cudnn_compiled()) {
    state.SkipWithError("built without the cuDNN/cuBLAS backend (HOTLAP_CUDNN=OFF)");
    return true;
  }
  return false;
}

// ---- device memory ------------------------------------------------------------------------------

// One device allocation of floats (or bytes), freed at the end of the case.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes)
      // At least 256 bytes, so an empty workspace is still a valid, aligned pointer.
      : ptr_(gpu::device_allocate(std::max<size_t>(bytes, 256))), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer() {
    try {
      gpu::device_free(ptr_);
    } catch (const std::exception&) {
      // Only after a kernel fault (a sticky CUDA error), which the case has already reported.
    }
  }

  float* f() const { return static_cast<float*>(ptr_); }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Fills `count` floats with uniform values in [lo, hi): a block of up to 1M values made on the host
// and copied over and over (random data rather than a constant: tensor cores draw less power, and
// may clock higher, on constant data).
void fill_uniform(float* dst, size_t count, float lo, float hi, unsigned seed) {
  const size_t block = std::min<size_t>(count, size_t{1} << 20);
  std::vector<float> host(block);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& v : host) v = dist(rng);
  for (size_t done = 0; done < count; done += block)
    gpu::copy_host_to_device(dst + done, host.data(),
                             std::min(block, count - done) * sizeof(float));
}

DeviceBuffer random_buffer(size_t count, float lo, float hi, unsigned seed) {
  DeviceBuffer b(count * sizeof(float));
  fill_uniform(b.f(), count, lo, hi, seed);
  return b;
}

// `count` bf16 values (uniform in [lo, hi), then rounded; kernels/cast.h).
DeviceBuffer random_bf16_buffer(size_t count, float lo, float hi, unsigned seed) {
  const DeviceBuffer values = random_buffer(count, lo, hi, seed);
  DeviceBuffer b(count * sizeof(bfloat16));
  gpu::f32_to_bf16(static_cast<int64_t>(count), values.f(), static_cast<bfloat16*>(b.get()));
  gpu::synchronize("bench bf16 fill");  // before `values` is freed
  return b;
}

DeviceBuffer zero_buffer(size_t count) {
  DeviceBuffer b(count * sizeof(float));
  gpu::fill_bytes_async(b.get(), 0, count * sizeof(float));
  return b;
}

// ---- the timed loop -----------------------------------------------------------------------------

int calls_per_batch(double seconds_at_peak) {
  const double calls = std::ceil(kBatchSeconds / std::max(seconds_at_peak, 1e-9));
  return static_cast<int>(std::clamp(calls, 2.0, 64.0));
}

// Runs op twice untimed, then the batches; returns the measured seconds per call (0 when skipped).
template <typename Op>
double time_batches(benchmark::State& state, int calls, Op&& op) {
  try {
    op();
    op();
    gpu::synchronize("bench warm-up");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return 0.0;
  }
  double total_seconds = 0.0;
  int64_t total_calls = 0;
  while (state.KeepRunningBatch(calls)) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) op();
    gpu::synchronize("bench batch");
    const auto t1 = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    state.SetIterationTime(seconds);
    total_seconds += seconds;
    total_calls += calls;
  }
  return total_calls > 0 ? total_seconds / double(total_calls) : 0.0;
}

// The per-call amount (bytes or FLOP), its rate and the fraction of the peak.
void set_counters(benchmark::State& state, const char* amount_name, const char* rate_name,
                  double per_call, double seconds_per_call, double peak_per_second) {
  if (seconds_per_call <= 0.0) return;
  state.counters[amount_name] = benchmark::Counter(per_call);
  state.counters[rate_name] = benchmark::Counter(
      per_call, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["peak%"] =
      benchmark::Counter(100.0 * per_call / seconds_per_call / peak_per_second);
}

// ---- batch norm ---------------------------------------------------------------------------------

enum class BnOp { forward_train, forward_train_add_relu, backward, forward_eval };
enum class BnBackend { cuda, cudnn };

const char* bn_op_name(BnOp op) {
  switch (op) {
    case BnOp::forward_train: return "forward_train";
    case BnOp::forward_train_add_relu: return "forward_train_add_relu";
    case BnOp::backward: return "backward";
    case BnOp::forward_eval: return "forward_eval";
  }
  return "?";
}

// Activation tensors each pass reads or writes (kernels/cuda/batch_norm.cu's opening comment).
int bn_tensor_passes(BnOp op) {
  switch (op) {
    case BnOp::forward_train: return 3;
    case BnOp::forward_train_add_relu: return 4;
    case BnOp::backward: return 5;
    case BnOp::forward_eval: return 2;
  }
  return 0;
}

struct BnCase {
  const char* name;  // N x H x W x C
  BatchNormShape shape;
};

BnCase bn_case(const char* name, int64_t n, int64_t hw, int64_t c) {
  return {name, BatchNormShape{n * hw * hw, c}};
}

// The batch norms of ResNet-50 at batch 64, one per (spatial size, channels) class that matters.
const BnCase kBnCases[] = {
    bn_case("64x56x56x64", 64, 56, 64),     bn_case("64x56x56x256", 64, 56, 256),
    bn_case("64x28x28x512", 64, 28, 512),   bn_case("64x14x14x1024", 64, 14, 1024),
    bn_case("64x7x7x2048", 64, 7, 2048),
};

// The two backends behind one set of signatures (kernels/cudnn.h mirrors kernels/batch_norm.h), for
// activations stored as T: float, or bfloat16 (bf16: the overloads on bfloat16, the same workspaces).
template <class T>
struct BnApi {
  size_t (*forward_train_ws)(const BatchNormShape&);
  size_t (*forward_eval_ws)(const BatchNormShape&);
  size_t (*backward_ws)(const BatchNormShape&);
  void (*forward_train)(const BatchNormShape&, const T*, const float*, const float*, float, float, float*,
                        float*, T*, float*, float*, const kernels::BatchNormEpilogueOf<T>&, void*, size_t);
  void (*forward_eval)(const BatchNormShape&, const T*, const float*, const float*, const float*, const float*,
                       float, T*, const kernels::BatchNormEpilogueOf<T>&, void*, size_t);
  void (*backward)(const BatchNormShape&, const T*, const T*, const float*, const float*, const float*, T*,
                   float*, float*, void*, size_t);
};

template <class T>
BnApi<T> bn_api(BnBackend backend) {
  namespace dnn = kernels::cudnn;
  const bool cuda = backend == BnBackend::cuda;
  BnApi<T> api{cuda ? gpu::batch_norm_forward_train_workspace_bytes : dnn::batch_norm_forward_train_workspace_bytes,
               cuda ? gpu::batch_norm_forward_eval_workspace_bytes : dnn::batch_norm_forward_eval_workspace_bytes,
               cuda ? gpu::batch_norm_backward_workspace_bytes : dnn::batch_norm_backward_workspace_bytes,
               nullptr, nullptr, nullptr};
  // The overloads for T: each pointer's type picks the fp32 or the bf16 entry point.
  using Train = decltype(api.forward_train);
  using Eval = decltype(api.forward_eval);
  using Backward = decltype(api.backward);
  api.forward_train = cuda ? static_cast<Train>(gpu::batch_norm_forward_train) : static_cast<Train>(dnn::batch_norm_forward_train);
  api.forward_eval = cuda ? static_cast<Eval>(gpu::batch_norm_forward_eval) : static_cast<Eval>(dnn::batch_norm_forward_eval);
  api.backward = cuda ? static_cast<Backward>(gpu::batch_norm_backward) : static_cast<Backward>(dnn::batch_norm_backward);
  return api;
}

// Device activations of type T with random values (the statistics and parameters are always fp32).
template <class T>
DeviceBuffer random_activations(size_t count, float lo, float hi, unsigned seed) {
  return std::is_same_v<T, float> ? random_buffer(count, lo, hi, seed) : random_bf16_buffer(count, lo, hi, seed);
}

template <class T>
void bench_bn(benchmark::State& state, BatchNormShape s, BnOp op, BnBackend backend) {
  if (skip_without_gpu(state, backend == BnBackend::cudnn)) return;
  const BnApi<T> api = bn_api<T>(backend);
  const size_t n = size_t(s.rows * s.c), c = size_t(s.c);
  const double bytes = double(bn_tensor_passes(op)) * double(n) * sizeof(T);
  const float eps = 1e-5f, momentum = 0.1f;
  double seconds_per_call = 0.0;
  size_t workspace_bytes = 0;
  try {
    DeviceBuffer x = random_activations<T>(n, -2.0f, 2.0f, 1), gamma = random_buffer(c, 0.5f, 1.5f, 2),
                 beta = random_buffer(c, -0.5f, 0.5f, 3),
                 running_mean = random_buffer(c, -0.5f, 0.5f, 4),
                 running_var = random_buffer(c, 0.5f, 1.5f, 5), save_mean(c * sizeof(float)),
                 save_invstd(c * sizeof(float)), y(n * sizeof(T));
    DeviceBuffer residual, dy, dx, dgamma, dbeta;
    if (op == BnOp::forward_train_add_relu) residual = random_activations<T>(n, -1.0f, 1.0f, 6);
    if (op == BnOp::backward) {
      dy = random_activations<T>(n, -1.0f, 1.0f, 7);
      dx = DeviceBuffer(n * sizeof(T));
      dgamma = zero_buffer(c);
      dbeta = zero_buffer(c);
    }
    switch (op) {
      case BnOp::forward_train:
      case BnOp::forward_train_add_relu: workspace_bytes = api.forward_train_ws(s); break;
      case BnOp::backward:
        workspace_bytes = std::max(api.backward_ws(s), api.forward_train_ws(s));
        break;
      case BnOp::forward_eval: workspace_bytes = api.forward_eval_ws(s); break;
    }
    DeviceBuffer workspace(workspace_bytes);
    auto act = [](const DeviceBuffer& b) { return static_cast<T*>(b.get()); };
    kernels::BatchNormEpilogueOf<T> epilogue;
    if (op == BnOp::forward_train_add_relu) {
      epilogue.residual = act(residual);
      epilogue.relu = true;
    }
    auto forward_train = [&] {
      api.forward_train(s, act(x), gamma.f(), beta.f(), eps, momentum, running_mean.f(), running_var.f(), act(y),
                        save_mean.f(), save_invstd.f(), epilogue, workspace.get(), workspace_bytes);
    };
    if (op == BnOp::backward) {  // the saved statistics the backward pass reads
      forward_train();
      gpu::synchronize("bench batchnorm forward");
    }
    const int calls = calls_per_batch(bytes / kPeakBytesPerSecond);
    switch (op) {
      case BnOp::forward_train:
      case BnOp::forward_train_add_relu:
        seconds_per_call = time_batches(state, calls, forward_train);
        break;
      case BnOp::backward:
        seconds_per_call = time_batches(state, calls, [&] {
          api.backward(s, act(x), act(dy), gamma.f(), save_mean.f(), save_invstd.f(), act(dx), dgamma.f(),
                       dbeta.f(), workspace.get(), workspace_bytes);
        });
        break;
      case BnOp::forward_eval:
        seconds_per_call = time_batches(state, calls, [&] {
          api.forward_eval(s, act(x), gamma.f(), beta.f(), running_mean.f(), running_var.f(), eps, act(y), epilogue,
                           workspace.get(), workspace_bytes);
        });
        break;
    }
  } catch (const std::exception& e) {  // out of memory, a failed copy
    if (!state.error_occurred()) state.SkipWithError(e.what());
    return;
  }
  set_counters(state, "bytes", "bytes/s", bytes, seconds_per_call, kPeakBytesPerSecond);
  char label[96];
  std::snprintf(label, sizeof label, "rows=%lld c=%lld workspace=%.1f KB",
                static_cast<long long>(s.rows), static_cast<long long>(s.c),
                double(workspace_bytes) / 1024.0);
  state.SetLabel(label);
}

// ---- convolution --------------------------------------------------------------------------------

struct ConvCase {
  ConvShape shape;
  int in_net;  // how many of ResNet-50's 53 convolutions have this shape
  const char* where;
};

ConvShape conv_shape(int64_t hw, int64_t c, int64_t k, int64_t r, int64_t stride) {
  ConvShape s;
  s.n = 64;
  s.h = s.w = hw;
  s.c = c;
  s.k = k;
  s.r = s.s = r;
  s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = r / 2;  // 7x7: 3, 3x3: 1, 1x1: 0
  return s;
}

// Every distinct convolution of ResNet-50 v1.5 (stride on the 3x3 of a stage's first block) at
// 224x224, batch 64. Stage s (layer1-4) has width w = 64 << (s - 1) and output 4w; its first block
// reduces from the previous stage's output (64 after the stem and max pool, for layer1), the other
// blocks from 4w. Layer1's downsample (1x1 64->256, stride 1) has the expand's shape.
const ConvCase kConvCases[] = {
    {conv_shape(224, 3, 64, 7, 2), 1, "stem"},
    // layer1: 56x56, 3 blocks
    {conv_shape(56, 64, 64, 1, 1), 1, "layer1 reduce (block 1)"},
    {conv_shape(56, 256, 64, 1, 1), 2, "layer1 reduce"},
    {conv_shape(56, 64, 64, 3, 1), 3, "layer1 3x3"},
    {conv_shape(56, 64, 256, 1, 1), 4, "layer1 expand + downsample"},
    // layer2: 56x56 -> 28x28, 4 blocks
    {conv_shape(56, 256, 128, 1, 1), 1, "layer2 reduce (block 1)"},
    {conv_shape(56, 128, 128, 3, 2), 1, "layer2 3x3 (block 1)"},
    {conv_shape(56, 256, 512, 1, 2), 1, "layer2 downsample"},
    {conv_shape(28, 512, 128, 1, 1), 3, "layer2 reduce"},
    {conv_shape(28, 128, 128, 3, 1), 3, "layer2 3x3"},
    {conv_shape(28, 128, 512, 1, 1), 4, "layer2 expand"},
    // layer3: 28x28 -> 14x14, 6 blocks
    {conv_shape(28, 512, 256, 1, 1), 1, "layer3 reduce (block 1)"},
    {conv_shape(28, 256, 256, 3, 2), 1, "layer3 3x3 (block 1)"},
    {conv_shape(28, 512, 1024, 1, 2), 1, "layer3 downsample"},
    {conv_shape(14, 1024, 256, 1, 1), 5, "layer3 reduce"},
    {conv_shape(14, 256, 256, 3, 1), 5, "layer3 3x3"},
    {conv_shape(14, 256, 1024, 1, 1), 6, "layer3 expand"},
    // layer4: 14x14 -> 7x7, 3 blocks
    {conv_shape(14, 1024, 512, 1, 1), 1, "layer4 reduce (block 1)"},
    {conv_shape(14, 512, 512, 3, 2), 1, "layer4 3x3 (block 1)"},
    {conv_shape(14, 1024, 2048, 1, 2), 1, "layer4 downsample"},
    {conv_shape(7, 2048, 512, 1, 1), 2, "layer4 reduce"},
    {conv_shape(7, 512, 512, 3, 1), 2, "layer4 3x3"},
    {conv_shape(7, 512, 2048, 1, 1), 3, "layer4 expand"},
};

std::string conv_case_name(const ConvShape& s) {  // "56x56x64->64/3x3s1"
  return std::to_string(s.h) + "x" + std::to_string(s.w) + "x" + std::to_string(s.c) + "->" +
         std::to_string(s.k) + "/" + std::to_string(s.r) + "x" + std::to_string(s.s) + "s" +
         std::to_string(s.stride_h);
}

// cudnnMathType_t's values (cudnn_graph.h), for the label.
const char* cudnn_math_type_name(int math_type) {
  switch (math_type) {
    case 0: return "default";
    case 1: return "tensor_op";
    case 2: return "tensor_op_allow_conversion";
    case 3: return "fma";
  }
  return "?";
}

// Restores the process-wide math mode at the end of a case.
class MathModeScope {
 public:
  explicit MathModeScope(MathMode m) : saved_(kernels::math_mode()) { kernels::set_math_mode(m); }
  MathModeScope(const MathModeScope&) = delete;
  MathModeScope& operator=(const MathModeScope&) = delete;
  ~MathModeScope() { kernels::set_math_mode(saved_); }

 private:
  MathMode saved_;
};

// The precision of a convolution table: fp32 and tf32 are kernels::MathMode's (fp32 tensors); bf16
// runs the *_bf16 entry points on bf16 tensors.
enum class ConvPrecision { fp32, tf32, bf16 };

const char* conv_precision_name(ConvPrecision p) {
  switch (p) {
    case ConvPrecision::fp32: return "fp32";
    case ConvPrecision::tf32: return "tf32";
    case ConvPrecision::bf16: return "bf16";
  }
  return "?";
}

// Hotlap's own implicit-GEMM kernels (kernels/cuda/conv*.cu: the variant its entry points choose by
// shape and precision, or a named one) or cuDNN's, on the same shapes: the `native` and `cudnn`
// rows of a shape sit side by side.
enum class ConvBackend { native, cudnn };

// One convolution's device tensors for a pass, of element type T (float or bf16 bits); dw fp32.
template <class T>
struct ConvTensors {
  DeviceBuffer x, w, y, dy, dx, dw;
  ConvTensors(const ConvShape& s, ConvPass pass) {
    const size_t nx = size_t(s.n * s.h * s.w * s.c), nw = size_t(s.k * s.r * s.s * s.c),
                 ny = size_t(s.n * s.p() * s.q() * s.k);
    auto random = [](size_t count, float lo, float hi, unsigned seed) {
      return std::is_same_v<T, float> ? random_buffer(count, lo, hi, seed)
                                      : random_bf16_buffer(count, lo, hi, seed);
    };
    w = random(nw, -0.05f, 0.05f, 11);
    if (pass != ConvPass::backward_data) x = random(nx, -1.0f, 1.0f, 12);
    if (pass != ConvPass::forward) dy = random(ny, -1.0f, 1.0f, 13);
    if (pass == ConvPass::forward) y = DeviceBuffer(ny * sizeof(T));
    if (pass == ConvPass::backward_data) dx = DeviceBuffer(nx * sizeof(T));
    if (pass == ConvPass::backward_filter) dw = zero_buffer(nw);  // accumulates: fine for timing
  }
  T* get(const DeviceBuffer& b) const { return static_cast<T*>(b.get()); }
};

// One call of a hand-written variant on tensors of type T.
template <class T>
void run_native_conv(const ConvShape& s, ConvPass pass, kernels::cuda::ConvVariant v,
                     const ConvTensors<T>& t, const DeviceBuffer& ws) {
  namespace own = kernels::cuda;
  const size_t bytes = ws.bytes();
  if constexpr (std::is_same_v<T, float>) {
    switch (pass) {
      case ConvPass::forward:
        return own::conv2d_forward_variant(s, t.get(t.x), t.get(t.w), nullptr, t.get(t.y), ws.get(), bytes, v);
      case ConvPass::backward_data:
        return own::conv2d_backward_data_variant(s, t.get(t.dy), t.get(t.w), t.get(t.dx), ws.get(), bytes, v);
      case ConvPass::backward_filter:
        return own::conv2d_backward_filter_variant(s, t.get(t.x), t.get(t.dy), t.dw.f(), nullptr, ws.get(), bytes, v);
    }
  } else {
    switch (pass) {
      case ConvPass::forward:
        return own::conv2d_forward_variant(s, t.get(t.x), t.get(t.w), nullptr, t.get(t.y), ws.get(), bytes, v);
      case ConvPass::backward_data:
        return own::conv2d_backward_data_variant(s, t.get(t.dy), t.get(t.w), t.get(t.dx), ws.get(), bytes, v);
      case ConvPass::backward_filter:
        return own::conv2d_backward_filter_variant(s, t.get(t.x), t.get(t.dy), t.dw.f(), nullptr, ws.get(), bytes, v);
    }
  }
}

// One cuDNN call on tensors of type T: fp32 (its math type from kernels::math_mode()) or bf16.
template <class T>
void run_cudnn_conv(const ConvShape& s, ConvPass pass, const ConvTensors<T>& t, const DeviceBuffer& ws) {
  namespace dnn = kernels::cudnn;
  const size_t bytes = ws.bytes();
  if constexpr (std::is_same_v<T, float>) {
    switch (pass) {
      case ConvPass::forward:
        return dnn::conv2d_forward(s, t.get(t.x), t.get(t.w), nullptr, t.get(t.y), ws.get(), bytes);
      case ConvPass::backward_data:
        return dnn::conv2d_backward_data(s, t.get(t.dy), t.get(t.w), t.get(t.dx), ws.get(), bytes);
      case ConvPass::backward_filter:
        return dnn::conv2d_backward_filter(s, t.get(t.x), t.get(t.dy), t.dw.f(), nullptr, ws.get(), bytes);
    }
  } else {
    switch (pass) {
      case ConvPass::forward:
        return dnn::conv2d_forward(s, t.get(t.x), t.get(t.w), nullptr, t.get(t.y), ws.get(), bytes);
      case ConvPass::backward_data:
        return dnn::conv2d_backward_data(s, t.get(t.dy), t.get(t.w), t.get(t.dx), ws.get(), bytes);
      case ConvPass::backward_filter:
        return dnn::conv2d_backward_filter(s, t.get(t.x), t.get(t.dy), t.dw.f(), nullptr, ws.get(), bytes);
    }
  }
}

// variant: a named hand-written variant (the gpu_conv_variant/ table), else the entry points' own
// choice (native) or cuDNN.
void bench_conv(benchmark::State& state, ConvCase cc, ConvPass pass, ConvPrecision precision,
                ConvBackend backend, std::optional<kernels::cuda::ConvVariant> variant) {
  if (skip_without_gpu(state, backend == ConvBackend::cudnn)) return;
  namespace dnn = kernels::cudnn;
  namespace own = kernels::cuda;
  const bool native = backend == ConvBackend::native;
  const MathModeScope scope(precision == ConvPrecision::fp32   ? MathMode::fp32
                            : precision == ConvPrecision::tf32 ? MathMode::tf32
                                                               : MathMode::bf16);
  const ConvShape& s = cc.shape;
  const double flops = double(s.flops());
  const double peak = precision == ConvPrecision::fp32   ? kPeakFp32FlopsPerSecond
                      : precision == ConvPrecision::tf32 ? kPeakTf32FlopsPerSecond
                                                         : kPeakBf16FlopsPerSecond;
  const bool bf16 = precision == ConvPrecision::bf16;
  const own::ConvVariant chosen =
      variant ? *variant : bf16 ? own::conv2d_bf16_variant(s, pass) : own::conv2d_variant(s, pass);
  double seconds_per_call = 0.0;
  dnn::ConvAlgoChoice choice;
  try {
    if (!native) choice = bf16 ? dnn::conv2d_algorithm_bf16(s, pass) : dnn::conv2d_algorithm(s, pass);
    const DeviceBuffer workspace(native ? own::conv2d_workspace_bytes(s, pass, chosen)
                                 : bf16 ? dnn::conv2d_workspace_bytes_bf16(s, pass)
                                        : dnn::conv2d_workspace_bytes(s, pass));
    const int calls = calls_per_batch(flops / peak);
    auto time_on = [&](const auto& t) {
      return time_batches(state, calls, [&] {
        if (native)
          run_native_conv(s, pass, chosen, t, workspace);
        else
          run_cudnn_conv(s, pass, t, workspace);
      });
    };
    seconds_per_call = bf16 ? time_on(ConvTensors<bfloat16>(s, pass)) : time_on(ConvTensors<float>(s, pass));
  } catch (const std::exception& e) {  // out of memory, a cuDNN failure
    if (!state.error_occurred()) state.SkipWithError(e.what());
    return;
  }
  set_counters(state, "FLOP", "FLOP/s", flops, seconds_per_call, peak);
  state.counters["in_net"] = benchmark::Counter(cc.in_net);
  char label[160];
  if (native)
    std::snprintf(label, sizeof label, "%s; hotlap %s", cc.where, own::conv_variant_name(chosen));
  else
    std::snprintf(label, sizeof label, "%s; algo=%d math=%s%s workspace=%.1f MB %s", cc.where, choice.algo,
                  cudnn_math_type_name(choice.math_type), choice.deterministic ? " deterministic" : "",
                  double(choice.workspace_bytes) / (1024.0 * 1024.0), choice.searched ? "searched" : "heuristic");
  state.SetLabel(label);
}

// The hand-written variants of a precision that run a shape, for the gpu_conv_variant/ table.
std::vector<kernels::cuda::ConvVariant> tiled_variants(ConvPrecision p, const ConvShape& s) {
  using V = kernels::cuda::ConvVariant;
  std::vector<V> all;
  switch (p) {
    case ConvPrecision::fp32: all = {V::tiled, V::tiled_1x1}; break;
    case ConvPrecision::tf32: all = {V::tf32, V::tf32_async, V::tf32_1x1}; break;
    case ConvPrecision::bf16: all = {V::bf16, V::bf16_1x1}; break;
  }
  std::vector<V> runs;
  for (V v : all)
    if (!kernels::cuda::conv_variant_is_1x1(v) || s.is_pointwise()) runs.push_back(v);
  return runs;
}

// ---- registration -------------------------------------------------------------------------------

const bool registered = [] {
  for (BnOp op : {BnOp::forward_train, BnOp::forward_train_add_relu, BnOp::backward,
                  BnOp::forward_eval})
    for (bool bf16 : {false, true})
      for (const BnCase& bc : kBnCases)
        for (BnBackend backend : {BnBackend::cuda, BnBackend::cudnn}) {
          const std::string name = std::string("gpu_bn/") + bn_op_name(op) + "/" + (bf16 ? "bf16" : "fp32") +
                                   "/" + bc.name + "/" + (backend == BnBackend::cuda ? "cuda" : "cudnn");
          benchmark::RegisterBenchmark(name.c_str(), bf16 ? bench_bn<bfloat16> : bench_bn<float>, bc.shape, op,
                                       backend)
              ->Unit(benchmark::kMicrosecond)
              ->MinTime(kMinTime)
              ->UseManualTime();
        }
  auto register_conv = [](const std::string& name, const ConvCase& cc, ConvPass pass,
                          ConvPrecision precision, ConvBackend backend,
                          std::optional<kernels::cuda::ConvVariant> variant) {
    benchmark::RegisterBenchmark(name.c_str(), bench_conv, cc, pass, precision, backend, variant)
        ->Unit(benchmark::kMicrosecond)
        ->MinTime(kMinTime)
        ->UseManualTime();
  };
  for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter})
    for (ConvPrecision precision : {ConvPrecision::fp32, ConvPrecision::tf32, ConvPrecision::bf16})
      for (const ConvCase& base : kConvCases) {
        const std::string table = std::string(kernels::conv_pass_name(pass)) + "/" +
                                  conv_precision_name(precision) + "/";
        for (int64_t batch : {64, 128})  // batch 128: "gpu_conv_b128/", outside the default filter
          for (ConvBackend backend : {ConvBackend::native, ConvBackend::cudnn}) {
            ConvCase cc = base;
            cc.shape.n = batch;
            register_conv(std::string(batch == 64 ? "gpu_conv/" : "gpu_conv_b128/") + table +
                              conv_case_name(cc.shape) + "/" +
                              (backend == ConvBackend::native ? "native" : "cudnn"),
                          cc, pass, precision, backend, std::nullopt);
          }
        for (kernels::cuda::ConvVariant v : tiled_variants(precision, base.shape))
          register_conv("gpu_conv_variant/" + table + conv_case_name(base.shape) + "/" +
                            kernels::cuda::conv_variant_name(v),
                        base, pass, precision, ConvBackend::native, v);
      }
  return true;
}();

}  // namespace
