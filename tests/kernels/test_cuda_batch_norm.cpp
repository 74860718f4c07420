// Every CUDA batch-norm kernel against its CPU version on the same inputs: every ResNet-50 batch-norm
// shape at batch 2, odd shapes, the fused epilogues (residual, ReLU), misaligned pointers, the
// workspaces and their errors (the loss's too), in fp32 and bf16. How results are compared:
// cuda_compare.h.
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
#include "batch_norm_backward_reference.h"
#include "cuda_compare.h"

namespace k = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace cpu = hotlap::kernels::cpu;
namespace gpu = hotlap::kernels::cuda;
using namespace hotlap::test;

namespace {

constexpr double kBnSlack = 1e-4;  // see cuda_compare.h

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

TEST_CASE_TEMPLATE("cuda batch_norm: training forward, running statistics and every epilogue match the CPU", T, float,
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
      cpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), eps, momentum, running ? rm.data() : nullptr,
                                   running ? rv.data() : nullptr, y.data(), mean.data(), invstd.data(),
                                   {residual ? res.data() : nullptr, relu});

      DeviceArray<T> d_x(x), d_res(res);
      DeviceArray<float> d_g(gamma), d_b(beta), d_rm(rm0), d_rv(rv0);
      auto d_y = hotlap::test::poisoned_as<T>(n);
      auto d_mean = poisoned(c), d_inv = poisoned(c);
      Workspace ws(gpu::batch_norm_forward_train_workspace_bytes(s));
      gpu::batch_norm_forward_train(s, d_x.get(), d_g.get(), d_b.get(), eps, momentum, running ? d_rm.get() : nullptr,
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

TEST_CASE("cuda batch_norm: training forward is deterministic, in place works, bad shapes throw") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const k::BatchNormShape s{2 * 56 * 56, 256};
  const size_t n = static_cast<size_t>(s.rows * s.c), c = static_cast<size_t>(s.c);
  const auto x = random_floats(n, 7), gamma = random_floats(c, 8), beta = random_floats(c, 9);
  DeviceArray<float> dx(x), dg(gamma), db(beta);
  auto y1 = poisoned(n), y2 = poisoned(n), m = poisoned(c), v = poisoned(c);
  Workspace ws(gpu::batch_norm_forward_train_workspace_bytes(s));
  gpu::batch_norm_forward_train(s, dx.get(), dg.get(), db.get(), 1e-5f, 0.1f, nullptr, nullptr,
                               y1.get(), m.get(), v.get(), kNoEpilogue, ws.get(), ws.bytes());
  const auto first = y1.download();
  gpu::batch_norm_forward_train(s, dx.get(), dg.get(), db.get(), 1e-5f, 0.1f, nullptr, nullptr,
                               y2.get(), m.get(), v.get(), kNoEpilogue, ws.get(), ws.bytes());
  CHECK(same_bits(y2.download(), first));
  // y == x: every element is read before it is written, by the same thread.
  gpu::batch_norm_forward_train(s, dx.get(), dg.get(), db.get(), 1e-5f, 0.1f, nullptr, nullptr,
                               dx.get(), m.get(), v.get(), kNoEpilogue, ws.get(), ws.bytes());
  CHECK(same_bits(dx.download(), first));
  CHECK(ws.guard_intact());
  CHECK_THROWS_AS(gpu::batch_norm_forward_train({1, 4}, dx.get(), dg.get(), db.get(), 1e-5f, 0.1f,
                                               nullptr, nullptr, y1.get(), m.get(), v.get(),
                                               kNoEpilogue, ws.get(), ws.bytes()),
                  hotlap::Error);
  CHECK_THROWS_AS(gpu::batch_norm_forward_eval({-1, 4}, dx.get(), dg.get(), db.get(), m.get(),
                                              v.get(), 1e-5f, y1.get(), kNoEpilogue, ws.get(),
                                              ws.bytes()),
                  hotlap::Error);
}

// Eval: a per-channel scale from the running variance, then (x - mean) * scale + beta, the
// residual and the ReLU, element by element, with the CPU's operations in the CPU's order: its bits.
// The fused ReLU keeps a NaN a NaN, from x or from the residual; in training a NaN in x spoils its
// channel. NaN where the CPU has NaN, and elsewhere the CPU's values (its bits, in eval).
TEST_CASE("cuda batch_norm: NaN goes through the ReLU epilogue as on the CPU") {
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
  cpu::batch_norm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 1e-5f, ye.data(),
                              cpu_epi);
  auto d_ye = poisoned(n);
  Workspace ws_eval(gpu::batch_norm_forward_eval_workspace_bytes(s));
  gpu::batch_norm_forward_eval(s, d_x.get(), d_g.get(), d_b.get(), d_rm.get(), d_rv.get(), 1e-5f, d_ye.get(),
                              gpu_epi, ws_eval.get(), ws_eval.bytes());
  const auto got_eval = d_ye.download();
  CHECK(std::isnan(got_eval[3]));
  CHECK(std::isnan(got_eval[c + 35]));
  CHECK(same_float_values(got_eval, ye));

  std::vector<float> y(n), mean(c), invstd(c);
  cpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, nullptr, nullptr, y.data(),
                               mean.data(), invstd.data(), cpu_epi);
  auto d_y = poisoned(n), d_mean = poisoned(c), d_inv = poisoned(c);
  Workspace ws_train(gpu::batch_norm_forward_train_workspace_bytes(s));
  gpu::batch_norm_forward_train(s, d_x.get(), d_g.get(), d_b.get(), 1e-5f, 0.1f, nullptr, nullptr, d_y.get(),
                               d_mean.get(), d_inv.get(), gpu_epi, ws_train.get(), ws_train.bytes());
  const auto got_train = d_y.download();
  for (int64_t r = 0; r < s.rows; ++r) CHECK(std::isnan(got_train[r * s.c + 3]));
  CHECK(max_rel_error(got_train, y) < 1e-5);  // NaN exactly where the CPU has one (test_util.h)
}

TEST_CASE("cuda batch_norm and loss: a workspace too small, null or misaligned throws, launching nothing") {
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
  Workspace big(gpu::batch_norm_backward_workspace_bytes(s) + 256);
  char* const base = static_cast<char*>(big.get());

  struct Op {
    const char* name;
    size_t need;
    std::function<void(void*, size_t)> run;
  };
  const Op ops[] = {
      {"cuda::batch_norm_forward_train", gpu::batch_norm_forward_train_workspace_bytes(s),
       [&](void* w, size_t bytes) {
         gpu::batch_norm_forward_train(s, d_x.get(), d_g.get(), d_b.get(), 1e-5f, 0.1f, nullptr,
                                      nullptr, out.get(), m.get(), v.get(), kNoEpilogue, w, bytes);
       }},
      {"cuda::batch_norm_forward_eval", gpu::batch_norm_forward_eval_workspace_bytes(s),
       [&](void* w, size_t bytes) {
         gpu::batch_norm_forward_eval(s, d_x.get(), d_g.get(), d_b.get(), d_rm.get(), d_rv.get(),
                                     1e-5f, out.get(), kNoEpilogue, w, bytes);
       }},
      {"cuda::batch_norm_backward", gpu::batch_norm_backward_workspace_bytes(s),
       [&](void* w, size_t bytes) {
         gpu::batch_norm_backward(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_inv.get(),
                                 out.get(), dg.get(), db.get(), w, bytes);
       }},
      {"cuda::batch_norm_backward_eval", gpu::batch_norm_backward_eval_workspace_bytes(s),
       [&](void* w, size_t bytes) {
         gpu::batch_norm_backward_eval(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_rv.get(),
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

TEST_CASE_TEMPLATE("cuda batch_norm: eval forward with epilogues is identical to the CPU's", T, float, bfloat16) {
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
      cpu::batch_norm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 1e-5f, y.data(),
                                  {residual ? res.data() : nullptr, relu});
      DeviceArray<T> d_x(x), d_res(res);
      DeviceArray<float> d_g(gamma), d_b(beta), d_rm(rm), d_rv(rv);
      auto d_y = hotlap::test::poisoned_as<T>(n);
      Workspace ws(gpu::batch_norm_forward_eval_workspace_bytes(s));
      gpu::batch_norm_forward_eval(s, d_x.get(), d_g.get(), d_b.get(), d_rm.get(), d_rv.get(), 1e-5f, d_y.get(),
                                  {residual ? d_res.get() : nullptr, relu}, ws.get(), ws.bytes());
      CHECK(identical(d_y.download(), y));
      CHECK(ws.guard_intact());
    }
  }
}

// Eval backward: dx = dy * scale is the CPU's to the bit; dgamma, dbeta are sums in another order.
TEST_CASE_TEMPLATE("cuda batch_norm: eval backward matches the CPU, with and without each output", T, float,
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
    cpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma.data(), rm.data(), rv.data(), 1e-5f, dx.data(),
                                 dgamma.data(), dbeta.data());
    DeviceArray<T> d_x(x), d_dy(dy);
    DeviceArray<float> d_g(gamma), d_rm(rm), d_rv(rv), d_dg(dg0), d_db(db0);
    auto d_dx = hotlap::test::poisoned_as<T>(n);
    Workspace ws(gpu::batch_norm_backward_eval_workspace_bytes(s));
    gpu::batch_norm_backward_eval(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_rv.get(), 1e-5f, d_dx.get(),
                                 d_dg.get(), d_db.get(), ws.get(), ws.bytes());
    CHECK(identical(d_dx.download(), dx));
    CHECK(max_rel_error(d_dg.download(), dgamma) < 1e-4);
    CHECK(max_rel_error(d_db.download(), dbeta) < 1e-4);
    // Frozen statistics, frozen affine: dx alone; or the parameter gradients alone.
    auto d_dx2 = hotlap::test::poisoned_as<T>(n);
    gpu::batch_norm_backward_eval(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_rv.get(), 1e-5f, d_dx2.get(),
                                 nullptr, nullptr, ws.get(), ws.bytes());
    CHECK(identical(d_dx2.download(), dx));
    DeviceArray<float> d_dg2(dg0), d_db2(db0);
    gpu::batch_norm_backward_eval(s, d_x.get(), d_dy.get(), d_g.get(), d_rm.get(), d_rv.get(), 1e-5f,
                                 static_cast<T*>(nullptr), d_dg2.get(), d_db2.get(), ws.get(), ws.bytes());
    CHECK(max_rel_error(d_dg2.download(), dgamma) < 1e-4);
    CHECK(max_rel_error(d_db2.download(), dbeta) < 1e-4);
    CHECK(ws.guard_intact());
  }
}

TEST_CASE_TEMPLATE("cuda batch_norm: training backward matches the CPU and accumulates dgamma, dbeta", T, float,
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
    Workspace ws(gpu::batch_norm_backward_workspace_bytes(s));
    gpu::batch_norm_backward(s, d_x.get(), d_dy.get(), d_g.get(), d_m.get(), d_inv.get(), d_dx.get(), d_dg.get(),
                            d_db.get(), ws.get(), ws.bytes());
    // Against the size of dx's terms, not max |dx|: with two rows per channel dx is ~1e-5 of them
    // (test_util.h: batch_norm_dx_term_scale).
    const double term = hotlap::test::batch_norm_dx_term_scale(gamma, invstd, hotlap::test::as_floats(dy));
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
