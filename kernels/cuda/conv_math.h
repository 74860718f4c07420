// The implicit-GEMM convolution's index arithmetic, tiling plans and variant choice
// (kernels/cuda/conv_simple.cu, conv_tiled.cu, conv_tensor_core.cu), as plain functions both nvcc
// and the host compiler read: the kernels call them with indices from blockIdx/threadIdx, and the CPU tests call them
// for every index a grid would cover and compare with direct loops over the convolution.
//
// The three passes as GEMMs, NHWC activations and OHWI weights, no im2col buffer: each operand
// element is fetched from the tensors it stands for, and the padding is a zero fetched from nowhere.
//
//   forward          Y[m][n]  = sum_k A[m][k] B[k][n]    m = (n,p,q)  n = K  k = (r,s,c)
//                    A = im2col(x): A[m][k] = x[n, p*sh - ph + r, q*sw - pw + s, c]
//                    B[k][n] = w[n][r][s][c]: row n of the OHWI weights, k contiguous
//   backward data    dX[m][n] = sum_k A[m][k] B[k][n]    m = (n,h,w)  n = C  k = (tap,kout)
//                    the gather form: for input pixel (h,w), the filter taps (r,s) whose output
//                    pixel p = (h + ph - r) / sh lands on the stride grid. With stride > 1 the
//                    pixels are split into sh*sw phases (h mod sh, w mod sw); every pixel of a phase
//                    has the same taps (r = r0, r0 + sh, ...), so a phase is one dense GEMM with no
//                    tap that falls between grid points (blockIdx.z is the phase).
//                    A[m][k] = dy[n, p, q, kout] (0 off the output); B[k][n] = w[kout][r][s][c]
//   backward filter  dW[m][n] += sum_k A[m][k] B[k][n]   m = K  n = (r,s,c)  k = (n,p,q)
//                    A[m][k] = dy[k][m] (dy as [NPQ][K]); B[k][n] = im2col(x)[k][n]
//                    K-dim N*P*Q is long and M*N short, so it is split over blockIdx.z (split-K);
//                    with several splits each writes its partial product to the workspace and a
//                    second kernel adds them, in split order, into dw: deterministic, no atomics.
//
// 1x1 stride-1 convolutions without padding are plain GEMMs and have their own operand maps (the
// *_1x1 variants): x is the [N*H*W][C] matrix, dy the [N*H*W][K] one, w the [K][C] one, and every
// operand element is row * ld + col, with no im2col or phase arithmetic:
//   forward  Y = X W^T     backward data  dX = dY W     backward filter  dW += dY^T X
//
// Indices are 32-bit inside the kernels: the entry points refuse tensors of 2^31 elements or more.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cast.h"
#include "kernels/conv.h"
#include "kernels/cuda/cast_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/host_device.h"
#include "kernels/math_mode.h"

namespace hotlap::kernels::cuda {

// ---- tile sizes ----------------------------------------------------------------------------------
// The tiled kernels: a 64 x 64 output tile per block of 256 threads (16 x 16), each thread a 4 x 4
// micro-tile in registers; the K-dim is walked 16 at a time through two shared-memory buffers.
constexpr int kConvTileM = 64;
constexpr int kConvTileN = 64;
constexpr int kConvTileK = 16;
constexpr int kConvThreads = 256;
constexpr int kConvMicro = 4;
constexpr int kConvThreadCols = kConvTileN / kConvMicro;  // 16 threads along N
// Shared-memory rows are padded by 4 floats: keeps float4 alignment and spreads the transposing
// stores over more banks.
constexpr int kConvSmemPad = 4;
constexpr int kConvSmemLd = kConvTileM + kConvSmemPad;  // 68 (kConvTileM == kConvTileN)
static_assert(kConvTileM == kConvTileN, "one shared-memory row length for A and B");
static_assert(kConvTileM * kConvTileK == 4 * kConvThreads, "one 4-float load per thread per operand");
static_assert(kConvThreads == (kConvTileM / kConvMicro) * (kConvTileN / kConvMicro), "micro-tiles");

// The simple kernels: one thread per output element, 256 a block.
constexpr int kConvSimpleThreads = 256;

// Backward filter split-K: aim at about this many blocks (132 SMs x 4 resident 256-thread blocks);
// a constant, not a device query, so the split and the order of every addition depend on the shape
// alone (the same result on every GPU). A split is at least kConvMinSplitK long, and the partial
// products together take at most kConvMaxSplitWorkspaceFloats.
constexpr int64_t kConvTargetBlocks = 528;
constexpr int64_t kConvMinSplitK = 512;
constexpr int64_t kConvMaxSplitWorkspaceFloats = int64_t{16} << 20;  // 64 MB

// ---- variants ------------------------------------------------------------------------------------

inline const char* conv_variant_text(ConvVariant v) {
  switch (v) {
    case ConvVariant::simple:
      return "simple";
    case ConvVariant::tiled:
      return "tiled";
    case ConvVariant::tiled_1x1:
      return "tiled_1x1";
    case ConvVariant::tf32:
      return "tf32";
    case ConvVariant::tf32_async:
      return "tf32_async";
    case ConvVariant::tf32_1x1:
      return "tf32_1x1";
    case ConvVariant::bf16_simple:
      return "bf16_simple";
    case ConvVariant::bf16:
      return "bf16";
    case ConvVariant::bf16_1x1:
      return "bf16_1x1";
  }
  return "unknown";
}

// The variants that run the cp.async tensor-core kernels (conv_tensor_core.cu).
constexpr bool conv_variant_is_async(ConvVariant v) {
  return v == ConvVariant::tf32_async || v == ConvVariant::tf32_1x1 || v == ConvVariant::bf16 ||
         v == ConvVariant::bf16_1x1;
}
// The one-thread-per-output reference variants (conv_simple.cu).
constexpr bool conv_variant_is_simple(ConvVariant v) {
  return v == ConvVariant::simple || v == ConvVariant::bf16_simple;
}

// Which kernels run a shape, by shape class (no timing): the simple kernels for GEMMs too small to
// fill one tile (under 2 MFLOP: one 64 x 64 x 256 tile), where the tiled versions' extra launches
// (the split-K sum) and mostly idle threads cost more than they save; the plain-GEMM tiles for 1x1
// stride-1 convolutions (no im2col arithmetic in the operand fetches); else the implicit-GEMM tiles.
// fp32: the register double-buffered fp32 kernels; TF32: the cp.async tensor-core kernels (larger
// tiles, loads that skip the registers). A prediction until it is timed on a GPU.
constexpr int64_t kConvSimpleMaxFlops = int64_t{2} << 20;

inline ConvVariant choose_conv_variant(const ConvShape& s, ConvPass pass, MathMode mode) {
  (void)pass;  // the same rule for the three passes: they are GEMMs of the same size
  if (s.flops() < kConvSimpleMaxFlops) return ConvVariant::simple;
  if (mode == MathMode::tf32) return s.is_pointwise() ? ConvVariant::tf32_1x1 : ConvVariant::tf32_async;
  return s.is_pointwise() ? ConvVariant::tiled_1x1 : ConvVariant::tiled;
}

// The same rule for the bf16 entry points, which are bf16 by their tensors' type.
inline ConvVariant choose_conv_variant_bf16(const ConvShape& s, ConvPass pass) {
  (void)pass;
  if (s.flops() < kConvSimpleMaxFlops) return ConvVariant::bf16_simple;
  return s.is_pointwise() ? ConvVariant::bf16_1x1 : ConvVariant::bf16;
}

// The block tile of a tiled variant: M x N outputs, the K-dim walked `k` at a time.
struct ConvTiles {
  int m, n, k;
};
// The register double-buffered kernels (conv_tiled.cu).
constexpr ConvTiles kConvTiledTiles{kConvTileM, kConvTileN, kConvTileK};
// The cp.async tensor-core kernels (conv_tensor_core.cu): 128 x 64 outputs, each K-step 64 bytes
// of every operand row (16 fp32 or 32 bf16 values).
constexpr int kConvAsyncTileM = 128;
constexpr int kConvAsyncTileN = 64;
constexpr int kConvAsyncStepBytes = 64;
constexpr ConvTiles kConvAsyncTf32Tiles{kConvAsyncTileM, kConvAsyncTileN, kConvAsyncStepBytes / 4};
constexpr ConvTiles kConvAsyncBf16Tiles{kConvAsyncTileM, kConvAsyncTileN, kConvAsyncStepBytes / 2};

inline ConvTiles conv_variant_tiles(ConvVariant v) {
  if (!conv_variant_is_async(v)) return kConvTiledTiles;
  return conv_variant_is_bf16(v) ? kConvAsyncBf16Tiles : kConvAsyncTf32Tiles;
}

// ---- dimensions ----------------------------------------------------------------------------------

// ConvShape in 32-bit, with P and Q, as the kernels take it.
struct ConvDims {
  int n, h, w, c, k, r, s, stride_h, stride_w, pad_h, pad_w, p, q;
};

inline ConvDims conv_dims(const ConvShape& s) {
  return ConvDims{static_cast<int>(s.n),        static_cast<int>(s.h),        static_cast<int>(s.w),
                  static_cast<int>(s.c),        static_cast<int>(s.k),        static_cast<int>(s.r),
                  static_cast<int>(s.s),        static_cast<int>(s.stride_h), static_cast<int>(s.stride_w),
                  static_cast<int>(s.pad_h),    static_cast<int>(s.pad_w),    static_cast<int>(s.p()),
                  static_cast<int>(s.q())};
}

// Whether every tensor (x, w, y) of the shape has fewer than 2^31 elements, and every size fits an
// int: what the kernels' 32-bit index arithmetic needs.
inline bool conv_fits_int32(const ConvShape& s) {
  constexpr int64_t kMax = INT_MAX;
  const int64_t sizes[] = {s.n, s.h, s.w, s.c, s.k, s.r, s.s, s.p(), s.q()};
  for (int64_t v : sizes)
    if (v > kMax) return false;
  auto product_fits = [&](int64_t a, int64_t b, int64_t c, int64_t d) {
    return a <= kMax / std::max<int64_t>(b, 1) && a * b <= kMax / std::max<int64_t>(c, 1) &&
           a * b * c <= kMax / std::max<int64_t>(d, 1);
  };
  return product_fits(s.n, s.h, s.w, s.c) && product_fits(s.k, s.r, s.s, s.c) &&
         product_fits(s.n, s.p(), s.q(), s.k);
}

// ---- forward (and backward filter's B): im2col without the buffer --------------------------------

// The offset in x of im2col element (row m = (n,p,q), column k = (r,s,c)), or -1 where the filter
// window hangs over the padding.
HOTLAP_HOST_DEVICE inline int im2col_offset(const ConvDims& d, int m, int k) {
  const int q = m % d.q, pq = m / d.q, p = pq % d.p, n = pq / d.p;
  const int c = k % d.c, rs = k / d.c, s = rs % d.s, r = rs / d.s;
  const int y = p * d.stride_h - d.pad_h + r, x = q * d.stride_w - d.pad_w + s;
  if (y < 0 || y >= d.h || x < 0 || x >= d.w) return -1;
  return ((n * d.h + y) * d.w + x) * d.c + c;
}

// ---- backward data: phases and taps --------------------------------------------------------------

// The input pixels (h, w) with h % sh == rh and w % sw == rw, and the taps they gather from: r =
// r0, r0 + sh, ... (taps_r of them) where r0 = (rh + pad_h) % sh, because the output row
// p = (h + pad_h - r) / sh exists only when sh divides h + pad_h - r. Same for columns.
struct DgradPhase {
  int rh, rw;          // the phase: h % stride_h, w % stride_w
  int r0, s0;          // first tap of each direction
  int taps_r, taps_s;  // taps in each direction (0: the phase's pixels get no gradient at all)
  int rows, cols;      // pixels of the phase along h and w
};

HOTLAP_HOST_DEVICE inline int dgrad_phases(const ConvDims& d) { return d.stride_h * d.stride_w; }

HOTLAP_HOST_DEVICE inline DgradPhase dgrad_phase(const ConvDims& d, int phase) {
  DgradPhase ph;
  ph.rh = phase / d.stride_w;
  ph.rw = phase % d.stride_w;
  ph.r0 = (ph.rh + d.pad_h) % d.stride_h;
  ph.s0 = (ph.rw + d.pad_w) % d.stride_w;
  ph.taps_r = ph.r0 < d.r ? (d.r - ph.r0 + d.stride_h - 1) / d.stride_h : 0;
  ph.taps_s = ph.s0 < d.s ? (d.s - ph.s0 + d.stride_w - 1) / d.stride_w : 0;
  ph.rows = ph.rh < d.h ? (d.h - ph.rh + d.stride_h - 1) / d.stride_h : 0;
  ph.cols = ph.rw < d.w ? (d.w - ph.rw + d.stride_w - 1) / d.stride_w : 0;
  return ph;
}

// The phase's GEMM: M = its pixels, K-dim = its taps times the K output channels.
HOTLAP_HOST_DEVICE inline int dgrad_m_size(const ConvDims& d, const DgradPhase& ph) {
  return d.n * ph.rows * ph.cols;
}
HOTLAP_HOST_DEVICE inline int dgrad_k_size(const ConvDims& d, const DgradPhase& ph) {
  return ph.taps_r * ph.taps_s * d.k;
}

// The input pixel of row m of a phase: (n, h, w) with m = (n * rows + i) * cols + j.
struct DgradPixel {
  int n, h, w;
};
HOTLAP_HOST_DEVICE inline DgradPixel dgrad_pixel(const ConvDims& d, const DgradPhase& ph, int m) {
  const int j = m % ph.cols, ni = m / ph.cols, i = ni % ph.rows, n = ni / ph.rows;
  return DgradPixel{n, ph.rh + i * d.stride_h, ph.rw + j * d.stride_w};
}

// The filter tap of column kk = (tr * taps_s + ts) * K + kout of a phase.
struct DgradTap {
  int r, s, kout;
};
HOTLAP_HOST_DEVICE inline DgradTap dgrad_tap(const ConvDims& d, const DgradPhase& ph, int kk) {
  const int kout = kk % d.k, t = kk / d.k, ts = t % ph.taps_s, tr = t / ph.taps_s;
  return DgradTap{ph.r0 + tr * d.stride_h, ph.s0 + ts * d.stride_w, kout};
}

// The output pixel (p, q) that tap (r, s) of input pixel (h, w) reads; valid = false when it falls
// outside the output (the tap is on the stride grid by construction: the division is exact).
struct DgradSource {
  int p, q;
  bool valid;
};
HOTLAP_HOST_DEVICE inline DgradSource dgrad_source(const ConvDims& d, int h, int w, int r, int s) {
  const int ny = h + d.pad_h - r, nx = w + d.pad_w - s;
  DgradSource src{ny / d.stride_h, nx / d.stride_w, false};
  src.valid = ny >= 0 && nx >= 0 && src.p < d.p && src.q < d.q;
  return src;
}

// A[m][kk] of a phase: the offset in dy, or -1 (the tap's output pixel is outside the output).
HOTLAP_HOST_DEVICE inline int dgrad_dy_offset(const ConvDims& d, const DgradPhase& ph, int m, int kk) {
  const DgradPixel px = dgrad_pixel(d, ph, m);
  const DgradTap tap = dgrad_tap(d, ph, kk);
  const DgradSource src = dgrad_source(d, px.h, px.w, tap.r, tap.s);
  if (!src.valid) return -1;
  return ((px.n * d.p + src.p) * d.q + src.q) * d.k + tap.kout;
}

// B[kk][c] of a phase: the offset in w (OHWI).
HOTLAP_HOST_DEVICE inline int dgrad_w_offset(const ConvDims& d, const DgradPhase& ph, int kk, int c) {
  const DgradTap tap = dgrad_tap(d, ph, kk);
  return ((tap.kout * d.r + tap.r) * d.s + tap.s) * d.c + c;
}

// Where dX[m][c] of a phase goes in dx.
HOTLAP_HOST_DEVICE inline int dgrad_dx_offset(const ConvDims& d, const DgradPhase& ph, int m, int c) {
  const DgradPixel px = dgrad_pixel(d, ph, m);
  return ((px.n * d.h + px.h) * d.w + px.w) * d.c + c;
}

// ---- backward filter: split-K ----------------------------------------------------------------------

// K-dim range [split * k_per_split, min(k_size, (split + 1) * k_per_split)) of each split;
// k_per_split is a multiple of the tile's K-step. The split depends on the variant's tiles (fewer,
// larger tiles want more splits to fill the GPU).
struct WgradSplit {
  int64_t splits = 1;
  int64_t k_per_split = 0;
};

inline WgradSplit wgrad_split(const ConvShape& s, ConvTiles tile = kConvTiledTiles) {
  WgradSplit sp;
  const int64_t k_size = s.n * s.p() * s.q();
  const int64_t tiles = ceil_div(s.k, tile.m) * ceil_div(s.r * s.s * s.c, tile.n);
  if (k_size <= 0 || tiles <= 0) return sp;
  const int64_t wanted = ceil_div(kConvTargetBlocks, tiles);
  const int64_t by_length = std::max<int64_t>(1, k_size / kConvMinSplitK);
  const int64_t by_memory = std::max<int64_t>(1, kConvMaxSplitWorkspaceFloats / (s.k * s.r * s.s * s.c));
  const int64_t splits = std::clamp<int64_t>(wanted, 1, std::min({by_length, by_memory, kMaxGridY}));
  sp.k_per_split = ceil_div(ceil_div(k_size, splits), tile.k) * tile.k;
  sp.splits = ceil_div(k_size, sp.k_per_split);  // no split left empty by the rounding
  return sp;
}

// dbias of the tiled backward filter: a deterministic column sum of dy [NPQ][K]. Grid
// (ceil(K / 32), splits) of 32 x 8-thread blocks; each block sums rows
// [split * rows_per_split, ...) of 32 channels into partial[split][K]; then one thread a channel
// adds the partials in split order into dbias.
constexpr int kConvBiasChannels = 32;
constexpr int kConvBiasLanes = 8;
struct ConvBiasPlan {
  int64_t splits = 0;
  int64_t rows_per_split = 0;
};
inline ConvBiasPlan conv_bias_plan(int64_t rows, int64_t k) {
  ConvBiasPlan plan;
  if (rows <= 0 || k <= 0) return plan;
  const int64_t wanted = ceil_div(kConvTargetBlocks * 2, ceil_div(k, kConvBiasChannels));
  const int64_t most = std::max<int64_t>(1, rows / 64);  // at least 64 rows a split
  const int64_t splits = std::clamp<int64_t>(wanted, 1, std::min(most, kMaxGridY));
  plan.rows_per_split = ceil_div(rows, splits);
  plan.splits = ceil_div(rows, plan.rows_per_split);
  return plan;
}

// The tiled backward filter's workspace, in floats: the split partial products [splits][K*R*S*C]
// when there is more than one split, then the bias partials [bias splits][K] (always laid out, as
// dbias may or may not be given). Each part starts on a 64-float (256-byte) boundary.
struct WgradWorkspaceLayout {
  int64_t partial_offset = 0, partial_floats = 0;
  int64_t bias_offset = 0, bias_floats = 0;
  int64_t total_floats = 0;
};
inline WgradWorkspaceLayout wgrad_workspace_layout(const ConvShape& s,
                                                   ConvTiles tile = kConvTiledTiles) {
  WgradWorkspaceLayout l;
  const int64_t rows = s.n * s.p() * s.q();
  if (rows <= 0 || s.k <= 0) return l;
  const WgradSplit sp = wgrad_split(s, tile);
  l.partial_floats = sp.splits > 1 ? sp.splits * s.k * s.r * s.s * s.c : 0;
  l.bias_offset = ceil_div(l.partial_floats, 64) * 64;
  l.bias_floats = conv_bias_plan(rows, s.k).splits * s.k;
  l.total_floats = l.bias_offset + l.bias_floats;
  return l;
}

// Workspace bytes of one variant and pass: only the tiled variants' backward filter needs one (fp32
// partials, bf16 variants included).
inline size_t conv_variant_workspace_bytes(const ConvShape& s, ConvPass pass, ConvVariant v) {
  if (pass != ConvPass::backward_filter || conv_variant_is_simple(v)) return 0;
  return static_cast<size_t>(wgrad_workspace_layout(s, conv_variant_tiles(v)).total_floats) *
         sizeof(float);
}

// ---- the tiled kernels' grid ---------------------------------------------------------------------

// Grid (tiles_m, tiles_n, z) of blocks, one block a tile.m x tile.n output tile. z: 1 (forward),
// the stride phases (backward data; a phase with fewer rows than tiles_m * tile.m leaves its last
// blocks idle), the K-splits (backward filter).
struct ConvTiledGrid {
  int64_t tiles_m = 0, tiles_n = 0, z = 0;
};

inline ConvTiledGrid conv_tiled_grid(const ConvShape& s, ConvPass pass,
                                     ConvTiles tile = kConvTiledTiles) {
  ConvTiledGrid g;
  switch (pass) {
    case ConvPass::forward:
      g.tiles_m = ceil_div(s.n * s.p() * s.q(), tile.m);
      g.tiles_n = ceil_div(s.k, tile.n);
      g.z = 1;
      break;
    case ConvPass::backward_data:  // phase 0 has the most pixels
      g.tiles_m = ceil_div(s.n * ceil_div(s.h, s.stride_h) * ceil_div(s.w, s.stride_w), tile.m);
      g.tiles_n = ceil_div(s.c, tile.n);
      g.z = s.stride_h * s.stride_w;
      break;
    case ConvPass::backward_filter:
      g.tiles_m = ceil_div(s.k, tile.m);
      g.tiles_n = ceil_div(s.r * s.s * s.c, tile.n);
      g.z = wgrad_split(s, tile).splits;
      break;
  }
  return g;
}

// Which operands are read with 16-byte loads (`width` consecutive values of a run that NHWC/OHWI
// keeps contiguous: 4 fp32, 8 bf16), before pointer alignment is taken into account:
//   forward          A: c run of x (C % width)        B: (r,s,c) run of w (C % width)
//   backward data    A: kout run of dy (K % width)    B: c run of w (C % width)
//   backward filter  A: kout run of dy (K % width)    B: c run of x (C % width)
// The 1x1 operand maps have the same runs. A run that starts inside its operand then lies wholly
// inside it (the run starts at a multiple of `width`, and every extent it runs along is one too).
struct ConvVectorLoads {
  bool a = false, b = false;
};
inline ConvVectorLoads conv_vector_loads(const ConvShape& s, ConvPass pass, int width = 4) {
  switch (pass) {
    case ConvPass::forward:
      return {s.c % width == 0, s.c % width == 0};
    case ConvPass::backward_data:
      return {s.k % width == 0, s.c % width == 0};
    case ConvPass::backward_filter:
      return {s.k % width == 0, s.c % width == 0};
  }
  return {};
}

// ---- the tiled kernels' per-thread work --------------------------------------------------------

// Thread t loads one 4-float quad of each operand tile per K-step. Along K (a row of A, or a column
// of B, in global memory is the contiguous run): row t / 4, k 4 * (t % 4). Along M or N (the tile
// row is contiguous): k t / 16, m or n 4 * (t % 16).
struct QuadSlot {
  int row, k;  // tile-relative: the M (or N) index of the first element, and the K index
};
HOTLAP_HOST_DEVICE inline QuadSlot quad_slot_along_k(int t) { return QuadSlot{t / 4, 4 * (t % 4)}; }
HOTLAP_HOST_DEVICE inline QuadSlot quad_slot_along_mn(int t) { return QuadSlot{4 * (t % 16), t / 16}; }

// Thread t's 4 x 4 micro-tile of the 64 x 64 output tile: rows 4 * (t / 16) + i, cols 4 * (t % 16) + j.
HOTLAP_HOST_DEVICE inline int micro_row(int t) { return kConvMicro * (t / kConvThreadCols); }
HOTLAP_HOST_DEVICE inline int micro_col(int t) { return kConvMicro * (t % kConvThreadCols); }

// ---- the operands of each pass's GEMM ------------------------------------------------------------
// One struct a pass (and a 1x1 one for the plain GEMMs) maps GEMM coordinates to tensor offsets:
// the block's M and K-dim extent (`block`: dgrad's phase, wgrad's split), a_offset(m, k) and
// b_offset(k, n) (the element's offset in the A or B tensor, or -1 for a zero: padding, or past the
// GEMM's edges), and out_offset(m, n). kAAlongK / kBAlongK: whether the operand's contiguous runs
// in memory lie along the K-dim (forward x and w, dgrad dy) or along M or N (dgrad w, wgrad dy
// and x). The maps know no element type: the fp32 and bf16 kernels share them.

struct ConvGemmBlock {
  int m_size = 0, n_size = 0, k_begin = 0, k_end = 0;
  DgradPhase phase{};  // backward data only
};

struct ForwardGemm {
  static constexpr bool kAAlongK = true, kBAlongK = true;
  ConvDims d;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int /*z*/) const {
    ConvGemmBlock b;
    b.m_size = d.n * d.p * d.q;
    b.n_size = d.k;
    b.k_end = d.r * d.s * d.c;
    return b;
  }
  // A[m][k] = im2col(x)[m][k]
  HOTLAP_HOST_DEVICE int a_offset(const ConvGemmBlock& b, int m, int k) const {
    return m < b.m_size && k < b.k_end ? im2col_offset(d, m, k) : -1;
  }
  // B[k][n] = w[n][k]
  HOTLAP_HOST_DEVICE int b_offset(const ConvGemmBlock& b, int k, int n) const {
    return n < b.n_size && k < b.k_end ? n * b.k_end + k : -1;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& /*b*/, int m, int n) const {
    return m * d.k + n;
  }
};

struct DgradGemm {
  static constexpr bool kAAlongK = true, kBAlongK = false;
  ConvDims d;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int z) const {
    ConvGemmBlock b;
    b.phase = dgrad_phase(d, z);
    b.m_size = dgrad_m_size(d, b.phase);
    b.n_size = d.c;
    b.k_end = dgrad_k_size(d, b.phase);
    return b;
  }
  // A[m][k]: dy at the tap's output pixel (consecutive k: consecutive kout of one tap)
  HOTLAP_HOST_DEVICE int a_offset(const ConvGemmBlock& b, int m, int k) const {
    return m < b.m_size && k < b.k_end ? dgrad_dy_offset(d, b.phase, m, k) : -1;
  }
  // B[k][n]: w of the tap's kout, channel n
  HOTLAP_HOST_DEVICE int b_offset(const ConvGemmBlock& b, int k, int n) const {
    return n < b.n_size && k < b.k_end ? dgrad_w_offset(d, b.phase, k, n) : -1;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& b, int m, int n) const {
    return dgrad_dx_offset(d, b.phase, m, n);
  }
};

// The K-dim range of split z (wgrad_split) of a backward filter GEMM of k_size rows.
HOTLAP_HOST_DEVICE inline ConvGemmBlock wgrad_block(int m_size, int n_size, int k_size,
                                                    int k_per_split, int z) {
  ConvGemmBlock b;
  b.m_size = m_size;
  b.n_size = n_size;
  b.k_begin = z * k_per_split;
  b.k_end = k_size - b.k_begin < k_per_split ? k_size : b.k_begin + k_per_split;
  return b;
}

struct WgradGemm {
  static constexpr bool kAAlongK = false, kBAlongK = false;
  ConvDims d;
  int k_per_split;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int z) const {
    return wgrad_block(d.k, d.r * d.s * d.c, d.n * d.p * d.q, k_per_split, z);
  }
  // A[m][k] = dy[k][m]
  HOTLAP_HOST_DEVICE int a_offset(const ConvGemmBlock& b, int m, int k) const {
    return m < b.m_size && k < b.k_end ? k * d.k + m : -1;
  }
  // B[k][n] = im2col(x)[k][n]
  HOTLAP_HOST_DEVICE int b_offset(const ConvGemmBlock& b, int k, int n) const {
    return n < b.n_size && k < b.k_end ? im2col_offset(d, k, n) : -1;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& b, int m, int n) const {
    return m * b.n_size + n;
  }
};

// The 1x1 stride-1 unpadded convolution's passes as plain row-major GEMMs: x [N*H*W][C],
// dy [N*H*W][K], w [K][C].
struct Forward1x1Gemm {
  static constexpr bool kAAlongK = true, kBAlongK = true;
  ConvDims d;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int /*z*/) const {
    ConvGemmBlock b;
    b.m_size = d.n * d.h * d.w;
    b.n_size = d.k;
    b.k_end = d.c;
    return b;
  }
  // A[m][k] = x[m][k]
  HOTLAP_HOST_DEVICE int a_offset(const ConvGemmBlock& b, int m, int k) const {
    return m < b.m_size && k < b.k_end ? m * d.c + k : -1;
  }
  // B[k][n] = w[n][k]
  HOTLAP_HOST_DEVICE int b_offset(const ConvGemmBlock& b, int k, int n) const {
    return n < b.n_size && k < b.k_end ? n * d.c + k : -1;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& /*b*/, int m, int n) const {
    return m * d.k + n;
  }
};

struct Dgrad1x1Gemm {
  static constexpr bool kAAlongK = true, kBAlongK = false;
  ConvDims d;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int /*z*/) const {
    ConvGemmBlock b;
    b.m_size = d.n * d.h * d.w;
    b.n_size = d.c;
    b.k_end = d.k;
    return b;
  }
  // A[m][k] = dy[m][k]
  HOTLAP_HOST_DEVICE int a_offset(const ConvGemmBlock& b, int m, int k) const {
    return m < b.m_size && k < b.k_end ? m * d.k + k : -1;
  }
  // B[k][n] = w[k][n]
  HOTLAP_HOST_DEVICE int b_offset(const ConvGemmBlock& b, int k, int n) const {
    return n < b.n_size && k < b.k_end ? k * d.c + n : -1;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& /*b*/, int m, int n) const {
    return m * d.c + n;
  }
};

struct Wgrad1x1Gemm {
  static constexpr bool kAAlongK = false, kBAlongK = false;
  ConvDims d;
  int k_per_split;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int z) const {
    return wgrad_block(d.k, d.c, d.n * d.h * d.w, k_per_split, z);
  }
  // A[m][k] = dy[k][m]
  HOTLAP_HOST_DEVICE int a_offset(const ConvGemmBlock& b, int m, int k) const {
    return m < b.m_size && k < b.k_end ? k * d.k + m : -1;
  }
  // B[k][n] = x[k][n]
  HOTLAP_HOST_DEVICE int b_offset(const ConvGemmBlock& b, int k, int n) const {
    return n < b.n_size && k < b.k_end ? k * d.c + n : -1;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& /*b*/, int m, int n) const {
    return m * d.c + n;
  }
};

// Element i of the contiguous run that starts at A[m][k] (or B[k][n]): along K, or along M (N).
template <class Gemm>
HOTLAP_HOST_DEVICE int a_run_offset(const Gemm& g, const ConvGemmBlock& b, int m, int k, int i) {
  return Gemm::kAAlongK ? g.a_offset(b, m, k + i) : g.a_offset(b, m + i, k);
}
template <class Gemm>
HOTLAP_HOST_DEVICE int b_run_offset(const Gemm& g, const ConvGemmBlock& b, int k, int n, int i) {
  return Gemm::kBAlongK ? g.b_offset(b, k + i, n) : g.b_offset(b, k, n + i);
}

// The tensors behind A and B, and whether each is read in 16-byte runs (conv_vector_loads, and
// the pointer 16-byte aligned). T: float, or bfloat16 for bf16 bits.
template <class T>
struct ConvOperands {
  const T* a;
  const T* b;
  bool vec_a, vec_b;
};

// A pass's operands, read in 16-byte runs (4 fp32 or 8 bf16 values) where the shape and the
// pointers allow it.
template <class T>
ConvOperands<T> conv_operands(const ConvShape& s, ConvPass pass, const T* a, const T* b) {
  const ConvVectorLoads vec = conv_vector_loads(s, pass, static_cast<int>(16 / sizeof(T)));
  auto aligned16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return ConvOperands<T>{a, b, vec.a && aligned16(a), vec.b && aligned16(b)};
}

// ---- element types -------------------------------------------------------------------------------
// bf16 travels as bfloat16 (its bits, kernels/cast.h) through the host-visible code; the tensor-core
// kernel reads the same bits as __nv_bfloat16. Results are rounded once, to nearest even (kernels/cast.h).

HOTLAP_HOST_DEVICE inline float conv_to_float(float v) { return v; }
HOTLAP_HOST_DEVICE inline float conv_to_float(bfloat16 v) {
  const uint32_t bits = bf16_to_f32_bits(v.bits);
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

template <class T>
HOTLAP_HOST_DEVICE inline T conv_from_float(float v) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return v;
  } else {
#ifdef __CUDA_ARCH__
    const uint32_t bits = __float_as_uint(v);
#else
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
#endif
    return T{f32_bits_to_bf16(bits)};
  }
}

// ---- the fp32 tiled kernels' fetches (conv_tiled.cu), shared with their CPU emulation -----------

struct Quad {
  float v[4];
};

HOTLAP_HOST_DEVICE inline float fetch(const float* base, int offset) {
  if (offset < 0) return 0.0f;
#ifdef __CUDA_ARCH__
  return __ldg(base + offset);
#else
  return base[offset];
#endif
}

// 4 contiguous floats at base + offset (16-byte aligned), or zeros for offset -1.
HOTLAP_HOST_DEVICE inline Quad fetch4(const float* base, int offset) {
  if (offset < 0) return Quad{{0.0f, 0.0f, 0.0f, 0.0f}};
#ifdef __CUDA_ARCH__
  const float4 v = __ldg(reinterpret_cast<const float4*>(base + offset));
  return Quad{{v.x, v.y, v.z, v.w}};
#else
  return Quad{{base[offset], base[offset + 1], base[offset + 2], base[offset + 3]}};
#endif
}

// The quad of A that starts at (m, k), or of B at (k, n): one 16-byte load where the run is one,
// else four guarded scalar loads.
template <class Gemm>
HOTLAP_HOST_DEVICE Quad fetch_a_quad(const Gemm& g, const ConvOperands<float>& op,
                                     const ConvGemmBlock& b, int m, int k) {
  if (op.vec_a) return fetch4(op.a, g.a_offset(b, m, k));
  Quad q;
  for (int i = 0; i < 4; ++i) q.v[i] = fetch(op.a, a_run_offset(g, b, m, k, i));
  return q;
}
template <class Gemm>
HOTLAP_HOST_DEVICE Quad fetch_b_quad(const Gemm& g, const ConvOperands<float>& op,
                                     const ConvGemmBlock& b, int k, int n) {
  if (op.vec_b) return fetch4(op.b, g.b_offset(b, k, n));
  Quad q;
  for (int i = 0; i < 4; ++i) q.v[i] = fetch(op.b, b_run_offset(g, b, k, n, i));
  return q;
}

}  // namespace hotlap::kernels::cuda

// ---- the per-variant launchers (conv_simple.cu, conv_tiled.cu, conv_tensor_core.cu), called by
// conv.cu ------------------------------------------------------------------------------------------
// Shapes, pointers and workspace already checked; the GEMM is not empty. T: float, or bfloat16
// for bf16 bits; forward and backward data write T, backward filter adds into fp32 dw and dbias.
namespace hotlap::kernels::cuda::detail {

template <class T>
void conv2d_forward_simple(const ConvShape& s, const T* x, const T* w, const float* bias, T* y);
template <class T>
void conv2d_backward_data_simple(const ConvShape& s, const T* dy, const T* w, T* dx);
template <class T>
void conv2d_backward_filter_simple(const ConvShape& s, const T* x, const T* dy, float* dw,
                                   float* dbias);

// The register double-buffered kernels: variant tiled, tiled_1x1 or tf32.
void conv2d_forward_tiled(const ConvShape& s, const float* x, const float* w, const float* bias,
                          float* y, ConvVariant variant);
void conv2d_backward_data_tiled(const ConvShape& s, const float* dy, const float* w, float* dx,
                                ConvVariant variant);
void conv2d_backward_filter_tiled(const ConvShape& s, const float* x, const float* dy, float* dw,
                                  float* dbias, float* workspace, ConvVariant variant);

// The cp.async tensor-core kernels: variant tf32_async or tf32_1x1 (T = float), bf16 or bf16_1x1
// (T = bfloat16).
template <class T>
void conv2d_forward_async(const ConvShape& s, const T* x, const T* w, const float* bias, T* y,
                          ConvVariant variant);
template <class T>
void conv2d_backward_data_async(const ConvShape& s, const T* dy, const T* w, T* dx,
                                ConvVariant variant);
template <class T>
void conv2d_backward_filter_async(const ConvShape& s, const T* x, const T* dy, float* dw,
                                  float* dbias, float* workspace, ConvVariant variant);

// Backward filter's tail for the tiled variants (conv_reduce.cu): dw[i] += the split partials
// [splits][K*R*S*C] in split order; dbias += the column sums of dy [N*P*Q][K], through `partial`
// (the workspace's bias part, conv_bias_plan).
void conv_split_sum(const char* op, const ConvShape& s, int64_t splits, const float* partial,
                    float* dw);
template <class T>
void conv_bias_grad(const char* op, const ConvShape& s, const T* dy, float* dbias, float* partial);

// Backward filter of a tiled variant with `tile`: launch(out, out_z_stride, accumulate) runs the GEMM
// kernel writing split z's tile at out + z * out_z_stride (adding to what is there when
// accumulate); one split adds straight into dw, several write their partials to the workspace
// and conv_split_sum adds them. Then dbias.
template <class T, class Launch>
void conv_backward_filter_splits(const char* op, const ConvShape& s, ConvTiles tile, const T* dy,
                                 float* dw, float* dbias, float* workspace, Launch&& launch) {
  const WgradSplit split = wgrad_split(s, tile);
  const WgradWorkspaceLayout layout = wgrad_workspace_layout(s, tile);
  if (split.splits == 1) {
    launch(dw, int64_t{0}, true);
  } else {
    float* partial = workspace + layout.partial_offset;
    launch(partial, s.k * s.r * s.s * s.c, false);
    conv_split_sum(op, s, split.splits, partial, dw);
  }
  if (dbias != nullptr) conv_bias_grad(op, s, dy, dbias, workspace + layout.bias_offset);
}

}  // namespace hotlap::kernels::cuda::detail
