// Batch normalisation on the GPU, NHWC: x is [rows = N*H*W, c] with the channel fastest.
//
// Every kernel has blocks of 32 x 8 threads: threadIdx.x walks 32 consecutive channels, so a warp
// reads 128 contiguous bytes of one row (one fully used memory transaction); threadIdx.y walks rows.
// That is the coalesced direction for NHWC: a thread per channel looping over rows, never a thread
// per row looping over channels.
//
// Training forward, three launches:
//   1. batch_norm_channel_sums_kernel: grid (c/32 channel tiles, S row splits). Each thread sums
//      d = x - x[0, j] and d^2 over every 8th row of its split (fp32, 4 loads in flight), the 8
//      row lanes are added in shared memory in lane order, and each block writes one partial sum
//      per channel: [S][2][c]. S is chosen from the shape alone (batch_norm_math.h) so that there
//      are ~1024 blocks; no atomics, so the order of every addition is fixed: deterministic.
//   2. batch_norm_finalize_forward_kernel: a thread per channel adds the S partials in order, in
//      double, and forms mean, invstd, the running statistics (unbiased variance) and the scale
//      exactly as kernels/cpu/batch_norm.cpp does (shifted sums; mean kept as an fp32 pair).
//   3. batch_norm_normalize_kernel: y = ((x - mean) - mean_lo) * (gamma * invstd) + beta, then the
//      fused epilogue (+ residual, ReLU) in the same pass.
// Backward: the same sums over (x - save_mean, dy) -> [S][3][c]; a per-channel finalize that
// accumulates dgamma, dbeta and forms the dx coefficients; one element-wise pass for dx.
// Eval forward and backward are one element-wise pass each (plus the sums for dgamma, dbeta).
//
// Rounding: the per-thread maths is kernels/cuda/batch_norm_math.h and the statistics come from the
// CPU's own function (kernels/batch_norm_statistics.h); this file is built with -fmad=false and the
// CPU's with -ffp-contract=off (CMakeLists.txt), so neither fuses a multiply and an add. Given the
// same statistics every element is the CPU's to the bit: eval forward and the eval backward's dx
// are (the GPU tests check it). The training statistics are sums in another order (fp32 per
// thread, double across splits; double per row block on the CPU), so training results agree to
// fp32 rounding, ~1e-6 relative, and exactly with the host emulation of tests/kernels/
// test_cuda_launch.cpp, which runs this arithmetic in this order.
//
// The partial sums and the per-channel coefficients between the launches live in a workspace the
// caller owns and passes in (a block from its caching allocator, say; kernels/ allocates nothing).
// Its layout per entry point, and so its size, comes from the shape alone (batch_norm_math.h): the
// *_workspace_bytes queries in kernels/batch_norm.h give it. For ResNet-50 at batch 64 it is at most
// 426 KB (the backward of a 2048-channel layer: 16 splits x 3 sums + 4 coefficients, x 2048
// floats), next to activations of up to 206 MB.
//
// ResNet-50 layer1 at batch 64: x is [64*56*56, 256] = 51.4M floats = 206 MB. Training forward
// reads x twice (the second read comes from HBM again: 206 MB does not fit the 50 MB L2) and
// writes y: 617 MB (823 MB with the fused residual read), ~7 FLOPs an element (0.36 GFLOP): 0.6
// FLOP/byte against the H100's ~20 (67 TFLOP/s fp32 over 3.35 TB/s), so memory-bound, 184 us at
// peak bandwidth. Backward reads x and dy twice and writes dx: 1.03 GB, 307 us at peak. Expected:
// 70-80% of the 3.35 TB/s, like a well-coalesced copy with scalar loads; the three launches
// (~3 us each) matter only at small batches, where every kernel here is launch-bound.
//
// bf16 activations (the *_bf16 entry points): the same kernels, templated on the storage type T of
// x, y, dy, dx and the residual (kernels/cuda/storage.h): loads widen to fp32, all arithmetic and
// every sum stay fp32 (the splits in double), stores round to bf16. gamma, beta and the statistics
// are fp32 either way. Every byte count above halves: layer1's training forward moves 309 MB (412
// with the residual), 92 us at peak; still memory-bound (1.2 FLOP/byte).
#include <cuda_runtime.h>

#include "kernels/batch_norm.h"
#include "kernels/cuda/batch_norm_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/storage.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"

namespace hotlap::kernels::cuda {

namespace {

constexpr int kPerChannelThreads = 256;

// ---- kernels -------------------------------------------------------------------------------------

// partial[split][q][j] for q in {d, second} (forward) or {d, second, dy} (backward): see
// channel_sums_thread. shift[j] is subtracted from x (x's first row forward, a mean backward).
// shift: float (a mean) or T (x's first row).
template <bool kWithDy, typename T, typename Shift>
__global__ void batch_norm_channel_sums_kernel(const T* x, const T* dy, const Shift* shift,
                                              int64_t rows, int64_t c, int64_t rows_per_split,
                                              float* partial) {
  constexpr int kQuantities = kWithDy ? 3 : 2;
  __shared__ float lanes[kQuantities][kBnRowLanes][kBnChannelTile];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kBnChannelTile + threadIdx.x;
  const int64_t split = blockIdx.y;
  const int64_t row_begin = split * rows_per_split;
  const int64_t row_end = min(rows, row_begin + rows_per_split);
  ChannelSums s;
  if (j < c)
    s = channel_sums_thread<kWithDy>(x, dy, load_as_float(shift[j]), c, j, row_begin, row_end,
                                     static_cast<int>(threadIdx.y));
  lanes[0][threadIdx.y][threadIdx.x] = s.d;
  lanes[1][threadIdx.y][threadIdx.x] = s.second;
  if (kWithDy) lanes[kQuantities - 1][threadIdx.y][threadIdx.x] = s.dy;
  __syncthreads();
  if (threadIdx.y != 0 || j >= c) return;
  // The first row lane adds the 8 lanes in order: a fixed order, so a deterministic result.
  for (int q = 0; q < kQuantities; ++q) {
    float total = 0.0f;
    for (int lane = 0; lane < kBnRowLanes; ++lane) total += lanes[q][lane][threadIdx.x];
    partial[(split * kQuantities + q) * c + j] = total;
  }
}

template <typename T>
__global__ void batch_norm_finalize_forward_kernel(int64_t rows, int64_t c, int64_t splits,
                                                  const float* partial, const T* x,
                                                  const float* gamma, float eps, float momentum,
                                                  float* running_mean, float* running_var,
                                                  float* save_mean, float* save_invstd,
                                                  float* mean_lo, float* scale) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= c) return;
  batch_norm_finalize_forward_channel(j, rows, c, splits, partial, x, gamma, eps, momentum,
                                     running_mean, running_var, save_mean, save_invstd, mean_lo,
                                     scale);
}

__global__ void batch_norm_eval_scale_kernel(int64_t c, const float* gamma,
                                            const float* running_var, float eps, float* scale) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < c) scale[j] = batch_norm_eval_scale(gamma[j], running_var[j], eps);
}

__global__ void batch_norm_finalize_backward_kernel(int64_t rows, int64_t c, int64_t splits,
                                                   const float* partial, const float* gamma,
                                                   const float* save_invstd, float* dgamma,
                                                   float* dbeta, float* coef) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= c) return;
  batch_norm_finalize_backward_channel(j, rows, c, splits, partial, gamma, save_invstd, dgamma,
                                      dbeta, coef);
}

__global__ void batch_norm_finalize_backward_eval_kernel(int64_t c, int64_t splits,
                                                        const float* partial,
                                                        const float* running_var, float eps,
                                                        float* dgamma, float* dbeta) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= c) return;
  batch_norm_finalize_backward_eval_channel(j, c, splits, partial, running_var, eps, dgamma, dbeta);
}

// The element-wise passes share one loop: thread (x, y) of block (bx, by) takes channel
// j = 32 bx + x and rows r = 8 by + y + k * step (step = 8 * gridDim.y), kBnRowUnroll rows at a
// time, loading all of them before storing any (a store may alias a load of the same element, as
// when y == x, so the compiler could not reorder them for us).

// y = bn(x) [+ residual] [ReLU]. lo may be null (eval: the centre is a single float).
template <typename T>
__global__ void batch_norm_normalize_kernel(int64_t rows, int64_t c, const T* x,
                                           const float* hi, const float* lo, const float* scale,
                                           const float* bias, const T* residual, bool relu,
                                           T* y) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kBnChannelTile + threadIdx.x;
  if (j >= c) return;
  const float h = hi[j], l = lo != nullptr ? lo[j] : 0.0f, k = scale[j], b = bias[j];
  const bool has_residual = residual != nullptr;
  const int64_t step = static_cast<int64_t>(gridDim.y) * kBnRowLanes;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.y) * kBnRowLanes + threadIdx.y; r0 < rows;
       r0 += step * kBnRowUnroll) {
    float xv[kBnRowUnroll], rv[kBnRowUnroll];
#pragma unroll
    for (int u = 0; u < kBnRowUnroll; ++u) {
      const int64_t r = r0 + u * step;
      xv[u] = r < rows ? load_as_float(x[r * c + j]) : 0.0f;
      rv[u] = (has_residual && r < rows) ? load_as_float(residual[r * c + j]) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kBnRowUnroll; ++u) {
      const int64_t r = r0 + u * step;
      if (r < rows)
        store_rounded(&y[r * c + j], batch_norm_normalize_value(xv[u], h, l, k, b, has_residual, rv[u], relu));
    }
  }
}

// Training: dx = k * (dy - a - ((x - mean) - delta) * b), coef = {k, a, b, delta} [4][c].
template <typename T>
__global__ void batch_norm_dx_kernel(int64_t rows, int64_t c, const T* x, const T* dy,
                                    const float* save_mean, const float* coef, T* dx) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kBnChannelTile + threadIdx.x;
  if (j >= c) return;
  const float m = save_mean[j], k = coef[j], a = coef[c + j], b = coef[2 * c + j],
              delta = coef[3 * c + j];
  const int64_t step = static_cast<int64_t>(gridDim.y) * kBnRowLanes;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.y) * kBnRowLanes + threadIdx.y; r0 < rows;
       r0 += step * kBnRowUnroll) {
    float xv[kBnRowUnroll], gv[kBnRowUnroll];
#pragma unroll
    for (int u = 0; u < kBnRowUnroll; ++u) {
      const int64_t r = r0 + u * step;
      xv[u] = r < rows ? load_as_float(x[r * c + j]) : 0.0f;
      gv[u] = r < rows ? load_as_float(dy[r * c + j]) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kBnRowUnroll; ++u) {
      const int64_t r = r0 + u * step;
      if (r < rows) store_rounded(&dx[r * c + j], batch_norm_dx_value(xv[u], gv[u], m, k, a, b, delta));
    }
  }
}

// Eval: dx = dy * scale[j].
template <typename T>
__global__ void batch_norm_dx_eval_kernel(int64_t rows, int64_t c, const T* dy,
                                         const float* scale, T* dx) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kBnChannelTile + threadIdx.x;
  if (j >= c) return;
  const float k = scale[j];
  const int64_t step = static_cast<int64_t>(gridDim.y) * kBnRowLanes;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.y) * kBnRowLanes + threadIdx.y; r0 < rows;
       r0 += step * kBnRowUnroll) {
    float gv[kBnRowUnroll];
#pragma unroll
    for (int u = 0; u < kBnRowUnroll; ++u) {
      const int64_t r = r0 + u * step;
      gv[u] = r < rows ? load_as_float(dy[r * c + j]) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kBnRowUnroll; ++u) {
      const int64_t r = r0 + u * step;
      if (r < rows) store_rounded(&dx[r * c + j], gv[u] * k);
    }
  }
}

// ---- launch helpers --------------------------------------------------------------------------------

void check_shape(const char* op, const BatchNormShape& s) {
  HOTLAP_CHECK(s.rows >= 0 && s.c >= 0, op, ": bad shape rows=", s.rows, " c=", s.c,
               " (rows = N*H*W and c must be >= 0)");
  HOTLAP_CHECK(s.c <= kBnChannelTile * kMaxGridX && s.rows <= INT64_MAX / (s.c > 0 ? s.c : 1),
               op, ": shape too large rows=", s.rows, " c=", s.c);
}

// The workspace as floats, after checking it holds `layout` for shape s.
float* workspace_floats(const char* op, const char* query, const BatchNormShape& s,
                        BatchNormWorkspaceLayout layout, void* workspace, size_t workspace_bytes) {
  check_workspace(op, query, batch_norm_workspace_floats(s, layout) * sizeof(float), workspace,
                  workspace_bytes, "rows=", s.rows, " c=", s.c);
  return static_cast<float*>(workspace);
}

const dim3 kTileBlock(kBnChannelTile, kBnRowLanes);

dim3 per_channel_grid(int64_t c) {
  return dim3(static_cast<unsigned>(ceil_div(c, kPerChannelThreads)));
}

dim3 elementwise_grid(const BatchNormShape& s) {
  return dim3(static_cast<unsigned>(ceil_div(s.c, kBnChannelTile)),
              static_cast<unsigned>(batch_norm_row_blocks(s.rows)));
}

// Launches the channel sums (kWithDy: the backward's three) into the front of `partial`.
template <bool kWithDy, typename T, typename Shift>
void launch_channel_sums(const char* op, const BatchNormShape& s,
                         const BatchNormReductionPlan& plan, const T* x, const T* dy,
                         const Shift* shift, float* partial) {
  const dim3 grid(static_cast<unsigned>(plan.channel_tiles), static_cast<unsigned>(plan.splits));
  batch_norm_channel_sums_kernel<kWithDy, T, Shift><<<grid, kTileBlock, 0, compute_stream()>>>(
      x, dy, shift, s.rows, s.c, plan.rows_per_split, partial);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (channel sums) rows=", s.rows, " c=", s.c);
}

// ---- the entry points, for either storage type T of the activations --------------------------------

template <typename T>
void forward_train(const char* op, const BatchNormShape& s, const T* x, const float* gamma,
                   const float* beta, float eps, float momentum, float* running_mean,
                   float* running_var, T* y, float* save_mean, float* save_invstd,
                   const T* residual, bool relu, void* workspace, size_t workspace_bytes) {
  check_shape(op, s);
  HOTLAP_CHECK(s.rows > 1 || s.c == 0,
               "batch_norm: training needs more than one value per channel (rows = N*H*W = ", s.rows,
               ", c = ", s.c, "); use a batch larger than 1 or eval mode");
  float* partial =
      workspace_floats(op, "batch_norm_forward_train_workspace_bytes", s, kBnForwardTrainWorkspace,
                       workspace, workspace_bytes);
  if (s.c == 0) return;
  const BatchNormReductionPlan plan = batch_norm_reduction_plan(s.rows, s.c);
  float* mean_lo = partial + plan.splits * kBnForwardTrainWorkspace.quantities * s.c;
  float* scale = mean_lo + s.c;
  const cudaStream_t stream = compute_stream();

  // x's first row is the shift: a cheap guess of the mean (see kernels/cpu/batch_norm.cpp).
  launch_channel_sums<false>(op, s, plan, x, static_cast<const T*>(nullptr), x, partial);
  batch_norm_finalize_forward_kernel<<<per_channel_grid(s.c), kPerChannelThreads, 0, stream>>>(
      s.rows, s.c, plan.splits, partial, x, gamma, eps, momentum, running_mean, running_var,
      save_mean, save_invstd, mean_lo, scale);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (finalize) c=", s.c);
  batch_norm_normalize_kernel<<<elementwise_grid(s), kTileBlock, 0, stream>>>(
      s.rows, s.c, x, save_mean, mean_lo, scale, beta, residual, relu, y);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (normalize) rows=", s.rows, " c=", s.c);
}

template <typename T>
void forward_eval(const char* op, const BatchNormShape& s, const T* x, const float* gamma,
                  const float* beta, const float* running_mean, const float* running_var, float eps,
                  T* y, const T* residual, bool relu, void* workspace, size_t workspace_bytes) {
  check_shape(op, s);
  float* scale = workspace_floats(op, "batch_norm_forward_eval_workspace_bytes", s,
                                  kBnForwardEvalWorkspace, workspace, workspace_bytes);
  if (s.rows == 0 || s.c == 0) return;
  const cudaStream_t stream = compute_stream();
  batch_norm_eval_scale_kernel<<<per_channel_grid(s.c), kPerChannelThreads, 0, stream>>>(
      s.c, gamma, running_var, eps, scale);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (scale) c=", s.c);
  batch_norm_normalize_kernel<<<elementwise_grid(s), kTileBlock, 0, stream>>>(
      s.rows, s.c, x, running_mean, nullptr, scale, beta, residual, relu, y);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (normalize) rows=", s.rows, " c=", s.c);
}

template <typename T>
void backward(const char* op, const BatchNormShape& s, const T* x, const T* dy, const float* gamma,
              const float* save_mean, const float* save_invstd, T* dx, float* dgamma, float* dbeta,
              void* workspace, size_t workspace_bytes) {
  check_shape(op, s);
  float* partial = workspace_floats(op, "batch_norm_backward_workspace_bytes", s,
                                    kBnBackwardWorkspace, workspace, workspace_bytes);
  if (s.rows == 0 || s.c == 0) return;
  const BatchNormReductionPlan plan = batch_norm_reduction_plan(s.rows, s.c);
  float* coef = partial + plan.splits * kBnBackwardWorkspace.quantities * s.c;
  const cudaStream_t stream = compute_stream();

  launch_channel_sums<true>(op, s, plan, x, dy, save_mean, partial);
  batch_norm_finalize_backward_kernel<<<per_channel_grid(s.c), kPerChannelThreads, 0, stream>>>(
      s.rows, s.c, plan.splits, partial, gamma, save_invstd, dgamma, dbeta, coef);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (finalize) c=", s.c);
  batch_norm_dx_kernel<<<elementwise_grid(s), kTileBlock, 0, stream>>>(s.rows, s.c, x, dy,
                                                                       save_mean, coef, dx);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (dx) rows=", s.rows, " c=", s.c);
}

template <typename T>
void backward_eval(const char* op, const BatchNormShape& s, const T* x, const T* dy,
                   const float* gamma, const float* running_mean, const float* running_var,
                   float eps, T* dx, float* dgamma, float* dbeta, void* workspace,
                   size_t workspace_bytes) {
  check_shape(op, s);
  float* partial = workspace_floats(op, "batch_norm_backward_eval_workspace_bytes", s,
                                    kBnBackwardEvalWorkspace, workspace, workspace_bytes);
  if (s.rows == 0 || s.c == 0) return;
  const BatchNormReductionPlan plan = batch_norm_reduction_plan(s.rows, s.c);
  float* scale = partial + plan.splits * kBnBackwardEvalWorkspace.quantities * s.c;
  const cudaStream_t stream = compute_stream();
  if (dgamma != nullptr || dbeta != nullptr) {
    launch_channel_sums<true>(op, s, plan, x, dy, running_mean, partial);
    batch_norm_finalize_backward_eval_kernel<<<per_channel_grid(s.c), kPerChannelThreads, 0,
                                              stream>>>(s.c, plan.splits, partial, running_var,
                                                        eps, dgamma, dbeta);
    HOTLAP_CUDA_CHECK_LAUNCH(op, " (finalize) c=", s.c);
  }
  if (dx == nullptr) return;
  batch_norm_eval_scale_kernel<<<per_channel_grid(s.c), kPerChannelThreads, 0, stream>>>(
      s.c, gamma, running_var, eps, scale);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (scale) c=", s.c);
  batch_norm_dx_eval_kernel<<<elementwise_grid(s), kTileBlock, 0, stream>>>(s.rows, s.c, dy, scale,
                                                                           dx);
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (dx) rows=", s.rows, " c=", s.c);
}

}  // namespace

// fp32 activations.

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             const BatchNormEpilogue& epilogue, void* workspace,
                             size_t workspace_bytes) {
  forward_train("cuda::batch_norm_forward_train", s, x, gamma, beta, eps, momentum, running_mean,
                running_var, y, save_mean, save_invstd, epilogue.residual, epilogue.relu,
                workspace, workspace_bytes);
}

void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, const BatchNormEpilogue& epilogue,
                            void* workspace, size_t workspace_bytes) {
  forward_eval("cuda::batch_norm_forward_eval", s, x, gamma, beta, running_mean, running_var, eps, y,
               epilogue.residual, epilogue.relu, workspace, workspace_bytes);
}

void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dx, float* dgamma, float* dbeta, void* workspace,
                        size_t workspace_bytes) {
  backward("cuda::batch_norm_backward", s, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta,
           workspace, workspace_bytes);
}

void batch_norm_backward_eval(const BatchNormShape& s, const float* x, const float* dy,
                             const float* gamma, const float* running_mean,
                             const float* running_var, float eps, float* dx, float* dgamma,
                             float* dbeta, void* workspace, size_t workspace_bytes) {
  backward_eval("cuda::batch_norm_backward_eval", s, x, dy, gamma, running_mean, running_var, eps, dx,
                dgamma, dbeta, workspace, workspace_bytes);
}

// bf16 activations: the same templates on __nv_bfloat16.

void batch_norm_forward_train(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                  const float* beta, float eps, float momentum, float* running_mean,
                                  float* running_var, bfloat16* y, float* save_mean,
                                  float* save_invstd, const BatchNormEpilogueBf16& epilogue,
                                  void* workspace, size_t workspace_bytes) {
  forward_train("cuda::batch_norm_forward_train", s, device_bf16(x), gamma, beta, eps, momentum,
                running_mean, running_var, device_bf16(y), save_mean, save_invstd,
                device_bf16(epilogue.residual), epilogue.relu, workspace, workspace_bytes);
}

void batch_norm_forward_eval(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                 const float* beta, const float* running_mean,
                                 const float* running_var, float eps, bfloat16* y,
                                 const BatchNormEpilogueBf16& epilogue, void* workspace,
                                 size_t workspace_bytes) {
  forward_eval("cuda::batch_norm_forward_eval", s, device_bf16(x), gamma, beta, running_mean,
               running_var, eps, device_bf16(y), device_bf16(epilogue.residual), epilogue.relu,
               workspace, workspace_bytes);
}

void batch_norm_backward(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                             const float* gamma, const float* save_mean, const float* save_invstd,
                             bfloat16* dx, float* dgamma, float* dbeta, void* workspace,
                             size_t workspace_bytes) {
  backward("cuda::batch_norm_backward", s, device_bf16(x), device_bf16(dy), gamma, save_mean,
           save_invstd, device_bf16(dx), dgamma, dbeta, workspace, workspace_bytes);
}

void batch_norm_backward_eval(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                                  const float* gamma, const float* running_mean,
                                  const float* running_var, float eps, bfloat16* dx, float* dgamma,
                                  float* dbeta, void* workspace, size_t workspace_bytes) {
  backward_eval("cuda::batch_norm_backward_eval", s, device_bf16(x), device_bf16(dy), gamma,
                running_mean, running_var, eps, device_bf16(dx), dgamma, dbeta, workspace,
                workspace_bytes);
}

}  // namespace hotlap::kernels::cuda
