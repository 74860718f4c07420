// Winograd convolution F(m x m, 3x3) for 3x3 stride-1 pad-1 layers, NHWC activations, OHWI weights.
//
// Algorithm (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015). With a = m+2,
// an m x m tile of outputs depends on an a x a tile of inputs, and for one (input c, output k) pair
//     Y = A^T [ (G g G^T) .* (B^T d B) ] A        g: the 3x3 filter, d: the a x a input tile
// where .* is elementwise. Summed over c, the elementwise products become a^2 independent GEMMs:
//     U[e][k][c] = (G g_kc G^T)[e]              weights, transformed on every call
//     V[e][t][c] = (B^T d_tc B)[e]              input tile t, channel c
//     M[e][t][k] = sum_c V[e][t][c] U[e][k][c]  a^2 GEMMs [tiles x C] * [C x K] (the hotlap GEMM)
//     y tile t, channel k = A^T M[.][t][k] A
// The transforms are small constant matrices (Tile<m> below) applied with additions and a few
// multiplies, vectorised over 16 channels, which are contiguous in NHWC. Tiles overhanging the
// bottom or right edge read zeros and drop their extra outputs.
//
// Two tile sizes: F(2x2, 3x3) (16 GEMMs; 16 multiplies per 4 outputs per (c, k) against 36: 2.25x
// fewer) and F(4x4, 3x3) (36 GEMMs; 36 per 16 against 144: 4x fewer). The larger tile is less
// precise: its coefficients reach 5 (B), 1/24 (G) and 8 (A), and fp32 rounding grows with them
// (measured normwise error 1.6e-5 at C = 256 against ~1e-7 for im2col). That is harmless for
// backward data, but in the forward pass of training a batch norm over few values per channel
// divides the error by a tiny standard deviation: ResNet-50's golden gradients (64x64, batch 2)
// came out 6% off with F(4x4) forward and 6.5e-5 off with F(2x2) (im2col: 4.9e-5). So the forward
// pass uses F(2x2, 3x3) and backward data F(4x4, 3x3).
//
// Blocking and threads: the tiles of the whole batch are cut into blocks of `rows` tiles; each
// OpenMP worker takes whole blocks, transforms their input into V (a^2 x rows x C), runs the a^2
// GEMMs single-threaded into M (a^2 x rows x K) and transforms M into y. V and M of one block are
// sized for ~1.5 MiB, to stay in the worker's 2 MiB L2, so the transformed data (4x or 2.25x the
// size of the input and of the output) does not go to memory; deep layers (256 channels and more)
// take larger blocks, so that each GEMM's packing of U pays off. U is shared and read-only.
//
// Instruction sets: the transforms are built for each level (kernels/cpu/isa_dispatch.h) and run at
// the one active_cpu_isa() says; their 16-channel vectors are one AVX-512 register, two AVX2 ones or
// four SSE ones. Every level gives the same bits: each channel is transformed on its own, in the same
// order of operations, and this file is compiled without fused multiply-adds (-ffp-contract=off):
// the transforms are mostly additions, so fusing the few multiplies saved nothing measurable, and it
// made the AVX-512 results differ from the baseline's. (CMakeLists.txt also keeps GCC from turning
// the copy loops into memcpy, which made the AVX2 build slower than the baseline one.) The GEMMs in
// between are the hotlap GEMM's, which dispatch on their own.
//
// Backward data of the same layer is the same convolution of dy with the filters rotated by 180
// degrees and C/K swapped: the weight transform reads w flipped and stores U[e][k][c] with k as the
// GEMM's depth (no transposition of the weights needed).
//
// Cost, ResNet-50 layer1 3x3 (56x56x64 -> 64), batch 8: im2col + GEMM does 2*8*3136*64*576 = 1.85
// GFLOP. F(2x2): 6272 tiles x 16 GEMMs x 2 x 64 x 64 = 0.82 GFLOP; F(4x4): 1568 x 36 x 2 x 64 x 64
// = 0.46 GFLOP; plus ~0.05-0.1 GFLOP of transform additions. Bytes: x 6.4 MB read, y 6.4 MB
// written, U 0.3-0.6 MB; V and M stay in L2 per block. So the layer runs against the FMA limit of
// 64-deep GEMMs (~60% of peak; measured 3.9 ms forward, 2.8 ms backward data, against 8.8 and 9.0
// for im2col). For layer4 (7x7x512 -> 512) the transformed weights (16 or 36 x 512 x 512 floats,
// 17-38 MB written per call) cost more than the saved multiplies at batch 8, and the conv.cpp
// selection rule leaves such shapes (few output pixels per weight) to im2col.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <omp.h>

#include "kernels/conv.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/isa_dispatch.h"
#include "kernels/gemm.h"
#include "kernels/profile.h"

namespace hotlap::kernels::cpu::winograd {

namespace {

constexpr int kL = 16;  // channels per vector block (one AVX-512 register)

// F(m x m, 3x3): B^T (a x a), G (a x 3), A^T (m x a), a = m + 2.
template <int M>
struct Tile;

// Points 0, 1, -1, infinity.
template <>
struct Tile<2> {
  static constexpr int m = 2, a = 4, e = 16;
  static constexpr float BT[a][a] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float G[a][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
  static constexpr float AT[m][a] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

// Points 0, 1, -1, 2, -2, infinity.
template <>
struct Tile<4> {
  static constexpr int m = 4, a = 6, e = 36;
  static constexpr float BT[a][a] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                     {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                     {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float G[a][3] = {{1.0f / 4, 0, 0},
                                    {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                    {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                    {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                    {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                    {0, 0, 1}};
  static constexpr float AT[m][a] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// out[i] = sum_j mt[i][j] * in[j] for R x C constant mt, where in[j] and out[i] are vectors of kL
// floats at in + j * is and out + i * os. Fully unrolled, so the zero coefficients vanish and the
// +-1 ones become additions.
template <int R, int C>
__attribute__((always_inline)) inline void apply(const float (&mt)[R][C], const float* in,
                                                  int64_t is, float* out, int64_t os) {
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    float acc[kL] = {};
    bool first = true;
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) {
      const float c = mt[i][j];
      if (c == 0.0f) continue;
      const float* v = in + j * is;
      if (first) {
#pragma omp simd
        for (int l = 0; l < kL; ++l) acc[l] = c * v[l];
        first = false;
      } else {
#pragma omp simd
        for (int l = 0; l < kL; ++l) acc[l] += c * v[l];
      }
    }
    float* o = out + i * os;
#pragma omp simd
    for (int l = 0; l < kL; ++l) o[l] = acc[l];
  }
}

// Shapes of one Winograd pass: a 3x3 pad-1 stride-1 convolution [n, h, w, cin] -> [n, h, w, cout]
// with m x m output tiles.
struct Pass {
  int64_t n, h, w, cin, cout;
  int m;
  int64_t a() const { return m + 2; }
  int64_t e() const { return a() * a(); }
  int64_t th() const { return (h + m - 1) / m; }
  int64_t tw() const { return (w + m - 1) / m; }
  int64_t tiles() const { return n * th() * tw(); }
};

// How the tiles are shared out: blocks of `rows` tiles, `threads` workers.
struct Plan {
  int64_t rows = 1;
  int threads = 1;
};

Plan plan(const Pass& p) {
  Plan pl;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // V and M of a block in ~1.5 MiB (this machine's L2 is 2 MiB per core), but at least kMinRows
  // tiles, and at least one block per worker. The floor matters for deep layers: every block's
  // GEMMs pack their U[e] (cin x cout floats) anew, and with 256 channels a 32-row block spent as
  // long packing as multiplying. layer3 (14x14x256 -> 256) at batch 8, forward: 6.4 ms with blocks
  // of 32 tiles, 5.8 with 96, 4.8 with 196 (its V and M, 6.4 MB, then live in L3); backward data
  // 6.9 -> 5.5 ms (bench/NOTES.md).
  constexpr int64_t kMinRows = 192;
  const int64_t per_tile = p.e() * (p.cin + p.cout) * int64_t(sizeof(float));
  const int64_t target = std::max<int64_t>(kMinRows, (int64_t(3) << 19) / per_tile);
  // Then evened out so every worker gets the same number of blocks (layer1 at batch 1: 784 tiles
  // in 5 blocks of 192 would leave one worker idle for a fifth of the time; 4 of 196 do not).
  const int64_t tiles = p.tiles();
  const int64_t per_worker = (tiles + int64_t(threads) * target - 1) / (int64_t(threads) * target);
  const int64_t rows = (tiles + int64_t(threads) * per_worker - 1) / (int64_t(threads) * per_worker);
  pl.rows = std::max<int64_t>(1, rows);
  pl.threads = int(std::min<int64_t>(threads, (tiles + pl.rows - 1) / pl.rows));
  return pl;
}

// Transformed weights first, then each worker's V and M.
int64_t workspace(const Pass& p) {
  const Plan pl = plan(p);
  return p.e() * p.cin * p.cout + pl.threads * p.e() * pl.rows * (p.cin + p.cout);
}

// U[e][k][c] = (G g G^T)[e] for the filters k in [k_begin, k_end) of w[K][3][3][C]; flip rotates
// each filter by 180 degrees (g[r][s] = w[k][2 - r][2 - s]).
template <int M>
__attribute__((always_inline)) inline void transform_weights_impl(const float* w, int64_t K,
                                                                   int64_t C, bool flip,
                                                                   int64_t k_begin, int64_t k_end,
                                                                   float* u) {
  using T = Tile<M>;
  alignas(64) float g[3][3][kL] = {}, t[T::a][3][kL] = {}, v[T::a][T::a][kL] = {};
  for (int64_t k = k_begin; k < k_end; ++k) {
    for (int64_t c0 = 0; c0 < C; c0 += kL) {
      const int64_t lw = std::min<int64_t>(kL, C - c0);
      for (int r = 0; r < 3; ++r)
        for (int s = 0; s < 3; ++s) {
          const int rr = flip ? 2 - r : r, ss = flip ? 2 - s : s;
          const float* src = w + ((k * 3 + rr) * 3 + ss) * C + c0;
          std::fill(g[r][s], g[r][s] + kL, 0.0f);
          std::copy(src, src + lw, g[r][s]);
        }
      for (int c = 0; c < 3; ++c) apply(T::G, &g[0][c][0], 3 * kL, &t[0][c][0], 3 * kL);  // G g
      for (int i = 0; i < T::a; ++i) apply(T::G, &t[i][0][0], kL, &v[i][0][0], kL);  // (G g) G^T
      for (int e = 0; e < T::e; ++e)
        std::copy(v[e / T::a][e % T::a], v[e / T::a][e % T::a] + lw, u + (e * K + k) * C + c0);
    }
  }
}

// V[e][j][c] for the tiles [t0, t0 + count) of x[n, h, w, cin] (j = tile - t0).
template <int M>
__attribute__((always_inline)) inline void transform_input_impl(const Pass& p, const float* x,
                                                                 int64_t t0, int64_t count,
                                                                 float* V) {
  using T = Tile<M>;
  alignas(64) float d[T::a][T::a][kL] = {}, t[T::a][T::a][kL] = {}, v[T::a][T::a][kL] = {};
  const int64_t th = p.th(), tw = p.tw(), C = p.cin;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t tile = t0 + j, n = tile / (th * tw), rem = tile % (th * tw);
    const int64_t h0 = (rem / tw) * M - 1, w0 = (rem % tw) * M - 1;  // pad 1
    const float* xn = x + n * p.h * p.w * C;
    for (int64_t c0 = 0; c0 < C; c0 += kL) {
      const int64_t lw = std::min<int64_t>(kL, C - c0);
      for (int a = 0; a < T::a; ++a)
        for (int b = 0; b < T::a; ++b) {
          const int64_t hh = h0 + a, ww = w0 + b;
          const bool inside = hh >= 0 && hh < p.h && ww >= 0 && ww < p.w;
          float* dst = d[a][b];
          if (!inside || lw < kL) std::fill(dst, dst + kL, 0.0f);
          if (!inside) continue;
          const float* src = xn + (hh * p.w + ww) * C + c0;
          if (lw == kL) {
#pragma omp simd
            for (int l = 0; l < kL; ++l) dst[l] = src[l];
          } else {
            std::copy(src, src + lw, dst);
          }
        }
      for (int b = 0; b < T::a; ++b)
        apply(T::BT, &d[0][b][0], T::a * kL, &t[0][b][0], T::a * kL);  // B^T d
      for (int a = 0; a < T::a; ++a) apply(T::BT, &t[a][0][0], kL, &v[a][0][0], kL);  // (B^T d) B
      float* out = V + j * C + c0;
      const int64_t stride = count * C;  // between the e planes
      for (int e = 0; e < T::e; ++e) {
        const float* src = v[e / T::a][e % T::a];
        float* o = out + e * stride;
        if (lw == kL) {
#pragma omp simd
          for (int l = 0; l < kL; ++l) o[l] = src[l];
        } else {
          std::copy(src, src + lw, o);
        }
      }
    }
  }
}

// y tiles [t0, t0 + count) from M[e][j][k] through the epilogue (+ bias[k], + residual, ReLU), only
// the outputs inside the image.
template <int M>
__attribute__((always_inline)) inline void transform_output_impl(const Pass& p, const float* Mt,
                                                                  const ConvEpilogue& ep, int64_t t0,
                                                                  int64_t count, float* y) {
  using T = Tile<M>;
  alignas(64) float m[T::a][T::a][kL] = {}, t[M][T::a][kL] = {}, o[M][M][kL] = {};
  const int64_t th = p.th(), tw = p.tw(), K = p.cout;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t tile = t0 + j, n = tile / (th * tw), rem = tile % (th * tw);
    const int64_t h0 = (rem / tw) * M, w0 = (rem % tw) * M;
    const int64_t hn = std::min<int64_t>(M, p.h - h0), wn = std::min<int64_t>(M, p.w - w0);
    float* yn = y + n * p.h * p.w * K;
    for (int64_t k0 = 0; k0 < K; k0 += kL) {
      const int64_t lw = std::min<int64_t>(kL, K - k0);
      const float* in = Mt + j * K + k0;
      const int64_t stride = count * K;
      for (int e = 0; e < T::e; ++e) {
        float* dst = m[e / T::a][e % T::a];
        const float* src = in + e * stride;
        if (lw == kL) {
#pragma omp simd
          for (int l = 0; l < kL; ++l) dst[l] = src[l];
        } else {
          std::fill(dst, dst + kL, 0.0f);
          std::copy(src, src + lw, dst);
        }
      }
      for (int b = 0; b < T::a; ++b)
        apply(T::AT, &m[0][b][0], T::a * kL, &t[0][b][0], T::a * kL);  // A^T m
      for (int a = 0; a < M; ++a) apply(T::AT, &t[a][0][0], kL, &o[a][0][0], kL);  // (A^T m) A
      alignas(64) float b[kL] = {};
      if (ep.bias != nullptr) std::copy(ep.bias + k0, ep.bias + k0 + lw, b);
      for (int64_t a = 0; a < hn; ++a)
        for (int64_t c = 0; c < wn; ++c) {
          const int64_t at = ((h0 + a) * p.w + w0 + c) * K + k0;
          float* dst = yn + at;
          const float* src = o[a][c];
          if (lw == kL) {
#pragma omp simd
            for (int l = 0; l < kL; ++l) dst[l] = src[l] + b[l];
          } else {
            for (int64_t l = 0; l < lw; ++l) dst[l] = src[l] + b[l];
          }
          if (ep.residual != nullptr) {
            const float* r = ep.residual + n * p.h * p.w * K + at;
#pragma omp simd
            for (int64_t l = 0; l < lw; ++l) dst[l] += r[l];
          }
          if (ep.relu) {
#pragma omp simd
            for (int64_t l = 0; l < lw; ++l) dst[l] = (dst[l] > 0.0f || std::isnan(dst[l])) ? dst[l] : 0.0f;
          }
        }
    }
  }
}

// The three transforms for either tile size: the bodies isa_dispatch.h builds once per level.
__attribute__((always_inline)) inline void transform_weights_rows(
    int m, const float* w, int64_t K, int64_t C, bool flip, int64_t k_begin, int64_t k_end,
    float* u) {
  if (m == 2)
    transform_weights_impl<2>(w, K, C, flip, k_begin, k_end, u);
  else
    transform_weights_impl<4>(w, K, C, flip, k_begin, k_end, u);
}

__attribute__((always_inline)) inline void transform_input(const Pass& p, const float* x, int64_t t0,
                                                            int64_t count, float* V) {
  if (p.m == 2)
    transform_input_impl<2>(p, x, t0, count, V);
  else
    transform_input_impl<4>(p, x, t0, count, V);
}

__attribute__((always_inline)) inline void transform_output(
    const Pass& p, const float* M, ConvEpilogue ep, int64_t t0, int64_t count, float* y) {
  if (p.m == 2)
    transform_output_impl<2>(p, M, ep, t0, count, y);
  else
    transform_output_impl<4>(p, M, ep, t0, count, y);
}

// Forward: U[e][k][c] from w[k][.][.][c], which the GEMM reads as [column k][depth c] (B
// transposed). Backward data: U[e][k][c] from w[k] rotated, read as [depth k][column c].
void transform_weights(int m, const float* w, int64_t K, int64_t C, bool flip, float* u) {
  ProfileScope scope("conv2d.winograd.weights");
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const auto weights_rows = built_for_active_cpu_isa<transform_weights_rows>();
#pragma omp parallel num_threads(threads) if (K * C > 4096)
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    weights_rows(m, w, K, C, flip, K * t / nt, K * (t + 1) / nt, u);
  }
}

// The pass itself, given U (U[e] is [cout][cin] when u_trans, else [cin][cout]) at the end of the
// workspace.
void run(const Pass& p, const float* x, const float* u, bool u_trans, const ConvEpilogue& ep, float* y,
         float* workspace) {
  const Plan pl = plan(p);
  const int64_t tiles = p.tiles(), blocks = (tiles + pl.rows - 1) / pl.rows, E = p.e();
  const int64_t per_thread = E * pl.rows * (p.cin + p.cout);
  const auto input_tiles = built_for_active_cpu_isa<transform_input>();
  const auto output_tiles = built_for_active_cpu_isa<transform_output>();
#pragma omp parallel for schedule(static) num_threads(pl.threads) if (pl.threads > 1)
  for (int64_t bi = 0; bi < blocks; ++bi) {
    float* V = workspace + omp_get_thread_num() * per_thread;
    float* M = V + E * pl.rows * p.cin;
    const int64_t t0 = bi * pl.rows, count = std::min(pl.rows, tiles - t0);
    input_tiles(p, x, t0, count, V);
    for (int64_t e = 0; e < E; ++e) {
      GemmArgs g;
      g.m = count;
      g.n = p.cout;
      g.k = p.cin;
      g.a = V + e * count * p.cin;
      g.lda = p.cin;
      g.b = u + e * p.cin * p.cout;
      g.trans_b = u_trans;
      g.ldb = u_trans ? p.cin : p.cout;
      g.beta = 0.0f;
      g.c = M + e * count * p.cout;
      g.ldc = p.cout;
      conv_gemm(g, false);
    }
    output_tiles(p, M, ep, t0, count, y);
  }
}

// Forward F(2x2, 3x3), backward data F(4x4, 3x3): see the top of the file for why.
constexpr int kForwardM = 2;
constexpr int kBackwardM = 4;

Pass forward_pass(const ConvShape& s) { return Pass{s.n, s.h, s.w, s.c, s.k, kForwardM}; }
Pass backward_pass(const ConvShape& s) { return Pass{s.n, s.h, s.w, s.k, s.c, kBackwardM}; }

}  // namespace

int64_t workspace_floats(const ConvShape& s) {
  return std::max(workspace(forward_pass(s)), workspace(backward_pass(s)));
}

void forward(const ConvShape& s, const float* x, const float* w, const ConvEpilogue& epilogue, float* y,
             float* workspace) {
  const Pass p = forward_pass(s);
  float* u = workspace + (winograd::workspace(p) - p.e() * s.k * s.c);
  transform_weights(p.m, w, s.k, s.c, false, u);
  ProfileScope scope("conv2d.forward.winograd", double(s.flops()));
  run(p, x, u, true, epilogue, y, workspace);
}

void backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, float* workspace) {
  const Pass p = backward_pass(s);
  float* u = workspace + (winograd::workspace(p) - p.e() * s.k * s.c);
  transform_weights(p.m, w, s.k, s.c, true, u);
  ProfileScope scope("conv2d.backward_data.winograd", double(s.flops()));
  run(p, dy, u, false, ConvEpilogue{}, dx, workspace);
}

}  // namespace hotlap::kernels::cpu::winograd
