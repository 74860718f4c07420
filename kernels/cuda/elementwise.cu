// Element-wise kernels and the losses (regression, and the classifier's cross-entropy) on the GPU.
//
// Most ops are y[i] = op(a[i], b[i]): one generic grid-stride kernel (map_kernel) with a small
// functor per op. When every pointer is 16-byte aligned it moves float4s (one 16-byte load per
// operand per thread: 4x the bytes in flight of a scalar load, fewer instructions per byte), and
// the n % 4 tail goes element by element. Per-channel bias ops use the batch-norm tile layout
// (32 channels x 8 rows). The loss is a two-level reduction in double with a fixed shape: each
// block adds its elements, in a fixed tree, into one partial; one block adds the partials in order.
// No atomics: deterministic, and equal to the CPU's double sum up to the order of additions. The
// partials and the total live in a workspace the caller owns and passes in (at most 257 doubles,
// loss_workspace_bytes); kernels/ allocates nothing. Every other op gives the CPU's bits: the
// per-element maths is shared (elementwise_math.h), and this file, like the CPU's, is built without
// fused multiply-adds (CMakeLists.txt).
//
// ReLU after ResNet-50's stem at batch 64: 51.4M floats, 206 MB read + 206 MB written, 1 FLOP per
// 8 bytes: memory-bound, 123 us at the H100's 3.35 TB/s. With float4 accesses a streaming kernel
// like this reaches 85-90% of peak; add and add_relu (two reads, one write) the same.
// loss_forward returns the loss to the host, so it waits for the stream (the CPU contract); it is
// called once a step on a batch-sized vector, so the wait, not the kernel, is its cost.
//
// The classifier's cross-entropy: one block a row of logits (ImageNet's row is 1000 floats), which
// finds the row's max, sum of exponentials and sum of logits by the same fixed trees, in double;
// the rows' losses are then added by the loss's total kernel, and a bad label is flagged in the
// workspace for the host to name. Backward recomputes each row's max and sum rather than store a
// softmax. Batch 256 x 1000 classes: 1 MB read, a few microseconds: launch- and wait-bound too.
// (The cross-entropy kernels are compiled and checked against the CPU by "cuda cross_entropy" in
// tests/kernels/test_cuda_kernels.cpp, but have not run on a GPU yet.)
//
// bf16 activations (copy, add, accumulate, add_relu: the *_bf16 entry points; every activation of
// kernels/activation.h):
// the same map_kernel on bf16 storage (kernels/cuda/storage.h), 8-byte vectors of 4, fp32
// arithmetic, rounded once on store. Half the bytes: the ReLU above moves 206 MB, 62 us at peak.
#include <cuda_runtime.h>

#include <cstring>
#include <type_traits>

#include "kernels/activation.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise_math.h"
#include "kernels/cuda/storage.h"
#include "kernels/cuda_memory.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"

namespace hotlap::kernels::cuda {

namespace {

// ---- the generic element-wise kernel ----------------------------------------------------------

// Four elements of storage type T as one aligned vector access (16 bytes for float, 8 for bf16).
template <typename T>
struct alignas(4 * sizeof(T)) Vector4 {
  T v[4];
};

// y[i] = op(a[i], b[i]) for i < n, in fp32 whatever T; a null input reads as 0. The first `groups`
// vectors of 4 go as vectors (the host checked the alignment), the rest one by one. y may alias a
// or b: each element is read and written by the same thread.
template <typename T, typename Op>
__global__ void map_kernel(int64_t n, int64_t groups, const T* a, const T* b, T* y, Op op) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = first; g < groups; g += step) {
    Vector4<T> av{}, bv{}, yv;
    if (a != nullptr) av = reinterpret_cast<const Vector4<T>*>(a)[g];
    if (b != nullptr) bv = reinterpret_cast<const Vector4<T>*>(b)[g];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      store_rounded(&yv.v[k], op(a != nullptr ? load_as_float(av.v[k]) : 0.0f,
                                 b != nullptr ? load_as_float(bv.v[k]) : 0.0f));
    reinterpret_cast<Vector4<T>*>(y)[g] = yv;
  }
  for (int64_t i = groups * 4 + first; i < n; i += step)
    store_rounded(&y[i], op(a != nullptr ? load_as_float(a[i]) : 0.0f,
                            b != nullptr ? load_as_float(b[i]) : 0.0f));
}

struct FillOp {
  float value;
  __device__ float operator()(float, float) const { return value; }
};
struct CopyOp {
  __device__ float operator()(float a, float) const { return a; }
};
struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct ScaleOp {
  float alpha;
  __device__ float operator()(float a, float) const { return alpha * a; }
};
template <typename Act>
struct ActivationOp {
  __device__ float operator()(float x, float) const { return Act::forward(x); }
};
template <typename Act>
struct ActivationBackwardOp {  // a = the saved forward output or input, b = dy
  __device__ float operator()(float saved, float dy) const { return Act::backward(saved, dy); }
};
struct AddReluOp {
  __device__ float operator()(float a, float b) const { return Relu::forward(a + b); }
};
struct LossGradOp {  // a = pred, b = target
  LossKind kind;
  float beta, k;
  __device__ float operator()(float p, float t) const { return loss_grad(kind, p, t, beta, k); }
};

template <typename T, typename Op>
void launch_map(const char* op_name, int64_t n, const T* a, const T* b, T* y, Op op) {
  HOTLAP_CHECK(n >= 0, op_name, ": negative length n=", n);
  if (n == 0) return;
  const int64_t groups = vector4_groups(n, sizeof(T), {a, b, y});
  const int64_t blocks = elementwise_blocks(groups > 0 ? groups : n);
  map_kernel<<<static_cast<unsigned>(blocks), kElementwiseThreads, 0, compute_stream()>>>(
      n, groups, a, b, y, op);
  HOTLAP_CUDA_CHECK_LAUNCH(op_name, " n=", n);
}

// ---- per-channel bias ---------------------------------------------------------------------------

constexpr int kChannelTile = 32, kRowLanes = 8;

// y[r, j] += bias[j]: block (32 channels, 8 rows), grid-stride over rows.
__global__ void bias_add_kernel(int64_t rows, int64_t c, const float* bias, float* y) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kChannelTile + threadIdx.x;
  if (j >= c) return;
  const float b = bias[j];
  const int64_t step = static_cast<int64_t>(gridDim.y) * kRowLanes;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * kRowLanes + threadIdx.y; r < rows; r += step)
    y[r * c + j] += b;
}

// dbias[j] += sum_r dy[r, j]: one block per 32 channels, its 8 row lanes summing every 8th row in
// double, then added in lane order. Only ceil(c/32) blocks: right for a linear layer's bias (rows =
// the batch); a bias over N*H*W rows would want batch norm's split reduction.
__global__ void bias_backward_kernel(int64_t rows, int64_t c, const float* dy, float* dbias) {
  __shared__ double lanes[kRowLanes][kChannelTile];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kChannelTile + threadIdx.x;
  double s = 0.0;
  if (j < c)
    for (int64_t r = threadIdx.y; r < rows; r += kRowLanes) s += dy[r * c + j];
  lanes[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || j >= c) return;
  double total = 0.0;
  for (int lane = 0; lane < kRowLanes; ++lane) total += lanes[lane][threadIdx.x];
  dbias[j] = static_cast<float>(dbias[j] + total);
}

// ---- loss reduction -------------------------------------------------------------------------------

// Adds the kLossThreads values of `shared` in a fixed tree (stride halving): thread 0 gets the sum.
__device__ double block_sum(double* shared) {
  for (int stride = kLossThreads / 2; stride > 0; stride /= 2) {
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
  }
  __syncthreads();
  return shared[0];
}

// partial[block] = sum of loss_term over the elements this block's threads visit (grid-stride).
__global__ void loss_partial_kernel(LossKind kind, int64_t n, const float* pred,
                                    const float* target, double beta, double* partial) {
  __shared__ double shared[kLossThreads];
  double s = 0.0;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kLossThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kLossThreads + threadIdx.x; i < n; i += step)
    s += loss_term(kind, pred[i], target[i], beta);
  shared[threadIdx.x] = s;
  const double total = block_sum(shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// One block: total = sum of the partials, each thread taking every kLossThreads-th, then the tree.
__global__ void loss_total_kernel(int64_t blocks, const double* partial, double* total) {
  __shared__ double shared[kLossThreads];
  double s = 0.0;
  for (int64_t b = threadIdx.x; b < blocks; b += kLossThreads) s += partial[b];
  shared[threadIdx.x] = s;
  const double sum = block_sum(shared);
  if (threadIdx.x == 0) *total = sum;
}

// ---- softmax cross-entropy: one block a row --------------------------------------------------------

// The largest of the kLossThreads values of `shared`, by the same fixed tree as block_sum.
__device__ double block_max(double* shared) {
  for (int stride = kLossThreads / 2; stride > 0; stride /= 2) {
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < stride)
      shared[threadIdx.x] = fmax(shared[threadIdx.x], shared[threadIdx.x + stride]);
  }
  __syncthreads();
  return shared[0];
}

// This block's row of logits: its max and sum_j exp(x_j - max), in double (kernels/elementwise.h),
// and, when `total` is given, sum_j x_j. Every thread gets the results.
__device__ void row_softmax(int64_t classes, const float* x, double& max, double& sum, double* total) {
  __shared__ double shared[kLossThreads];
  double m = -INFINITY;
  for (int64_t j = threadIdx.x; j < classes; j += kLossThreads) m = fmax(m, static_cast<double>(x[j]));
  shared[threadIdx.x] = m;
  max = block_max(shared);
  double s = 0.0, t = 0.0;
  for (int64_t j = threadIdx.x; j < classes; j += kLossThreads) {
    s += exp(static_cast<double>(x[j]) - max);
    t += x[j];
  }
  __syncthreads();  // every thread has read the max before shared is written again
  shared[threadIdx.x] = s;
  sum = block_sum(shared);
  if (total == nullptr) return;
  __syncthreads();
  shared[threadIdx.x] = t;
  *total = block_sum(shared);
}

// row_loss[row] for the block's row; the row + 1 of a bad label into *bad (the largest such).
__global__ void cross_entropy_rows_kernel(int64_t classes, const float* logits, const float* labels,
                                          double smoothing, double* row_loss, unsigned long long* bad) {
  const int64_t row = blockIdx.x;
  const float* x = logits + row * classes;
  double max = 0.0, sum = 0.0, total = 0.0;
  row_softmax(classes, x, max, sum, &total);
  if (threadIdx.x != 0) return;
  const float label = labels[row];
  if (!is_class_index(label, classes)) {
    atomicMax(bad, static_cast<unsigned long long>(row + 1));
    row_loss[row] = 0.0;
    return;
  }
  const double lse = max + log(sum);
  row_loss[row] = lse - (1.0 - smoothing) * x[static_cast<int64_t>(label)] -
                  smoothing / static_cast<double>(classes) * total;
}

// dlogits for the block's row (labels checked by the forward pass that preceded it).
__global__ void cross_entropy_backward_kernel(int64_t classes, const float* logits, const float* labels,
                                              double smoothing, double scale, float* dlogits) {
  const int64_t row = blockIdx.x;
  const float* x = logits + row * classes;
  double max = 0.0, sum = 0.0;
  row_softmax(classes, x, max, sum, nullptr);
  const int64_t y = static_cast<int64_t>(labels[row]);
  const double each = smoothing / static_cast<double>(classes);
  for (int64_t j = threadIdx.x; j < classes; j += kLossThreads) {
    const double p = exp(static_cast<double>(x[j]) - max) / sum;
    dlogits[row * classes + j] = static_cast<float>(scale * (p - each - (j == y ? 1.0 - smoothing : 0.0)));
  }
}

void check_cross_entropy(const char* op, int64_t rows, int64_t classes, float smoothing) {
  check_cross_entropy_args(op, rows, classes, smoothing);
  HOTLAP_CHECK(rows <= kMaxGridX, op, ": ", rows, " rows, more than one launch takes (", kMaxGridX, ")");
}

void check_loss(const char* op, int64_t n, float beta, LossKind kind) {
  HOTLAP_CHECK(n > 0, op, ": empty input (n=", n, "); a mean over zero elements is undefined");
  HOTLAP_CHECK(beta >= 0.0f, op, ": smooth-L1 beta must be >= 0, got ", beta);
  HOTLAP_CHECK(kind == LossKind::mse || kind == LossKind::l1 || kind == LossKind::smooth_l1, op,
               ": unknown loss kind ", static_cast<int>(kind));
}

}  // namespace

void fill(int64_t n, float value, float* y) {
  launch_map("cuda::fill", n, static_cast<const float*>(nullptr), static_cast<const float*>(nullptr), y,
             FillOp{value});
}
void copy(int64_t n, const float* x, float* y) {
  launch_map("cuda::copy", n, x, static_cast<const float*>(nullptr), y, CopyOp{});
}
void add(int64_t n, const float* a, const float* b, float* y) {
  launch_map("cuda::add", n, a, b, y, AddOp{});
}
void accumulate(int64_t n, const float* x, float* y) {
  launch_map("cuda::accumulate", n, x, y, y, AddOp{});
}
void scale(int64_t n, float alpha, const float* x, float* y) {
  launch_map("cuda::scale", n, x, static_cast<const float*>(nullptr), y, ScaleOp{alpha});
}
void add_relu_forward(int64_t n, const float* a, const float* b, float* y) {
  launch_map("cuda::add_relu_forward", n, a, b, y, AddReluOp{});
}

// bf16 storage, the same ops.
void copy(int64_t n, const bfloat16* x, bfloat16* y) {
  launch_map("cuda::copy", n, device_bf16(x), static_cast<const __nv_bfloat16*>(nullptr),
             device_bf16(y), CopyOp{});
}
void add(int64_t n, const bfloat16* a, const bfloat16* b, bfloat16* y) {
  launch_map("cuda::add", n, device_bf16(a), device_bf16(b), device_bf16(y), AddOp{});
}
void accumulate(int64_t n, const bfloat16* x, bfloat16* y) {
  launch_map("cuda::accumulate", n, device_bf16(x), device_bf16(y), device_bf16(y), AddOp{});
}
void add_relu_forward(int64_t n, const bfloat16* a, const bfloat16* b, bfloat16* y) {
  launch_map("cuda::add_relu_forward", n, device_bf16(a), device_bf16(b), device_bf16(y),
             AddReluOp{});
}

// Every activation (kernels/activation.h), either storage: the map kernel with the activation's maths.
namespace {
inline const float* device_storage(const float* p) { return p; }
inline float* device_storage(float* p) { return p; }
inline const __nv_bfloat16* device_storage(const bfloat16* p) { return device_bf16(p); }
inline __nv_bfloat16* device_storage(bfloat16* p) { return device_bf16(p); }
}  // namespace

template <typename Act, typename T>
void activation_forward(int64_t n, const T* x, T* y) {
  using D = std::remove_pointer_t<decltype(device_storage(y))>;
  launch_map(Act::name, n, device_storage(x), static_cast<const D*>(nullptr), device_storage(y),
             ActivationOp<Act>{});
}
template <typename Act, typename T>
void activation_backward(int64_t n, const T* saved, const T* dy, T* dx) {
  launch_map(Act::name, n, device_storage(saved), device_storage(dy), device_storage(dx),
             ActivationBackwardOp<Act>{});
}
HOTLAP_ACTIVATIONS(HOTLAP_ACTIVATION_KERNELS)

void bias_add(int64_t rows, int64_t c, const float* bias, float* y) {
  HOTLAP_CHECK(rows >= 0 && c >= 0, "cuda::bias_add: bad shape rows=", rows, " c=", c);
  if (rows == 0 || c == 0) return;
  const dim3 grid(static_cast<unsigned>(ceil_div(c, kChannelTile)),
                  static_cast<unsigned>(std::clamp<int64_t>(ceil_div(rows, kRowLanes), 1, kMaxGridY)));
  bias_add_kernel<<<grid, dim3(kChannelTile, kRowLanes), 0, compute_stream()>>>(rows, c, bias, y);
  HOTLAP_CUDA_CHECK_LAUNCH("cuda::bias_add rows=", rows, " c=", c);
}

void bias_backward(int64_t rows, int64_t c, const float* dy, float* dbias) {
  HOTLAP_CHECK(rows >= 0 && c >= 0, "cuda::bias_backward: bad shape rows=", rows, " c=", c);
  if (rows == 0 || c == 0) return;
  bias_backward_kernel<<<static_cast<unsigned>(ceil_div(c, kChannelTile)),
                         dim3(kChannelTile, kRowLanes), 0, compute_stream()>>>(rows, c, dy, dbias);
  HOTLAP_CUDA_CHECK_LAUNCH("cuda::bias_backward rows=", rows, " c=", c);
}

double loss_forward(LossKind kind, int64_t n, const float* pred, const float* target, float beta,
                    void* workspace, size_t workspace_bytes) {
  constexpr const char* op = "cuda::loss_forward";
  check_loss(op, n, beta, kind);
  check_workspace(op, "loss_workspace_bytes", loss_workspace_doubles(n) * sizeof(double), workspace,
                  workspace_bytes, "n=", n);
  const int64_t blocks = loss_blocks(n);
  double* partial = static_cast<double*>(workspace);
  double* total = partial + blocks;
  const cudaStream_t stream = compute_stream();
  loss_partial_kernel<<<static_cast<unsigned>(blocks), kLossThreads, 0, stream>>>(
      kind, n, pred, target, static_cast<double>(beta), partial);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (partial sums) n=", n);
  loss_total_kernel<<<1, kLossThreads, 0, stream>>>(blocks, partial, total);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (total) n=", n);
  double sum = 0.0;
  copy_device_to_host(&sum, total, sizeof(double));
  return sum / static_cast<double>(n);
}

void loss_backward(LossKind kind, int64_t n, const float* pred, const float* target, float beta,
                   float grad_scale, float* dpred) {
  constexpr const char* op = "cuda::loss_backward";
  check_loss(op, n, beta, kind);
  // The factor as the CPU forms it: in double, rounded once (2x for the mse's derivative).
  const double norm = static_cast<double>(grad_scale) / static_cast<double>(n);
  const float k = static_cast<float>(kind == LossKind::mse ? 2.0 * norm : norm);
  launch_map(op, n, pred, target, dpred, LossGradOp{kind, beta, k});
}

double cross_entropy_forward(int64_t rows, int64_t classes, const float* logits, const float* labels,
                             float smoothing, void* workspace, size_t workspace_bytes) {
  constexpr const char* op = "cuda::cross_entropy_forward";
  check_cross_entropy(op, rows, classes, smoothing);
  check_workspace(op, "cross_entropy_workspace_bytes", cross_entropy_workspace_doubles(rows) * sizeof(double),
                  workspace, workspace_bytes, "rows=", rows);
  double* row_loss = static_cast<double*>(workspace);
  double* total = row_loss + rows;
  auto* bad = reinterpret_cast<unsigned long long*>(total + 1);
  const cudaStream_t stream = compute_stream();
  HOTLAP_CUDA_CHECK(cudaMemsetAsync(bad, 0, sizeof *bad, stream), op, " (clearing the label flag)");
  cross_entropy_rows_kernel<<<static_cast<unsigned>(rows), kLossThreads, 0, stream>>>(
      classes, logits, labels, static_cast<double>(smoothing), row_loss, bad);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (rows) rows=", rows, " classes=", classes);
  loss_total_kernel<<<1, kLossThreads, 0, stream>>>(rows, row_loss, total);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (total) rows=", rows);
  double host[2] = {0.0, 0.0};  // the total, then the flag
  copy_device_to_host(host, total, sizeof host);
  unsigned long long bad_row = 0;
  std::memcpy(&bad_row, &host[1], sizeof bad_row);
  HOTLAP_CHECK(bad_row == 0, op, ": the label of row ", bad_row - 1, " is not a class index in [0, ", classes, ")");
  return host[0] / static_cast<double>(rows);
}

void cross_entropy_backward(int64_t rows, int64_t classes, const float* logits, const float* labels,
                            float smoothing, float grad_scale, float* dlogits) {
  constexpr const char* op = "cuda::cross_entropy_backward";
  check_cross_entropy(op, rows, classes, smoothing);
  cross_entropy_backward_kernel<<<static_cast<unsigned>(rows), kLossThreads, 0, compute_stream()>>>(
      classes, logits, labels, static_cast<double>(smoothing),
      static_cast<double>(grad_scale) / static_cast<double>(rows), dlogits);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " rows=", rows, " classes=", classes);
}

}  // namespace hotlap::kernels::cuda
