// The shared-memory layout and per-thread copies of the cp.async tensor-core convolution
// (kernels/cuda/conv_tensor_core.cu: variants tf32_async, tf32_1x1, bf16, bf16_1x1), as functions
// nvcc and the host compiler both read: the kernel places every 16-byte copy and every wmma
// fragment with them, and the CPU tests emulate its blocks with the same ones.
//
// A block computes a 128 x 64 output tile (kConvAsyncTiles) with 256 threads. Each K-step is 64
// bytes of every operand row (16 fp32 or 32 bf16 values). An operand tile is stored as it lies in
// memory, so that cp.async can copy 16-byte runs without a transpose:
//   along K   (forward x and w, backward data dy)    tile[mn][k], rows of tile_k + pad values
//   along M/N (backward data w, backward filter)      tile[k][mn], rows of extent + pad values
// and wmma reads it in the matching layout (row- or column-major fragments). Each row is padded by
// 16 bytes: cp.async destinations stay 16-byte aligned, every fragment starts on a 32-byte
// boundary (tested on the CPU), and the 80-byte rows of a K-major tile put the 16-byte chunks of 8
// consecutive rows in 8 different bank groups.
#pragma once

#include <cstdint>

#include "kernels/cuda/conv_math.h"

namespace hotlap::kernels::cuda {

constexpr int kConvAsyncThreads = 256;
constexpr int kConvAsyncStages = 2;  // double buffering: copy step i+1 while multiplying step i
// 8 warps as 4 (M) x 2 (N), each a 32 x 32 slab: 2 x 2 wmma fragments of 16 x 16.
constexpr int kConvAsyncWarpTile = 32;
constexpr int kConvAsyncWarpsM = kConvAsyncTileM / kConvAsyncWarpTile;
static_assert(kConvAsyncWarpsM * (kConvAsyncTileN / kConvAsyncWarpTile) * 32 == kConvAsyncThreads,
              "one warp a 32 x 32 slab");
// The epilogue tile: the fp32 sums of the whole block, rows padded by 4 floats.
constexpr int kConvAsyncOutLd = kConvAsyncTileN + 4;
constexpr int kConvAsyncOutBytes = kConvAsyncTileM * kConvAsyncOutLd * 4;

// The 16-byte copy number v of an operand tile: the tile-relative (mn, k) of its first value, and
// that value's index in the shared-memory tile. The run goes along k (K-major) or along mn.
struct AsyncSlot {
  int mn, k, index;
};

// One operand's shared-memory tile in one stage. extent: the block tile's M (A) or N (B);
// tile_k: the K-step; width: values per 16 bytes (4 fp32, 8 bf16).
struct AsyncOperandTile {
  int extent, tile_k, width;
  bool along_k;

  HOTLAP_HOST_DEVICE constexpr int ld() const { return (along_k ? tile_k : extent) + width; }
  HOTLAP_HOST_DEVICE constexpr int values() const { return (along_k ? extent : tile_k) * ld(); }
  HOTLAP_HOST_DEVICE constexpr int copies() const { return extent * tile_k / width; }
  HOTLAP_HOST_DEVICE constexpr int index(int mn, int k) const {
    return along_k ? mn * ld() + k : k * ld() + mn;
  }
  HOTLAP_HOST_DEVICE constexpr AsyncSlot slot(int v) const {
    if (along_k) {
      const int per_row = tile_k / width;
      const int mn = v / per_row, k = (v % per_row) * width;
      return AsyncSlot{mn, k, index(mn, k)};
    }
    const int per_row = extent / width;
    const int k = v / per_row, mn = (v % per_row) * width;
    return AsyncSlot{mn, k, index(mn, k)};
  }
};

template <class T>
HOTLAP_HOST_DEVICE constexpr AsyncOperandTile async_tile(int extent, bool along_k) {
  return AsyncOperandTile{extent, kConvAsyncStepBytes / static_cast<int>(sizeof(T)),
                          16 / static_cast<int>(sizeof(T)), along_k};
}
template <class T, class Gemm>
HOTLAP_HOST_DEVICE constexpr AsyncOperandTile async_a_tile() {
  return async_tile<T>(kConvAsyncTileM, Gemm::kAAlongK);
}
template <class T, class Gemm>
HOTLAP_HOST_DEVICE constexpr AsyncOperandTile async_b_tile() {
  return async_tile<T>(kConvAsyncTileN, Gemm::kBAlongK);
}

// Bytes of one stage (A then B, each part on a 128-byte boundary), and of the block's shared memory:
// the stages during the K loop, then the same bytes reused for the epilogue tile.
HOTLAP_HOST_DEVICE constexpr int round_up_128(int bytes) { return (bytes + 127) / 128 * 128; }
template <class T, class Gemm>
HOTLAP_HOST_DEVICE constexpr int async_a_bytes() {
  return round_up_128(async_a_tile<T, Gemm>().values() * static_cast<int>(sizeof(T)));
}
template <class T, class Gemm>
HOTLAP_HOST_DEVICE constexpr int async_stage_bytes() {
  return async_a_bytes<T, Gemm>() +
         round_up_128(async_b_tile<T, Gemm>().values() * static_cast<int>(sizeof(T)));
}
template <class T, class Gemm>
HOTLAP_HOST_DEVICE constexpr int async_smem_bytes() {
  const int stages = kConvAsyncStages * async_stage_bytes<T, Gemm>();
  return stages > kConvAsyncOutBytes ? stages : kConvAsyncOutBytes;
}

// The epilogue: thread t writes column t % 64 of the tile, rows t / 64, t / 64 + 4, ...: adjacent
// threads write adjacent outputs (contiguous channels in every pass's output).
constexpr int kConvAsyncOutRowStep = kConvAsyncThreads / kConvAsyncTileN;
HOTLAP_HOST_DEVICE constexpr int async_out_col(int t) { return t % kConvAsyncTileN; }
HOTLAP_HOST_DEVICE constexpr int async_out_row(int t) { return t / kConvAsyncTileN; }

// Warp w's slab: rows 32 * (w % 4), columns 32 * (w / 4).
HOTLAP_HOST_DEVICE constexpr int async_warp_row(int warp) {
  return kConvAsyncWarpTile * (warp % kConvAsyncWarpsM);
}
HOTLAP_HOST_DEVICE constexpr int async_warp_col(int warp) {
  return kConvAsyncWarpTile * (warp / kConvAsyncWarpsM);
}

}  // namespace hotlap::kernels::cuda
