// Max pooling (with winner indices) and global average pooling, NHWC, against float64 references,
// with the max-pool gradient also checked by central finite differences.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/error.h"
#include "kernels/pool.h"
#include "test_util.h"

using hotlap::kernels::PoolShape;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
namespace cpu = hotlap::kernels::cpu;

namespace {

PoolShape make_shape(int64_t n, int64_t h, int64_t w, int64_t c, int64_t wh, int64_t ww, int64_t sh,
                     int64_t sw, int64_t ph, int64_t pw) {
  PoolShape s;
  s.n = n, s.h = h, s.w = w, s.c = c;
  s.window_h = wh, s.window_w = ww, s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}

// The shapes PyTorch accepts: pad at most half the window, padded input at least one window.
bool valid(const PoolShape& s) {
  return 2 * s.pad_h <= s.window_h && 2 * s.pad_w <= s.window_w &&
         s.h + 2 * s.pad_h >= s.window_h && s.w + 2 * s.pad_w >= s.window_w;
}

struct MaxPoolRef {
  std::vector<double> y;
  std::vector<int32_t> idx;
};

// Plain nested loops: scan each window in raster order; strictly greater replaces (first max wins);
// padded positions are skipped (= -infinity).
MaxPoolRef max_pool_ref(const PoolShape& s, const std::vector<double>& x) {
  const int64_t P = s.p(), Q = s.q();
  MaxPoolRef r{std::vector<double>(s.n * P * Q * s.c), std::vector<int32_t>(s.n * P * Q * s.c)};
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q)
        for (int64_t c = 0; c < s.c; ++c) {
          double best = -INFINITY;
          int32_t best_idx = -1;
          for (int64_t kh = 0; kh < s.window_h; ++kh)
            for (int64_t kw = 0; kw < s.window_w; ++kw) {
              const int64_t ih = p * s.stride_h - s.pad_h + kh, iw = q * s.stride_w - s.pad_w + kw;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              const double v = x[((n * s.h + ih) * s.w + iw) * s.c + c];
              if (best_idx < 0 || v > best) {
                best = v;
                best_idx = static_cast<int32_t>(ih * s.w + iw);
              }
            }
          const int64_t o = ((n * P + p) * Q + q) * s.c + c;
          r.y[o] = best;
          r.idx[o] = best_idx;
        }
  return r;
}

// Gradient of sum(y .* dy) through the reference forward's winners.
std::vector<double> max_pool_backward_ref(const PoolShape& s, const MaxPoolRef& f,
                                         const std::vector<float>& dy) {
  std::vector<double> dx(s.n * s.h * s.w * s.c, 0.0);
  const int64_t PQ = s.p() * s.q();
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t o = 0; o < PQ; ++o)
      for (int64_t c = 0; c < s.c; ++c) {
        const int64_t k = (n * PQ + o) * s.c + c;
        dx[(n * s.h * s.w + f.idx[k]) * s.c + c] += dy[k];
      }
  return dx;
}

// Distinct values (a shuffled ramp with steps of 1e-3), so no window has a near-tie and finite
// differences never cross from one winner to another.
std::vector<float> distinct_floats(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  for (float& x : v) x = (x - float(n) / 2) * 1e-3f;
  return v;
}

struct Window {
  int64_t wh, ww, sh, sw, ph, pw;
};
const Window kWindows[] = {
    {3, 3, 2, 2, 1, 1},  // ResNet stem
    {2, 2, 2, 2, 0, 0}, {3, 3, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0}, {3, 3, 3, 3, 0, 0},
    {2, 2, 1, 1, 1, 1}, {3, 2, 2, 1, 1, 0}, {5, 5, 2, 3, 2, 1},
};
const int64_t kSizes[][2] = {{1, 1}, {2, 3}, {7, 7}, {8, 8}, {9, 9}};

}  // namespace

TEST_CASE("pool: max pool forward, indices and backward match float64 on many shapes") {
  int checked = 0, rejected = 0, cnum = 0;
  for (const auto& hw : kSizes) {
    for (const Window& win : kWindows) {
      const int64_t c = std::array<int64_t, 3>{1, 3, 17}[cnum++ % 3];
      const PoolShape s =
          make_shape(2, hw[0], hw[1], c, win.wh, win.ww, win.sh, win.sw, win.ph, win.pw);
      CAPTURE(s.h);
      CAPTURE(s.w);
      CAPTURE(s.c);
      CAPTURE(s.window_h);
      CAPTURE(s.window_w);
      CAPTURE(s.stride_h);
      CAPTURE(s.pad_h);
      const auto x = random_floats(s.n * s.h * s.w * c, uint64_t(cnum), -3.0f, -1.0f);
      std::vector<float> y(std::max<int64_t>(1, s.n * s.p() * s.q() * c));
      std::vector<int32_t> idx(y.size());
      if (!valid(s)) {
        CHECK_THROWS_AS(cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data()), hotlap::Error);
        ++rejected;
        continue;
      }
      // All inputs negative: had padding counted as 0, the padded windows would output 0.
      cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data());
      const MaxPoolRef ref = max_pool_ref(s, std::vector<double>(x.begin(), x.end()));
      CHECK(max_rel_error(y, ref.y) == 0.0);  // a max is exact
      CHECK(idx == ref.idx);

      const auto dy = random_floats(y.size(), uint64_t(cnum) + 100);
      std::vector<float> dx(x.size(), 7.0f);  // garbage: the kernel must overwrite it
      cpu::max_pool2d_backward(s, dy.data(), idx.data(), dx.data());
      // Exact unless overlapping windows add several dy into one winner (fp32 sums, ~1 ulp).
      CHECK(max_rel_error(dx, max_pool_backward_ref(s, ref, dy)) < 1e-6);
      ++checked;
    }
  }
  CHECK(checked >= 25);
  CHECK(rejected >= 3);
}

TEST_CASE("pool: max pool backward matches finite differences of the float64 forward") {
  const PoolShape shapes[] = {
      make_shape(2, 7, 7, 3, 3, 3, 2, 2, 1, 1), make_shape(1, 9, 9, 2, 3, 3, 1, 1, 1, 1),
      make_shape(2, 2, 3, 5, 2, 2, 1, 1, 1, 1), make_shape(1, 8, 8, 1, 3, 2, 2, 1, 1, 0)};
  for (const PoolShape& s : shapes) {
    CAPTURE(s.h);
    CAPTURE(s.stride_h);
    const auto x = distinct_floats(size_t(s.n * s.h * s.w * s.c), uint64_t(s.h * 10 + s.c));
    const int64_t ny = s.n * s.p() * s.q() * s.c;
    std::vector<float> y(ny);
    std::vector<int32_t> idx(ny);
    cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data());
    const auto dy = random_floats(ny, 9);
    std::vector<float> dx(x.size());
    cpu::max_pool2d_backward(s, dy.data(), idx.data(), dx.data());

    std::vector<double> xd(x.begin(), x.end()), fd(x.size());
    auto loss = [&] {
      const MaxPoolRef f = max_pool_ref(s, xd);
      double l = 0.0;
      for (int64_t i = 0; i < ny; ++i) l += f.y[i] * dy[i];
      return l;
    };
    const double h = 1e-5;  // far below the 1e-3 gaps between inputs: no winner changes
    for (size_t i = 0; i < xd.size(); ++i) {
      const double saved = xd[i];
      xd[i] = saved + h;
      const double lp = loss();
      xd[i] = saved - h;
      const double lm = loss();
      xd[i] = saved;
      fd[i] = (lp - lm) / (2 * h);
    }
    // Piecewise linear: the central difference is exact up to double rounding (~1e-16 / 1e-5).
    CHECK(max_rel_error(dx, fd) < 1e-6);
  }
}

TEST_CASE("pool: max pool ties go to the first pixel of the window, NaN propagates") {
  const PoolShape s = make_shape(1, 4, 5, 2, 3, 3, 2, 2, 1, 1);
  std::vector<float> x(s.h * s.w * s.c, 0.5f);
  std::vector<float> y(s.p() * s.q() * s.c);
  std::vector<int32_t> idx(y.size());
  cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data());
  for (int64_t p = 0; p < s.p(); ++p)
    for (int64_t q = 0; q < s.q(); ++q)
      for (int64_t c = 0; c < s.c; ++c) {
        const int64_t h0 = std::max<int64_t>(0, p * 2 - 1), w0 = std::max<int64_t>(0, q * 2 - 1);
        CHECK(idx[(p * s.q() + q) * s.c + c] == h0 * s.w + w0);
        CHECK(y[(p * s.q() + q) * s.c + c] == 0.5f);
      }
  // A NaN in channel 1 at (1, 1) wins every window that contains it; channel 0 is unaffected.
  x[(1 * s.w + 1) * s.c + 1] = std::numeric_limits<float>::quiet_NaN();
  cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data());
  CHECK(std::isnan(y[1]));
  CHECK(idx[1] == 1 * s.w + 1);
  CHECK(y[0] == 0.5f);
  // -infinity inputs still produce a valid in-image index.
  std::fill(x.begin(), x.end(), -std::numeric_limits<float>::infinity());
  cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data());
  CHECK(idx[0] == 0);
  CHECK(std::isinf(y[0]));
}

TEST_CASE("pool: max pool on a large batch (threaded) matches float64") {
  const PoolShape s = make_shape(8, 32, 32, 32, 3, 3, 2, 2, 1, 1);
  const auto x = random_floats(s.n * s.h * s.w * s.c, 3);
  const int64_t ny = s.n * s.p() * s.q() * s.c;
  std::vector<float> y(ny), dx(x.size());
  std::vector<int32_t> idx(ny);
  cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data());
  const MaxPoolRef ref = max_pool_ref(s, std::vector<double>(x.begin(), x.end()));
  CHECK(max_rel_error(y, ref.y) == 0.0);
  CHECK(idx == ref.idx);
  const auto dy = random_floats(ny, 4);
  cpu::max_pool2d_backward(s, dy.data(), idx.data(), dx.data());
  CHECK(max_rel_error(dx, max_pool_backward_ref(s, ref, dy)) < 1e-6);  // fp32 sums at overlaps
}

TEST_CASE("pool: bad max pool shapes throw hotlap::Error") {
  std::vector<float> buf(1024);
  std::vector<int32_t> ibuf(1024);
  auto fwd = [&](const PoolShape& s) {
    cpu::max_pool2d_forward(s, buf.data(), buf.data(), ibuf.data());
  };
  CHECK_THROWS_AS(fwd(make_shape(1, 2, 2, 1, 3, 3, 1, 1, 0, 0)), hotlap::Error);  // window > input
  CHECK_THROWS_AS(fwd(make_shape(1, 1, 1, 1, 2, 2, 2, 2, 0, 0)),
                  hotlap::Error);  // (1-2)/2+1 = 1 lie
  CHECK_THROWS_AS(fwd(make_shape(1, 4, 4, 1, 3, 3, 0, 1, 1, 1)), hotlap::Error);   // stride 0
  CHECK_THROWS_AS(fwd(make_shape(1, 4, 4, 1, 0, 3, 1, 1, 0, 1)), hotlap::Error);   // window 0
  CHECK_THROWS_AS(fwd(make_shape(1, 4, 4, 1, 3, 3, 1, 1, 2, 1)), hotlap::Error);   // pad > window/2
  CHECK_THROWS_AS(fwd(make_shape(1, 4, 4, 1, 3, 3, 1, 1, -1, 1)), hotlap::Error);  // negative pad
  CHECK_THROWS_AS(fwd(make_shape(1, 0, 4, 1, 1, 1, 1, 1, 0, 0)), hotlap::Error);   // empty image
  CHECK_THROWS_AS(fwd(make_shape(-1, 4, 4, 1, 3, 3, 1, 1, 1, 1)), hotlap::Error);  // negative n
  CHECK_THROWS_AS(cpu::max_pool2d_backward(make_shape(1, 2, 2, 1, 3, 3, 1, 1, 0, 0), buf.data(),
                                          ibuf.data(), buf.data()),
                  hotlap::Error);
}

TEST_CASE("pool: global average pool forward and backward match float64") {
  const int64_t cases[][3] = {
      {1, 1, 1},  {2, 6, 3},    {3, 49, 17},
      {2, 81, 1}, {4, 49, 300}, {16, 64, 64}};  // last: threaded; c = 300 spans two channel blocks
  for (const auto& cs : cases) {
    const int64_t n = cs[0], hw = cs[1], c = cs[2];
    CAPTURE(n);
    CAPTURE(hw);
    CAPTURE(c);
    const auto x = random_floats(n * hw * c, uint64_t(n * hw + c), -2.0f, 3.0f);
    std::vector<float> y(n * c);
    cpu::global_avg_pool_forward(n, hw, c, x.data(), y.data());
    std::vector<double> ref(n * c, 0.0);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i)
        for (int64_t j = 0; j < c; ++j) ref[b * c + j] += x[(b * hw + i) * c + j] / double(hw);
    CHECK(max_rel_error(y, ref) < 1e-6);  // double sum, one fp32 rounding

    const auto dy = random_floats(n * c, 5);
    std::vector<float> dx(n * hw * c, 3.0f);
    cpu::global_avg_pool_backward(n, hw, c, dy.data(), dx.data());
    std::vector<double> dref(n * hw * c);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i)
        for (int64_t j = 0; j < c; ++j) dref[(b * hw + i) * c + j] = dy[b * c + j] / double(hw);
    CHECK(max_rel_error(dx, dref) < 1e-6);  // one fp32 division
  }
  float v = 0.0f;
  CHECK_THROWS_AS(cpu::global_avg_pool_forward(1, 0, 1, &v, &v), hotlap::Error);
  CHECK_THROWS_AS(cpu::global_avg_pool_backward(1, 1, -2, &v, &v), hotlap::Error);
}
