// Convolution on the GPU, versions 2 and 3: implicit GEMM through shared-memory tiles, NHWC/OHWI,
// no im2col buffer. One kernel template serves the three passes (the operand maps of each are in
// kernels/cuda/conv_math.h: ForwardGemm, DgradGemm, WgradGemm, and Forward1x1Gemm, Dgrad1x1Gemm,
// Wgrad1x1Gemm for the tiled_1x1 variant) and both products:
//   version 2 (tiled)  fp32 on the CUDA cores: each thread a 4x4 register micro-tile
//   tiled_1x1          version 2 on 1x1 stride-1 unpadded convolutions: operand offsets are
//                      row * ld + col, no im2col divisions (the same tiles and intensity)
//   version 3 (tf32)   the tensor cores through wmma m16n16k8 (TF32 inputs, fp32 sums): each of
//                      the 8 warps a 16x32 slab of the tile, two 16x16 accumulator fragments
// (The cp.async versions with larger tiles, TF32 and bf16, are in conv_tensor_core.cu.)
//
// Block: 256 threads, a 64x64 output tile, the K-dim walked 16 at a time. Each step a thread
// fetches one 4-float quad of A (64x16) and one of B (16x64): a 16-byte load where NHWC/OHWI make
// the four a contiguous aligned run (C % 4 == 0, or K % 4 for dy; conv_vector_loads), else four
// guarded scalar loads; padding and tile tails read as 0. The quads go to shared memory k-major
// (As[k][m], Bs[k][n]), transposed on the way in when the run lies along K (forward x and w, dy in
// backward data). Double-buffered through registers: the next step's quads are fetched before the
// current step's products and stored to the other buffer after them, so the loads' latency hides
// behind the math with one __syncthreads a step. (cp.async would skip the registers, but it copies
// without transposing, and the fp32 micro-tile reads both operands k-major; conv_tensor_core.cu
// uses cp.async by giving wmma each operand in the layout it lies in.) The epilogue writes each
// output once: forward adds the bias; backward filter either adds into dw (one split) or writes its
// split's partial to the workspace, which a second kernel adds into dw in split order
// (deterministic; conv_reduce.cu, with dbias).
// Backward data runs one grid layer (blockIdx.z) per stride phase (conv_math.h), so no tap off the
// stride grid is ever fetched.
//
// Arithmetic per block and K-step: 2 * 64*64*16 = 131072 FLOPs for 2 * 64*16 floats = 8 KB fetched
// (16 FLOP/byte of L1/L2 traffic; HBM traffic is lower, as neighbouring blocks share their
// operands through the 50 MB L2) and, fp32, 16 KB of shared-memory traffic (8 KB stored, 8 KB read
// as float4: each thread reads 4 + 4 floats per 16 FMAs): 8 FLOP/byte against the H100's ~30 TB/s
// of shared-memory bandwidth, a 240 TFLOP/s ceiling, far above the 67 TFLOP/s of the fp32 cores.
// TF32: each warp reads a 16x8 A and two 8x16 B fragments per 8-deep step, 24 KB per block step,
// 5.3 FLOP/byte, a ~160 TFLOP/s ceiling against the tensor cores' ~495 TFLOP/s dense.
//
// Aim, ResNet-50 layer3 3x3 (256 -> 256, 14x14) at batch 64: M = 12544, N = 256, K-dim = 2304,
// 14.8 GFLOP. fp32: the index arithmetic of the fetches (a few integer divisions per quad) and the
// unhidden latency of the register double buffer should hold it to 30-50% of 67 TFLOP/s (0.5-0.7
// ms). TF32: the shared-memory ceiling and the same fetches should hold it to 60-120 TFLOP/s,
// 12-25% of the tensor cores' peak; cuDNN's kernels (cp.async or TMA pipelines, larger tiles)
// should stay ahead. Every figure here is a prediction (docs/gpu.md: what has run on a GPU).
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>

#include "kernels/conv.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_launch.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"

namespace hotlap::kernels::cuda {

namespace {

constexpr int kTileFloats = kConvTileK * kConvSmemLd;  // one 16 x 68 operand buffer
// Shared memory: As[2], Bs[2] during the loop; the TF32 epilogue reuses the same floats as a
// 64 x 68 output tile (4 * 16 * 68 == 64 * 68).
constexpr int kSmemFloats = 4 * kTileFloats;
static_assert(kSmemFloats >= kConvTileM * kConvSmemLd, "the TF32 epilogue tile fits");

// Stores a fetched quad at its slot: four strided stores when it runs along K (the transpose),
// one 16-byte store when it runs along M or N.
__device__ __forceinline__ void store_quad(float* tile, QuadSlot slot, bool along_k, const Quad& q) {
  if (along_k) {
#pragma unroll
    for (int i = 0; i < 4; ++i) tile[(slot.k + i) * kConvSmemLd + slot.row] = q.v[i];
  } else {
    *reinterpret_cast<float4*>(tile + slot.k * kConvSmemLd + slot.row) =
        make_float4(q.v[0], q.v[1], q.v[2], q.v[3]);
  }
}

// acc += As^T Bs over one 16-deep step, fp32: thread t's 4x4 micro-tile.
__device__ __forceinline__ void multiply_fp32(const float* as, const float* bs, int row0, int col0,
                                              float (&acc)[kConvMicro][kConvMicro]) {
#pragma unroll
  for (int kk = 0; kk < kConvTileK; ++kk) {
    const float4 a = *reinterpret_cast<const float4*>(as + kk * kConvSmemLd + row0);
    const float4 b = *reinterpret_cast<const float4*>(bs + kk * kConvSmemLd + col0);
    const float av[4] = {a.x, a.y, a.z, a.w};
    const float bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
    for (int i = 0; i < kConvMicro; ++i)
#pragma unroll
      for (int j = 0; j < kConvMicro; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
  }
}

namespace wmma = nvcuda::wmma;
using AccFragment = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;
using AFragment = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major>;
using BFragment = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;

// Warp w of the 8 owns rows 16 * (w % 4) and columns 32 * (w / 4) + {0, 16} of the tile.
constexpr int kWarpRows = 16, kWarpCols = 32;

// acc += As^T Bs over one 16-deep step on the tensor cores. As[k][m] is A column-major and Bs[k][n]
// is B row-major, both with leading dimension 68 (a multiple of 4 floats, as wmma needs; every
// fragment pointer is 32-byte aligned: 8 rows * 68 floats * 4 bytes = 2176 = 68 * 32).
__device__ __forceinline__ void multiply_tf32(const float* as, const float* bs, int warp,
                                              AccFragment (&acc)[2]) {
  const int wm = kWarpRows * (warp % 4), wn = kWarpCols * (warp / 4);
#pragma unroll
  for (int kk = 0; kk < kConvTileK; kk += 8) {
    AFragment a;
    wmma::load_matrix_sync(a, as + kk * kConvSmemLd + wm, kConvSmemLd);
#pragma unroll
    for (int i = 0; i < a.num_elements; ++i) a.x[i] = wmma::__float_to_tf32(a.x[i]);
#pragma unroll
    for (int f = 0; f < 2; ++f) {
      BFragment b;
      wmma::load_matrix_sync(b, bs + kk * kConvSmemLd + wn + 16 * f, kConvSmemLd);
#pragma unroll
      for (int i = 0; i < b.num_elements; ++i) b.x[i] = wmma::__float_to_tf32(b.x[i]);
      wmma::mma_sync(acc[f], a, b, acc[f]);
    }
  }
}

// One 64x64 output tile of the GEMM `g` (grid: conv_tiled_grid). out + blockIdx.z * out_z_stride
// receives it at g.out_offset: out = acc (+ bias[n]), or out += acc when `accumulate`.
template <class Gemm, bool kTensorCores>
__global__ void __launch_bounds__(kConvThreads)
    conv_tiled_kernel(Gemm g, ConvOperands<float> op, const float* bias, float* out,
                      int64_t out_z_stride, bool accumulate) {
  __shared__ __align__(128) float smem[kSmemFloats];
  const int t = threadIdx.x;
  const ConvGemmBlock blk = g.block(static_cast<int>(blockIdx.z));
  const int m0 = static_cast<int>(blockIdx.x) * kConvTileM;
  const int n0 = static_cast<int>(blockIdx.y) * kConvTileN;
  if (m0 >= blk.m_size) return;  // a stride phase with fewer pixels than phase 0: the whole block

  const QuadSlot sa = Gemm::kAAlongK ? quad_slot_along_k(t) : quad_slot_along_mn(t);
  const QuadSlot sb = Gemm::kBAlongK ? quad_slot_along_k(t) : quad_slot_along_mn(t);
  const int row0 = micro_row(t), col0 = micro_col(t);

  float acc[kConvMicro][kConvMicro] = {};
  AccFragment frag[2];
  if constexpr (kTensorCores) {
    wmma::fill_fragment(frag[0], 0.0f);
    wmma::fill_fragment(frag[1], 0.0f);
  }

  if (blk.k_begin < blk.k_end) {
    Quad qa = fetch_a_quad(g, op, blk, m0 + sa.row, blk.k_begin + sa.k);
    Quad qb = fetch_b_quad(g, op, blk, blk.k_begin + sb.k, n0 + sb.row);
    store_quad(smem, sa, Gemm::kAAlongK, qa);
    store_quad(smem + 2 * kTileFloats, sb, Gemm::kBAlongK, qb);
    __syncthreads();
    int buf = 0;
    for (int k0 = blk.k_begin; k0 < blk.k_end; k0 += kConvTileK) {
      const bool next = k0 + kConvTileK < blk.k_end;  // the same for the whole block
      if (next) {
        qa = fetch_a_quad(g, op, blk, m0 + sa.row, k0 + kConvTileK + sa.k);
        qb = fetch_b_quad(g, op, blk, k0 + kConvTileK + sb.k, n0 + sb.row);
      }
      const float* as = smem + buf * kTileFloats;
      const float* bs = smem + (2 + buf) * kTileFloats;
      if constexpr (kTensorCores)
        multiply_tf32(as, bs, t / 32, frag);
      else
        multiply_fp32(as, bs, row0, col0, acc);
      if (next) {
        // The other buffer was last read in the previous step, which ended with __syncthreads.
        store_quad(smem + (buf ^ 1) * kTileFloats, sa, Gemm::kAAlongK, qa);
        store_quad(smem + (2 + (buf ^ 1)) * kTileFloats, sb, Gemm::kBAlongK, qb);
      }
      __syncthreads();
      buf ^= 1;
    }
  }

  if constexpr (kTensorCores) {
    // Through shared memory into the fp32 epilogue's layout (the loop ended with __syncthreads, so
    // the operand buffers are free).
    const int warp = t / 32;
    const int wm = kWarpRows * (warp % 4), wn = kWarpCols * (warp / 4);
#pragma unroll
    for (int f = 0; f < 2; ++f)
      wmma::store_matrix_sync(smem + wm * kConvSmemLd + wn + 16 * f, frag[f], kConvSmemLd,
                              wmma::mem_row_major);
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kConvMicro; ++i)
#pragma unroll
      for (int j = 0; j < kConvMicro; ++j) acc[i][j] = smem[(row0 + i) * kConvSmemLd + col0 + j];
  }

  float* tile_out = out + static_cast<int64_t>(blockIdx.z) * out_z_stride;
#pragma unroll
  for (int i = 0; i < kConvMicro; ++i) {
    const int m = m0 + row0 + i;
    if (m >= blk.m_size) break;
#pragma unroll
    for (int j = 0; j < kConvMicro; ++j) {
      const int n = n0 + col0 + j;
      if (n >= blk.n_size) break;
      float v = acc[i][j];
      if (bias != nullptr) v += bias[n];
      float* o = tile_out + g.out_offset(blk, m, n);
      *o = accumulate ? *o + v : v;
    }
  }
}

template <class Gemm>
void launch_tiled(const char* op, const ConvShape& s, ConvPass pass, const Gemm& g,
                  const ConvOperands<float>& operands, const float* bias, float* out,
                  int64_t out_z_stride, bool accumulate, ConvVariant variant) {
  const dim3 dims = conv_tiled_blocks(op, s, pass, kConvTiledTiles);
  if (variant == ConvVariant::tf32)
    conv_tiled_kernel<Gemm, true><<<dims, kConvThreads, 0, compute_stream()>>>(
        g, operands, bias, out, out_z_stride, accumulate);
  else
    conv_tiled_kernel<Gemm, false><<<dims, kConvThreads, 0, compute_stream()>>>(
        g, operands, bias, out, out_z_stride, accumulate);
  check_conv_launch(op, s, variant);
}

}  // namespace

namespace detail {

void conv2d_forward_tiled(const ConvShape& s, const float* x, const float* w, const float* bias,
                          float* y, ConvVariant variant) {
  constexpr const char* op = "cuda::conv2d_forward";
  const ConvOperands<float> operands = conv_operands(s, ConvPass::forward, x, w);
  if (variant == ConvVariant::tiled_1x1)
    launch_tiled(op, s, ConvPass::forward, Forward1x1Gemm{conv_dims(s)}, operands, bias, y, 0,
                 false, variant);
  else
    launch_tiled(op, s, ConvPass::forward, ForwardGemm{conv_dims(s)}, operands, bias, y, 0, false,
                 variant);
}

void conv2d_backward_data_tiled(const ConvShape& s, const float* dy, const float* w, float* dx,
                                ConvVariant variant) {
  constexpr const char* op = "cuda::conv2d_backward_data";
  const ConvOperands<float> operands = conv_operands(s, ConvPass::backward_data, dy, w);
  if (variant == ConvVariant::tiled_1x1)
    launch_tiled(op, s, ConvPass::backward_data, Dgrad1x1Gemm{conv_dims(s)}, operands, nullptr,
                 dx, 0, false, variant);
  else
    launch_tiled(op, s, ConvPass::backward_data, DgradGemm{conv_dims(s)}, operands, nullptr, dx,
                 0, false, variant);
}

void conv2d_backward_filter_tiled(const ConvShape& s, const float* x, const float* dy, float* dw,
                                  float* dbias, float* workspace, ConvVariant variant) {
  constexpr const char* op = "cuda::conv2d_backward_filter";
  const ConvOperands<float> operands = conv_operands(s, ConvPass::backward_filter, dy, x);
  const int k_per_split = static_cast<int>(wgrad_split(s).k_per_split);
  conv_backward_filter_splits(op, s, kConvTiledTiles, dy, dw, dbias, workspace,
                              [&](float* out, int64_t out_z_stride, bool accumulate) {
    if (variant == ConvVariant::tiled_1x1)
      launch_tiled(op, s, ConvPass::backward_filter, Wgrad1x1Gemm{conv_dims(s), k_per_split},
                   operands, nullptr, out, out_z_stride, accumulate, variant);
    else
      launch_tiled(op, s, ConvPass::backward_filter, WgradGemm{conv_dims(s), k_per_split},
                   operands, nullptr, out, out_z_stride, accumulate, variant);
  });
}

}  // namespace detail
}  // namespace hotlap::kernels::cuda
