// Every CUDA kernel against its CPU version on the same inputs: every ResNet-50 batch-norm and pool
// shape at batch 2, odd shapes, the fused epilogues, misaligned pointers. Outputs are poisoned with
// NaN before each GPU run, so an element the kernel forgets to write shows up as a mismatch.
// The memory-bound kernels and their CPU twins are built without fused multiply-adds
// (CMakeLists.txt), so where both do the same arithmetic in the same order (everything but the
// reductions' order of additions) the results are compared bit for bit; a NaN that went through
// arithmetic matches any NaN (same_float_values: the GPU has one canonical NaN).
// Workspaces are allocated at exactly the size their query gives, poisoned too, with a guard after
// them that must come back untouched; one too small, null or misaligned must throw.
//
// Without a CUDA device (or in a build without CUDA) each case prints why and returns; ctest reports
// it as skipped ("CUDA test skipped:" in the output, see tests/CMakeLists.txt).
//
// The cases templated on the storage type (<float>, <bf16>) run the same shapes in bf16: both sides
// do fp32 arithmetic on the widened values and round each stored result once to nearest even, so
//  - element-wise ops, max pool (values and indices), global average pool and batch norm in eval
//    mode (y, and the eval backward's dx) give the same bf16 bits (any NaN matches any NaN);
//  - batch norm's training outputs may sit one bf16 step apart (bf16_ulp_error <= 1): its
//    statistics come from fp32 partial sums on the GPU and a double sum on the CPU, and a value a
//    few fp32 ulps off can round to the neighbouring bf16 value. The slack, 1e-4 of the largest
//    value, is for elements near zero where (x - mean) * scale + beta cancels; it is 40x smaller
//    than a bf16 step at the largest value, so a wrong element still shows;
//  - the statistics and dgamma, dbeta are fp32 sums of the same values: the fp32 bounds.
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
#include "kernels/batchnorm.h"
#include "kernels/cast.h"
#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/device_buffers.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "batchnorm_backward_reference.h"
#include "test_util.h"

// Cases templated on the storage type are named "...<float>" and "...<bf16>".
TYPE_TO_STRING_AS("bf16", hotlap::kernels::bfloat16);

namespace k = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace cpu = hotlap::kernels::cpu;
namespace gpu = hotlap::kernels::cuda;
using hotlap::test::DeviceArray;
using hotlap::test::max_rel_error;
using hotlap::test::poisoned;
using hotlap::test::random_floats;
using hotlap::test::same_bits;
using hotlap::test::same_float_values;
using hotlap::test::Workspace;

namespace {

// bf16 values and measures.
using hotlap::test::as_elements;
using hotlap::test::bf16_ulp_error;

constexpr double kBnSlack = 1e-4;

// For the cases templated on the storage type T (float, bfloat16).
template <typename T>
std::vector<T> random_values(size_t n, uint64_t seed) {
  return hotlap::test::as_elements<T>(random_floats(n, seed));
}

template <typename T>
bool same_results(const std::vector<T>& got, const std::vector<T>& want) {
  return hotlap::test::same_values(got, want);
}

// Stricter where the arithmetic allows: fp32 results equal to the bit, NaN payloads included; bf16
// ones to the bit but any NaN for a NaN (the GPU's rounding to bf16 keeps a NaN a NaN, not its
// payload: kernels/cuda/storage.h).
template <typename T>
bool identical(const std::vector<T>& got, const std::vector<T>& want) {
  if constexpr (std::is_same_v<T, float>) return same_bits(got, want);
  return same_results(got, want);
}

}  // namespace

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- batch norm cases --------------------------------------------------------------------------

struct BnCase {
  int64_t rows, c;
};

// ResNet-50 (torchvision, stride in the 3x3 conv) at batch 2: every (channels, spatial) a batch
// norm sees, then odd shapes: tiny channel counts, rows not a multiple of any block dimension.
std::vector<BnCase> bn_cases() {
  const int64_t batch = 2;
  const int64_t resnet[][2] = {{64, 112},  {64, 56},   {256, 56}, {128, 56}, {128, 28},
                               {512, 28},  {256, 28},  {256, 14}, {1024, 14}, {512, 14},
                               {512, 7},   {2048, 7}};
  std::vector<BnCase> cases;
  for (const auto& rc : resnet) cases.push_back({batch * rc[1] * rc[1], rc[0]});
  const BnCase odd[] = {{2, 1}, {2, 5}, {3, 3}, {1000, 3}, {333, 17}, {8 * 4 * 8 + 3, 33},
                        {4099, 31}, {65, 64}, {7, 2048}};
  for (const BnCase& o : odd) cases.push_back(o);
  return cases;
}

const k::BatchNormEpilogue kNoEpilogue{};

}  // namespace

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

TEST_CASE_TEMPLATE("cuda batchnorm: training forward, running statistics and every epilogue match the CPU", T, float,
                   bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  constexpr bool fp32 = std::is_same_v<T, float>;
  uint64_t seed = fp32 ? 100 : 1400;
  for (const BnCase& bc : bn_cases()) {
    for (int variant = 0; variant < 8; ++variant) {
      const bool residual = variant & 1, relu = variant & 2, running = !(variant & 4);
      if (fp32 && variant != 0 && bc.rows * bc.c > 2'000'000) continue;  // variants on the smaller shapes
      CAPTURE(bc.rows);
      CAPTURE(bc.c);
      CAPTURE(residual);
      CAPTURE(relu);
      CAPTURE(running);
      const k::BatchNormShape s{bc.rows, bc.c};
      const size_t n = static_cast<size_t>(bc.rows * bc.c), c = static_cast<size_t>(bc.c);
      // An offset mean (3) next to a unit spread exercises the shifted sums.
      const std::vector<T> x = as_elements<T>(random_floats(n, ++seed, 2.0f, 4.0f)), res = random_values<T>(n, ++seed);
      const auto gamma = random_floats(c, ++seed, 0.5f, 1.5f), beta = random_floats(c, ++seed);
      const auto rm0 = random_floats(c, ++seed), rv0 = random_floats(c, ++seed, 0.5f, 2.0f);
      const float eps = 1e-5f, momentum = 0.1f;

      std::vector<T> y(n);
      std::vector<float> mean(c), invstd(c), rm = rm0, rv = rv0;
      cpu::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), eps, momentum, running ? rm.data() : nullptr,
                                   running ? rv.data() : nullptr, y.data(), mean.data(), invstd.data(),
                                   {residual ? res.data() : nullptr, relu});

      DeviceArray<T> d_x(x), d_res(res);
      DeviceArray<float> d_g(gamma), d_b(beta), d_rm(rm0), d_rv(rv0);
      auto d_y = hotlap::test::poisoned_as<T>(n);
      auto d_mean = poisoned(c), d_inv = poisoned(c);
      Workspace ws(gpu::batchnorm_forward_train_workspace_bytes(s));
      gpu::batchnorm_forward_train(s, d_x.get(), d_g.get(), d_b.get(), eps, momentum, running ? d_rm.get() : nullptr,
                                   running ? d_rv.get() : nullptr, d_y.get(), d_mean.get(), d_inv.get(),
                                   {residual ? d_res.get() : nullptr, relu}, ws.get(), ws.bytes());
      // The statistics are fp32 either way; the sums behind them run in another order than the CPU's.
      if constexpr (fp32)
        CHECK(max_rel_error(d_y.download(), y) < 1e-5);
      else  // each bf16 result at most a bf16 step from the CPU's
        CHECK(bf16_ulp_error(d_y.download(), y, kBnSlack) <= 1.0);
      CHECK(max_rel_error(d_mean.download(), mean) < (fp32 ? 1e-6 : 1e-5));
      CHECK(max_rel_error(d_inv.download(), invstd) < 1e-4);
      // Without running statistics the GPU's copies stay as they were (rm, rv too on the CPU).
      CHECK(max_rel_error(d_rm.download(), rm) < (fp32 ? 1e-6 : 1e-5));
      CHECK(max_rel_error(d_rv.download(), rv) < 1e-4);
      CHECK(ws.guard_intact());
    }
  }
}

TEST_CASE("cuda batchnorm: training forward is deterministic, in place works, bad shapes throw") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const k::BatchNormShape s{2 * 56 * 56, 256};
  const size_t n = static_cast<size_t>(s.rows * s.c), c = static_cast<size_t>(s.c);
  const auto x = random_floats(n, 7), gamma = random_floats(c, 8), beta = random_floats(c, 9);
  DeviceArray<float> dx(x), dg(gamma), db(beta);
  auto y1 = poisoned(n), y2 = poisoned(n), m = poisoned(c), v = poisoned(c);
  Workspace ws(gpu::batchnorm_forward_train_workspace_bytes(s));
  gpu::batchnorm_forward_train(s, dx.get(), dg.get(), db.get(), 1e-5f, 0.1f, nullptr, nullptr,
                               y1.get(), m.get(), v.get(), kNoEpilogue, ws.get(), ws.bytes());
  const auto first = y1.download();
  gpu::batchnorm_forward_train(s, dx.get(), dg.get(), db.get(), 1e-5f, 0.1f, nullptr, nullptr,
                               y2.get(), m.get(), v.get(), kNoEpilogue, ws.get(), ws.bytes());
  CHECK(same_bits(y2.download(), first));
  // y == x: every element is read before it is written, by the same thread.
  gpu::batchnorm_forward_train(s, dx.get(), dg.get(), db.get(), 1e-5f, 0.1f, nullptr, nullptr,
                               dx.get(), m.get(), v.get(), kNoEpilogue, ws.get(), ws.bytes());
  CHECK(same_bits(dx.download(), first));
  CHECK(ws.guard_intact());
  CHECK_THROWS_AS(gpu::batchnorm_forward_train({1, 4}, dx.get(), dg.get(), db.get(), 1e-5f, 0.1f,
                                               nullptr, nullptr, y1.get(), m.get(), v.get(),
                                               kNoEpilogue, ws.get(), ws.bytes()),
                  hotlap::Error);
  CHECK_THROWS_AS(gpu::batchnorm_forward_eval({-1, 4}, dx.get(), dg.get(), db.get(), m.get(),
                                              v.get(), 1e-5f, y1.get(), kNoEpilogue, ws.get(),
                                              ws.bytes()),
                  hotlap::Error);
}

// Eval: a per-channel scale from the running variance, then (x - mean) * scale + beta, the
// residual and the ReLU, element by element, with the CPU's operations in the CPU's order: its bits.
// The fused ReLU keeps a NaN a NaN, from x or from the residual; in training a NaN in x spoils its
// channel. NaN where the CPU has NaN, and elsewhere the CPU's values (its bits, in eval).
TEST_CASE("cuda batchnorm: NaN goes through the ReLU epilogue as on the CPU") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const k::BatchNormShape s{2 * 7 * 7, 40};
  const size_t n = static_cast<size_t>(s.rows * s.c), c = static_cast<size_t>(s.c);
  auto x = random_floats(n, 450), res = random_floats(n, 451);
  x[3] = kNaN;         // row 0, channel 3
  res[c + 35] = kNaN;  // row 1, channel 35
  const auto gamma = random_floats(c, 452), beta = random_floats(c, 453), rm = random_floats(c, 454);
  const auto rv = random_floats(c, 455, 0.1f, 2.0f);
  DeviceArray<float> d_x(x), d_res(res), d_g(gamma), d_b(beta), d_rm(rm), d_rv(rv);
  const k::BatchNormEpilogue cpu_epi{res.data(), true}, gpu_epi{d_res.get(), true};

  std::vector<float> ye(n);
  cpu::batchnorm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 1e-5f, ye.data(),
                              cpu_epi);
  auto d_ye = poisoned(n);
  Workspace ws_eval(gpu::batchnorm_forward_eval_workspace_bytes(s));
  gpu::batchnorm_forward_eval(s, d_x.get(), d_g.get(), d_b.get(), d_rm.get(), d_rv.get(), 1e-5f, d_ye.get(),
                              gpu_epi, ws_eval.get(), ws_eval.bytes());
  const auto got_eval = d_ye.download();
  CHECK(std::isnan(got_eval[3]));
  CHECK(std::isnan(got_eval[c + 35]));
  CHECK(same_float_values(got_eval, ye));

  std::vector<float> y(n), mean(c), invstd(c);
  cpu::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, nullptr, nullptr, y.data(),
                               mean.data(), invstd.data(), cpu_epi);
  auto d_y = poisoned(n), d_mean = poisoned(c), d_inv = poisoned(c);
  Workspace ws_train(gpu::batchnorm_forward_train_workspace_bytes(s));
  gpu::batchnorm_forward_train(s, d_x.get(), d_g.get(), d_b.get(), 1e-5f, 0.1f, nullptr, nullptr, d_y.get(),
                               d_mean.get(), d_inv.get(), gpu_epi, ws_train.get(), ws_train.bytes());
  const auto got_train = d_y.download();
  for (int64_t r = 0; r < s.rows; ++r) CHECK(std::isnan(got_train[r * s.c + 3]));
  CHECK(max_rel_error(got_train, y) < 1e-5);  // NaN exactly where the CPU has one (test_util.h)
}

// Eval backward: dx = dy * scale is the CPU's to the bit; dgamma, dbeta are sums in another order.
namespace {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const hotlap::Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

bool any_nan(const std::vector<float>& v) {
  for (float x : v)
    if (std::isnan(x)) return true;
  return false;
}

bool all_nan(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isnan(x)) return false;
  return true;
}

}  // namespace

TEST_CASE("cuda batchnorm and loss: a workspace too small, null or misaligned throws, launching nothing") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const k::BatchNormShape s{2 * 56 * 56, 256};
  const size_t n = static_cast<size_t>(s.rows * s.c), c = static_cast<size_t>(s.c);
  const auto x = random_floats(n, 11), dy = random_floats(n, 12);
  const auto gamma = random_floats(c, 13, 0.5f, 1.5f), beta = random_floats(c, 14);
  const auto rv = random_floats(c, 15, 0.5f, 2.0f);
  DeviceArray<float> d_x(x), d_dy(dy), d_g(gamma), d_b(beta), d_rm(beta), d_rv(rv), d_inv(rv);
  auto out = poisoned(n), m = poisoned(c), v = poisoned(c);
  DeviceArray<float> dg(c), db(c);
  // Room for the largest of the four, plus one alignment step (256 bytes) for a misaligned view.
  Workspace big(gpu::batchnorm_backward_workspace_bytes(s) + 256);
  char* const base = static_cast<char*>(big.get());

  struct Op {
    const char* name;
    size_t need;
    std::function<void(void*, size_t)> run;
  };
  const Op ops[] = {
      {"cuda::batchnorm_forward_train", gpu::batchnorm_forward_train_workspace_bytes(s),
       [&](void* w, size_t bytes) {
         gpu::batchnorm_forward_train(s, d_x.get(), d_g.get(), d_b.get(), 1e-5f, 0.1f, nullptr,
                                      nullptr, out.get(), m.get(), v.get(), kNoEpilogue, w, bytes);
       }},
      {"cuda::batchnorm_forward_eval", gpu::batchnorm_forward_eval_workspace_bytes(s),
       [&](void* w, size_t bytes) {
         gpu::batchnorm_forward_eval(s, d_x.get(), d_g.get(), d_b.get(), d_rm.get(), d_rv.get(),
                                     1e-5f, out.get(), kNoEpilogue, w, bytes);
       }},
      {"cuda::batchnorm_backward", gpu::batchnorm_backward_workspace_bytes(s),
       [&](void* w, size_t bytes) {
         gpu::batchnorm_backward(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_inv.get(),
                                 out.get(), dg.get(), db.get(), w, bytes);
       }},
      {"cuda::batchnorm_backward_eval", gpu::batchnorm_backward_eval_workspace_bytes(s),
       [&](void* w, size_t bytes) {
         gpu::batchnorm_backward_eval(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_rv.get(),
                                      1e-5f, out.get(), dg.get(), db.get(), w, bytes);
       }},
  };
  for (const Op& op : ops) {
    CAPTURE(op.name);
    REQUIRE(op.need > 0);
    REQUIRE(op.need + 256 <= big.bytes());
    out.upload(std::vector<float>(n, kNaN));
    dg.upload(std::vector<float>(c, 0.0f));
    db.upload(std::vector<float>(c, 0.0f));

    const std::string small = error_of([&] { op.run(base, op.need - 1); });
    MESSAGE(small);
    CHECK(contains(small, op.name));
    CHECK(contains(small, "rows=6272 c=256"));
    CHECK(contains(small, "needs " + std::to_string(op.need) + " bytes, given " +
                              std::to_string(op.need - 1)));
    const std::string null = error_of([&] { op.run(nullptr, op.need); });
    CHECK(contains(null, op.name));
    CHECK(contains(null, "null"));
    const std::string misaligned = error_of([&] { op.run(base + 4, op.need); });
    CHECK(contains(misaligned, op.name));
    CHECK(contains(misaligned, "256-byte aligned"));
    // The checks come before any launch: the outputs are untouched.
    CHECK(all_nan(out.download()));
    CHECK(dg.download() == std::vector<float>(c, 0.0f));
    CHECK(db.download() == std::vector<float>(c, 0.0f));

    // Exactly the queried size, at an aligned offset inside the same block, works.
    op.run(base + 256, op.need);
    CHECK_FALSE(any_nan(out.download()));
  }
  CHECK(big.guard_intact());

  const int64_t len = 5000;
  const auto p = random_floats(static_cast<size_t>(len), 16);
  DeviceArray<float> dp(p);
  const size_t need = gpu::loss_workspace_bytes(len);
  const std::string small = error_of(
      [&] { gpu::loss_forward(k::LossKind::mse, len, dp.get(), dp.get(), 0.0f, base, need - 1); });
  CHECK(contains(small, "cuda::loss_forward"));
  CHECK(contains(small, "n=5000"));
  CHECK(contains(small, "needs " + std::to_string(need) + " bytes, given " +
                            std::to_string(need - 1)));
  const std::string misaligned = error_of(
      [&] { gpu::loss_forward(k::LossKind::mse, len, dp.get(), dp.get(), 0.0f, base + 8, need); });
  CHECK(contains(misaligned, "256-byte aligned"));
  CHECK_THROWS_AS(gpu::loss_forward(k::LossKind::mse, len, dp.get(), dp.get(), 0.0f, nullptr, need),
                  hotlap::Error);
  CHECK(gpu::loss_forward(k::LossKind::mse, len, dp.get(), dp.get(), 0.0f, base, need) == 0.0);
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

TEST_CASE_TEMPLATE("cuda maxpool: forward values, indices and backward are identical to the CPU's", T, float,
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
      cpu::maxpool2d_forward(s, x.data(), y.data(), idx.data());
      const std::vector<T> dy = random_values<T>(out, ++seed);
      std::vector<T> dx(in);
      cpu::maxpool2d_backward(s, dy.data(), idx.data(), dx.data());

      DeviceArray<T> d_x(x), d_dy(dy);
      auto d_y = hotlap::test::poisoned_as<T>(out), d_dx = hotlap::test::poisoned_as<T>(in);
      DeviceArray<int32_t> d_idx(std::vector<int32_t>(out, 0x7FFFFFFF));
      gpu::maxpool2d_forward(s, d_x.get(), d_y.get(), d_idx.get());
      CHECK(identical(d_y.download(), y));  // fp32: a max copies its input, a NaN's payload too
      CHECK(d_idx.download() == idx);
      gpu::maxpool2d_backward(s, d_dy.get(), d_idx.get(), d_dx.get());
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
    cpu::global_avgpool_forward(n, hw, c, x.data(), y.data());
    cpu::global_avgpool_backward(n, hw, c, dy.data(), dx.data());
    DeviceArray<T> d_x(x), d_dy(dy);
    auto d_y = hotlap::test::poisoned_as<T>(y.size()), d_dx = hotlap::test::poisoned_as<T>(dx.size());
    gpu::global_avgpool_forward(n, hw, c, d_x.get(), d_y.get());
    gpu::global_avgpool_backward(n, hw, c, d_dy.get(), d_dx.get());
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

TEST_CASE_TEMPLATE("cuda batchnorm: eval forward with epilogues is identical to the CPU's", T, float, bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  uint64_t seed = std::is_same_v<T, float> ? 200 : 1500;
  std::vector<BnCase> cases = bn_cases();
  cases.push_back({1, 7});  // eval takes a single row
  for (const BnCase& bc : cases) {
    for (int epi = 0; epi < 4; ++epi) {
      const bool residual = epi & 1, relu = epi & 2;
      CAPTURE(bc.rows);
      CAPTURE(bc.c);
      CAPTURE(epi);
      const k::BatchNormShape s{bc.rows, bc.c};
      const size_t n = static_cast<size_t>(bc.rows * bc.c), c = static_cast<size_t>(bc.c);
      const std::vector<T> x = hotlap::test::as_elements<T>(random_floats(n, ++seed, -2.0f, 2.0f));
      const std::vector<T> res = random_values<T>(n, ++seed);
      const auto gamma = random_floats(c, ++seed), beta = random_floats(c, ++seed);
      const auto rm = random_floats(c, ++seed), rv = random_floats(c, ++seed, 0.1f, 2.0f);
      std::vector<T> y(n);
      cpu::batchnorm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 1e-5f, y.data(),
                                  {residual ? res.data() : nullptr, relu});
      DeviceArray<T> d_x(x), d_res(res);
      DeviceArray<float> d_g(gamma), d_b(beta), d_rm(rm), d_rv(rv);
      auto d_y = hotlap::test::poisoned_as<T>(n);
      Workspace ws(gpu::batchnorm_forward_eval_workspace_bytes(s));
      gpu::batchnorm_forward_eval(s, d_x.get(), d_g.get(), d_b.get(), d_rm.get(), d_rv.get(), 1e-5f, d_y.get(),
                                  {residual ? d_res.get() : nullptr, relu}, ws.get(), ws.bytes());
      CHECK(identical(d_y.download(), y));
      CHECK(ws.guard_intact());
    }
  }
}

TEST_CASE_TEMPLATE("cuda batchnorm: eval backward matches the CPU, with and without each output", T, float,
                   bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  uint64_t seed = std::is_same_v<T, float> ? 400 : 1700;
  for (const BnCase& bc : bn_cases()) {
    CAPTURE(bc.rows);
    CAPTURE(bc.c);
    const k::BatchNormShape s{bc.rows, bc.c};
    const size_t n = static_cast<size_t>(bc.rows * bc.c), c = static_cast<size_t>(bc.c);
    const std::vector<T> x = random_values<T>(n, ++seed), dy = random_values<T>(n, ++seed);
    const auto gamma = random_floats(c, ++seed), rm = random_floats(c, ++seed);
    const auto rv = random_floats(c, ++seed, 0.1f, 2.0f);
    const auto dg0 = random_floats(c, ++seed), db0 = random_floats(c, ++seed);
    std::vector<T> dx(n);
    std::vector<float> dgamma = dg0, dbeta = db0;
    cpu::batchnorm_backward_eval(s, x.data(), dy.data(), gamma.data(), rm.data(), rv.data(), 1e-5f, dx.data(),
                                 dgamma.data(), dbeta.data());
    DeviceArray<T> d_x(x), d_dy(dy);
    DeviceArray<float> d_g(gamma), d_rm(rm), d_rv(rv), d_dg(dg0), d_db(db0);
    auto d_dx = hotlap::test::poisoned_as<T>(n);
    Workspace ws(gpu::batchnorm_backward_eval_workspace_bytes(s));
    gpu::batchnorm_backward_eval(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_rv.get(), 1e-5f, d_dx.get(),
                                 d_dg.get(), d_db.get(), ws.get(), ws.bytes());
    CHECK(identical(d_dx.download(), dx));
    CHECK(max_rel_error(d_dg.download(), dgamma) < 1e-4);
    CHECK(max_rel_error(d_db.download(), dbeta) < 1e-4);
    // Frozen statistics, frozen affine: dx alone; or the parameter gradients alone.
    auto d_dx2 = hotlap::test::poisoned_as<T>(n);
    gpu::batchnorm_backward_eval(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_rv.get(), 1e-5f, d_dx2.get(),
                                 nullptr, nullptr, ws.get(), ws.bytes());
    CHECK(identical(d_dx2.download(), dx));
    DeviceArray<float> d_dg2(dg0), d_db2(db0);
    gpu::batchnorm_backward_eval(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_rv.get(), 1e-5f,
                                 static_cast<T*>(nullptr), d_dg2.get(), d_db2.get(), ws.get(), ws.bytes());
    CHECK(max_rel_error(d_dg2.download(), dgamma) < 1e-4);
    CHECK(max_rel_error(d_db2.download(), dbeta) < 1e-4);
    CHECK(ws.guard_intact());
  }
}

TEST_CASE_TEMPLATE("cuda batchnorm: training backward matches the CPU and accumulates dgamma, dbeta", T, float,
                   bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  uint64_t seed = std::is_same_v<T, float> ? 300 : 1600;
  for (const BnCase& bc : bn_cases()) {
    CAPTURE(bc.rows);
    CAPTURE(bc.c);
    const k::BatchNormShape s{bc.rows, bc.c};
    const size_t n = static_cast<size_t>(bc.rows * bc.c);
    const hotlap::test::BatchNormBackwardReference<T> ref(s, seed);
    const auto& [x, dy, gamma, beta, mean, invstd, dg0, db0, dx, dgamma, dbeta] = ref;

    DeviceArray<T> d_x(x), d_dy(dy);
    DeviceArray<float> d_g(gamma), d_m(mean), d_inv(invstd), d_dg(dg0), d_db(db0);
    auto d_dx = hotlap::test::poisoned_as<T>(n);
    Workspace ws(gpu::batchnorm_backward_workspace_bytes(s));
    gpu::batchnorm_backward(s, d_x.get(), d_dy.get(), d_g.get(), d_m.get(), d_inv.get(), d_dx.get(), d_dg.get(),
                            d_db.get(), ws.get(), ws.bytes());
    // Against the size of dx's terms, not max |dx|: with two rows per channel dx is ~1e-5 of them
    // (test_util.h: batchnorm_dx_term_scale).
    const double term = hotlap::test::batchnorm_dx_term_scale(gamma, invstd, hotlap::test::as_floats(dy));
    if constexpr (std::is_same_v<T, float>) {
      CHECK(hotlap::test::max_rel_error_at_scale(d_dx.download(), dx, term) < 1e-4);
    } else {  // fp32 sums in another order, each bf16 result at most a bf16 step apart
      double dx_max = 0.0;
      for (float v : hotlap::test::as_floats(dx)) dx_max = std::max(dx_max, std::abs(static_cast<double>(v)));
      const double slack = dx_max > 0.0 ? kBnSlack * std::max(1.0, term / dx_max) : kBnSlack;
      CHECK(bf16_ulp_error(d_dx.download(), dx, slack) <= 1.0);
    }
    CHECK(max_rel_error(d_dg.download(), dgamma) < 1e-4);
    CHECK(max_rel_error(d_db.download(), dbeta) < 1e-4);
    CHECK(ws.guard_intact());
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
