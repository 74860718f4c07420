// GEMM and linear layer against plain float64 loops, for both CPU implementations (blocked, with
// every micro-kernel this CPU supports, and OpenBLAS when built in).
//
// Tolerance: fp32 accumulation over k <= ~600 terms of values in [-1, 1] gives relative errors (to
// the largest reference value) of a few 1e-7; 1e-5 leaves a wide margin while still catching any
// indexing mistake, which shows up as O(1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <omp.h>

#include "kernels/error.h"
#include "kernels/choice.h"
#include "kernels/gemm.h"
#include "test_util.h"

namespace {

using hotlap::kernels::CpuGemm;
using hotlap::kernels::GemmArgs;
using hotlap::kernels::LinearShape;
namespace cpu = hotlap::kernels::cpu;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;

constexpr double kTol = 1e-5;

// Restores the GEMM choice (and the blocked micro-kernel) when a test ends, pass or fail.
struct GemmChoiceGuard {
  hotlap::kernels::KernelOptions saved = hotlap::kernels::kernel_options();  // the choice, automatic or not
  ~GemmChoiceGuard() {
    hotlap::kernels::set_kernel_options(saved);
    cpu::gemm_blocked_use_kernel(nullptr);
  }
};

// Every (implementation, micro-kernel) pair this build and CPU can run, as a label and a setter.
struct Variant {
  std::string label;
  CpuGemm impl;
  const char* kernel;  // blocked only
};
std::vector<Variant> variants() {
  std::vector<Variant> v;
  for (const char* k : {"avx512", "avx2", "generic"})
    if (cpu::gemm_blocked_use_kernel(k)) v.push_back({std::string("blocked/") + k, CpuGemm::blocked, k});
  cpu::gemm_blocked_use_kernel(nullptr);
  if (cpu::openblas_available()) v.push_back({"openblas", CpuGemm::openblas, nullptr});
  return v;
}
void use(const Variant& v) {
  cpu::set_cpu_gemm(v.impl);
  cpu::gemm_blocked_use_kernel(v.kernel);
}

// C = alpha * op(A) op(B) + beta * C in double, over the whole ldc-strided buffer (padding untouched).
std::vector<double> reference_gemm(const GemmArgs& g, const std::vector<float>& c_in) {
  std::vector<double> c(c_in.begin(), c_in.end());
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < g.k; ++p) {
        const double a = g.trans_a ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
        const double b = g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j];
        sum += a * b;
      }
      double& cij = c[size_t(i * g.ldc + j)];
      cij = double(g.alpha) * sum + (g.beta == 0.0f ? 0.0 : double(g.beta) * cij);
    }
  return c;
}

struct Case {
  int64_t m, n, k;
  bool ta, tb;
  float alpha, beta;
  int64_t pad;  // extra columns in every leading dimension
};

// Runs one case and returns the relative error against the reference; also checks that the padding
// columns of C were left alone.
double run_case(const Case& cs, uint64_t seed) {
  GemmArgs g;
  g.trans_a = cs.ta;
  g.trans_b = cs.tb;
  g.m = cs.m;
  g.n = cs.n;
  g.k = cs.k;
  g.alpha = cs.alpha;
  g.beta = cs.beta;
  const int64_t a_rows = cs.ta ? cs.k : cs.m, a_cols = cs.ta ? cs.m : cs.k;
  const int64_t b_rows = cs.tb ? cs.n : cs.k, b_cols = cs.tb ? cs.k : cs.n;
  g.lda = a_cols + cs.pad;
  g.ldb = b_cols + cs.pad;
  g.ldc = cs.n + cs.pad;
  auto a = random_floats(size_t(a_rows * g.lda + 1), seed);
  auto b = random_floats(size_t(b_rows * g.ldb + 1), seed + 1);
  auto c = random_floats(size_t(cs.m * g.ldc + 1), seed + 2);
  g.a = a.data();
  g.b = b.data();
  g.c = c.data();
  const auto ref = reference_gemm(g, c);
  cpu::gemm(g);
  for (int64_t i = 0; i < cs.m; ++i)
    for (int64_t j = cs.n; j < g.ldc; ++j) REQUIRE(double(c[size_t(i * g.ldc + j)]) == ref[size_t(i * g.ldc + j)]);
  return max_rel_error(c, ref);
}

}  // namespace

TEST_CASE("gemm: odd sizes, all transposes, alpha/beta, padded leading dimensions") {
  GemmChoiceGuard guard;
  const int64_t sizes[] = {1, 3, 17, 33, 65};
  for (const auto& v : variants()) {
    use(v);
    uint64_t seed = 1;
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      for (int64_t m : sizes)
        for (int64_t n : sizes) {
          const int64_t k = sizes[(m + n) % 5];  // vary k without a third nested loop
          const Case cs{m, n, k, ta, tb, (m % 2) ? 1.0f : -0.75f, (n % 3 == 0) ? 0.0f : 0.5f,
                        (m + n) % 3};
          INFO(v.label, " m=", m, " n=", n, " k=", k, " ta=", ta, " tb=", tb, " alpha=", cs.alpha,
               " beta=", cs.beta, " pad=", cs.pad);
          CHECK(run_case(cs, seed++) < kTol);
        }
    }
  }
}

TEST_CASE("gemm: blocking edges and the threaded path") {
  GemmChoiceGuard guard;
  // k > KC (256), m > MC (240 for avx512), n > NC (3072), and m*n*k large enough to use threads.
  const Case cases[] = {
      {250, 70, 300, false, false, 1.0f, 0.0f, 0},  {130, 150, 200, true, false, 0.5f, 1.0f, 5},
      {97, 129, 513, false, true, 1.0f, -1.0f, 3},   {241, 33, 257, true, true, 2.0f, 0.25f, 1},
      {5, 3100, 7, false, false, 1.0f, 0.5f, 2},     {3, 1, 600, true, false, 1.0f, 0.0f, 0},
      {1, 200, 200, false, true, 1.0f, 1.0f, 0},     {400, 2, 64, false, false, 1.0f, 0.0f, 0},
  };
  for (const auto& v : variants()) {
    use(v);
    uint64_t seed = 100;
    for (const auto& cs : cases) {
      INFO(v.label, " m=", cs.m, " n=", cs.n, " k=", cs.k, " ta=", cs.ta, " tb=", cs.tb);
      CHECK(run_case(cs, seed++) < kTol);
    }
  }
}

TEST_CASE("gemm: non-transposed A read in place - ragged strips, several row blocks, padded lda") {
  // The blocked GEMM reads the MR-row strips of a non-transposed A where they lie, a ragged last
  // strip too (by a kernel of its row count): m below, at and above MR (12 for avx512) and MC (240), k on either
  // side of KC (256), lda padded, and the shallow shapes of 1x1 convolutions (k = 64, n = 64 / 256).
  GemmChoiceGuard guard;
  const Case cases[] = {
      {11, 32, 64, false, true, 1.0f, 0.0f, 0},      {12, 32, 64, false, true, 1.0f, 0.0f, 0},
      {13, 31, 65, false, false, -0.5f, 0.5f, 3},    {245, 47, 129, false, false, 1.0f, 1.0f, 7},
      {491, 100, 300, false, true, 0.75f, 0.0f, 5},  {1000, 64, 64, false, true, 1.0f, 0.0f, 0},
      {777, 256, 64, false, false, 1.0f, 0.0f, 1},   {300, 64, 513, false, true, 1.0f, -1.0f, 2},
  };
  for (const auto& v : variants()) {
    use(v);
    uint64_t seed = 300;
    for (const auto& cs : cases) {
      INFO(v.label, " m=", cs.m, " n=", cs.n, " k=", cs.k, " tb=", cs.tb, " pad=", cs.pad);
      CHECK(run_case(cs, seed++) < kTol);
    }
  }
}

TEST_CASE("gemm: a ragged last strip of every row count computes its rows, the same bits as in a full strip") {
  // m = 1..25 covers every row count of the last strip for MR = 4, 6 and 12, read in place (A not
  // transposed) or packed (transposed); k = 300 spans two K blocks (beta = 1 on the second), n = 40
  // a ragged right edge too. Three properties: the values (against float64), no write to the rows of
  // the buffer past m (sentinels), and each row's bits do not depend on how many rows follow it:
  // rows [0, m) of the m-row product equal those of the 25-row one (alpha 1, beta 0; the products
  // of the convolutions).
  GemmChoiceGuard guard;
  constexpr int64_t kMaxRows = 25, n = 40, k = 300;
  for (const auto& v : variants()) {
    if (v.impl != CpuGemm::blocked) continue;
    use(v);
    for (bool ta : {false, true}) {
      const auto a = random_floats(size_t(kMaxRows * k), 41);
      const auto b = random_floats(size_t(k * n), 42);
      const auto bias = random_floats(size_t(n), 43);
      const auto residual = random_floats(size_t(kMaxRows * n), 44);
      const auto gemm_rows = [&](int64_t m, float alpha, float beta, bool with_epilogue, std::vector<float>& c) {
        GemmArgs g;
        g.trans_a = ta, g.trans_b = true, g.m = m, g.n = n, g.k = k, g.alpha = alpha, g.beta = beta;
        g.a = a.data(), g.lda = ta ? kMaxRows : k;  // transposed: the first m columns of a [k, 25] A
        g.b = b.data(), g.ldb = k, g.c = c.data(), g.ldc = n;
        if (with_epilogue) {
          g.epilogue.bias = bias.data();
          g.epilogue.residual = residual.data();
          g.epilogue.ldr = n;
          g.epilogue.relu = true;
        }
        cpu::gemm(g);
        return g;
      };
      std::vector<float> all(size_t(kMaxRows * n), 0.0f);
      gemm_rows(kMaxRows, 1.0f, 0.0f, true, all);
      for (int64_t m = 1; m <= kMaxRows; ++m) {
        INFO(v.label, " m=", m, " transposed A=", ta);
        std::vector<float> c(size_t(kMaxRows * n), 7.0f);  // rows past m keep their 7s
        gemm_rows(m, 1.0f, 0.0f, true, c);
        CHECK(std::equal(c.begin(), c.begin() + m * n, all.begin()));
        CHECK(std::all_of(c.begin() + m * n, c.end(), [](float x) { return x == 7.0f; }));
        // alpha and beta on C's old values, against float64
        auto c0 = random_floats(size_t(kMaxRows * n), 45 + uint64_t(m));
        for (size_t i = size_t(m * n); i < c0.size(); ++i) c0[i] = 7.0f;
        std::vector<float> c1 = c0;
        const GemmArgs g = gemm_rows(m, -0.75f, 0.5f, false, c1);
        GemmArgs gr = g;
        gr.c = c0.data();
        const auto ref = reference_gemm(gr, c0);
        CHECK(max_rel_error(c1, ref) < kTol);
        CHECK(std::all_of(c1.begin() + m * n, c1.end(), [](float x) { return x == 7.0f; }));
      }
    }
  }
}

TEST_CASE("gemm: k == 0, alpha == 0, m or n == 0, and beta == 0 ignores NaN in C") {
  GemmChoiceGuard guard;
  for (const auto& v : variants()) {
    use(v);
    INFO(v.label);
    // k == 0: C = beta * C, A and B are never read (null is fine).
    std::vector<float> c = {1, 2, 3, 4, 5, 6};
    GemmArgs g;
    g.m = 2;
    g.n = 3;
    g.k = 0;
    g.lda = 0;
    g.ldb = 3;
    g.ldc = 3;
    g.c = c.data();
    g.beta = 0.5f;
    cpu::gemm(g);
    CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3});
    g.beta = 0.0f;
    c.assign(6, NAN);
    cpu::gemm(g);
    CHECK(c == std::vector<float>(6, 0.0f));
    // beta == 1: C as it was, to the bit (a NaN stays).
    g.beta = 1.0f;
    c = {1, NAN, 3, 4, 5, 6};
    cpu::gemm(g);
    CHECK(c[0] == 1.0f);
    CHECK(std::isnan(c[1]));
    CHECK(std::vector<float>(c.begin() + 2, c.end()) == std::vector<float>{3, 4, 5, 6});
    // A padded C (ldc = 4 > n): the padding is never touched, whatever beta.
    for (float beta : {0.0f, 0.5f, 1.0f}) {
      CAPTURE(beta);
      std::vector<float> padded = {1, 2, 3, -7, 4, 5, 6, -7};
      GemmArgs p = g;
      p.ldc = 4;
      p.beta = beta;
      p.c = padded.data();
      cpu::gemm(p);
      CHECK(padded == std::vector<float>{beta * 1, beta * 2, beta * 3, -7, beta * 4, beta * 5, beta * 6, -7});
    }

    // alpha == 0 behaves the same, even with k > 0.
    auto a = random_floats(6, 7), b = random_floats(9, 8);
    g.k = 3;
    g.lda = 3;
    g.a = a.data();
    g.b = b.data();
    g.alpha = 0.0f;
    g.beta = 2.0f;
    c = {1, 2, 3, 4, 5, 6};
    cpu::gemm(g);
    CHECK(c == std::vector<float>{2, 4, 6, 8, 10, 12});

    // m == 0 or n == 0: nothing to do, nothing touched.
    g.alpha = 1.0f;
    g.m = 0;
    cpu::gemm(g);
    g.m = 2;
    g.n = 0;
    cpu::gemm(g);
    CHECK(c == std::vector<float>{2, 4, 6, 8, 10, 12});

    // beta == 0: C's old contents (NaN here) must not leak into the result.
    g.n = 3;
    g.beta = 0.0f;
    c.assign(6, NAN);
    cpu::gemm(g);
    for (float x : c) CHECK(std::isfinite(x));
  }
}

TEST_CASE("gemm: bad arguments throw hotlap::Error") {
  GemmChoiceGuard guard;
  std::vector<float> a(64), b(64), c(64);
  for (const auto& v : variants()) {
    use(v);
    INFO(v.label);
    GemmArgs g;
    g.m = 4;
    g.n = 4;
    g.k = 4;
    g.a = a.data();
    g.b = b.data();
    g.c = c.data();
    g.lda = g.ldb = g.ldc = 4;
    CHECK_NOTHROW(cpu::gemm(g));
    GemmArgs bad = g;
    bad.m = -1;
    CHECK_THROWS_AS(cpu::gemm(bad), hotlap::Error);
    bad = g;
    bad.lda = 3;
    CHECK_THROWS_WITH_AS(cpu::gemm(bad), doctest::Contains("lda=3"), hotlap::Error);
    bad = g;
    bad.trans_b = true;  // B^T is stored [n, k] = [4, 2]: ldb >= k = 2 is enough ...
    bad.k = 2;
    bad.ldb = 2;
    CHECK_NOTHROW(cpu::gemm(bad));
    bad.ldb = 1;  // ... and 1 is not
    CHECK_THROWS_WITH_AS(cpu::gemm(bad), doctest::Contains("ldb=1"), hotlap::Error);
    bad = g;
    bad.ldc = 3;
    CHECK_THROWS_WITH_AS(cpu::gemm(bad), doctest::Contains("ldc=3"), hotlap::Error);
    bad = g;
    bad.a = nullptr;
    CHECK_THROWS_AS(cpu::gemm(bad), hotlap::Error);
  }
}

TEST_CASE("gemm: implementation choice") {
  GemmChoiceGuard guard;
  CHECK(std::string(cpu::cpu_gemm_name(CpuGemm::blocked)) == "blocked");
  CHECK(std::string(cpu::cpu_gemm_name(CpuGemm::openblas)) == "openblas");
  cpu::set_cpu_gemm(CpuGemm::blocked);
  CHECK(cpu::cpu_gemm_impl() == CpuGemm::blocked);
  if (cpu::openblas_available()) {
    cpu::set_cpu_gemm(CpuGemm::openblas);
    CHECK(cpu::cpu_gemm_impl() == CpuGemm::openblas);
  } else {
    CHECK_THROWS_AS(cpu::set_cpu_gemm(CpuGemm::openblas), hotlap::Error);
    GemmArgs g;
    CHECK_THROWS_AS(cpu::gemm_openblas(g), hotlap::Error);
  }
  CHECK_FALSE(cpu::gemm_blocked_use_kernel("no-such-kernel"));
  MESSAGE("blocked GEMM micro-kernel on this CPU: " << std::string(cpu::gemm_blocked_kernel_name()));
}

TEST_CASE("gemm: OpenBLAS's core names, by the level of their kernels") {
  using cpu::CpuIsa;
  CHECK(cpu::openblas_core_isa("SkylakeX") == CpuIsa::avx512);
  CHECK(cpu::openblas_core_isa("Cooperlake") == CpuIsa::avx512);
  CHECK(cpu::openblas_core_isa("SAPPHIRERAPIDS") == CpuIsa::avx512);  // case is ignored
  CHECK(cpu::openblas_core_isa("Haswell") == CpuIsa::avx2);
  CHECK(cpu::openblas_core_isa("Zen") == CpuIsa::avx2);
  CHECK(cpu::openblas_core_isa("Prescott") == CpuIsa::baseline);
  CHECK(cpu::openblas_core_isa("Sandybridge") == CpuIsa::baseline);  // AVX without FMA: below avx2
  CHECK(cpu::openblas_core_isa("Unknown") == CpuIsa::baseline);
  CHECK_FALSE(cpu::openblas_core_isa("neoversen1").has_value());  // another architecture: no claim
  CHECK_FALSE(cpu::openblas_core_isa("").has_value());
  CHECK_FALSE(cpu::openblas_core_isa("Haswell2").has_value());  // whole names only

  // Known to be below: the fallback of an OpenBLAS that does not know the CPU, or a cap it ignored.
  CHECK(cpu::openblas_below("Prescott", CpuIsa::avx512));
  CHECK(cpu::openblas_below("Prescott", CpuIsa::avx2));
  CHECK(cpu::openblas_below("Haswell", CpuIsa::avx512));
  CHECK_FALSE(cpu::openblas_below("Prescott", CpuIsa::baseline));
  CHECK_FALSE(cpu::openblas_below("Haswell", CpuIsa::avx2));
  CHECK_FALSE(cpu::openblas_below("SkylakeX", CpuIsa::avx2));  // above the level: still OpenBLAS's
  CHECK_FALSE(cpu::openblas_below("neoversen1", CpuIsa::avx512));
}

TEST_CASE("gemm: with no GEMM chosen, OpenBLAS runs unless its kernels are below the active level") {
  GemmChoiceGuard guard;
  const cpu::CpuIsa saved_isa = cpu::active_cpu_isa();
  hotlap::kernels::KernelOptions o = hotlap::kernels::kernel_options();
  o.reference = false;
  o.cpu_gemm.reset();  // automatic, as with HOTLAP_GEMM unset
  hotlap::kernels::set_kernel_options(o);
  for (cpu::CpuIsa isa : {cpu::CpuIsa::baseline, cpu::CpuIsa::avx2, cpu::CpuIsa::avx512}) {
    if (isa > cpu::detected_cpu_isa()) continue;
    CAPTURE(std::string(cpu::cpu_isa_name(isa)));
    cpu::set_cpu_isa(isa);
    const bool below = cpu::openblas_below(cpu::openblas_core(), isa);
    const CpuGemm expected = cpu::openblas_available() && !below ? CpuGemm::openblas : CpuGemm::blocked;
    CHECK(cpu::default_cpu_gemm() == expected);
    CHECK(cpu::cpu_gemm_impl() == expected);
    if (isa == cpu::CpuIsa::baseline) CHECK_FALSE(below);  // no kernels are below the baseline
  }
  cpu::set_cpu_isa(cpu::detected_cpu_isa());
  const std::string chosen = cpu::cpu_gemm_name(cpu::default_cpu_gemm());
  MESSAGE("OpenBLAS kernels: " << cpu::openblas_core() << "; default GEMM at the detected level: " << chosen);
  if (cpu::openblas_available()) {  // chosen explicitly, OpenBLAS runs whatever its kernels
    cpu::set_cpu_gemm(CpuGemm::openblas);
    CHECK(cpu::cpu_gemm_impl() == CpuGemm::openblas);
  }
  cpu::set_cpu_isa(saved_isa);
}

TEST_CASE("gemm: linear forward and backward (dx overwritten, dW and db accumulated)") {
  GemmChoiceGuard guard;
  const LinearShape shapes[] = {{1, 1, 1}, {3, 17, 5}, {33, 65, 17}, {16, 200, 10}};
  for (const auto& v : variants()) {
    use(v);
    uint64_t seed = 500;
    for (const auto& s : shapes) {
      INFO(v.label, " rows=", s.rows, " in=", s.in, " out=", s.out);
      const size_t nx = size_t(s.rows * s.in), nw = size_t(s.out * s.in), ny = size_t(s.rows * s.out);
      const auto x = random_floats(nx, seed++), w = random_floats(nw, seed++);
      const auto bias = random_floats(size_t(s.out), seed++), dy = random_floats(ny, seed++);
      const auto dw0 = random_floats(nw, seed++), db0 = random_floats(size_t(s.out), seed++);

      std::vector<double> y_ref(ny), dx_ref(nx, 0.0), dw_ref(dw0.begin(), dw0.end()),
          db_ref(db0.begin(), db0.end());
      for (int64_t i = 0; i < s.rows; ++i)
        for (int64_t o = 0; o < s.out; ++o) {
          double sum = bias[size_t(o)];
          for (int64_t j = 0; j < s.in; ++j) {
            sum += double(x[size_t(i * s.in + j)]) * w[size_t(o * s.in + j)];
            dx_ref[size_t(i * s.in + j)] += double(dy[size_t(i * s.out + o)]) * w[size_t(o * s.in + j)];
            dw_ref[size_t(o * s.in + j)] += double(dy[size_t(i * s.out + o)]) * x[size_t(i * s.in + j)];
          }
          y_ref[size_t(i * s.out + o)] = sum;
          db_ref[size_t(o)] += dy[size_t(i * s.out + o)];
        }

      std::vector<float> y(ny, NAN), dx(nx, NAN), dw = dw0, db = db0;
      cpu::linear_forward(s, x.data(), w.data(), bias.data(), y.data());
      cpu::linear_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
      CHECK(max_rel_error(y, y_ref) < kTol);
      CHECK(max_rel_error(dx, dx_ref) < kTol);
      CHECK(max_rel_error(dw, dw_ref) < kTol);
      CHECK(max_rel_error(db, db_ref) < kTol);

      // No bias, no dx, no db: only y and dW.
      std::vector<float> y2(ny, NAN), dw2 = dw0;
      cpu::linear_forward(s, x.data(), w.data(), nullptr, y2.data());
      cpu::linear_backward(s, x.data(), w.data(), dy.data(), nullptr, dw2.data(), nullptr);
      for (size_t i = 0; i < ny; ++i) y_ref[i] -= bias[i % size_t(s.out)];
      CHECK(max_rel_error(y2, y_ref) < kTol);
      CHECK(max_rel_error(dw2, dw_ref) < kTol);
    }
  }
}

namespace {

// The epilogue as its contract states it: separate passes over C after the product, in this order.
void epilogue_passes(const GemmArgs& g, const hotlap::kernels::GemmEpilogue& ep) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      float& c = g.c[i * g.ldc + j];
      if (ep.bias != nullptr) c += ep.bias[j];
      if (ep.residual != nullptr) c += ep.residual[i * ep.ldr + j];
      if (ep.relu) c = (c > 0.0f || std::isnan(c)) ? c : 0.0f;
    }
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("gemm: the epilogue (bias, residual, ReLU) gives the bits of separate passes after the product") {
  // Every implementation and micro-kernel, every combination of the three parts, on shapes with
  // ragged edge tiles, several K blocks (the epilogue goes with the last only), beta != 0, padded
  // leading dimensions and the threaded split of C (each block's epilogue moved to its corner). The
  // residual holds NaNs, which the ReLU must keep.
  GemmChoiceGuard guard;
  const Case cases[] = {
      {37, 45, 300, false, true, 1.0f, 0.0f, 3},   {250, 70, 300, false, false, 1.0f, 0.0f, 0},
      {130, 150, 600, true, false, 0.5f, 1.0f, 5}, {12, 32, 64, false, true, 1.0f, 0.0f, 0},
      {1, 3100, 7, false, false, 1.0f, 0.5f, 2},   {491, 100, 64, false, true, 0.75f, 0.0f, 1},
  };
  for (const auto& v : variants()) {
    use(v);
    uint64_t seed = 900;
    for (const auto& cs : cases)
      for (int parts = 1; parts < 8; ++parts) {
        const bool with_bias = parts & 1, with_residual = parts & 2, relu = parts & 4;
        INFO(v.label, " m=", cs.m, " n=", cs.n, " k=", cs.k, " beta=", cs.beta, " bias=", with_bias,
             " residual=", with_residual, " relu=", relu);
        GemmArgs g;
        g.trans_a = cs.ta, g.trans_b = cs.tb, g.m = cs.m, g.n = cs.n, g.k = cs.k, g.alpha = cs.alpha,
        g.beta = cs.beta;
        g.lda = (cs.ta ? cs.m : cs.k) + cs.pad;
        g.ldb = (cs.tb ? cs.k : cs.n) + cs.pad;
        g.ldc = cs.n + cs.pad;
        const auto a = random_floats(size_t((cs.ta ? cs.k : cs.m) * g.lda), seed);
        const auto b = random_floats(size_t((cs.tb ? cs.n : cs.k) * g.ldb), seed + 1);
        const auto c0 = random_floats(size_t(cs.m * g.ldc), seed + 2);
        const auto bias = random_floats(size_t(cs.n), seed + 3);
        auto residual = random_floats(size_t(cs.m * (cs.n + 1)), seed + 4);
        for (size_t i = 5; i < residual.size(); i += 97) residual[i] = NAN;
        seed += 10;
        hotlap::kernels::GemmEpilogue ep;
        ep.bias = with_bias ? bias.data() : nullptr;
        ep.residual = with_residual ? residual.data() : nullptr;
        ep.ldr = cs.n + 1;
        ep.relu = relu;
        g.a = a.data(), g.b = b.data();

        std::vector<float> passes = c0, fused = c0;
        g.c = passes.data();
        cpu::gemm(g);
        epilogue_passes(g, ep);
        g.c = fused.data();
        g.epilogue = ep;
        cpu::gemm(g);
        CHECK(same_bits(fused, passes));  // the padding columns of C included: left alone by both
        if (relu) {  // and the ReLU did its work: nothing negative left in C's rows
          bool negative = false;
          for (int64_t i = 0; i < cs.m; ++i)
            for (int64_t j = 0; j < cs.n; ++j) negative |= fused[size_t(i * g.ldc + j)] < 0.0f;
          CHECK_FALSE(negative);
        }
      }
  }
}

TEST_CASE("gemm: the epilogue also applies when there is nothing to multiply, and linear's bias is one") {
  GemmChoiceGuard guard;
  const std::vector<float> bias = {0.5f, -2.0f, 1.0f}, residual = {1.0f, 1.0f, -3.0f, 0.25f, 0.0f, 2.0f};
  for (const auto& v : variants()) {
    use(v);
    INFO(v.label);
    std::vector<float> c(6, 7.0f);
    GemmArgs g;
    g.m = 2, g.n = 3, g.k = 0, g.lda = 1, g.ldb = 3, g.ldc = 3, g.c = c.data();  // C = 0 * C, then the epilogue
    g.epilogue.bias = bias.data();
    g.epilogue.residual = residual.data();
    g.epilogue.ldr = 3;
    g.epilogue.relu = true;
    cpu::gemm(g);
    CHECK(c == std::vector<float>{1.5f, 0.0f, 0.0f, 0.75f, 0.0f, 3.0f});
  }
  // A residual row stride shorter than a row of C is refused.
  std::vector<float> c(6);
  GemmArgs g;
  g.m = 2, g.n = 3, g.k = 0, g.lda = 1, g.ldb = 3, g.ldc = 3, g.c = c.data();
  g.epilogue.residual = residual.data();
  g.epilogue.ldr = 2;
  CHECK_THROWS_WITH_AS(cpu::gemm(g), doctest::Contains("residual row stride 2"), hotlap::Error);
}

TEST_CASE("gemm: linear backward's bias gradient gives the same bits on any number of threads") {
  // Large enough to be summed in shares (rows x out > 32768): shares set by the size alone.
  const LinearShape s{300, 40, 200};
  const auto x = random_floats(size_t(s.rows * s.in), 1), w = random_floats(size_t(s.out * s.in), 2),
             dy = random_floats(size_t(s.rows * s.out), 3);
  const int saved = omp_get_max_threads();
  std::vector<float> first;
  for (int threads : {1, 2, 3, 5}) {
    CAPTURE(threads);
    omp_set_num_threads(threads);
    std::vector<float> db(size_t(s.out), 0.5f);
    cpu::linear_backward(s, x.data(), w.data(), dy.data(), nullptr, nullptr, db.data());
    if (first.empty())
      first = db;
    else
      CHECK(same_bits(db, first));
  }
  omp_set_num_threads(saved);
  // And the sum is right: against float64.
  for (int64_t j = 0; j < s.out; ++j) {
    double sum = 0.5;
    for (int64_t i = 0; i < s.rows; ++i) sum += dy[size_t(i * s.out + j)];
    CHECK(first[size_t(j)] == doctest::Approx(sum).epsilon(1e-5));
  }
}

TEST_CASE("gemm: every GEMM gives the same bits on any number of threads, OpenBLAS's too, and the right values") {
  // OpenBLAS's own threading adds in another order than its one-thread path (0.3.21 on an AMD EPYC:
  // every one of these shapes differed between 1 and 2 threads); gemm_openblas keeps it on one
  // thread over blocks fixed by the shape. Shapes of a ResNet's GEMMs, both transpositions, one
  // block and many.
  struct Shape {
    bool trans_a, trans_b;
    int64_t m, n, k;
  };
  const Shape shapes[] = {{true, false, 64, 576, 147},  {false, false, 147, 64, 576}, {false, false, 784, 64, 288},
                          {true, false, 256, 64, 3136}, {false, true, 3136, 256, 64}, {false, false, 49, 512, 4608},
                          {true, false, 300, 700, 50}};
  GemmChoiceGuard guard;
  const int saved = omp_get_max_threads();
  for (const Variant& v : variants()) {
    use(v);
    for (const Shape& sh : shapes) {
      INFO(v.label, " m=", sh.m, " n=", sh.n, " k=", sh.k, " trans_a=", sh.trans_a, " trans_b=", sh.trans_b);
      const auto a = random_floats(size_t(sh.m * sh.k), 5), b = random_floats(size_t(sh.k * sh.n), 6),
                 c0 = random_floats(size_t(sh.m * sh.n), 7);
      std::vector<float> first;
      for (int threads : {1, 2, 3, 5}) {
        CAPTURE(threads);
        omp_set_num_threads(threads);
        std::vector<float> c = c0;
        GemmArgs g;
        g.trans_a = sh.trans_a, g.trans_b = sh.trans_b, g.m = sh.m, g.n = sh.n, g.k = sh.k;
        g.a = a.data(), g.lda = sh.trans_a ? sh.m : sh.k;
        g.b = b.data(), g.ldb = sh.trans_b ? sh.k : sh.n;
        g.beta = 1.0f, g.c = c.data(), g.ldc = sh.n;
        cpu::gemm(g);
        if (first.empty())
          first = c;
        else
          CHECK(same_bits(c, first));
      }
      // One row against float64.
      double worst = 0.0;
      for (int64_t j = 0; j < sh.n; ++j) {
        double want = c0[size_t(j)];
        for (int64_t p = 0; p < sh.k; ++p)
          want += double(sh.trans_a ? a[size_t(p * sh.m)] : a[size_t(p)]) *
                  double(sh.trans_b ? b[size_t(j * sh.k + p)] : b[size_t(p * sh.n + j)]);
        worst = std::max(worst, std::abs(first[size_t(j)] - want) / (1.0 + std::abs(want)));
      }
      CHECK(worst < 1e-4);
    }
  }
  omp_set_num_threads(saved);
}
