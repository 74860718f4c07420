// Every other CUDA kernel against its CPU version on the same inputs: the runtime (memory, copies,
// fills, errors), max and global average pooling at every ResNet-50 shape at batch 2 and odd ones,
// the element-wise ops, the losses, the bias, the optimizers and the casts; aligned and misaligned,
// fp32 and bf16. Batch norm: test_cuda_batch_norm.cpp. How results are compared: cuda_compare.h.
//
// Without a CUDA device (or in a build without CUDA) each case prints why and returns; ctest reports
// it as skipped ("CUDA test skipped:" in the output, see tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/device_buffers.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "cuda_compare.h"

namespace k = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace cpu = hotlap::kernels::cpu;
namespace gpu = hotlap::kernels::cuda;
using namespace hotlap::test;

TEST_CASE("cuda runtime: memory, copies, fills and errors") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const std::vector<float> host = random_floats(1001, 1);
  DeviceArray<float> a(host);
  CHECK(same_bits(a.download(), host));
  DeviceArray<float> b(host.size());
  gpu::copy_device_to_device_async(b.get(), a.get(), host.size() * sizeof(float));
  CHECK(same_bits(b.download(), host));
  gpu::fill_bytes_async(b.get(), 0, host.size() * sizeof(float));
  CHECK(b.download() == std::vector<float>(host.size(), 0.0f));
  std::vector<float> back(host.size());
  gpu::copy_device_to_host_async(back.data(), a.get(), host.size() * sizeof(float));
  gpu::synchronize();
  CHECK(same_bits(back, host));
  // An event marks the end of the work queued before it; waiting for it waits for that alone.
  gpu::Event event = nullptr;
  gpu::fill_bytes_async(b.get(), 0, host.size() * sizeof(float));
  gpu::copy_device_to_device_async(b.get(), a.get(), host.size() * sizeof(float));
  gpu::record_event(event, "event test");
  REQUIRE(event != nullptr);
  gpu::wait_event(event, "event test");
  std::vector<float> after(host.size());
  gpu::copy_device_to_host_async(after.data(), b.get(), host.size() * sizeof(float));
  gpu::record_event(event, "event test");  // recorded again: now marks the later copy
  gpu::wait_event(event, "event test");
  CHECK(same_bits(after, host));
  gpu::destroy_event(event);
  gpu::wait_event(nullptr, "event test");  // never recorded: nothing to wait for
  gpu::destroy_event(nullptr);
  CHECK(gpu::device_allocate(0) == nullptr);
  gpu::device_free(nullptr);
  const gpu::DeviceMemoryInfo info = gpu::device_memory_info();
  CHECK(info.total_bytes > 0);
  CHECK(info.free_bytes <= info.total_bytes);
  // Far more than any GPU has: an Error that says so, and the runtime still works afterwards.
  try {
    gpu::device_allocate(size_t{1} << 52);
    FAIL("allocating 4 PiB succeeded");
  } catch (const hotlap::Error& e) {
    CHECK(std::string(e.what()).find("out of GPU memory") != std::string::npos);
  }
  CHECK(same_bits(a.download(), host));
}

namespace {

std::vector<k::PoolShape> pool_cases() {
  auto make = [](int64_t n, int64_t h, int64_t w, int64_t c, int64_t wh, int64_t ww, int64_t sh,
                 int64_t sw, int64_t ph, int64_t pw, bool ceil) {
    k::PoolShape s;
    s.n = n, s.h = h, s.w = w, s.c = c, s.window_h = wh, s.window_w = ww, s.stride_h = sh;
    s.stride_w = sw, s.pad_h = ph, s.pad_w = pw, s.ceil_mode = ceil;
    return s;
  };
  return {
      make(2, 112, 112, 64, 3, 3, 2, 2, 1, 1, false),  // ResNet stem
      make(1, 7, 5, 3, 2, 2, 2, 2, 0, 0, true),         // MTCNN-style ceil mode, odd sizes
      make(2, 9, 9, 17, 3, 3, 2, 2, 1, 1, true),
      make(3, 12, 11, 33, 3, 3, 2, 2, 0, 0, true),
      make(1, 5, 6, 4, 3, 2, 1, 1, 1, 0, false),
      make(2, 8, 8, 40, 5, 5, 2, 3, 2, 1, false),
      make(1, 1, 1, 5, 1, 1, 1, 1, 0, 0, false),
  };
}

// Values on a coarse grid, so windows hold ties (the first max must win), and a few NaNs.
std::vector<float> pool_input(size_t n, uint64_t seed, bool with_nan) {
  auto v = random_floats(n, seed, -4.0f, 4.0f);
  for (float& x : v) x = std::round(x);
  if (with_nan)
    for (size_t i = 5; i < n; i += 997) v[i] = kNaN;
  return v;
}

}  // namespace

TEST_CASE_TEMPLATE("cuda max_pool2d: forward values, indices and backward are identical to the CPU's", T, float,
                   bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  uint64_t seed = std::is_same_v<T, float> ? 500 : 1800;
  for (const k::PoolShape& s : pool_cases()) {
    for (bool with_nan : {false, true}) {
      CAPTURE(s.h);
      CAPTURE(s.w);
      CAPTURE(s.c);
      CAPTURE(s.window_h);
      CAPTURE(s.ceil_mode);
      CAPTURE(with_nan);
      const size_t in = static_cast<size_t>(s.n * s.h * s.w * s.c);
      const size_t out = static_cast<size_t>(s.n * s.p() * s.q() * s.c);
      // Small integers (exact in bf16 too, so windows hold ties: the first max must win) and NaNs.
      const std::vector<T> x = hotlap::test::as_elements<T>(pool_input(in, ++seed, with_nan));
      std::vector<T> y(out);
      std::vector<int32_t> idx(out);
      cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data());
      const std::vector<T> dy = random_values<T>(out, ++seed);
      std::vector<T> dx(in);
      cpu::max_pool2d_backward(s, dy.data(), idx.data(), dx.data());

      DeviceArray<T> d_x(x), d_dy(dy);
      auto d_y = hotlap::test::poisoned_as<T>(out), d_dx = hotlap::test::poisoned_as<T>(in);
      DeviceArray<int32_t> d_idx(std::vector<int32_t>(out, 0x7FFFFFFF));
      gpu::max_pool2d_forward(s, d_x.get(), d_y.get(), d_idx.get());
      CHECK(identical(d_y.download(), y));  // fp32: a max copies its input, a NaN's payload too
      CHECK(d_idx.download() == idx);
      gpu::max_pool2d_backward(s, d_dy.get(), d_idx.get(), d_dx.get());
      CHECK(identical(d_dx.download(), dx));
    }
  }
}

TEST_CASE_TEMPLATE("cuda global average pool: forward and backward are identical to the CPU's", T, float, bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const int64_t cases[][3] = {{2, 49, 2048}, {3, 5, 17}, {1, 1, 1}, {2, 112 * 112, 3}};
  uint64_t seed = std::is_same_v<T, float> ? 600 : 1900;
  for (const auto& nc : cases) {
    const int64_t n = nc[0], hw = nc[1], c = nc[2];
    CAPTURE(n);
    CAPTURE(hw);
    CAPTURE(c);
    const std::vector<T> x = random_values<T>(static_cast<size_t>(n * hw * c), ++seed);
    const std::vector<T> dy = random_values<T>(static_cast<size_t>(n * c), ++seed);
    std::vector<T> y(static_cast<size_t>(n * c)), dx(static_cast<size_t>(n * hw * c));
    cpu::global_avg_pool_forward(n, hw, c, x.data(), y.data());
    cpu::global_avg_pool_backward(n, hw, c, dy.data(), dx.data());
    DeviceArray<T> d_x(x), d_dy(dy);
    auto d_y = hotlap::test::poisoned_as<T>(y.size()), d_dx = hotlap::test::poisoned_as<T>(dx.size());
    gpu::global_avg_pool_forward(n, hw, c, d_x.get(), d_y.get());
    gpu::global_avg_pool_backward(n, hw, c, d_dy.get(), d_dx.get());
    CHECK(same_results(d_y.download(), y));
    CHECK(same_results(d_dx.download(), dx));
  }
}

TEST_CASE_TEMPLATE("cuda elementwise: every op is identical to the CPU's, aligned or not, any length", T, float,
                   bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  uint64_t seed = std::is_same_v<T, float> ? 700 : 2000;
  for (size_t n : {size_t{1}, size_t{3}, size_t{4}, size_t{5}, size_t{1000}, size_t{4097}, size_t{2 * 56 * 56 * 64},
                   (size_t{1} << 20) + 3}) {
    for (size_t offset : {size_t{0}, size_t{1}}) {  // 1: every pointer off its vector alignment
      CAPTURE(n);
      CAPTURE(offset);
      std::vector<T> a = random_values<T>(n, ++seed), b = random_values<T>(n, ++seed);
      a[0] = hotlap::test::as_elements<T>({kNaN})[0];  // NaN through relu stays NaN
      if (n > 2) b[2] = hotlap::test::as_elements<T>({-0.0f})[0];
      DeviceArray<T> da(a, offset), db(b, offset);
      auto run = [&](auto cpu_op, auto gpu_op) {
        std::vector<T> want(n);
        cpu_op(want.data());
        auto got = hotlap::test::poisoned_as<T>(n, offset);
        gpu_op(got.get());
        return same_results(got.download(), want);
      };
      if constexpr (std::is_same_v<T, float>) {  // fp32 only: fill and scale have no bf16 version
        CHECK(run([&](float* y) { cpu::fill(n, 2.5f, y); }, [&](float* y) { gpu::fill(n, 2.5f, y); }));
        CHECK(run([&](float* y) { cpu::scale(n, -0.3f, a.data(), y); },
                  [&](float* y) { gpu::scale(n, -0.3f, da.get(), y); }));
      }
      CHECK(run([&](T* y) { cpu::copy(n, a.data(), y); }, [&](T* y) { gpu::copy(n, da.get(), y); }));
      CHECK(run([&](T* y) { cpu::add(n, a.data(), b.data(), y); }, [&](T* y) { gpu::add(n, da.get(), db.get(), y); }));
      CHECK(run([&](T* y) { cpu::activation_forward<k::Relu>(n, a.data(), y); },
                [&](T* y) { gpu::activation_forward<k::Relu>(n, da.get(), y); }));
      CHECK(run([&](T* y) { cpu::activation_backward<k::Relu>(n, a.data(), b.data(), y); },
                [&](T* y) { gpu::activation_backward<k::Relu>(n, da.get(), db.get(), y); }));
      CHECK(run([&](T* y) { cpu::add_relu_forward(n, a.data(), b.data(), y); },
                [&](T* y) { gpu::add_relu_forward(n, da.get(), db.get(), y); }));
      // accumulate: y += x (bf16: y = bf16(y + x)), in place.
      std::vector<T> acc = b;
      cpu::accumulate(n, a.data(), acc.data());
      DeviceArray<T> dacc(b, offset);
      gpu::accumulate(n, da.get(), dacc.get());
      CHECK(same_results(dacc.download(), acc));
    }
  }
}

TEST_CASE("cuda losses: forward (deterministic reduction) and backward match the CPU") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  uint64_t seed = 800;
  for (size_t n : {size_t{1}, size_t{16}, size_t{200}, size_t{4097}, size_t{3'000'001}}) {
    for (k::LossKind kind : {k::LossKind::mse, k::LossKind::l1, k::LossKind::smooth_l1}) {
      for (float beta : {0.0f, 0.5f}) {
        CAPTURE(n);
        CAPTURE(static_cast<int>(kind));
        CAPTURE(beta);
        const auto p = random_floats(n, ++seed), t = random_floats(n, ++seed);
        DeviceArray<float> dp(p), dt(t);
        Workspace ws(gpu::loss_workspace_bytes(static_cast<int64_t>(n)));
        const double want = cpu::loss_forward(kind, static_cast<int64_t>(n), p.data(), t.data(), beta);
        const double got = gpu::loss_forward(kind, static_cast<int64_t>(n), dp.get(), dt.get(), beta,
                                             ws.get(), ws.bytes());
        CHECK(std::abs(got - want) <= 1e-12 * std::abs(want));
        CHECK(gpu::loss_forward(kind, static_cast<int64_t>(n), dp.get(), dt.get(), beta, ws.get(),
                                ws.bytes()) == got);
        CHECK(ws.guard_intact());
        std::vector<float> g(n);
        cpu::loss_backward(kind, static_cast<int64_t>(n), p.data(), t.data(), beta, 0.7f, g.data());
        auto dg = poisoned(n);
        gpu::loss_backward(kind, static_cast<int64_t>(n), dp.get(), dt.get(), beta, 0.7f, dg.get());
        CHECK(same_bits(dg.download(), g));
      }
    }
  }
  DeviceArray<float> one(std::vector<float>{1.0f});
  Workspace ws(gpu::loss_workspace_bytes(1));
  CHECK_THROWS_AS(gpu::loss_forward(k::LossKind::mse, 0, one.get(), one.get(), 0.0f, ws.get(),
                                    ws.bytes()),
                  hotlap::Error);
}

TEST_CASE("cuda bias: add and backward match the CPU") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const int64_t cases[][2] = {{64, 1}, {16, 1000}, {7, 33}, {3000, 64}};
  uint64_t seed = 900;
  for (const auto& rc : cases) {
    const int64_t rows = rc[0], c = rc[1];
    CAPTURE(rows);
    CAPTURE(c);
    const auto y0 = random_floats(static_cast<size_t>(rows * c), ++seed);
    const auto bias = random_floats(static_cast<size_t>(c), ++seed);
    std::vector<float> y = y0, dbias = bias;
    cpu::bias_add(rows, c, bias.data(), y.data());
    cpu::bias_backward(rows, c, y0.data(), dbias.data());
    DeviceArray<float> d_y(y0), d_bias(bias), d_dy(y0), d_dbias(bias);
    gpu::bias_add(rows, c, d_bias.get(), d_y.get());
    gpu::bias_backward(rows, c, d_dy.get(), d_dbias.get());
    CHECK(same_bits(d_y.download(), y));
    CHECK(max_rel_error(d_dbias.download(), dbias) < 1e-6);
  }
}

// The updates are kernels/optim_math.h's on both sides, without fused multiply-adds: the CPU's bits.
TEST_CASE("cuda optimizers: SGD variants and AdamW over several steps are identical to the CPU's") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const size_t n = 100'003;
  const auto p0 = random_floats(n, 1000), m0 = random_floats(n, 1001), v0 = random_floats(n, 1002, 0.0f, 1.0f);
  struct SgdCase {
    float momentum, dampening, wd;
    bool nesterov;
  };
  for (const SgdCase& sc : {SgdCase{0.0f, 0.0f, 0.0f, false}, SgdCase{0.0f, 0.0f, 1e-4f, false},
                            SgdCase{0.9f, 0.0f, 1e-4f, false}, SgdCase{0.9f, 0.1f, 0.0f, false},
                            SgdCase{0.9f, 0.0f, 1e-4f, true}}) {
    CAPTURE(sc.momentum);
    CAPTURE(sc.dampening);
    CAPTURE(sc.nesterov);
    std::vector<float> p = p0, buf(n, 0.0f);
    DeviceArray<float> dp(p0), dbuf(buf);
    for (int step = 0; step < 3; ++step) {
      const auto g = random_floats(n, 1100 + step);
      DeviceArray<float> dg(g);
      k::SgdArgs a;
      a.lr = 0.05f, a.momentum = sc.momentum, a.dampening = sc.dampening;
      a.weight_decay = sc.wd, a.nesterov = sc.nesterov, a.first_step = step == 0;
      cpu::sgd_update(a, n, p.data(), g.data(), buf.data());
      gpu::sgd_update(a, n, dp.get(), dg.get(), dbuf.get());
    }
    CHECK(same_bits(dp.download(), p));
    CHECK(same_bits(dbuf.download(), buf));
  }
  std::vector<float> p = p0, m = m0, v = v0;
  DeviceArray<float> dp(p0), dm(m0), dv(v0);
  for (int step = 1; step <= 3; ++step) {
    const auto g = random_floats(n, 1200 + step);
    DeviceArray<float> dg(g);
    k::AdamWArgs a;
    a.step = step;
    a.beta1 = step == 3 ? 0.3f : 0.9f;  // step 3: lerp weight 0.7 >= 0.5, torch.lerp's other formula
    cpu::adamw_update(a, n, p.data(), g.data(), m.data(), v.data());
    gpu::adamw_update(a, n, dp.get(), dg.get(), dm.get(), dv.get());
  }
  CHECK(same_bits(dp.download(), p));
  CHECK(same_bits(dm.download(), m));
  CHECK(same_bits(dv.download(), v));
}

TEST_CASE("cuda cast: fp32 <-> bf16 is identical to the CPU's to the bit") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  std::vector<float> x = random_floats(100'001, 1300, -1e6f, 1e6f);
  const uint32_t specials[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u,
                               0xFFC00001u, 0x7F800001u, 0x00000001u, 0x807FFFFFu, 0x3F808000u,
                               0x3F818000u, 0x7F7FFFFFu, 0x3F807FFFu};
  for (size_t i = 0; i < std::size(specials); ++i) std::memcpy(&x[i], &specials[i], 4);
  for (size_t offset : {size_t{0}, size_t{1}}) {
    CAPTURE(offset);
    std::vector<bfloat16> b(x.size());
    cpu::f32_to_bf16(x.size(), x.data(), b.data());
    DeviceArray<float> dx(x, offset);
    DeviceArray<bfloat16> db(std::vector<bfloat16>(x.size(), bfloat16{0xFFFF}), offset);
    gpu::f32_to_bf16(x.size(), dx.get(), db.get());
    CHECK(db.download() == b);
    std::vector<float> back(x.size());
    cpu::bf16_to_f32(b.size(), b.data(), back.data());
    auto dback = poisoned(x.size(), offset);
    gpu::bf16_to_f32(b.size(), db.get(), dback.get());
    CHECK(same_bits(dback.download(), back));
  }
}

TEST_CASE("cuda cross_entropy: forward and backward match the CPU, a bad label is named") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const int64_t shapes[][2] = {{1, 1}, {3, 10}, {7, 257}, {256, 1000}, {5, 4099}};
  uint64_t seed = 1000;
  for (const auto& shape : shapes) {
    for (float e : {0.0f, 0.1f}) {
      const int64_t rows = shape[0], classes = shape[1];
      CAPTURE(rows);
      CAPTURE(classes);
      CAPTURE(e);
      std::vector<float> x = random_floats(static_cast<size_t>(rows * classes), ++seed);
      for (float& v : x) v *= 12.0f;
      std::vector<float> y(static_cast<size_t>(rows));
      for (int64_t i = 0; i < rows; ++i) y[i] = static_cast<float>((i * 7919 + 3) % classes);
      DeviceArray<float> dx(x), dy(y);
      Workspace ws(gpu::cross_entropy_workspace_bytes(rows));
      const double want = cpu::cross_entropy_forward(rows, classes, x.data(), y.data(), e);
      const double got = gpu::cross_entropy_forward(rows, classes, dx.get(), dy.get(), e, ws.get(), ws.bytes());
      CHECK(std::abs(got - want) <= 1e-12 * std::max(1.0, std::abs(want)));
      CHECK(gpu::cross_entropy_forward(rows, classes, dx.get(), dy.get(), e, ws.get(), ws.bytes()) == got);
      CHECK(ws.guard_intact());
      std::vector<float> g(x.size());
      cpu::cross_entropy_backward(rows, classes, x.data(), y.data(), e, 0.7f, g.data());
      auto dg = poisoned(x.size());
      gpu::cross_entropy_backward(rows, classes, dx.get(), dy.get(), e, 0.7f, dg.get());
      // Each side's exp in double is within an ulp of exact, so the float results may differ by
      // one fp32 rounding.
      CHECK(max_rel_error(dg.download(), g) <= 1e-6);
    }
  }
  const std::vector<float> x(12, 0.5f), labels{0.0f, 1.0f, 4.0f};  // 3 rows of 4: row 2's label is out of range
  DeviceArray<float> dx(x), dy(labels);
  Workspace ws(gpu::cross_entropy_workspace_bytes(3));
  try {
    gpu::cross_entropy_forward(3, 4, dx.get(), dy.get(), 0.0f, ws.get(), ws.bytes());
    FAIL("a label out of range was accepted");
  } catch (const hotlap::Error& err) {
    CHECK(std::string(err.what()).find("row 2") != std::string::npos);
  }
  CHECK_THROWS_AS(gpu::cross_entropy_forward(3, 4, dx.get(), dy.get(), 0.0f, ws.get(), ws.bytes() - 8), hotlap::Error);
}
