// The CUDA convolution's plans and index arithmetic (kernels/cuda/conv_math.h), run on the CPU:
// these tests need no GPU and run in every build.
//   - the implicit-GEMM index maps ((m, k) -> input element or padding; backward data's phases,
//     taps and output pixels) against direct loops over the convolution;
//   - backward data's tap enumeration against a brute-force scatter: every (output pixel, tap)
//     pair that touches an input pixel is visited exactly once, for strides 1 to 3;
//   - the 1x1 plain-GEMM operand maps against the implicit-GEMM ones on 1x1 shapes;
//   - the tiled kernels (conv_tiled.cu) and the cp.async tensor-core kernels (conv_tensor_core.cu),
//     emulated block by block with the same fetches or copies, tile slots, shared-memory layout
//     and epilogue, fp32 and bf16, implicit and 1x1 maps: every output element written exactly
//     once (tile tails included), and the results against the CPU convolution (vector and scalar
//     fetches both);
//   - the cp.async tiles' layout: copies cover each tile element once, 16-byte aligned; wmma
//     fragments 32-byte aligned; the shared memory fits;
//   - split-K, the dbias plan, the workspace queries and the variant choice.
// What is left unchecked without a GPU: the kernels' thin CUDA shells (barriers, the register
// double buffer, cp.async's commit and wait, wmma and its TF32 rounding) and the simple kernels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kernels/cast.h"
#include "kernels/conv.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/cuda/conv_tensor_core_math.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"
#include "kernels/conv_shapes.h"
#include "test_util.h"

namespace k = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace cpu = hotlap::kernels::cpu;
namespace kc = hotlap::kernels::cuda;
using hotlap::test::as_elements;
using hotlap::test::as_floats;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
using k::ConvShape;
using kc::ConvPass;
using kc::ConvVariant;

namespace {

using hotlap::test::conv_shape;
using hotlap::test::describe;

constexpr ConvVariant kAllVariants[] = {
    ConvVariant::simple,     ConvVariant::tiled,       ConvVariant::tiled_1x1,
    ConvVariant::tf32,       ConvVariant::tf32_async,  ConvVariant::tf32_1x1,
    ConvVariant::bf16_simple, ConvVariant::bf16,       ConvVariant::bf16_1x1,
};

// Random valid shapes: small sizes, strides 1-3, padding up to the filter size less one.
std::vector<ConvShape> random_shapes(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<ConvShape> shapes;
  while (static_cast<int>(shapes.size()) < count) {
    ConvShape s;
    s.n = pick(1, 3);
    s.h = pick(1, 9);
    s.w = pick(1, 9);
    s.c = pick(1, 6);
    s.k = pick(1, 5);
    s.r = pick(1, 4);
    s.s = pick(1, 4);
    s.stride_h = pick(1, 3);
    s.stride_w = pick(1, 3);
    s.pad_h = pick(0, static_cast<int>(s.r) - 1);
    s.pad_w = pick(0, static_cast<int>(s.s) - 1);
    if (s.h + 2 * s.pad_h < s.r || s.w + 2 * s.pad_w < s.s) continue;
    shapes.push_back(s);
  }
  return shapes;
}

// The shapes the emulated tiled kernels run: tails in every direction (C, K not multiples of 4, 8,
// 64 or 128), padding, strides 1-3, 1x1, H != W, and shapes whose runs take the 16-byte fetches
// (C % 4 == 0 for fp32, C % 8 == 0 for bf16).
std::vector<ConvShape> emulation_shapes() {
  std::vector<ConvShape> shapes = {
      conv_shape(2, 9, 7, 3, 5, 3, 3, 1, 1),     // C=3, K=5, H != W
      conv_shape(1, 11, 11, 3, 8, 7, 7, 2, 3),   // a small stem: 7x7/2, odd H
      conv_shape(2, 8, 8, 16, 20, 3, 3, 1, 1),   // vector fetches, K tail
      conv_shape(2, 7, 7, 8, 12, 3, 3, 2, 1),    // stride 2, odd H, vector fetches
      conv_shape(2, 6, 5, 12, 70, 1, 1, 1, 0),   // pointwise, K past one tile
      conv_shape(1, 9, 9, 68, 8, 1, 1, 2, 0),    // strided 1x1 downsample, C past one tile
      conv_shape(1, 5, 6, 5, 4, 3, 3, 1, 0),     // 3x3 without padding
      conv_shape(2, 1, 1, 4, 6, 1, 1, 1, 0),     // 1x1 spatial
      conv_shape(1, 6, 6, 4, 4, 2, 2, 3, 1),     // stride 3 with phases that get no tap
      conv_shape(3, 20, 20, 4, 8, 3, 3, 1, 1),   // backward filter split over K-dim
      conv_shape(2, 9, 9, 8, 16, 3, 3, 2, 1),    // every operand in 8-value (bf16) runs
      conv_shape(1, 9, 15, 136, 24, 1, 1, 1, 0),  // pointwise: M past 128, C past one bf16 K-step
      conv_shape(2, 5, 7, 16, 72, 1, 1, 1, 0),   // pointwise, 8-value runs, K past 64
      conv_shape(2, 3, 3, 5, 3, 1, 1, 1, 0),     // pointwise, no runs at all
  };
  return shapes;
}

// ---- the tiled kernel on the CPU -----------------------------------------------------------------

// One block as conv_tiled_kernel runs it (fp32 product), with `writes` counting every epilogue
// store at (z, offset). Shared memory is one buffer here: the emulation runs the steps one after
// another, so the double buffer changes nothing but timing.
template <class Gemm>
void emulate_tiled(const ConvShape& s, ConvPass pass, const Gemm& g,
                   const kc::ConvOperands<float>& op, const float* bias, float* out,
                   int64_t out_z_stride, bool accumulate, std::map<int64_t, int>* writes) {
  const kc::ConvTiledGrid grid = kc::conv_tiled_grid(s, pass);
  std::vector<float> as(kc::kConvTileK * kc::kConvSmemLd), bs(as.size());
  auto store = [](std::vector<float>& tile, kc::QuadSlot slot, bool along_k, const kc::Quad& q) {
    for (int i = 0; i < 4; ++i) {
      if (along_k)
        tile[(slot.k + i) * kc::kConvSmemLd + slot.row] = q.v[i];
      else
        tile[slot.k * kc::kConvSmemLd + slot.row + i] = q.v[i];
    }
  };
  std::vector<float> acc(kc::kConvThreads * kc::kConvMicro * kc::kConvMicro);
  for (int64_t z = 0; z < grid.z; ++z)
    for (int64_t bx = 0; bx < grid.tiles_m; ++bx)
      for (int64_t by = 0; by < grid.tiles_n; ++by) {
        const kc::ConvGemmBlock blk = g.block(static_cast<int>(z));
        const int m0 = static_cast<int>(bx) * kc::kConvTileM;
        const int n0 = static_cast<int>(by) * kc::kConvTileN;
        if (m0 >= blk.m_size) continue;
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int k0 = blk.k_begin; k0 < blk.k_end; k0 += kc::kConvTileK) {
          for (int t = 0; t < kc::kConvThreads; ++t) {
            const kc::QuadSlot sa = Gemm::kAAlongK ? kc::quad_slot_along_k(t) : kc::quad_slot_along_mn(t);
            const kc::QuadSlot sb = Gemm::kBAlongK ? kc::quad_slot_along_k(t) : kc::quad_slot_along_mn(t);
            store(as, sa, Gemm::kAAlongK, kc::fetch_a_quad(g, op, blk, m0 + sa.row, k0 + sa.k));
            store(bs, sb, Gemm::kBAlongK, kc::fetch_b_quad(g, op, blk, k0 + sb.k, n0 + sb.row));
          }
          for (int t = 0; t < kc::kConvThreads; ++t)
            for (int kk = 0; kk < kc::kConvTileK; ++kk)
              for (int i = 0; i < kc::kConvMicro; ++i)
                for (int j = 0; j < kc::kConvMicro; ++j)
                  acc[(t * kc::kConvMicro + i) * kc::kConvMicro + j] +=
                      as[kk * kc::kConvSmemLd + kc::micro_row(t) + i] *
                      bs[kk * kc::kConvSmemLd + kc::micro_col(t) + j];
        }
        for (int t = 0; t < kc::kConvThreads; ++t)
          for (int i = 0; i < kc::kConvMicro; ++i) {
            const int m = m0 + kc::micro_row(t) + i;
            if (m >= blk.m_size) break;
            for (int j = 0; j < kc::kConvMicro; ++j) {
              const int n = n0 + kc::micro_col(t) + j;
              if (n >= blk.n_size) break;
              float v = acc[(t * kc::kConvMicro + i) * kc::kConvMicro + j];
              if (bias != nullptr) v += bias[n];
              const int64_t at = z * out_z_stride + g.out_offset(blk, m, n);
              out[at] = accumulate ? out[at] + v : v;
              if (writes != nullptr) ++(*writes)[at];
            }
          }
      }
}

struct Tensors {
  std::vector<float> x, w, bias, dy;
  explicit Tensors(const ConvShape& s)
      : x(random_floats(static_cast<size_t>(s.n * s.h * s.w * s.c), 1)),
        w(random_floats(static_cast<size_t>(s.k * s.r * s.s * s.c), 2)),
        bias(random_floats(static_cast<size_t>(s.k), 3)),
        dy(random_floats(static_cast<size_t>(s.n * s.p() * s.q() * s.k), 4)) {}
};

std::vector<float> cpu_forward(const ConvShape& s, const Tensors& t) {
  std::vector<float> y(t.dy.size()), ws(static_cast<size_t>(cpu::conv2d_workspace_floats(s)) + 1);
  cpu::conv2d_forward(s, t.x.data(), t.w.data(), t.bias.data(), y.data(), ws.data());
  return y;
}
std::vector<float> cpu_backward_data(const ConvShape& s, const Tensors& t) {
  std::vector<float> dx(t.x.size()), ws(static_cast<size_t>(cpu::conv2d_workspace_floats(s)) + 1);
  cpu::conv2d_backward_data(s, t.dy.data(), t.w.data(), dx.data(), ws.data());
  return dx;
}
std::vector<float> cpu_backward_filter(const ConvShape& s, const Tensors& t, std::vector<float>& dbias) {
  std::vector<float> dw(t.w.size(), 0.5f), ws(static_cast<size_t>(cpu::conv2d_workspace_floats(s)) + 1);
  dbias.assign(static_cast<size_t>(s.k), -0.25f);
  cpu::conv2d_backward_filter(s, t.x.data(), t.dy.data(), dw.data(), dbias.data(), ws.data());
  return dw;
}


// ---- the cp.async tensor-core kernel on the CPU --------------------------------------------------

// The value a tile slot holds before a step's copies: a NaN, so a slot the copies miss poisons the
// product.
template <class T>
T poison() {
  if constexpr (std::is_same_v<T, float>)
    return NAN;
  else
    return hotlap::kernels::float_to_bf16(NAN);
}

// One launch as conv_tensor_core_kernel runs it: per block and K-step every 16-byte copy (or its
// value-by-value fallback) into the operand tiles laid out as in shared memory, the product read
// back through the tiles' index(), and the epilogue thread by thread. The products are fp32 of the
// stored values (exact for bf16 inputs); `writes` counts every epilogue store at (z, offset).
template <class T, class Gemm, class Out>
void emulate_async(const ConvShape& s, ConvPass pass, const Gemm& g, const kc::ConvOperands<T>& op,
                   const float* bias, Out* out, int64_t out_z_stride, bool accumulate,
                   std::map<int64_t, int>* writes) {
  constexpr kc::AsyncOperandTile a = kc::async_a_tile<T, Gemm>(), b = kc::async_b_tile<T, Gemm>();
  const kc::ConvTiles tiles = std::is_same_v<T, float> ? kc::kConvAsyncTf32Tiles : kc::kConvAsyncBf16Tiles;
  REQUIRE(tiles.k == a.tile_k);
  const kc::ConvTiledGrid grid = kc::conv_tiled_grid(s, pass, tiles);
  std::vector<T> as(static_cast<size_t>(a.values())), bs(static_cast<size_t>(b.values()));
  std::vector<float> acc(kc::kConvAsyncTileM * kc::kConvAsyncTileN);
  for (int64_t z = 0; z < grid.z; ++z)
    for (int64_t bx = 0; bx < grid.tiles_m; ++bx)
      for (int64_t by = 0; by < grid.tiles_n; ++by) {
        const kc::ConvGemmBlock blk = g.block(static_cast<int>(z));
        const int m0 = static_cast<int>(bx) * kc::kConvAsyncTileM;
        const int n0 = static_cast<int>(by) * kc::kConvAsyncTileN;
        if (m0 >= blk.m_size) continue;
        auto copy = [&](const kc::AsyncOperandTile& layout, std::vector<T>& tile, bool is_a,
                        const T* base, bool vec, int mn0, int k0) {
          std::fill(tile.begin(), tile.end(), poison<T>());
          for (int v = 0; v < layout.copies(); ++v) {
            const kc::AsyncSlot slot = layout.slot(v);
            const int mn = mn0 + slot.mn, k = k0 + slot.k;
            const int first = is_a ? g.a_offset(blk, mn, k) : g.b_offset(blk, k, mn);
            for (int i = 0; i < layout.width; ++i) {
              const int at = vec ? (first < 0 ? -1 : first + i)
                                 : (is_a ? kc::a_run_offset(g, blk, mn, k, i)
                                         : kc::b_run_offset(g, blk, k, mn, i));
              tile[static_cast<size_t>(slot.index + i)] = at < 0 ? T(0) : base[at];
            }
          }
        };
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int k0 = blk.k_begin; k0 < blk.k_end; k0 += a.tile_k) {
          copy(a, as, true, op.a, op.vec_a, m0, k0);
          copy(b, bs, false, op.b, op.vec_b, n0, k0);
          for (int m = 0; m < kc::kConvAsyncTileM; ++m)
            for (int n = 0; n < kc::kConvAsyncTileN; ++n)
              for (int k = 0; k < a.tile_k; ++k)
                acc[static_cast<size_t>(m * kc::kConvAsyncTileN + n)] +=
                    kc::conv_to_float(as[static_cast<size_t>(a.index(m, k))]) *
                    kc::conv_to_float(bs[static_cast<size_t>(b.index(n, k))]);
        }
        for (int t = 0; t < kc::kConvAsyncThreads; ++t) {
          const int col = kc::async_out_col(t), n = n0 + col;
          if (n >= blk.n_size) continue;
          for (int row = kc::async_out_row(t); row < kc::kConvAsyncTileM; row += kc::kConvAsyncOutRowStep) {
            const int m = m0 + row;
            if (m >= blk.m_size) break;
            const float v = acc[static_cast<size_t>(row * kc::kConvAsyncTileN + col)] +
                            (bias != nullptr ? bias[n] : 0.0f);
            const int64_t at = z * out_z_stride + g.out_offset(blk, m, n);
            if constexpr (std::is_same_v<Out, float>)
              out[at] = accumulate ? out[at] + v : v;
            else
              out[at] = kc::conv_from_float<Out>(v);
            if (writes != nullptr) ++(*writes)[at];
          }
        }
      }
}

// The three passes' operand maps: implicit GEMM (im2col, phases) or the 1x1 plain GEMMs.
struct ImplicitGemms {
  using Forward = kc::ForwardGemm;
  using Dgrad = kc::DgradGemm;
  using Wgrad = kc::WgradGemm;
};
struct PlainGemms {
  using Forward = kc::Forward1x1Gemm;
  using Dgrad = kc::Dgrad1x1Gemm;
  using Wgrad = kc::Wgrad1x1Gemm;
};

// Every element written exactly once, inside the output.
void check_written_once(const std::map<int64_t, int>& writes, size_t size) {
  REQUIRE(writes.size() == size);
  for (const auto& [at, count] : writes)
    REQUIRE((at >= 0 && at < static_cast<int64_t>(size) && count == 1));
}

// Runs the three passes of an emulated kernel (`emulate(shape, pass, gemm, operands, bias, out,
// out_z_stride, accumulate, writes)`) with element type T and the operand maps of Gemms, and checks
// that every output is written once and that the results match the CPU convolution (on the inputs
// rounded to T): y and dx within out_tol, dw (fp32 sums, split-K partials added in order) 1e-5.
template <class T, class Gemms, class Emulate>
void check_emulated_passes(const ConvShape& s, kc::ConvTiles tiles, bool use_vec, Emulate&& emulate,
                           double out_tol) {
  CAPTURE(sizeof(T));
  Tensors t(s);
  const std::vector<T> x = as_elements<T>(t.x), w = as_elements<T>(t.w), dy = as_elements<T>(t.dy);
  t.x = as_floats(x), t.w = as_floats(w), t.dy = as_floats(dy);  // the reference's inputs
  const kc::ConvDims d = kc::conv_dims(s);
  auto operands = [&](ConvPass pass, const T* a, const T* b) {
    kc::ConvOperands<T> op = kc::conv_operands(s, pass, a, b);
    op.vec_a = op.vec_a && use_vec;
    op.vec_b = op.vec_b && use_vec;
    return op;
  };
  {
    std::map<int64_t, int> writes;
    std::vector<T> y(t.dy.size(), poison<T>());
    emulate(s, ConvPass::forward, typename Gemms::Forward{d},
            operands(ConvPass::forward, x.data(), w.data()), t.bias.data(), y.data(), 0, false,
            &writes);
    check_written_once(writes, y.size());
    CHECK(max_rel_error(as_floats(y), cpu_forward(s, t)) < out_tol);
  }
  {
    std::map<int64_t, int> writes;
    std::vector<T> dx(t.x.size(), poison<T>());
    emulate(s, ConvPass::backward_data, typename Gemms::Dgrad{d},
            operands(ConvPass::backward_data, dy.data(), w.data()), nullptr, dx.data(), 0, false,
            &writes);
    check_written_once(writes, dx.size());
    CHECK(max_rel_error(as_floats(dx), cpu_backward_data(s, t)) < out_tol);
  }
  {
    // split partials, then the in-order sum into dw (pre-filled: it accumulates)
    const kc::WgradSplit sp = kc::wgrad_split(s, tiles);
    const int64_t count = s.k * s.r * s.s * s.c;
    const typename Gemms::Wgrad g{d, static_cast<int>(sp.k_per_split)};
    const kc::ConvOperands<T> op = operands(ConvPass::backward_filter, dy.data(), x.data());
    std::map<int64_t, int> writes;
    std::vector<float> dw(t.w.size(), 0.5f);
    if (sp.splits == 1) {
      emulate(s, ConvPass::backward_filter, g, op, nullptr, dw.data(), 0, true, &writes);
      check_written_once(writes, dw.size());
    } else {
      std::vector<float> partial(static_cast<size_t>(sp.splits * count), NAN);
      emulate(s, ConvPass::backward_filter, g, op, nullptr, partial.data(), count, false, &writes);
      check_written_once(writes, partial.size());
      for (int64_t i = 0; i < count; ++i) {
        float sum = 0.0f;
        for (int64_t z = 0; z < sp.splits; ++z) sum += partial[static_cast<size_t>(z * count + i)];
        dw[static_cast<size_t>(i)] += sum;
      }
    }
    std::vector<float> dbias_ref;
    CHECK(max_rel_error(dw, cpu_backward_filter(s, t, dbias_ref)) < 1e-5);
  }
}

}  // namespace

TEST_CASE("cuda conv plan: im2col index map against a direct loop") {
  for (const ConvShape& s : random_shapes(60, 11)) {
    CAPTURE(describe(s));
    const kc::ConvDims d = kc::conv_dims(s);
    const int rsc = static_cast<int>(s.r * s.s * s.c);
    int m = 0;
    for (int n = 0; n < s.n; ++n)
      for (int p = 0; p < s.p(); ++p)
        for (int q = 0; q < s.q(); ++q, ++m) {
          int kk = 0;
          for (int r = 0; r < s.r; ++r)
            for (int t = 0; t < s.s; ++t)
              for (int c = 0; c < s.c; ++c, ++kk) {
                const int64_t y = p * s.stride_h - s.pad_h + r, x = q * s.stride_w - s.pad_w + t;
                const bool inside = y >= 0 && y < s.h && x >= 0 && x < s.w;
                const int want = inside ? static_cast<int>(((n * s.h + y) * s.w + x) * s.c + c) : -1;
                REQUIRE(kc::im2col_offset(d, m, kk) == want);
              }
          REQUIRE(kk == rsc);
        }
  }
}

TEST_CASE("cuda conv plan: backward data visits every (output pixel, tap) pair exactly once") {
  // Key: (input element offset of channel 0, output pixel n*P*Q + p*Q + q, tap r*S + s).
  using Visit = std::tuple<int64_t, int64_t, int64_t>;
  std::vector<ConvShape> shapes = random_shapes(80, 12);
  shapes.push_back(conv_shape(2, 7, 9, 1, 1, 3, 3, 2, 1));  // stride 2, odd H, H != W
  shapes.push_back(conv_shape(1, 8, 8, 1, 1, 1, 1, 2, 0));  // 1x1/2 downsample: 3 phases idle
  shapes.push_back(conv_shape(1, 15, 15, 1, 1, 7, 7, 2, 3));  // the stem's geometry
  for (const ConvShape& s : shapes) {
    CAPTURE(describe(s));
    // Brute-force scatter: every output pixel and tap, and the input pixel it lands on.
    std::map<Visit, int> want;
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t p = 0; p < s.p(); ++p)
        for (int64_t q = 0; q < s.q(); ++q)
          for (int64_t r = 0; r < s.r; ++r)
            for (int64_t t = 0; t < s.s; ++t) {
              const int64_t y = p * s.stride_h - s.pad_h + r, x = q * s.stride_w - s.pad_w + t;
              if (y < 0 || y >= s.h || x < 0 || x >= s.w) continue;
              ++want[{((n * s.h + y) * s.w + x) * s.c, (n * s.p() + p) * s.q() + q, r * s.s + t}];
            }
    // The gather: every phase, every pixel of it, every tap of it (kout = 0 column of each tap).
    const kc::ConvDims d = kc::conv_dims(s);
    std::map<Visit, int> got;
    std::vector<int> pixel_seen(static_cast<size_t>(s.n * s.h * s.w), 0);
    for (int z = 0; z < kc::dgrad_phases(d); ++z) {
      const kc::DgradPhase ph = kc::dgrad_phase(d, z);
      const int taps = ph.taps_r * ph.taps_s;
      REQUIRE(kc::dgrad_k_size(d, ph) == taps * d.k);
      for (int m = 0; m < kc::dgrad_m_size(d, ph); ++m) {
        const int dx0 = kc::dgrad_dx_offset(d, ph, m, 0);
        REQUIRE(dx0 % d.c == 0);
        ++pixel_seen[static_cast<size_t>(dx0 / d.c)];
        for (int tap = 0; tap < taps; ++tap) {
          const int kk = tap * d.k;
          const int dy_off = kc::dgrad_dy_offset(d, ph, m, kk);
          if (dy_off < 0) continue;
          const kc::DgradTap tp = kc::dgrad_tap(d, ph, kk);
          REQUIRE(dy_off % d.k == 0);
          ++got[{dx0, dy_off / d.k, tp.r * d.s + tp.s}];
          // B's row is the weight of that tap: w[kout=0][r][s][c=0].
          REQUIRE(kc::dgrad_w_offset(d, ph, kk, 0) == (tp.r * d.s + tp.s) * d.c);
        }
      }
    }
    CHECK(got == want);
    for (const auto& [visit, count] : got) REQUIRE(count == 1);
    for (int seen : pixel_seen) REQUIRE(seen == 1);  // the phases partition the input pixels
  }
}

TEST_CASE("cuda conv plan: backward data dy/w offsets of every kout against a direct loop") {
  for (const ConvShape& s : random_shapes(40, 13)) {
    CAPTURE(describe(s));
    const kc::ConvDims d = kc::conv_dims(s);
    for (int z = 0; z < kc::dgrad_phases(d); ++z) {
      const kc::DgradPhase ph = kc::dgrad_phase(d, z);
      for (int m = 0; m < kc::dgrad_m_size(d, ph); ++m)
        for (int kk = 0; kk < kc::dgrad_k_size(d, ph); ++kk) {
          const kc::DgradPixel px = kc::dgrad_pixel(d, ph, m);
          const kc::DgradTap tp = kc::dgrad_tap(d, ph, kk);
          const int ny = px.h + d.pad_h - tp.r, nx = px.w + d.pad_w - tp.s;
          REQUIRE(((ny % d.stride_h) + d.stride_h) % d.stride_h == 0);  // on the stride grid
          REQUIRE(((nx % d.stride_w) + d.stride_w) % d.stride_w == 0);
          const bool valid = ny >= 0 && nx >= 0 && ny / d.stride_h < d.p && nx / d.stride_w < d.q;
          const int want =
              valid ? ((px.n * d.p + ny / d.stride_h) * d.q + nx / d.stride_w) * d.k + tp.kout : -1;
          REQUIRE(kc::dgrad_dy_offset(d, ph, m, kk) == want);
          for (int c = 0; c < d.c; ++c)
            REQUIRE(kc::dgrad_w_offset(d, ph, kk, c) ==
                    ((tp.kout * d.r + tp.r) * d.s + tp.s) * d.c + c);
        }
    }
  }
}

TEST_CASE("cuda conv plan: the 1x1 operand maps equal the implicit-GEMM maps on 1x1 shapes") {
  std::vector<ConvShape> shapes;
  for (const ConvShape& s : random_shapes(200, 15))
    if (s.is_pointwise()) shapes.push_back(s);
  for (const ConvShape& s : emulation_shapes())
    if (s.is_pointwise()) shapes.push_back(s);
  REQUIRE(shapes.size() >= 4);
  for (const ConvShape& s : shapes) {
    CAPTURE(describe(s));
    const kc::ConvDims d = kc::conv_dims(s);
    const int k_per_split = static_cast<int>(kc::wgrad_split(s).k_per_split);
    const kc::ForwardGemm f{d};
    const kc::Forward1x1Gemm f1{d};
    const kc::DgradGemm g{d};
    const kc::Dgrad1x1Gemm g1{d};
    const kc::WgradGemm w{d, k_per_split};
    const kc::Wgrad1x1Gemm w1{d, k_per_split};
    const kc::ConvGemmBlock fb = f.block(0), gb = g.block(0), wb = w.block(0);
    // The same extents (one phase, one split) and the same offsets, edges included.
    CHECK((f1.block(0).m_size == fb.m_size && f1.block(0).n_size == fb.n_size && f1.block(0).k_end == fb.k_end));
    CHECK((g1.block(0).m_size == gb.m_size && g1.block(0).n_size == gb.n_size && g1.block(0).k_end == gb.k_end));
    CHECK((w1.block(0).m_size == wb.m_size && w1.block(0).n_size == wb.n_size && w1.block(0).k_end == wb.k_end));
    for (int m = 0; m < fb.m_size + 2; ++m)
      for (int k = 0; k < fb.k_end + 2; ++k) REQUIRE(f1.a_offset(fb, m, k) == f.a_offset(fb, m, k));
    for (int k = 0; k < fb.k_end + 2; ++k)
      for (int n = 0; n < fb.n_size + 2; ++n) REQUIRE(f1.b_offset(fb, k, n) == f.b_offset(fb, k, n));
    for (int m = 0; m < gb.m_size + 2; ++m)
      for (int k = 0; k < gb.k_end + 2; ++k) REQUIRE(g1.a_offset(gb, m, k) == g.a_offset(gb, m, k));
    for (int k = 0; k < gb.k_end + 2; ++k)
      for (int n = 0; n < gb.n_size + 2; ++n) REQUIRE(g1.b_offset(gb, k, n) == g.b_offset(gb, k, n));
    for (int m = 0; m < gb.m_size; ++m)
      for (int n = 0; n < gb.n_size; ++n) REQUIRE(g1.out_offset(gb, m, n) == g.out_offset(gb, m, n));
    for (int z = 0; z < kc::wgrad_split(s).splits; ++z) {
      const kc::ConvGemmBlock b = w.block(z);
      for (int m = 0; m < b.m_size + 2; ++m)
        for (int k = b.k_begin; k < b.k_end + 2; ++k) REQUIRE(w1.a_offset(b, m, k) == w.a_offset(b, m, k));
      for (int k = b.k_begin; k < b.k_end + 2; ++k)
        for (int n = 0; n < b.n_size + 2; ++n) REQUIRE(w1.b_offset(b, k, n) == w.b_offset(b, k, n));
    }
  }
}

TEST_CASE("cuda conv plan: the tiled kernels, emulated on the CPU, write every output once and match the CPU convolution") {
  const auto tiled = [](const ConvShape& s, ConvPass pass, const auto& g,
                        const kc::ConvOperands<float>& op, const float* bias, float* out,
                        int64_t out_z_stride, bool accumulate, std::map<int64_t, int>* writes) {
    emulate_tiled(s, pass, g, op, bias, out, out_z_stride, accumulate, writes);
  };
  for (const ConvShape& s : emulation_shapes()) {
    CAPTURE(describe(s));
    for (bool use_vec : {false, true}) {
      CAPTURE(use_vec);
      check_emulated_passes<float, ImplicitGemms>(s, kc::kConvTiledTiles, use_vec, tiled, 1e-5);
      if (s.is_pointwise())
        check_emulated_passes<float, PlainGemms>(s, kc::kConvTiledTiles, use_vec, tiled, 1e-5);
    }
  }
  for (const ConvShape& s : random_shapes(20, 14)) {  // the grid: every output once
    CAPTURE(describe(s));
    check_emulated_passes<float, ImplicitGemms>(s, kc::kConvTiledTiles, false, tiled, 1e-5);
  }
}

TEST_CASE("cuda conv plan: the cp.async tensor-core kernels, emulated on the CPU, write every output once and match the CPU convolution") {
  // Products in fp32 here (the emulation checks the copies, the layout and the epilogue, not the
  // tensor cores' TF32 rounding); bf16 against the CPU on the bf16-rounded inputs, with y and dx
  // rounded once to bf16 (2^-8 relative) and dw summed in fp32.
  const auto async = [](const ConvShape& s, ConvPass pass, const auto& g, const auto& op,
                        const float* bias, auto* out, int64_t out_z_stride, bool accumulate,
                        std::map<int64_t, int>* writes) {
    emulate_async(s, pass, g, op, bias, out, out_z_stride, accumulate, writes);
  };
  std::vector<ConvShape> shapes = emulation_shapes();
  for (const ConvShape& s : random_shapes(12, 16)) shapes.push_back(s);
  for (const ConvShape& s : shapes) {
    CAPTURE(describe(s));
    for (bool use_vec : {false, true}) {
      CAPTURE(use_vec);
      check_emulated_passes<float, ImplicitGemms>(s, kc::kConvAsyncTf32Tiles, use_vec, async, 1e-5);
      check_emulated_passes<bfloat16, ImplicitGemms>(s, kc::kConvAsyncBf16Tiles, use_vec, async,
                                                     1e-2);
      if (s.is_pointwise()) {
        check_emulated_passes<float, PlainGemms>(s, kc::kConvAsyncTf32Tiles, use_vec, async, 1e-5);
        check_emulated_passes<bfloat16, PlainGemms>(s, kc::kConvAsyncBf16Tiles, use_vec, async,
                                                    1e-2);
      }
    }
  }
}

TEST_CASE("cuda conv plan: the cp.async tiles' shared-memory layout") {
  // Every layout of each operand: both element types, runs along K or along M/N.
  for (int bytes : {4, 2}) {
    const int tile_k = kc::kConvAsyncStepBytes / bytes, width = 16 / bytes;
    for (int extent : {kc::kConvAsyncTileM, kc::kConvAsyncTileN})
      for (bool along_k : {true, false}) {
        CAPTURE(bytes);
        CAPTURE(extent);
        CAPTURE(along_k);
        const kc::AsyncOperandTile tile{extent, tile_k, width, along_k};
        // The copies cover each (mn, k) of the tile exactly once, never the padding.
        std::vector<int> covered(static_cast<size_t>(tile.values()), 0);
        REQUIRE(tile.copies() % kc::kConvAsyncThreads == 0);
        for (int v = 0; v < tile.copies(); ++v) {
          const kc::AsyncSlot slot = tile.slot(v);
          REQUIRE(slot.index == tile.index(slot.mn, slot.k));
          REQUIRE((slot.index * bytes) % 16 == 0);  // cp.async's destination
          for (int i = 0; i < width; ++i) {
            const int mn = along_k ? slot.mn : slot.mn + i, k = along_k ? slot.k + i : slot.k;
            REQUIRE((mn < extent && k < tile_k));
            REQUIRE(tile.index(mn, k) == slot.index + i);  // the run is contiguous in the tile too
            ++covered[static_cast<size_t>(slot.index + i)];
          }
        }
        int total = 0;
        for (int c : covered) {
          REQUIRE(c <= 1);
          total += c;
        }
        CHECK(total == extent * tile_k);
        // wmma: ldm a multiple of 16 bytes, each fragment (16 along mn, 8 or 16 along k) on a
        // 32-byte boundary.
        CHECK((tile.ld() * bytes) % 16 == 0);
        const int frag_k = bytes == 4 ? 8 : 16;
        for (int mn = 0; mn < extent; mn += 16)
          for (int k = 0; k < tile_k; k += frag_k) REQUIRE((tile.index(mn, k) * bytes) % 32 == 0);
      }
  }
  // The stages and the epilogue tile fit the 48 KB of static shared memory; the warps' 32 x 32
  // slabs tile the 128 x 64 output tile; the epilogue's threads write each output once.
  CHECK(kc::async_smem_bytes<float, kc::ForwardGemm>() <= 48 * 1024);
  CHECK(kc::async_smem_bytes<bfloat16, kc::ForwardGemm>() <= 48 * 1024);
  CHECK(kc::async_smem_bytes<float, kc::WgradGemm>() <= 48 * 1024);
  CHECK(kc::async_smem_bytes<bfloat16, kc::DgradGemm>() <= 48 * 1024);
  std::vector<int> out(kc::kConvAsyncTileM * kc::kConvAsyncTileN, 0), slab(out.size(), 0);
  for (int t = 0; t < kc::kConvAsyncThreads; ++t)
    for (int row = kc::async_out_row(t); row < kc::kConvAsyncTileM; row += kc::kConvAsyncOutRowStep)
      ++out[static_cast<size_t>(row * kc::kConvAsyncTileN + kc::async_out_col(t))];
  for (int warp = 0; warp < kc::kConvAsyncThreads / 32; ++warp)
    for (int i = 0; i < kc::kConvAsyncWarpTile; ++i)
      for (int j = 0; j < kc::kConvAsyncWarpTile; ++j)
        ++slab[static_cast<size_t>((kc::async_warp_row(warp) + i) * kc::kConvAsyncTileN +
                                   kc::async_warp_col(warp) + j)];
  CHECK(std::all_of(out.begin(), out.end(), [](int c) { return c == 1; }));
  CHECK(std::all_of(slab.begin(), slab.end(), [](int c) { return c == 1; }));
}

TEST_CASE("cuda conv plan: 16-byte fetches are aligned runs that equal the scalar fetches") {
  for (const ConvShape& s : emulation_shapes()) {
    CAPTURE(describe(s));
    const Tensors t(s);
    const kc::ConvDims d = kc::conv_dims(s);
    for (int width : {4, 8}) {  // fp32, bf16
      CAPTURE(width);
      if (s.c % width != 0) continue;
      // Forward A and backward filter B: a k (or n) run starting at a multiple of the width is one
      // tap's contiguous channels at an offset that is a multiple of the width.
      for (int m = 0; m < d.n * d.p * d.q; ++m)
        for (int kk = 0; kk < d.r * d.s * d.c; kk += width) {
          const int o = kc::im2col_offset(d, m, kk);
          if (o >= 0) REQUIRE(o % width == 0);
          for (int i = 1; i < width; ++i)
            REQUIRE(kc::im2col_offset(d, m, kk + i) == (o < 0 ? -1 : o + i));
        }
    }
    // Wherever conv_vector_loads allows a run, the run's first offset decides it: -1 and every
    // value of it -1 (a zero), or the values at consecutive offsets.
    auto runs_hold = [](const auto& g, const kc::ConvGemmBlock& b, bool vec_a, bool vec_b, int width) {
      using Gemm = std::remove_cvref_t<decltype(g)>;
      for (int m = 0; m < b.m_size + 2 * width; m += (Gemm::kAAlongK ? 1 : width))
        for (int k = b.k_begin; k < b.k_end + 2 * width; k += (Gemm::kAAlongK ? width : 1)) {
          if (!vec_a) break;
          const int first = g.a_offset(b, m, k);
          for (int i = 0; i < width; ++i)
            REQUIRE(kc::a_run_offset(g, b, m, k, i) == (first < 0 ? -1 : first + i));
        }
      for (int n = 0; n < b.n_size + 2 * width; n += (Gemm::kBAlongK ? 1 : width))
        for (int k = b.k_begin; k < b.k_end + 2 * width; k += (Gemm::kBAlongK ? width : 1)) {
          if (!vec_b) break;
          const int first = g.b_offset(b, k, n);
          for (int i = 0; i < width; ++i)
            REQUIRE(kc::b_run_offset(g, b, k, n, i) == (first < 0 ? -1 : first + i));
        }
    };
    for (int width : {4, 8}) {
      CAPTURE(width);
      const kc::ConvVectorLoads vf = kc::conv_vector_loads(s, ConvPass::forward, width);
      const kc::ConvVectorLoads vd = kc::conv_vector_loads(s, ConvPass::backward_data, width);
      const kc::ConvVectorLoads vw = kc::conv_vector_loads(s, ConvPass::backward_filter, width);
      const kc::ForwardGemm f{d};
      runs_hold(f, f.block(0), vf.a, vf.b, width);
      const kc::DgradGemm g{d};
      for (int z = 0; z < kc::dgrad_phases(d); ++z) runs_hold(g, g.block(z), vd.a, vd.b, width);
      const kc::WgradGemm w{d, static_cast<int>(kc::wgrad_split(s).k_per_split)};
      runs_hold(w, w.block(0), vw.a, vw.b, width);
      if (s.is_pointwise()) {
        const kc::Forward1x1Gemm f1{d};
        runs_hold(f1, f1.block(0), vf.a, vf.b, width);
        const kc::Dgrad1x1Gemm g1{d};
        runs_hold(g1, g1.block(0), vd.a, vd.b, width);
        const kc::Wgrad1x1Gemm w1{d, static_cast<int>(kc::wgrad_split(s).k_per_split)};
        runs_hold(w1, w1.block(0), vw.a, vw.b, width);
      }
    }
    // The fp32 quad fetchers: the 16-byte path gives the scalar path's values.
    auto same = [](const kc::Quad& a, const kc::Quad& b) { return std::equal(a.v, a.v + 4, b.v); };
    const kc::ForwardGemm f{d};
    const kc::ConvGemmBlock fb = f.block(0);
    const kc::ConvOperands<float> fs{t.x.data(), t.w.data(), false, false};
    const kc::ConvOperands<float> fv = kc::conv_operands(s, ConvPass::forward, t.x.data(), t.w.data());
    for (int m = 0; m < fb.m_size + 3; ++m)
      for (int kk = 0; kk < fb.k_end + 16; kk += 4)
        REQUIRE(same(kc::fetch_a_quad(f, fs, fb, m, kk), kc::fetch_a_quad(f, fv, fb, m, kk)));
    for (int n = 0; n < fb.n_size + 3; ++n)
      for (int kk = 0; kk < fb.k_end + 16; kk += 4)
        REQUIRE(same(kc::fetch_b_quad(f, fs, fb, kk, n), kc::fetch_b_quad(f, fv, fb, kk, n)));
  }
}

TEST_CASE("cuda conv plan: backward filter split-K and dbias plan") {
  std::vector<ConvShape> shapes = emulation_shapes();
  shapes.push_back(conv_shape(2, 224, 224, 3, 64, 7, 7, 2, 3));    // stem at batch 2
  shapes.push_back(conv_shape(64, 224, 224, 3, 64, 7, 7, 2, 3));   // stem at batch 64
  shapes.push_back(conv_shape(64, 7, 7, 512, 512, 3, 3, 1, 1));    // layer4 3x3 at batch 64
  shapes.push_back(conv_shape(256, 56, 56, 64, 256, 1, 1, 1, 0));  // layer1 1x1 at batch 256
  for (const ConvShape& s : shapes) {
    CAPTURE(describe(s));
    const int64_t k_size = s.n * s.p() * s.q();
    const kc::WgradSplit sp = kc::wgrad_split(s);
    CHECK(sp.splits >= 1);
    CHECK(sp.k_per_split % kc::kConvTileK == 0);
    CHECK(sp.splits * sp.k_per_split >= k_size);
    CHECK((sp.splits - 1) * sp.k_per_split < k_size);  // the last split is not empty
    CHECK(sp.splits <= kc::kMaxGridY);
    if (sp.splits > 1) {
      CHECK(sp.splits * s.k * s.r * s.s * s.c <= kc::kConvMaxSplitWorkspaceFloats);
      CHECK(sp.k_per_split >= kc::kConvMinSplitK);
    }
    const kc::ConvBiasPlan bp = kc::conv_bias_plan(k_size, s.k);
    CHECK(bp.splits * bp.rows_per_split >= k_size);
    CHECK((bp.splits - 1) * bp.rows_per_split < k_size);
    const kc::WgradWorkspaceLayout l = kc::wgrad_workspace_layout(s);
    CHECK(l.partial_floats == (sp.splits > 1 ? sp.splits * s.k * s.r * s.s * s.c : 0));
    CHECK(l.bias_offset % 64 == 0);
    CHECK(l.bias_offset >= l.partial_floats);
    CHECK(l.total_floats == l.bias_offset + bp.splits * s.k);
    // The cp.async tiles: their own split (K-steps of 16 or 32), the same invariants.
    for (kc::ConvTiles tiles : {kc::kConvAsyncTf32Tiles, kc::kConvAsyncBf16Tiles}) {
      const kc::WgradSplit ts = kc::wgrad_split(s, tiles);
      CHECK(ts.k_per_split % tiles.k == 0);
      CHECK(ts.splits * ts.k_per_split >= k_size);
      CHECK((ts.splits - 1) * ts.k_per_split < k_size);
      CHECK(ts.splits >= sp.splits);  // fewer, larger tiles: at least as many splits
      CHECK(kc::wgrad_workspace_layout(s, tiles).partial_floats ==
            (ts.splits > 1 ? ts.splits * s.k * s.r * s.s * s.c : 0));
    }
    // The queries: only the tiled variants' backward filter takes a workspace.
    for (ConvVariant v : kAllVariants) {
      CAPTURE(kc::conv_variant_name(v));
      const size_t tiled = static_cast<size_t>(
          kc::wgrad_workspace_layout(s, kc::conv_variant_tiles(v)).total_floats) * sizeof(float);
      const bool simple = v == ConvVariant::simple || v == ConvVariant::bf16_simple;
      CHECK(kc::conv2d_workspace_bytes(s, ConvPass::forward, v) == 0);
      CHECK(kc::conv2d_workspace_bytes(s, ConvPass::backward_data, v) == 0);
      CHECK(kc::conv2d_workspace_bytes(s, ConvPass::backward_filter, v) == (simple ? 0 : tiled));
    }
  }
  // The stem at batch 2 has 3 output tiles: it is split; layer4 at batch 64 has 576: it is not.
  CHECK(kc::wgrad_split(conv_shape(2, 224, 224, 3, 64, 7, 7, 2, 3)).splits > 1);
  CHECK(kc::wgrad_split(conv_shape(64, 7, 7, 512, 512, 3, 3, 1, 1)).splits == 1);
}

TEST_CASE("cuda conv plan: variant choice by shape class and math mode") {
  const ConvShape tiny = conv_shape(1, 4, 4, 3, 5, 3, 3, 1, 1);
  const ConvShape layer = conv_shape(2, 56, 56, 64, 64, 3, 3, 1, 1);
  const ConvShape pointwise = conv_shape(2, 56, 56, 64, 256, 1, 1, 1, 0);
  const ConvShape strided_1x1 = conv_shape(2, 56, 56, 256, 512, 1, 1, 2, 0);  // not a plain GEMM
  for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter}) {
    CHECK(kc::choose_conv_variant(tiny, pass, k::MathMode::fp32) == ConvVariant::simple);
    CHECK(kc::choose_conv_variant(tiny, pass, k::MathMode::tf32) == ConvVariant::simple);
    CHECK(kc::choose_conv_variant_bf16(tiny, pass) == ConvVariant::bf16_simple);
    CHECK(kc::choose_conv_variant(layer, pass, k::MathMode::fp32) == ConvVariant::tiled);
    CHECK(kc::choose_conv_variant(layer, pass, k::MathMode::tf32) == ConvVariant::tf32_async);
    CHECK(kc::choose_conv_variant_bf16(layer, pass) == ConvVariant::bf16);
    CHECK(kc::choose_conv_variant(pointwise, pass, k::MathMode::fp32) == ConvVariant::tiled_1x1);
    CHECK(kc::choose_conv_variant(pointwise, pass, k::MathMode::tf32) == ConvVariant::tf32_1x1);
    CHECK(kc::choose_conv_variant_bf16(pointwise, pass) == ConvVariant::bf16_1x1);
    CHECK(kc::choose_conv_variant(strided_1x1, pass, k::MathMode::tf32) == ConvVariant::tf32_async);
    CHECK(kc::choose_conv_variant_bf16(strided_1x1, pass) == ConvVariant::bf16);
  }
  // Every ResNet-50 convolution at batch 2 (the smallest: layer4's 1x1 at 7x7) takes a tiled path.
  for (const ConvShape& s : hotlap::test::resnet50_conv_shapes(2)) {
    CAPTURE(describe(s));
    CHECK(kc::choose_conv_variant(s, ConvPass::forward, k::MathMode::fp32) ==
          (s.is_pointwise() ? ConvVariant::tiled_1x1 : ConvVariant::tiled));
  }
  // The chosen variant always takes the shape, and the bf16 entry points always run a bf16 one.
  for (const ConvShape& s : {tiny, layer, pointwise, strided_1x1})
    for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter}) {
      for (k::MathMode mode : {k::MathMode::fp32, k::MathMode::tf32}) {
        const ConvVariant v = kc::choose_conv_variant(s, pass, mode);
        CHECK(!kc::conv_variant_is_bf16(v));
        CHECK((!kc::conv_variant_is_1x1(v) || s.is_pointwise()));
      }
      const ConvVariant v = kc::choose_conv_variant_bf16(s, pass);
      CHECK(kc::conv_variant_is_bf16(v));
      CHECK((!kc::conv_variant_is_1x1(v) || s.is_pointwise()));
      CHECK(kc::conv2d_bf16_variant(s, pass) == v);
      CHECK(kc::conv2d_bf16_workspace_bytes(s, pass) == kc::conv2d_workspace_bytes(s, pass, v));
    }
  // The plain entry points follow the process-wide math mode.
  const k::MathMode before = k::math_mode();
  k::set_math_mode(k::MathMode::tf32);
  CHECK(kc::conv2d_variant(layer, ConvPass::forward) == ConvVariant::tf32_async);
  CHECK(kc::conv2d_workspace_bytes(layer, ConvPass::backward_filter) ==
        kc::conv2d_workspace_bytes(layer, ConvPass::backward_filter, ConvVariant::tf32_async));
  k::set_math_mode(k::MathMode::fp32);
  CHECK(kc::conv2d_variant(layer, ConvPass::forward) == ConvVariant::tiled);
  k::set_math_mode(before);
  // Names, one each.
  std::vector<std::string> names;
  for (ConvVariant v : kAllVariants) names.push_back(kc::conv_variant_name(v));
  CHECK(names == std::vector<std::string>{"simple", "tiled", "tiled_1x1", "tf32", "tf32_async",
                                          "tf32_1x1", "bf16_simple", "bf16", "bf16_1x1"});
}

TEST_CASE("cuda conv plan: 32-bit index limit") {
  CHECK(kc::conv_fits_int32(conv_shape(256, 224, 224, 3, 64, 7, 7, 2, 3)));
  CHECK(kc::conv_fits_int32(conv_shape(256, 56, 56, 256, 64, 1, 1, 1, 0)));  // 205M elements
  CHECK_FALSE(kc::conv_fits_int32(conv_shape(1024, 112, 112, 256, 64, 1, 1, 1, 0)));
}
