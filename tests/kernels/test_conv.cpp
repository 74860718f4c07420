// Convolution (NHWC/OHWI) against float64 loops straight from the definition, with both CPU GEMMs.
//
// Tolerance: every output is an fp32 dot product over R*S*C (forward), K*R*S (backward data) or
// N*P*Q (backward filter) terms: a few hundred, up to 16512 in one backward filter. Their rounding
// errors grow like sqrt(n) * u in practice (the worst case, gamma_n * sum |terms|, is 1e-3 of the
// terms at n = 16512: too loose to catch a wrong term), and every GEMM here sums in blocks of a few
// hundred. Worst normwise error measured under AVX-512, AVX2 and the baseline, either GEMM, 1, 2, 3
// and 5 threads: 7e-7 forward and backward data, 2e-6 backward filter. 1e-5 leaves margin and still
// catches any indexing mistake, which shows up as O(1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <omp.h>

#include "kernels/choice.h"
#include "kernels/conv.h"
#include "kernels/error.h"
#include "kernels/gemm.h"
#include "kernels/conv_shapes.h"
#include "test_util.h"

namespace {

using hotlap::kernels::ConvShape;
using hotlap::kernels::CpuConv;
using hotlap::kernels::CpuGemm;
namespace cpu = hotlap::kernels::cpu;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
using hotlap::test::describe;

constexpr double kTol = 1e-5;

ConvShape make(int64_t n, int64_t h, int64_t w, int64_t c, int64_t k, int64_t r, int64_t s,
               int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w) {
  ConvShape cs;
  cs.n = n;
  cs.h = h;
  cs.w = w;
  cs.c = c;
  cs.k = k;
  cs.r = r;
  cs.s = s;
  cs.stride_h = stride_h;
  cs.stride_w = stride_w;
  cs.pad_h = pad_h;
  cs.pad_w = pad_w;
  return cs;
}


// Visits every (input element, filter tap) pair the convolution multiplies, padding skipped:
// f(x index, offset of the tap inside one filter [R*S*C], output pixel n*P*Q + p*Q + q). The weight
// index is then k * R*S*C + offset and the output index pixel * K + k.
template <typename F>
void for_each_tap(const ConvShape& s, F&& f) {
  const int64_t P = s.p(), Q = s.q();
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q)
        for (int64_t r = 0; r < s.r; ++r)
          for (int64_t fs = 0; fs < s.s; ++fs) {
            const int64_t h = p * s.stride_h - s.pad_h + r, w = q * s.stride_w - s.pad_w + fs;
            if (h < 0 || h >= s.h || w < 0 || w >= s.w) continue;
            for (int64_t c = 0; c < s.c; ++c)
              f(((n * s.h + h) * s.w + w) * s.c + c, (r * s.s + fs) * s.c + c, (n * P + p) * Q + q);
          }
}

struct Data {
  std::vector<float> x, w, bias, dy, dw0, db0;
};

void check_conv(const ConvShape& s, uint64_t seed, bool with_bias, double tol = kTol,
                double* worst = nullptr) {
  const int64_t P = s.p(), Q = s.q(), K = s.k, RSC = s.r * s.s * s.c;
  const size_t nx = size_t(s.n * s.h * s.w * s.c), nw = size_t(K * RSC), ny = size_t(s.n * P * Q * K);
  const auto x = random_floats(nx, seed), w = random_floats(nw, seed + 1);
  const auto bias = random_floats(size_t(K), seed + 2), dy = random_floats(ny, seed + 3);
  const auto dw0 = random_floats(nw, seed + 4), db0 = random_floats(size_t(K), seed + 5);

  // float64 references.
  std::vector<double> y_ref(ny, 0.0), dx_ref(nx, 0.0), dw_ref(dw0.begin(), dw0.end()),
      db_ref(db0.begin(), db0.end());
  for_each_tap(s, [&](int64_t xi, int64_t wo, int64_t row) {
    for (int64_t k = 0; k < K; ++k) {
      y_ref[size_t(row * K + k)] += double(x[size_t(xi)]) * w[size_t(k * RSC + wo)];
      dx_ref[size_t(xi)] += double(dy[size_t(row * K + k)]) * w[size_t(k * RSC + wo)];
      dw_ref[size_t(k * RSC + wo)] += double(dy[size_t(row * K + k)]) * x[size_t(xi)];
    }
  });
  if (with_bias) {
    for (size_t i = 0; i < ny; ++i) {
      y_ref[i] += bias[i % size_t(K)];
      db_ref[i % size_t(K)] += dy[i];
    }
  }

  std::vector<float> ws(size_t(cpu::conv2d_workspace_floats(s)) + 1);  // +1: never a null pointer
  std::vector<float> y(ny, NAN), dx(nx, NAN), dw = dw0, db = db0;       // NaN: must be overwritten
  cpu::conv2d_forward(s, x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data(), ws.data());
  cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), ws.data());
  cpu::conv2d_backward_filter(s, x.data(), dy.data(), dw.data(), with_bias ? db.data() : nullptr,
                              ws.data());
  const double ey = max_rel_error(y, y_ref), edx = max_rel_error(dx, dx_ref);
  if (worst != nullptr) *worst = std::max({*worst, ey, edx});
  CHECK(ey < tol);
  CHECK(edx < tol);
  CHECK(max_rel_error(dw, dw_ref) < kTol);
  if (with_bias)
    CHECK(max_rel_error(db, db_ref) < kTol);
  else
    CHECK(db == db0);  // untouched
}

struct GemmChoiceGuard {
  hotlap::kernels::KernelOptions saved = hotlap::kernels::kernel_options();  // the choice, automatic or not
  ~GemmChoiceGuard() { hotlap::kernels::set_kernel_options(saved); }
};

struct ConvChoiceGuard {
  CpuConv saved = cpu::cpu_conv_impl();
  ~ConvChoiceGuard() { cpu::set_cpu_conv(saved); }
};

std::vector<CpuGemm> gemms() {
  std::vector<CpuGemm> v{CpuGemm::blocked};
  if (cpu::openblas_available()) v.push_back(CpuGemm::openblas);
  return v;
}

}  // namespace

TEST_CASE("conv2d: forward, backward data, backward filter against float64") {
  GemmChoiceGuard guard;
  ConvChoiceGuard conv_guard;
  cpu::set_cpu_conv(CpuConv::im2col);  // the Winograd shapes have their own test case
  //                  n  h   w   c  k  r  s sh sw ph pw
  const ConvShape shapes[] = {
      make(2, 5, 5, 3, 4, 3, 3, 1, 1, 1, 1),    // 3x3 "same"
      make(2, 7, 6, 5, 3, 3, 3, 2, 2, 1, 1),    // stride 2, odd sizes
      make(1, 1, 1, 3, 5, 1, 1, 1, 1, 0, 0),    // pointwise on a 1x1 input
      make(2, 2, 3, 3, 5, 1, 1, 1, 1, 0, 0),    // pointwise on a 2x3 input
      make(1, 2, 3, 5, 3, 3, 3, 1, 1, 1, 1),    // 3x3 on a 2x3 input
      make(2, 9, 8, 3, 7, 7, 7, 2, 2, 3, 3),    // the ResNet stem's 7x7 / 2, pad 3
      make(1, 6, 7, 5, 3, 2, 3, 1, 1, 0, 1),    // non-square kernel, uneven padding
      make(1, 8, 8, 4, 3, 1, 1, 2, 2, 0, 0),    // 1x1 stride 2 (a downsample: im2col path)
      make(1, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1),    // 1x1 with padding (not pointwise)
      make(2, 8, 8, 3, 5, 3, 3, 2, 2, 0, 0),    // stride does not divide: last input row unused
      make(1, 4, 5, 3, 2, 3, 3, 1, 1, 2, 2),    // padding 2
      make(1, 7, 9, 3, 4, 2, 2, 3, 3, 0, 1),    // stride 3, 2x2 kernel
      make(1, 2, 2, 3, 2, 1, 1, 1, 1, 3, 3),    // padding 3 > kernel: outputs that see only padding
      make(1, 1, 1, 3, 2, 3, 3, 1, 1, 3, 3),    // 1x1 input, 3x3 kernel, padding 3
      make(1, 3, 1, 5, 3, 3, 1, 1, 1, 1, 0),    // 3x1 kernel on a one-column input
      make(2, 16, 16, 32, 33, 3, 3, 1, 1, 1, 1) // big enough for the threaded im2col and GEMM
  };
  for (CpuGemm impl : gemms()) {
    cpu::set_cpu_gemm(impl);
    uint64_t seed = 1000;
    for (const auto& s : shapes)
      for (bool with_bias : {false, true}) {
        INFO(std::string(cpu::cpu_gemm_name(impl)), " ", describe(s), std::string(with_bias ? " with bias" : " no bias"));
        check_conv(s, seed, with_bias);
        seed += 10;
      }
  }
}

TEST_CASE("conv2d: batch-parallel path (images over OpenMP threads) against float64") {
  // With 2+ threads and enough work per image group, the im2col path shares the groups out over
  // the threads (own col buffer each, single-threaded GEMMs, dW partials summed in thread order).
  GemmChoiceGuard guard;
  ConvChoiceGuard conv_guard;
  cpu::set_cpu_conv(CpuConv::im2col);
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const ConvShape shapes[] = {
      make(3, 28, 28, 32, 64, 3, 3, 1, 1, 1, 1),  // one image per group, 3 groups over 2 threads
      make(5, 14, 14, 32, 64, 3, 3, 1, 1, 1, 1),  // small output: groups of 3 + 2 images
  };
  for (CpuGemm impl : gemms()) {
    cpu::set_cpu_gemm(impl);
    uint64_t seed = 5000;
    for (const auto& s : shapes) {
      // The workspace holds a col buffer per thread: proof the batch-parallel path is taken.
      const int64_t one_image = s.p() * s.q() * s.r * s.s * s.c;
      CHECK(cpu::conv2d_workspace_floats(s) >= 2 * one_image * (s.p() * s.q() >= 784 ? 1 : 3));
      for (bool with_bias : {false, true}) {
        INFO(std::string(cpu::cpu_gemm_name(impl)), " ", describe(s), std::string(with_bias ? " with bias" : " no bias"));
        check_conv(s, seed, with_bias);
        seed += 10;
      }
    }
  }
  omp_set_num_threads(saved_threads);
}

TEST_CASE("conv2d: 1x1 convolutions with the GEMM chosen by shape class, against float64") {
  // Pointwise and strided 1x1 shapes large enough for the choice to pick either GEMM (M >= 128 rows:
  // the hand-written one forward and backward data; a backward filter summing over >= 16384 pixels),
  // and a strided one whose batch is shared out over the threads; choice on and off.
  GemmChoiceGuard guard;
  const bool saved_by_shape = cpu::cpu_conv_gemm_by_shape();
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const ConvShape shapes[] = {
      make(2, 12, 12, 20, 36, 1, 1, 1, 1, 0, 0),  // pointwise, M = 288
      make(1, 128, 129, 8, 5, 1, 1, 1, 1, 0, 0),  // pointwise, backward filter over 16512 pixels
      make(3, 13, 11, 17, 33, 1, 1, 2, 2, 0, 0),  // strided, odd sizes
      make(2, 56, 56, 96, 160, 1, 1, 2, 2, 0, 0), // strided, batch-parallel (2 workers)
  };
  for (CpuGemm impl : gemms())
    for (bool by_shape : {true, false}) {
      cpu::set_cpu_gemm(impl);
      cpu::set_cpu_conv_gemm_by_shape(by_shape);
      uint64_t seed = 7000;
      for (const auto& s : shapes) {
        INFO(std::string(cpu::cpu_gemm_name(impl)), std::string(by_shape ? " by shape " : " "), describe(s));
        check_conv(s, seed, true);
        seed += 10;
      }
    }
  omp_set_num_threads(saved_threads);
  cpu::set_cpu_conv_gemm_by_shape(saved_by_shape);
}

TEST_CASE("conv2d: the GEMM of a convolution by shape class and instruction-set level") {
  GemmChoiceGuard guard;
  const bool saved_by_shape = cpu::cpu_conv_gemm_by_shape();
  const cpu::CpuIsa saved_isa = cpu::active_cpu_isa();
  auto args = [](bool trans_a, int64_t m, int64_t n, int64_t k) {
    hotlap::kernels::GemmArgs g;
    g.trans_a = trans_a;
    g.m = m;
    g.n = n;
    g.k = k;
    return g;
  };
  const auto fwd_layer1 = args(false, 25088, 64, 64), fwd_layer4_b1 = args(false, 49, 2048, 512);
  const auto fwd_layer3_b1 = args(false, 196, 1024, 256), fwd_layer4_ds = args(false, 98, 2048, 1024);
  const auto filter_layer1 = args(true, 64, 64, 25088), filter_layer3 = args(true, 256, 512, 6272);
  const auto im2col_layer3_b1 = args(false, 196, 256, 2304), im2col_filter = args(true, 256, 2304, 784);
  if (cpu::openblas_available()) {
    cpu::set_cpu_gemm(CpuGemm::openblas);
    cpu::set_cpu_conv_gemm_by_shape(true);
    if (cpu::detected_cpu_isa() >= cpu::CpuIsa::avx512) {
      SUBCASE("avx512: 1x1 GEMMs by shape class, the other im2col GEMMs on OpenBLAS") {
        cpu::set_cpu_isa(cpu::CpuIsa::avx512);
        CHECK(cpu::choose_conv_gemm(fwd_layer1, true) == CpuGemm::blocked);
        CHECK(cpu::choose_conv_gemm(fwd_layer3_b1, true) == CpuGemm::blocked);  // enough rows
        CHECK(cpu::choose_conv_gemm(fwd_layer4_b1, true) == CpuGemm::openblas);  // few rows, many weights
        CHECK(cpu::choose_conv_gemm(fwd_layer4_ds, true) == CpuGemm::openblas);
        CHECK(cpu::choose_conv_gemm(filter_layer1, true) == CpuGemm::blocked);
        CHECK(cpu::choose_conv_gemm(filter_layer3, true) == CpuGemm::openblas);
        CHECK(cpu::choose_conv_gemm(im2col_layer3_b1, false) == CpuGemm::openblas);
        CHECK(cpu::choose_conv_gemm(im2col_filter, false) == CpuGemm::openblas);
      }
    }
    for (cpu::CpuIsa isa : {cpu::CpuIsa::baseline, cpu::CpuIsa::avx2}) {
      if (isa > cpu::detected_cpu_isa()) continue;
      CAPTURE(std::string(cpu::cpu_isa_name(isa)));
      cpu::set_cpu_isa(isa);  // below AVX-512: the hand-written GEMM for every convolution GEMM
      for (const auto& g : {fwd_layer1, fwd_layer4_b1, fwd_layer3_b1, fwd_layer4_ds, filter_layer1, filter_layer3,
                            im2col_layer3_b1, im2col_filter})
        for (bool one_by_one : {false, true}) CHECK(cpu::choose_conv_gemm(g, one_by_one) == CpuGemm::blocked);
    }
    cpu::set_cpu_isa(saved_isa);
    cpu::set_cpu_conv_gemm_by_shape(false);  // off: every GEMM on the GEMM chosen
    CHECK(cpu::choose_conv_gemm(fwd_layer1, true) == CpuGemm::openblas);
    CHECK(cpu::choose_conv_gemm(im2col_layer3_b1, false) == CpuGemm::openblas);
  }
  cpu::set_cpu_conv_gemm_by_shape(true);
  cpu::set_cpu_gemm(CpuGemm::blocked);  // a GEMM chosen explicitly other than OpenBLAS is kept
  CHECK(cpu::choose_conv_gemm(fwd_layer4_b1, true) == CpuGemm::blocked);
  CHECK(cpu::choose_conv_gemm(filter_layer3, true) == CpuGemm::blocked);
  CHECK(cpu::choose_conv_gemm(im2col_layer3_b1, false) == CpuGemm::blocked);
  cpu::set_cpu_conv_gemm_by_shape(saved_by_shape);
  cpu::set_cpu_isa(saved_isa);
}

TEST_CASE("conv2d: Winograd forward (F(2x2, 3x3)) and backward data (F(4x4, 3x3)) against float64") {
  // Forced on every 3x3 stride-1 pad-1 shape: partial tiles (H, W not multiples of 4, down to a
  // 1x1 image), channel counts off the 16-wide vectors, several images per block, blocks shared
  // over 1 and 2 threads, and C up to 256 (the error grows with the depth of the sums).
  //
  // Tolerance: F(4x4)'s transforms scale values by up to 5 (B^T), 1/24 (G) and 8 (A^T) around the
  // fp32 GEMMs, and the errors of its 36 GEMMs are mixed into every output, so its error grows with
  // the depth of the sums, ~10x im2col's; F(2x2)'s coefficients are 1 and 1/2. The transforms give
  // the same bits at every ISA level and thread count (test_cpu_isa.cpp); only the GEMMs' order
  // varies. Worst normwise error (max |error| / max |reference|, printed below) measured under
  // AVX-512, AVX2 and the baseline, either GEMM, 1, 2, 3 and 5 threads: 8.3e-6, backward data with
  // K = 256. The worst-case bound (gamma_n times the transforms' growth) is far too loose to catch a
  // bug; 5e-5 is 6x the worst seen, and an indexing or transform mistake still shows up as O(1).
  // Backward filter stays im2col and keeps the 1e-5 of the test above.
  GemmChoiceGuard guard;
  ConvChoiceGuard conv_guard;
  cpu::set_cpu_conv(CpuConv::winograd);
  const int saved_threads = omp_get_max_threads();
  constexpr double kWinogradTol = 5e-5;
  //                  n  h   w   c    k  r  s sh sw ph pw
  const ConvShape shapes[] = {
      make(1, 1, 1, 3, 2, 3, 3, 1, 1, 1, 1),      // one pixel: one tile, 15 of 16 outputs dropped
      make(2, 5, 5, 3, 4, 3, 3, 1, 1, 1, 1),      // partial tiles on both edges
      make(3, 7, 9, 17, 5, 3, 3, 1, 1, 1, 1),     // odd sizes, C = 16 + 1
      make(1, 8, 8, 16, 32, 3, 3, 1, 1, 1, 1),    // whole tiles, whole vectors
      make(2, 13, 6, 33, 31, 3, 3, 1, 1, 1, 1),   // non-square, C and K off the vector width
      make(3, 11, 11, 40, 24, 3, 3, 1, 1, 1, 1),  // many tiles: several images per block
      make(4, 26, 26, 48, 80, 3, 3, 1, 1, 1, 1),  // blocks of the 192-tile floor: several per worker
      make(1, 9, 9, 256, 40, 3, 3, 1, 1, 1, 1),   // deep sums (C = 256)
      make(2, 6, 5, 72, 256, 3, 3, 1, 1, 1, 1),   // deep backward-data sums (K = 256)
  };
  double worst = 0.0;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (CpuGemm impl : gemms()) {
      cpu::set_cpu_gemm(impl);
      uint64_t seed = 7000;
      for (const auto& s : shapes) {
        REQUIRE(cpu::conv2d_uses_winograd(s));
        for (bool with_bias : {false, true}) {
          const std::string label = std::string(cpu::cpu_gemm_name(impl)) + " threads " +
                                    std::to_string(threads) + " " + describe(s) +
                                    (with_bias ? " with bias" : " no bias");
          INFO(label);
          check_conv(s, seed, with_bias, kWinogradTol, &worst);
          seed += 10;
        }
      }
    }
  }
  omp_set_num_threads(saved_threads);
  MESSAGE("Winograd worst normwise relative error: ", worst);
}

TEST_CASE("conv2d: algorithm choice by shape class") {
  ConvChoiceGuard conv_guard;
  const ConvShape layer1 = make(1, 56, 56, 64, 64, 3, 3, 1, 1, 1, 1);   // 196 tiles of 4x4
  const ConvShape layer3 = make(1, 14, 14, 256, 256, 3, 3, 1, 1, 1, 1);  // 16 tiles
  const ConvShape strided = make(8, 56, 56, 64, 64, 3, 3, 2, 2, 1, 1);
  const ConvShape no_pad = make(8, 56, 56, 64, 64, 3, 3, 1, 1, 0, 0);
  cpu::set_cpu_conv(CpuConv::automatic);
  CHECK(cpu::conv2d_uses_winograd(layer1));
  CHECK_FALSE(cpu::conv2d_uses_winograd(layer3));  // too few tiles to pay for the weight transform
  CHECK_FALSE(cpu::conv2d_uses_winograd(strided));
  CHECK_FALSE(cpu::conv2d_uses_winograd(no_pad));
  cpu::set_cpu_conv(CpuConv::winograd);
  CHECK(cpu::conv2d_uses_winograd(layer3));
  CHECK_FALSE(cpu::conv2d_uses_winograd(strided));  // forced only where it applies
  CHECK_FALSE(cpu::conv2d_uses_winograd(make(1, 5, 5, 3, 4, 5, 5, 1, 1, 2, 2)));
  cpu::set_cpu_conv(CpuConv::im2col);
  CHECK_FALSE(cpu::conv2d_uses_winograd(layer1));
  CHECK(std::string(cpu::cpu_conv_name(CpuConv::automatic)) == "auto");
  CHECK(std::string(cpu::cpu_conv_name(CpuConv::winograd)) == "winograd");
}

TEST_CASE("conv2d: workspace size") {
  ConvChoiceGuard conv_guard;
  cpu::set_cpu_conv(CpuConv::im2col);
  // Small outputs stack images into one GEMM (here both of the batch); large ones take one image.
  CHECK(cpu::conv2d_workspace_floats(make(2, 5, 5, 3, 4, 3, 3, 1, 1, 1, 1)) == 2 * 5 * 5 * 3 * 3 * 3);
  CHECK(cpu::conv2d_workspace_floats(make(4, 28, 28, 2, 4, 3, 3, 1, 1, 1, 1)) == 28 * 28 * 3 * 3 * 2);
  CHECK(cpu::conv2d_workspace_floats(make(2, 5, 5, 3, 4, 1, 1, 1, 1, 0, 0)) == 0);  // pointwise
  CHECK(cpu::conv2d_workspace_floats(make(1, 8, 8, 4, 3, 1, 1, 2, 2, 0, 0)) == 4 * 4 * 4);
}

TEST_CASE("conv2d: bad shapes throw hotlap::Error naming the shape") {
  std::vector<float> buf(4096);
  float* p = buf.data();
  // 5x5 kernel on a 2x2 input with padding 1: the padded input (4x4) is smaller than the filter.
  const ConvShape too_big = make(1, 2, 2, 3, 4, 5, 5, 1, 1, 1, 1);
  CHECK_THROWS_WITH_AS(cpu::conv2d_workspace_floats(too_big), doctest::Contains("R=5"),
                       hotlap::Error);
  CHECK_THROWS_AS(cpu::conv2d_forward(too_big, p, p, nullptr, p, p), hotlap::Error);
  CHECK_THROWS_AS(cpu::conv2d_backward_data(too_big, p, p, p, p), hotlap::Error);
  CHECK_THROWS_AS(cpu::conv2d_backward_filter(too_big, p, p, p, nullptr, p), hotlap::Error);
  CHECK_THROWS_AS(cpu::conv2d_forward(make(1, 4, 4, 0, 4, 3, 3, 1, 1, 1, 1), p, p, nullptr, p, p),
                  hotlap::Error);  // no channels
  CHECK_THROWS_AS(cpu::conv2d_forward(make(1, 4, 4, 3, 4, 3, 3, 0, 1, 1, 1), p, p, nullptr, p, p),
                  hotlap::Error);  // stride 0
  CHECK_THROWS_AS(cpu::conv2d_forward(make(1, 4, 4, 3, 4, 3, 3, 1, 1, -1, 1), p, p, nullptr, p, p),
                  hotlap::Error);  // negative padding
  CHECK_THROWS_AS(cpu::conv2d_forward(make(1, 4, 4, 3, 4, 3, 3, 1, 1, 1, 1), p, p, nullptr, p,
                                      nullptr),
                  hotlap::Error);  // im2col needs a workspace
}

TEST_CASE("conv2d: the forward epilogue (bias, residual, ReLU) gives the bits of separate passes") {
  // Every forward path stores its output through the epilogue: the pointwise GEMM (each GEMM, the
  // 1x1 choice on and off), im2col one group at a time (1 thread) and batch-parallel (2), and
  // Winograd over 1 and 2 threads. Each must equal the convolution with its bias followed by the
  // residual add and the ReLU as passes of their own, bit for bit (the conv itself is checked
  // against float64 above).
  GemmChoiceGuard guard;
  ConvChoiceGuard conv_guard;
  const bool saved_by_shape = cpu::cpu_conv_gemm_by_shape();
  const int saved_threads = omp_get_max_threads();
  struct Path {
    const char* name;
    ConvShape shape;
    CpuConv conv;
    int threads;
  };
  const Path paths[] = {
      {"pointwise", make(2, 12, 12, 20, 36, 1, 1, 1, 1, 0, 0), CpuConv::automatic, 2},
      {"strided 1x1", make(3, 13, 11, 17, 33, 1, 1, 2, 2, 0, 0), CpuConv::automatic, 1},
      {"im2col", make(2, 9, 7, 5, 19, 3, 3, 1, 1, 1, 1), CpuConv::im2col, 1},
      {"im2col, stacked images", make(5, 14, 14, 32, 64, 3, 3, 1, 1, 1, 1), CpuConv::im2col, 1},
      {"batch-parallel", make(3, 28, 28, 32, 64, 3, 3, 1, 1, 1, 1), CpuConv::im2col, 2},
      {"winograd", make(3, 7, 9, 17, 5, 3, 3, 1, 1, 1, 1), CpuConv::winograd, 1},
      {"winograd, 2 threads", make(4, 26, 26, 48, 80, 3, 3, 1, 1, 1, 1), CpuConv::winograd, 2},
  };
  for (CpuGemm impl : gemms())
    for (bool by_shape : {true, false})
      for (const Path& path : paths) {
        cpu::set_cpu_gemm(impl);
        cpu::set_cpu_conv_gemm_by_shape(by_shape);
        cpu::set_cpu_conv(path.conv);
        omp_set_num_threads(path.threads);
        const ConvShape& s = path.shape;
        const size_t nx = size_t(s.n * s.h * s.w * s.c), nw = size_t(s.k * s.r * s.s * s.c),
                     ny = size_t(s.n * s.p() * s.q() * s.k);
        const auto x = random_floats(nx, 11), w = random_floats(nw, 12), bias = random_floats(size_t(s.k), 13);
        auto residual = random_floats(ny, 14);
        residual[ny / 2] = NAN;  // kept by the ReLU
        std::vector<float> ws(size_t(cpu::conv2d_workspace_floats(s)) + 1);
        for (int parts = 1; parts < 8; ++parts) {
          const bool with_bias = parts & 1, with_residual = parts & 2, relu = parts & 4;
          INFO(std::string(path.name), " ", std::string(cpu::cpu_gemm_name(impl)), std::string(by_shape ? " by shape " : " "), describe(s),
               " bias=", with_bias, " residual=", with_residual, " relu=", relu);
          std::vector<float> passes(ny, NAN), fused(ny, NAN);
          cpu::conv2d_forward(s, x.data(), w.data(), with_bias ? bias.data() : nullptr, passes.data(), ws.data());
          for (size_t i = 0; i < ny; ++i) {
            if (with_residual) passes[i] += residual[i];
            if (relu) passes[i] = (passes[i] > 0.0f || std::isnan(passes[i])) ? passes[i] : 0.0f;
          }
          hotlap::kernels::ConvEpilogue ep;
          ep.bias = with_bias ? bias.data() : nullptr;
          ep.residual = with_residual ? residual.data() : nullptr;
          ep.relu = relu;
          cpu::conv2d_forward(s, x.data(), w.data(), ep, fused.data(), ws.data());
          REQUIRE(fused.size() == passes.size());
          CHECK(std::memcmp(fused.data(), passes.data(), ny * sizeof(float)) == 0);
          CHECK(std::isnan(fused[ny / 2]) == with_residual);
        }
      }
  omp_set_num_threads(saved_threads);
  cpu::set_cpu_conv_gemm_by_shape(saved_by_shape);

  // The residual may not overlap the output.
  const ConvShape s = make(1, 4, 4, 3, 4, 1, 1, 1, 1, 0, 0);
  std::vector<float> x(48), w(12), y(64 + 8);
  hotlap::kernels::ConvEpilogue ep;
  ep.residual = y.data() + 8;
  CHECK_THROWS_WITH_AS(cpu::conv2d_forward(s, x.data(), w.data(), ep, y.data(), nullptr),
                       doctest::Contains("overlaps"), hotlap::Error);
}

TEST_CASE("conv2d: forward and backward data give the same bits on any number of threads") {
  // The batch-parallel plan changes with the thread count (which images share a GEMM, and whether the
  // GEMMs run inside a parallel region), and the GEMM each call runs on must not: the choice by shape
  // class is a function of the shape and the instruction-set level alone. Shapes whose batch is shared
  // out over 2 threads (a strided 1x1 and a 3x3) and a batch-1 one; both GEMM settings; every level.
  GemmChoiceGuard guard;
  ConvChoiceGuard conv_guard;
  cpu::set_cpu_conv(CpuConv::im2col);
  const int saved_threads = omp_get_max_threads();
  const cpu::CpuIsa saved_isa = cpu::active_cpu_isa();
  const ConvShape shapes[] = {
      make(4, 28, 28, 256, 512, 1, 1, 2, 2, 0, 0),  // strided 1x1: groups of 2 images on 2 threads
      make(4, 14, 14, 128, 96, 3, 3, 1, 1, 1, 1),   // 3x3: groups of 2 on 2 threads
      make(1, 14, 14, 64, 80, 3, 3, 2, 2, 1, 1),    // batch 1: one GEMM over the threads
  };
  for (cpu::CpuIsa isa : {cpu::CpuIsa::baseline, cpu::CpuIsa::avx2, cpu::CpuIsa::avx512}) {
    if (isa > cpu::detected_cpu_isa()) continue;
    cpu::set_cpu_isa(isa);
    for (CpuGemm impl : gemms()) {
      cpu::set_cpu_gemm(impl);
      for (const ConvShape& s : shapes) {
        INFO(std::string(cpu::cpu_isa_name(isa)), " ", std::string(cpu::cpu_gemm_name(impl)), " ", describe(s));
        const size_t nx = size_t(s.n * s.h * s.w * s.c), nw = size_t(s.k * s.r * s.s * s.c),
                     ny = size_t(s.n * s.p() * s.q() * s.k);
        const auto x = random_floats(nx, 31), w = random_floats(nw, 32), dy = random_floats(ny, 33);
        std::vector<float> y_first, dx_first;
        for (int threads : {1, 2, 3}) {
          CAPTURE(threads);
          omp_set_num_threads(threads);
          std::vector<float> ws(size_t(cpu::conv2d_workspace_floats(s)) + 1), y(ny), dx(nx);
          cpu::conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), ws.data());
          cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), ws.data());
          if (y_first.empty()) {
            y_first = y, dx_first = dx;
            continue;
          }
          CHECK(std::memcmp(y.data(), y_first.data(), ny * sizeof(float)) == 0);
          CHECK(std::memcmp(dx.data(), dx_first.data(), nx * sizeof(float)) == 0);
        }
      }
    }
  }
  omp_set_num_threads(saved_threads);
  cpu::set_cpu_isa(saved_isa);
}

TEST_CASE("conv2d: backward filter (and bias) give the same bits on any number of threads") {
  // Backward filter sums over the batch: its images are shared out by the shape alone, so dW and dbias
  // do not depend on the thread count (a training run resumed on another machine goes on bit for bit).
  // Shapes whose batch is shared out (groups of 1 and of 2 images) and one summed one group at a time;
  // both GEMMs; 1, 2, 3 and 5 threads.
  GemmChoiceGuard guard;
  ConvChoiceGuard conv_guard;
  cpu::set_cpu_conv(CpuConv::im2col);
  const int saved_threads = omp_get_max_threads();
  const ConvShape shapes[] = {
      make(8, 28, 28, 32, 64, 3, 3, 1, 1, 1, 1),  // 784 rows an image: 8 groups of 1 in 4 shares
      make(5, 20, 20, 40, 48, 3, 3, 1, 1, 1, 1),  // 400 rows: groups of 2 (3 groups in 4 shares)
      make(3, 14, 14, 64, 64, 3, 3, 2, 2, 1, 1),  // 49 rows: one group of 3, straight into dW
  };
  for (CpuGemm impl : gemms()) {
    cpu::set_cpu_gemm(impl);
    for (const ConvShape& s : shapes) {
      INFO(std::string(cpu::cpu_gemm_name(impl)), " ", describe(s));
      const size_t nx = size_t(s.n * s.h * s.w * s.c), nw = size_t(s.k * s.r * s.s * s.c),
                   ny = size_t(s.n * s.p() * s.q() * s.k);
      const auto x = random_floats(nx, 21), dy = random_floats(ny, 22), dw0 = random_floats(nw, 23),
                 db0 = random_floats(size_t(s.k), 24);
      std::vector<float> dw_first, db_first;
      for (int threads : {1, 2, 3, 5}) {
        CAPTURE(threads);
        omp_set_num_threads(threads);
        std::vector<float> ws(size_t(cpu::conv2d_workspace_floats(s)) + 1), dw = dw0, db = db0;
        cpu::conv2d_backward_filter(s, x.data(), dy.data(), dw.data(), db.data(), ws.data());
        if (dw_first.empty()) {
          dw_first = dw, db_first = db;
          continue;
        }
        CHECK(std::memcmp(dw.data(), dw_first.data(), nw * sizeof(float)) == 0);
        CHECK(std::memcmp(db.data(), db_first.data(), db.size() * sizeof(float)) == 0);
      }
    }
  }
  omp_set_num_threads(saved_threads);
}
