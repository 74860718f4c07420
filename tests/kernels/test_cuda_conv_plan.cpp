// The CUDA convolution's plans and index arithmetic (kernels/cuda/conv_math.h), run on the CPU:
// these tests need no GPU and run in every build.
//   - the implicit-GEMM index maps ((m, k) -> input element or padding; backward data's phases,
//     taps and output pixels) against direct loops over the convolution;
//   - backward data's tap enumeration against a brute-force scatter: every (output pixel, tap)
//     pair that touches an input pixel is visited exactly once, for strides 1 to 3;
//   - the tiled grid: every output element written exactly once, tile tails included;
//   - the tiled kernels themselves, emulated block by block and thread by thread with the same
//     fetch functions, quad slots, shared-memory layout and epilogue as conv_tiled.cu, against the
//     CPU convolution (vector and scalar fetches both);
//   - split-K, the dbias plan, the workspace queries and the variant choice.
// What is left unchecked without a GPU: the kernels' thin CUDA shells (barriers, the register
// double buffer, wmma) and the simple kernels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"
#include "kernels/conv_shapes.h"
#include "test_util.h"

namespace k = hotlap::kernels;
namespace cpu = hotlap::kernels::cpu;
namespace kc = hotlap::kernels::cuda;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
using k::ConvShape;
using kc::ConvPass;
using kc::ConvVariant;

namespace {

using hotlap::test::conv_shape;
using hotlap::test::describe;

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

// The shapes the emulated tiled kernels run: tails in every direction (C, K not multiples of 4 or
// 64), padding, strides 1-3, 1x1, H != W, and C % 4 == 0 shapes that take the 16-byte fetches.
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
  };
  return shapes;
}

// ---- the tiled kernel on the CPU -----------------------------------------------------------------

// One block as conv_tiled_kernel runs it (fp32 product), with `writes` counting every epilogue
// store at (z, offset). Shared memory is one buffer here: the emulation runs the steps one after
// another, so the double buffer changes nothing but timing.
template <class Gemm>
void emulate_tiled(const ConvShape& s, ConvPass pass, const Gemm& g, const float* bias, float* out,
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
            store(as, sa, Gemm::kAAlongK, g.a(blk, m0 + sa.row, k0 + sa.k));
            store(bs, sb, Gemm::kBAlongK, g.b(blk, k0 + sb.k, n0 + sb.row));
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

TEST_CASE("cuda conv plan: the tiled grid writes every output exactly once") {
  std::vector<ConvShape> shapes = emulation_shapes();
  for (const ConvShape& s : random_shapes(20, 14)) shapes.push_back(s);
  for (const ConvShape& s : shapes) {
    CAPTURE(describe(s));
    const Tensors t(s);
    const kc::ConvDims d = kc::conv_dims(s);
    {
      std::map<int64_t, int> writes;
      std::vector<float> y(t.dy.size());
      emulate_tiled(s, ConvPass::forward, kc::ForwardGemm{d, t.x.data(), t.w.data(), false, false},
                    nullptr, y.data(), 0, false, &writes);
      REQUIRE(writes.size() == y.size());
      for (const auto& [at, count] : writes) REQUIRE((at >= 0 && at < static_cast<int64_t>(y.size()) && count == 1));
    }
    {
      std::map<int64_t, int> writes;
      std::vector<float> dx(t.x.size());
      emulate_tiled(s, ConvPass::backward_data,
                    kc::DgradGemm{d, t.dy.data(), t.w.data(), false, false}, nullptr, dx.data(), 0,
                    false, &writes);
      REQUIRE(writes.size() == dx.size());
      for (const auto& [at, count] : writes) REQUIRE((at >= 0 && at < static_cast<int64_t>(dx.size()) && count == 1));
    }
    {
      const kc::WgradSplit sp = kc::wgrad_split(s);
      const int64_t count = s.k * s.r * s.s * s.c;
      std::map<int64_t, int> writes;
      std::vector<float> partial(static_cast<size_t>(sp.splits * count));
      emulate_tiled(s, ConvPass::backward_filter,
                    kc::WgradGemm{d, t.x.data(), t.dy.data(), false, false,
                                  static_cast<int>(sp.k_per_split)},
                    nullptr, partial.data(), count, false, &writes);
      REQUIRE(writes.size() == partial.size());
      for (const auto& [at, n] : writes) REQUIRE((at >= 0 && at < static_cast<int64_t>(partial.size()) && n == 1));
    }
  }
}

TEST_CASE("cuda conv plan: the tiled kernels, emulated on the CPU, match the CPU convolution") {
  for (const ConvShape& s : emulation_shapes()) {
    CAPTURE(describe(s));
    const Tensors t(s);
    const kc::ConvDims d = kc::conv_dims(s);
    const kc::ConvVectorLoads vec = kc::conv_vector_loads(s, ConvPass::forward);
    for (bool use_vec : {false, true}) {
      CAPTURE(use_vec);
      // forward, with the bias
      std::vector<float> y(t.dy.size(), NAN);
      emulate_tiled(s, ConvPass::forward,
                    kc::ForwardGemm{d, t.x.data(), t.w.data(), use_vec && vec.a, use_vec && vec.b},
                    t.bias.data(), y.data(), 0, false, nullptr);
      CHECK(max_rel_error(y, cpu_forward(s, t)) < 1e-5);

      // backward data
      const kc::ConvVectorLoads vd = kc::conv_vector_loads(s, ConvPass::backward_data);
      std::vector<float> dx(t.x.size(), NAN);
      emulate_tiled(s, ConvPass::backward_data,
                    kc::DgradGemm{d, t.dy.data(), t.w.data(), use_vec && vd.a, use_vec && vd.b},
                    nullptr, dx.data(), 0, false, nullptr);
      CHECK(max_rel_error(dx, cpu_backward_data(s, t)) < 1e-5);

      // backward filter: split partials, then the in-order sum into dw (pre-filled: it accumulates)
      const kc::ConvVectorLoads vw = kc::conv_vector_loads(s, ConvPass::backward_filter);
      const kc::WgradSplit sp = kc::wgrad_split(s);
      const int64_t count = s.k * s.r * s.s * s.c;
      const kc::WgradGemm g{d, t.x.data(), t.dy.data(), use_vec && vw.a, use_vec && vw.b,
                            static_cast<int>(sp.k_per_split)};
      std::vector<float> dw(t.w.size(), 0.5f);
      if (sp.splits == 1) {
        emulate_tiled(s, ConvPass::backward_filter, g, nullptr, dw.data(), 0, true, nullptr);
      } else {
        std::vector<float> partial(static_cast<size_t>(sp.splits * count), NAN);
        emulate_tiled(s, ConvPass::backward_filter, g, nullptr, partial.data(), count, false, nullptr);
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
}

TEST_CASE("cuda conv plan: 16-byte fetches are aligned runs that equal the scalar fetches") {
  for (const ConvShape& s : emulation_shapes()) {
    CAPTURE(describe(s));
    const Tensors t(s);
    const kc::ConvDims d = kc::conv_dims(s);
    if (s.c % 4 == 0) {
      // Forward A and backward filter B: a k (or n) quad starting at a multiple of 4 is one tap's
      // 4 contiguous channels at an offset that is a multiple of 4 floats.
      for (int m = 0; m < d.n * d.p * d.q; ++m)
        for (int kk = 0; kk < d.r * d.s * d.c; kk += 4) {
          const int o = kc::im2col_offset(d, m, kk);
          if (o >= 0) REQUIRE(o % 4 == 0);
          for (int i = 1; i < 4; ++i) REQUIRE(kc::im2col_offset(d, m, kk + i) == (o < 0 ? -1 : o + i));
        }
    }
    // The vector and scalar fetchers give the same quads wherever the vector path is allowed.
    auto same = [](const kc::Quad& a, const kc::Quad& b) {
      return std::equal(a.v, a.v + 4, b.v);
    };
    const kc::ConvVectorLoads vf = kc::conv_vector_loads(s, ConvPass::forward);
    const kc::ForwardGemm fs{d, t.x.data(), t.w.data(), false, false};
    const kc::ForwardGemm fv{d, t.x.data(), t.w.data(), vf.a, vf.b};
    const kc::ConvGemmBlock fb = fs.block(0);
    for (int m = 0; m < fb.m_size + 3; ++m)
      for (int kk = 0; kk < fb.k_end + 16; kk += 4) REQUIRE(same(fs.a(fb, m, kk), fv.a(fb, m, kk)));
    for (int n = 0; n < fb.n_size + 3; ++n)
      for (int kk = 0; kk < fb.k_end + 16; kk += 4) REQUIRE(same(fs.b(fb, kk, n), fv.b(fb, kk, n)));
    const kc::ConvVectorLoads vd = kc::conv_vector_loads(s, ConvPass::backward_data);
    const kc::DgradGemm ds{d, t.dy.data(), t.w.data(), false, false};
    const kc::DgradGemm dv{d, t.dy.data(), t.w.data(), vd.a, vd.b};
    for (int z = 0; z < kc::dgrad_phases(d); ++z) {
      const kc::ConvGemmBlock b = ds.block(z);
      for (int m = 0; m < b.m_size; ++m)
        for (int kk = 0; kk < b.k_end + 16; kk += 4) REQUIRE(same(ds.a(b, m, kk), dv.a(b, m, kk)));
      for (int kk = 0; kk < b.k_end + 4; ++kk)
        for (int n = 0; n < b.n_size + 64; n += 4) REQUIRE(same(ds.b(b, kk, n), dv.b(b, kk, n)));
    }
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
    // The queries: only the tiled and TF32 backward filter take a workspace.
    for (ConvVariant v : {ConvVariant::simple, ConvVariant::tiled, ConvVariant::tf32}) {
      CHECK(kc::conv2d_workspace_bytes(s, ConvPass::forward, v) == 0);
      CHECK(kc::conv2d_workspace_bytes(s, ConvPass::backward_data, v) == 0);
      CHECK(kc::conv2d_workspace_bytes(s, ConvPass::backward_filter, v) ==
            (v == ConvVariant::simple ? 0 : static_cast<size_t>(l.total_floats) * sizeof(float)));
    }
  }
  // The stem at batch 2 has 3 output tiles: it is split; layer4 at batch 64 has 576: it is not.
  CHECK(kc::wgrad_split(conv_shape(2, 224, 224, 3, 64, 7, 7, 2, 3)).splits > 1);
  CHECK(kc::wgrad_split(conv_shape(64, 7, 7, 512, 512, 3, 3, 1, 1)).splits == 1);
}

TEST_CASE("cuda conv plan: variant choice by shape class and math mode") {
  const ConvShape tiny = conv_shape(1, 4, 4, 3, 5, 3, 3, 1, 1);
  const ConvShape layer = conv_shape(2, 56, 56, 64, 64, 3, 3, 1, 1);
  for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter}) {
    CHECK(kc::choose_conv_variant(tiny, pass, k::MathMode::fp32) == ConvVariant::simple);
    CHECK(kc::choose_conv_variant(tiny, pass, k::MathMode::tf32) == ConvVariant::simple);
    CHECK(kc::choose_conv_variant(layer, pass, k::MathMode::fp32) == ConvVariant::tiled);
    CHECK(kc::choose_conv_variant(layer, pass, k::MathMode::tf32) == ConvVariant::tf32);
  }
  // Every ResNet-50 convolution at batch 2 (the smallest: layer4's 1x1 at 7x7) takes the tiled path.
  CHECK(kc::choose_conv_variant(conv_shape(2, 7, 7, 2048, 512, 1, 1, 1, 0), ConvPass::forward,
                                k::MathMode::fp32) == ConvVariant::tiled);
  // The plain entry points follow the process-wide math mode.
  const k::MathMode before = k::math_mode();
  k::set_math_mode(k::MathMode::tf32);
  CHECK(kc::conv2d_variant(layer, ConvPass::forward) == ConvVariant::tf32);
  CHECK(kc::conv2d_workspace_bytes(layer, ConvPass::backward_filter) ==
        kc::conv2d_workspace_bytes(layer, ConvPass::backward_filter, ConvVariant::tf32));
  k::set_math_mode(k::MathMode::fp32);
  CHECK(kc::conv2d_variant(layer, ConvPass::forward) == ConvVariant::tiled);
  k::set_math_mode(before);
  CHECK(std::string(kc::conv_variant_name(ConvVariant::tiled)) == "tiled");
}

TEST_CASE("cuda conv plan: 32-bit index limit") {
  CHECK(kc::conv_fits_int32(conv_shape(256, 224, 224, 3, 64, 7, 7, 2, 3)));
  CHECK(kc::conv_fits_int32(conv_shape(256, 56, 56, 256, 64, 1, 1, 1, 0)));  // 205M elements
  CHECK_FALSE(kc::conv_fits_int32(conv_shape(1024, 112, 112, 256, 64, 1, 1, 1, 0)));
}
