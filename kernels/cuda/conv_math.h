// The implicit-GEMM convolution's index arithmetic, tiling plans and variant choice
// (kernels/cuda/conv_simple.cu, conv_tiled.cu), as plain functions both nvcc and the host compiler
// read: the kernels call them with indices from blockIdx/threadIdx, and the CPU tests call them
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
// Indices are 32-bit inside the kernels: the entry points refuse tensors of 2^31 elements or more.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "kernels/conv.h"
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
    case ConvVariant::tf32:
      return "tf32";
  }
  return "unknown";
}

// Which kernels run a shape, by shape class (no timing): TF32 tensor cores when the math mode
// allows them, else the fp32 tiled kernels; the simple kernels for GEMMs too small to fill one tile
// (under 2 MFLOP: one 64 x 64 x 256 tile), where the tiled version's extra launches (the split-K
// sum) and mostly idle threads cost more than they save. A guess until it is timed on a GPU.
constexpr int64_t kConvSimpleMaxFlops = int64_t{2} << 20;

inline ConvVariant choose_conv_variant(const ConvShape& s, ConvPass pass, MathMode mode) {
  (void)pass;  // the same rule for the three passes: they are GEMMs of the same size
  if (s.flops() < kConvSimpleMaxFlops) return ConvVariant::simple;
  return mode == MathMode::tf32 ? ConvVariant::tf32 : ConvVariant::tiled;
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
// k_per_split is a multiple of kConvTileK.
struct WgradSplit {
  int64_t splits = 1;
  int64_t k_per_split = 0;
};

inline WgradSplit wgrad_split(const ConvShape& s) {
  WgradSplit sp;
  const int64_t k_size = s.n * s.p() * s.q();
  const int64_t tiles = ceil_div(s.k, kConvTileM) * ceil_div(s.r * s.s * s.c, kConvTileN);
  if (k_size <= 0 || tiles <= 0) return sp;
  const int64_t wanted = ceil_div(kConvTargetBlocks, tiles);
  const int64_t by_length = std::max<int64_t>(1, k_size / kConvMinSplitK);
  const int64_t by_memory = std::max<int64_t>(1, kConvMaxSplitWorkspaceFloats / (s.k * s.r * s.s * s.c));
  const int64_t splits = std::clamp<int64_t>(wanted, 1, std::min({by_length, by_memory, kMaxGridY}));
  sp.k_per_split = ceil_div(ceil_div(k_size, splits), kConvTileK) * kConvTileK;
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
inline WgradWorkspaceLayout wgrad_workspace_layout(const ConvShape& s) {
  WgradWorkspaceLayout l;
  const int64_t rows = s.n * s.p() * s.q();
  if (rows <= 0 || s.k <= 0) return l;
  const WgradSplit sp = wgrad_split(s);
  l.partial_floats = sp.splits > 1 ? sp.splits * s.k * s.r * s.s * s.c : 0;
  l.bias_offset = ceil_div(l.partial_floats, 64) * 64;
  l.bias_floats = conv_bias_plan(rows, s.k).splits * s.k;
  l.total_floats = l.bias_offset + l.bias_floats;
  return l;
}

// Workspace bytes of one variant and pass: only the tiled and TF32 backward filter need one.
inline size_t conv_variant_workspace_bytes(const ConvShape& s, ConvPass pass, ConvVariant v) {
  if (pass != ConvPass::backward_filter || v == ConvVariant::simple) return 0;
  return static_cast<size_t>(wgrad_workspace_layout(s).total_floats) * sizeof(float);
}

// ---- the tiled kernels' grid ---------------------------------------------------------------------

// Grid (tiles_m, tiles_n, z) of kConvThreads-thread blocks. z: 1 (forward), the stride phases
// (backward data; a phase with fewer rows than tiles_m * 64 leaves its last blocks idle), the
// K-splits (backward filter).
struct ConvTiledGrid {
  int64_t tiles_m = 0, tiles_n = 0, z = 0;
};

inline ConvTiledGrid conv_tiled_grid(const ConvShape& s, ConvPass pass) {
  ConvTiledGrid g;
  switch (pass) {
    case ConvPass::forward:
      g.tiles_m = ceil_div(s.n * s.p() * s.q(), kConvTileM);
      g.tiles_n = ceil_div(s.k, kConvTileN);
      g.z = 1;
      break;
    case ConvPass::backward_data:  // phase 0 has the most pixels
      g.tiles_m = ceil_div(s.n * ceil_div(s.h, s.stride_h) * ceil_div(s.w, s.stride_w), kConvTileM);
      g.tiles_n = ceil_div(s.c, kConvTileN);
      g.z = s.stride_h * s.stride_w;
      break;
    case ConvPass::backward_filter:
      g.tiles_m = ceil_div(s.k, kConvTileM);
      g.tiles_n = ceil_div(s.r * s.s * s.c, kConvTileN);
      g.z = wgrad_split(s).splits;
      break;
  }
  return g;
}

// Which operands are read with 16-byte loads (4 consecutive floats of a run that NHWC/OHWI keeps
// contiguous), before pointer alignment is taken into account:
//   forward          A: c run of x (C % 4)          B: (r,s,c) run of w (C % 4)
//   backward data    A: kout run of dy (K % 4)      B: c run of w (C % 4)
//   backward filter  A: kout run of dy (K % 4)      B: c run of x (C % 4)
struct ConvVectorLoads {
  bool a = false, b = false;
};
inline ConvVectorLoads conv_vector_loads(const ConvShape& s, ConvPass pass) {
  switch (pass) {
    case ConvPass::forward:
      return {s.c % 4 == 0, s.c % 4 == 0};
    case ConvPass::backward_data:
      return {s.k % 4 == 0, s.c % 4 == 0};
    case ConvPass::backward_filter:
      return {s.k % 4 == 0, s.c % 4 == 0};
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

// ---- operand fetches shared by the tiled kernels and their CPU emulation -------------------------

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

// The operands of one block's GEMM, for each pass. Each has the block's M and K-dim extent
// (`block`: dgrad's phase, wgrad's split), and a(m, k) / b(k, n) fetchers of one quad: along K for
// forward A and B and dgrad A, along N for dgrad B and wgrad B, along M for wgrad A. Elements past
// the GEMM's edges read as 0; `vec` picks the 16-byte load where the four are one aligned run.

struct ConvGemmBlock {
  int m_size = 0, n_size = 0, k_begin = 0, k_end = 0;
  DgradPhase phase{};  // backward data only
};

struct ForwardGemm {
  static constexpr bool kAAlongK = true, kBAlongK = true;
  ConvDims d;
  const float* x;
  const float* w;
  bool vec_a, vec_b;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int /*z*/) const {
    ConvGemmBlock b;
    b.m_size = d.n * d.p * d.q;
    b.n_size = d.k;
    b.k_end = d.r * d.s * d.c;
    return b;
  }
  // A[m][k..k+3]
  HOTLAP_HOST_DEVICE Quad a(const ConvGemmBlock& b, int m, int k) const {
    Quad out{{0.0f, 0.0f, 0.0f, 0.0f}};
    if (m >= b.m_size) return out;
    if (vec_a && k < b.k_end) return fetch4(x, im2col_offset(d, m, k));  // one (r,s): C % 4 == 0
    for (int i = 0; i < 4; ++i)
      if (k + i < b.k_end) out.v[i] = fetch(x, im2col_offset(d, m, k + i));
    return out;
  }
  // B[k..k+3][n] = w[n][k..k+3]
  HOTLAP_HOST_DEVICE Quad b(const ConvGemmBlock& b, int k, int n) const {
    Quad out{{0.0f, 0.0f, 0.0f, 0.0f}};
    if (n >= b.n_size) return out;
    const int row = n * b.k_end;
    if (vec_b && k < b.k_end) return fetch4(w, row + k);
    for (int i = 0; i < 4; ++i)
      if (k + i < b.k_end) out.v[i] = fetch(w, row + k + i);
    return out;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& b, int m, int n) const {
    return m * d.k + n;
  }
};

struct DgradGemm {
  static constexpr bool kAAlongK = true, kBAlongK = false;
  ConvDims d;
  const float* dy;
  const float* w;
  bool vec_a, vec_b;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int z) const {
    ConvGemmBlock b;
    b.phase = dgrad_phase(d, z);
    b.m_size = dgrad_m_size(d, b.phase);
    b.n_size = d.c;
    b.k_end = dgrad_k_size(d, b.phase);
    return b;
  }
  // A[m][k..k+3]: 4 consecutive kout of one tap when K % 4 == 0
  HOTLAP_HOST_DEVICE Quad a(const ConvGemmBlock& b, int m, int k) const {
    Quad out{{0.0f, 0.0f, 0.0f, 0.0f}};
    if (m >= b.m_size) return out;
    if (vec_a && k < b.k_end) return fetch4(dy, dgrad_dy_offset(d, b.phase, m, k));
    for (int i = 0; i < 4; ++i)
      if (k + i < b.k_end) out.v[i] = fetch(dy, dgrad_dy_offset(d, b.phase, m, k + i));
    return out;
  }
  // B[k][n..n+3]: 4 consecutive c of one weight row
  HOTLAP_HOST_DEVICE Quad b(const ConvGemmBlock& b, int k, int n) const {
    Quad out{{0.0f, 0.0f, 0.0f, 0.0f}};
    if (k >= b.k_end) return out;
    if (vec_b && n < b.n_size) return fetch4(w, dgrad_w_offset(d, b.phase, k, n));
    for (int i = 0; i < 4; ++i)
      if (n + i < b.n_size) out.v[i] = fetch(w, dgrad_w_offset(d, b.phase, k, n + i));
    return out;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& b, int m, int n) const {
    return dgrad_dx_offset(d, b.phase, m, n);
  }
};

struct WgradGemm {
  static constexpr bool kAAlongK = false, kBAlongK = false;
  ConvDims d;
  const float* x;
  const float* dy;
  bool vec_a, vec_b;
  int k_per_split;

  HOTLAP_HOST_DEVICE ConvGemmBlock block(int z) const {
    ConvGemmBlock b;
    b.m_size = d.k;
    b.n_size = d.r * d.s * d.c;
    const int k_size = d.n * d.p * d.q;
    b.k_begin = z * k_per_split;
    b.k_end = k_size - b.k_begin < k_per_split ? k_size : b.k_begin + k_per_split;
    return b;
  }
  // A[m..m+3][k] = dy[k][m..m+3]
  HOTLAP_HOST_DEVICE Quad a(const ConvGemmBlock& b, int m, int k) const {
    Quad out{{0.0f, 0.0f, 0.0f, 0.0f}};
    if (k >= b.k_end) return out;
    if (vec_a && m < b.m_size) return fetch4(dy, k * d.k + m);
    for (int i = 0; i < 4; ++i)
      if (m + i < b.m_size) out.v[i] = fetch(dy, k * d.k + m + i);
    return out;
  }
  // B[k][n..n+3] = im2col(x)[k][n..n+3]: 4 consecutive c of one tap when C % 4 == 0
  HOTLAP_HOST_DEVICE Quad b(const ConvGemmBlock& b, int k, int n) const {
    Quad out{{0.0f, 0.0f, 0.0f, 0.0f}};
    if (k >= b.k_end) return out;
    if (vec_b && n < b.n_size) return fetch4(x, im2col_offset(d, k, n));
    for (int i = 0; i < 4; ++i)
      if (n + i < b.n_size) out.v[i] = fetch(x, im2col_offset(d, k, n + i));
    return out;
  }
  HOTLAP_HOST_DEVICE int out_offset(const ConvGemmBlock& b, int m, int n) const {
    return m * b.n_size + n;
  }
};

}  // namespace hotlap::kernels::cuda

// ---- the per-variant launchers (conv_simple.cu, conv_tiled.cu), called by conv.cu -----------------
// Shapes, pointers and workspace already checked; the GEMM is not empty.
namespace hotlap::kernels::cuda::detail {

void conv2d_forward_simple(const ConvShape& s, const float* x, const float* w, const float* bias,
                           float* y);
void conv2d_backward_data_simple(const ConvShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_filter_simple(const ConvShape& s, const float* x, const float* dy, float* dw,
                                   float* dbias);

// tensor_cores: the TF32 wmma product instead of the fp32 micro-tile.
void conv2d_forward_tiled(const ConvShape& s, const float* x, const float* w, const float* bias,
                          float* y, bool tensor_cores);
void conv2d_backward_data_tiled(const ConvShape& s, const float* dy, const float* w, float* dx,
                                bool tensor_cores);
void conv2d_backward_filter_tiled(const ConvShape& s, const float* x, const float* dy, float* dw,
                                  float* dbias, float* workspace, bool tensor_cores);

}  // namespace hotlap::kernels::cuda::detail
