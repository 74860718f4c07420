// Convolution on the GPU, version 4: implicit GEMM on the tensor cores with a cp.async pipeline,
// NHWC/OHWI, no im2col buffer. One kernel template, two input precisions, two operand maps:
//   tf32_async  fp32 tensors, wmma m16n16k8 with TF32 inputs, fp32 sums
//   bf16        bf16 tensors, wmma m16n16k16 with bf16 inputs, fp32 sums; y and dx rounded once
//   tf32_1x1, bf16_1x1  the same on 1x1 stride-1 unpadded convolutions through the plain-GEMM
//               operand maps (conv_math.h: Forward1x1Gemm...): every copy's source is
//               row * ld + col, with none of the im2col or phase divisions
//
// Tiles (conv_tensor_core_math.h): a block of 256 threads computes a 128 x 64 output tile; the
// K-dim is walked 64 bytes of each operand row at a time (16 fp32 or 32 bf16 values). Each step a
// thread issues three 16-byte cp.async.cg copies (two of A's 8 KB, one of B's 4 KB) straight into
// shared memory, zero-filled (src-size 0) where the tile hangs over padding or the GEMM's edges,
// into the other of two stages while the warps multiply the current one; one __syncthreads a step.
// The tiles are stored in the order the operand lies in memory and read by wmma as row- or
// column-major fragments, so nothing is transposed. Operands whose runs are not 16-byte vectors
// (the stem's C = 3, K % 8 != 0 for bf16 dy, a misaligned view) are copied value by value through
// registers instead, into the same slots. 8 warps, 4 x 2, each a 32 x 32 slab: 2 x 2 fragments.
// The epilogue goes through shared memory (the fp32 tile) so that adjacent threads write adjacent
// channels; bias added, rounded once to the output type. Backward filter: split-K over blockIdx.z
// into fp32 partials summed in order (conv_reduce.cu), as in conv_tiled.cu; backward data: one
// grid layer per stride phase.
//
// Arithmetic intensity per block and K-step:
//   bf16  2 * 128*64*32 = 524,288 FLOPs for 12 KB copied from L2/HBM (43 FLOP/byte) and 44 KB of
//         shared-memory traffic (12 KB stored; each warp reads a 32x32 A and a 32x32 B slab,
//         4 KB, 32 KB in all): 11.6 FLOP/byte, against the H100's ~33 TB/s of shared-memory
//         bandwidth (132 SMs x 128 B/clock) a ~390 TFLOP/s ceiling, 40% of the ~989 TFLOP/s dense
//         bf16 peak.
//   tf32  half the FLOPs for the same bytes: 21 FLOP/byte of L2 traffic, 5.8 of shared memory, a
//         ~195 TFLOP/s ceiling, 40% of the ~495 TFLOP/s dense TF32 peak.
// HBM is not the limit: ResNet-50 layer3 3x3 (256 -> 256, 14x14) at batch 64 is 14.8 GFLOP on
// ~14 MB of bf16 x, w and y, ~1000 FLOP/byte, above the H100's ridge point of 989/3.35 = 295
// (206 on the H200's 4.8 TB/s).
//
// Aim, that layer: the shared-memory ceiling, wmma's fragment loads (no ldmatrix swizzle) and a
// pipeline only two stages deep should hold bf16 to 150-300 TFLOP/s (50-100 us) and TF32 to 80-150,
// 15-30% of the tensor cores' peak; cuDNN's kernels (wgmma, TMA, deeper pipelines) should stay
// well ahead. Every figure here is a prediction (docs/gpu.md: what has run on a GPU).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>
#include <type_traits>

#include "kernels/conv.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_launch.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/cuda/conv_tensor_core_math.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"

namespace hotlap::kernels::cuda {

namespace {

namespace wmma = nvcuda::wmma;

// ---- cp.async (sm_80+) -----------------------------------------------------------------------------

// 16 bytes from global to shared memory, bypassing L1 and the registers; with valid == false
// nothing is read and the 16 bytes are zeros (src-size 0).
__device__ __forceinline__ void copy16_async(void* smem, const void* global, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(global),
               "r"(src_bytes));
}
__device__ __forceinline__ void commit_async_copies() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void wait_async_copies() { asm volatile("cp.async.wait_group 0;\n" ::); }

// ---- the products ----------------------------------------------------------------------------------

// The wmma shape and input type of each precision.
template <class T>
struct TensorCoreInput;
template <>
struct TensorCoreInput<float> {
  static constexpr int kK = 8;
  using Precision = wmma::precision::tf32;
  using Stored = float;
};
template <>
struct TensorCoreInput<bfloat16> {
  static constexpr int kK = 16;
  using Precision = __nv_bfloat16;
  using Stored = __nv_bfloat16;
};

// Copies one operand tile of the step whose first K index is k0 (the block's first M or N index
// mn0) into shared memory: 16-byte cp.async copies where the operand's runs allow them, else value
// by value. kIsA: A (a_offset, runs along Gemm::kAAlongK) or B.
template <bool kIsA, class T, class Gemm>
__device__ __forceinline__ void copy_operand_tile(const Gemm& g, const ConvGemmBlock& blk,
                                                  const T* base, bool vec, T* tile, int mn0,
                                                  int k0) {
  constexpr AsyncOperandTile layout = kIsA ? async_a_tile<T, Gemm>() : async_b_tile<T, Gemm>();
  for (int v = static_cast<int>(threadIdx.x); v < layout.copies(); v += kConvAsyncThreads) {
    const AsyncSlot slot = layout.slot(v);
    const int mn = mn0 + slot.mn, k = k0 + slot.k;
    if (vec) {
      const int offset = kIsA ? g.a_offset(blk, mn, k) : g.b_offset(blk, k, mn);
      copy16_async(tile + slot.index, base + (offset < 0 ? 0 : offset), offset >= 0);
    } else {
#pragma unroll
      for (int i = 0; i < layout.width; ++i) {
        const int offset = kIsA ? a_run_offset(g, blk, mn, k, i) : b_run_offset(g, blk, k, mn, i);
        tile[slot.index + i] = offset < 0 ? T{} : base[offset];  // T{}: +0 in either type
      }
    }
  }
}

template <class T, class Gemm>
using AFragment = wmma::fragment<wmma::matrix_a, 16, 16, TensorCoreInput<T>::kK,
                                 typename TensorCoreInput<T>::Precision,
                                 std::conditional_t<Gemm::kAAlongK, wmma::row_major, wmma::col_major>>;
template <class T, class Gemm>
using BFragment = wmma::fragment<wmma::matrix_b, 16, 16, TensorCoreInput<T>::kK,
                                 typename TensorCoreInput<T>::Precision,
                                 std::conditional_t<Gemm::kBAlongK, wmma::col_major, wmma::row_major>>;
template <class T>
using AccFragment = wmma::fragment<wmma::accumulator, 16, 16, TensorCoreInput<T>::kK, float>;

template <class Fragment>
__device__ __forceinline__ void round_to_tf32(Fragment& f) {
#pragma unroll
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = wmma::__float_to_tf32(f.x[i]);
}

// acc += A B over one K-step, warp w's 32 x 32 slab. A's fragment (m, k) starts at a.index(m, k),
// B's (k, n) at b.index(n, k); a tile stored K-major is a row-major A / column-major B.
template <class T, class Gemm>
__device__ __forceinline__ void multiply_step(const T* as, const T* bs, int warp,
                                              AccFragment<T> (&acc)[2][2]) {
  using Stored = typename TensorCoreInput<T>::Stored;
  constexpr AsyncOperandTile a = async_a_tile<T, Gemm>(), b = async_b_tile<T, Gemm>();
  constexpr int kK = TensorCoreInput<T>::kK;
  const int wm = async_warp_row(warp), wn = async_warp_col(warp);
#pragma unroll
  for (int kk = 0; kk < a.tile_k; kk += kK) {
    AFragment<T, Gemm> fa[2];
    BFragment<T, Gemm> fb[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      wmma::load_matrix_sync(fa[i], reinterpret_cast<const Stored*>(as + a.index(wm + 16 * i, kk)),
                             a.ld());
      wmma::load_matrix_sync(fb[i], reinterpret_cast<const Stored*>(bs + b.index(wn + 16 * i, kk)),
                             b.ld());
      if constexpr (std::is_same_v<T, float>) {
        round_to_tf32(fa[i]);
        round_to_tf32(fb[i]);
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
  }
}

// One 128 x 64 output tile of the GEMM `g` (grid: conv_tiled_grid with the variant's tiles).
// out + blockIdx.z * out_z_stride receives it at g.out_offset: out = acc (+ bias[n]) rounded to
// Out, or out += acc when `accumulate` (fp32 out only).
template <class T, class Gemm, class Out>
__global__ void __launch_bounds__(kConvAsyncThreads)
    conv_tensor_core_kernel(Gemm g, ConvOperands<T> op, const float* bias, Out* out,
                            int64_t out_z_stride, bool accumulate) {
  constexpr int kStageBytes = async_stage_bytes<T, Gemm>();
  constexpr int kTileK = async_a_tile<T, Gemm>().tile_k;
  __shared__ __align__(128) unsigned char smem[async_smem_bytes<T, Gemm>()];
  const ConvGemmBlock blk = g.block(static_cast<int>(blockIdx.z));
  const int m0 = static_cast<int>(blockIdx.x) * kConvAsyncTileM;
  const int n0 = static_cast<int>(blockIdx.y) * kConvAsyncTileN;
  if (m0 >= blk.m_size) return;  // a stride phase with fewer pixels than phase 0: the whole block

  auto a_tile = [&](int stage) { return reinterpret_cast<T*>(smem + stage * kStageBytes); };
  auto b_tile = [&](int stage) {
    return reinterpret_cast<T*>(smem + stage * kStageBytes + async_a_bytes<T, Gemm>());
  };
  auto copy_step = [&](int stage, int k0) {
    copy_operand_tile<true>(g, blk, op.a, op.vec_a, a_tile(stage), m0, k0);
    copy_operand_tile<false>(g, blk, op.b, op.vec_b, b_tile(stage), n0, k0);
    commit_async_copies();
  };

  AccFragment<T> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int steps = (blk.k_end - blk.k_begin + kTileK - 1) / kTileK;  // the same for the block
  if (steps > 0) copy_step(0, blk.k_begin);
  for (int step = 0; step < steps; ++step) {
    const int stage = step % kConvAsyncStages;
    wait_async_copies();  // this thread's copies of `step` have landed...
    __syncthreads();      // ...and everyone's; every warp is also done with step - 1's stage
    if (step + 1 < steps) copy_step((step + 1) % kConvAsyncStages, blk.k_begin + (step + 1) * kTileK);
    multiply_step<T, Gemm>(a_tile(stage), b_tile(stage), warp, acc);
  }

  // The epilogue tile reuses the stages: wait until every warp has finished its last product.
  __syncthreads();
  float* sums = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(sums + (async_warp_row(warp) + 16 * i) * kConvAsyncOutLd +
                                  async_warp_col(warp) + 16 * j,
                              acc[i][j], kConvAsyncOutLd, wmma::mem_row_major);
  __syncthreads();
  const int col = async_out_col(static_cast<int>(threadIdx.x));
  const int n = n0 + col;
  if (n >= blk.n_size) return;
  const float b = bias != nullptr ? bias[n] : 0.0f;
  Out* tile_out = out + static_cast<int64_t>(blockIdx.z) * out_z_stride;
  for (int row = async_out_row(static_cast<int>(threadIdx.x)); row < kConvAsyncTileM;
       row += kConvAsyncOutRowStep) {
    const int m = m0 + row;
    if (m >= blk.m_size) break;
    const float v = sums[row * kConvAsyncOutLd + col] + b;
    Out* o = tile_out + g.out_offset(blk, m, n);
    if constexpr (std::is_same_v<Out, float>)
      *o = accumulate ? *o + v : v;
    else
      *o = conv_from_float<Out>(v);
  }
}

template <class T, class Gemm, class Out>
void launch_tensor_core(const char* op, const ConvShape& s, ConvPass pass, ConvVariant variant,
                        const Gemm& g, const ConvOperands<T>& operands, const float* bias, Out* out,
                        int64_t out_z_stride, bool accumulate) {
  const dim3 dims = conv_tiled_blocks(op, s, pass, conv_variant_tiles(variant));
  conv_tensor_core_kernel<T, Gemm, Out><<<dims, kConvAsyncThreads, 0, compute_stream()>>>(
      g, operands, bias, out, out_z_stride, accumulate);
  check_conv_launch(op, s, variant);
}

}  // namespace

namespace detail {

template <class T>
void conv2d_forward_async(const ConvShape& s, const T* x, const T* w, const float* bias, T* y,
                          ConvVariant variant) {
  constexpr const char* op = "cuda::conv2d_forward";
  const ConvOperands<T> operands = conv_operands(s, ConvPass::forward, x, w);
  if (conv_variant_is_1x1(variant))
    launch_tensor_core(op, s, ConvPass::forward, variant, Forward1x1Gemm{conv_dims(s)}, operands,
                       bias, y, 0, false);
  else
    launch_tensor_core(op, s, ConvPass::forward, variant, ForwardGemm{conv_dims(s)}, operands, bias,
                       y, 0, false);
}

template <class T>
void conv2d_backward_data_async(const ConvShape& s, const T* dy, const T* w, T* dx,
                                ConvVariant variant) {
  constexpr const char* op = "cuda::conv2d_backward_data";
  const ConvOperands<T> operands = conv_operands(s, ConvPass::backward_data, dy, w);
  if (conv_variant_is_1x1(variant))
    launch_tensor_core(op, s, ConvPass::backward_data, variant, Dgrad1x1Gemm{conv_dims(s)},
                       operands, nullptr, dx, 0, false);
  else
    launch_tensor_core(op, s, ConvPass::backward_data, variant, DgradGemm{conv_dims(s)}, operands,
                       nullptr, dx, 0, false);
}

template <class T>
void conv2d_backward_filter_async(const ConvShape& s, const T* x, const T* dy, float* dw,
                                  float* dbias, float* workspace, ConvVariant variant) {
  constexpr const char* op = "cuda::conv2d_backward_filter";
  const ConvTiles tiles = conv_variant_tiles(variant);
  const ConvOperands<T> operands = conv_operands(s, ConvPass::backward_filter, dy, x);
  const int k_per_split = static_cast<int>(wgrad_split(s, tiles).k_per_split);
  conv_backward_filter_splits(op, s, tiles, dy, dw, dbias, workspace,
                              [&](float* out, int64_t out_z_stride, bool accumulate) {
    if (conv_variant_is_1x1(variant))
      launch_tensor_core(op, s, ConvPass::backward_filter, variant,
                         Wgrad1x1Gemm{conv_dims(s), k_per_split}, operands, nullptr, out,
                         out_z_stride, accumulate);
    else
      launch_tensor_core(op, s, ConvPass::backward_filter, variant,
                         WgradGemm{conv_dims(s), k_per_split}, operands, nullptr, out,
                         out_z_stride, accumulate);
  });
}

template void conv2d_forward_async<float>(const ConvShape&, const float*, const float*,
                                          const float*, float*, ConvVariant);
template void conv2d_forward_async<bfloat16>(const ConvShape&, const bfloat16*, const bfloat16*,
                                             const float*, bfloat16*, ConvVariant);
template void conv2d_backward_data_async<float>(const ConvShape&, const float*, const float*,
                                                float*, ConvVariant);
template void conv2d_backward_data_async<bfloat16>(const ConvShape&, const bfloat16*,
                                                   const bfloat16*, bfloat16*, ConvVariant);
template void conv2d_backward_filter_async<float>(const ConvShape&, const float*, const float*,
                                                  float*, float*, float*, ConvVariant);
template void conv2d_backward_filter_async<bfloat16>(const ConvShape&, const bfloat16*,
                                                     const bfloat16*, float*, float*, float*,
                                                     ConvVariant);

}  // namespace detail
}  // namespace hotlap::kernels::cuda
