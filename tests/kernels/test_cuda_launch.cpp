// The CUDA kernels' launch plans and per-thread arithmetic, run on the CPU: these tests need no GPU
// and run in every build. Each kernel in kernels/cuda is a thin loop that maps blockIdx/threadIdx
// to indices and calls a function from kernels/cuda/*_math.h; here the same functions are called
// for every index the grid would cover, in the order the kernel combines them, and the result is
// compared with the CPU kernel. What is left unchecked without a GPU is the thin loop itself. The
// workspace-size queries are checked against the plans they derive from, and the workspace check
// against what it must refuse.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/cuda/batch_norm_math.h"
#include "kernels/cuda/cast_math.h"
#include "kernels/cuda/elementwise_math.h"
#include "kernels/cuda/launch.h"
#include "kernels/optim_math.h"
#include "kernels/cuda/pool_math.h"
#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "batch_norm_backward_reference.h"
#include "test_util.h"

namespace k = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace cpu = hotlap::kernels::cpu;
namespace kc = hotlap::kernels::cuda;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;

namespace {

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// The channel-sums kernel for one (tile, split) block, on the CPU: each of the 32 x 8 threads runs
// channel_sums_thread, then the 8 row lanes are added in lane order into partial[split][q][j].
template <bool kWithDy>
std::vector<float> emulate_channel_sums(const k::BatchNormShape& s,
                                        const kc::BatchNormReductionPlan& plan, const float* x,
                                        const float* dy, const float* shift) {
  constexpr int kQ = kWithDy ? 3 : 2;
  std::vector<float> partial(static_cast<size_t>(plan.splits * kQ * s.c), NAN);
  for (int64_t tile = 0; tile < plan.channel_tiles; ++tile)
    for (int64_t split = 0; split < plan.splits; ++split) {
      const int64_t begin = split * plan.rows_per_split;
      const int64_t end = std::min(s.rows, begin + plan.rows_per_split);
      for (int tx = 0; tx < kc::kBnChannelTile; ++tx) {
        const int64_t j = tile * kc::kBnChannelTile + tx;
        if (j >= s.c) continue;
        float total[3] = {0.0f, 0.0f, 0.0f};
        for (int lane = 0; lane < kc::kBnRowLanes; ++lane) {
          const kc::ChannelSums t =
              kc::channel_sums_thread<kWithDy>(x, dy, shift[j], s.c, j, begin, end, lane);
          total[0] += t.d;
          total[1] += t.second;
          total[2] += t.dy;
        }
        for (int q = 0; q < kQ; ++q) partial[(split * kQ + q) * s.c + j] = total[q];
      }
    }
  return partial;
}

struct BnForward {
  std::vector<float> y, mean, invstd, running_mean, running_var;
};

// The GPU's training forward (sums, finalize, normalize) on the CPU.
BnForward emulate_bn_forward_train(const k::BatchNormShape& s, const std::vector<float>& x,
                                   const std::vector<float>& gamma, const std::vector<float>& beta,
                                   float eps, float momentum, std::vector<float> rm,
                                   std::vector<float> rv, const float* residual, bool relu) {
  const auto plan = kc::batch_norm_reduction_plan(s.rows, s.c);
  const auto partial = emulate_channel_sums<false>(s, plan, x.data(), nullptr, x.data());
  const size_t c = static_cast<size_t>(s.c);
  BnForward f{std::vector<float>(x.size(), NAN), std::vector<float>(c), std::vector<float>(c), rm, rv};
  std::vector<float> lo(c), scale(c);
  for (int64_t j = 0; j < s.c; ++j)
    kc::batch_norm_finalize_forward_channel(j, s.rows, s.c, plan.splits, partial.data(), x.data(),
                                           gamma.data(), eps, momentum, f.running_mean.data(),
                                           f.running_var.data(), f.mean.data(), f.invstd.data(),
                                           lo.data(), scale.data());
  for (int64_t r = 0; r < s.rows; ++r)
    for (int64_t j = 0; j < s.c; ++j) {
      const int64_t i = r * s.c + j;
      f.y[i] = kc::batch_norm_normalize_value(x[i], f.mean[j], lo[j], scale[j], beta[j],
                                             residual != nullptr,
                                             residual != nullptr ? residual[i] : 0.0f, relu);
    }
  return f;
}

}  // namespace

TEST_CASE("cuda plan: batch-norm reduction splits cover every row once, from the shape alone") {
  const int64_t rows_list[] = {1, 2, 3, 63, 64, 65, 98, 1000, 6272, 25088, 200704, 802816, 3'000'017};
  const int64_t c_list[] = {1, 3, 17, 32, 33, 64, 256, 2048, 5000};
  for (int64_t rows : rows_list)
    for (int64_t c : c_list) {
      CAPTURE(rows);
      CAPTURE(c);
      const auto plan = kc::batch_norm_reduction_plan(rows, c);
      CHECK(plan.channel_tiles * kc::kBnChannelTile >= c);
      CHECK((plan.channel_tiles - 1) * kc::kBnChannelTile < c);
      CHECK(plan.splits >= 1);
      CHECK(plan.splits <= kc::kMaxGridY);
      CHECK(plan.splits * plan.rows_per_split >= rows);         // every row in a split
      CHECK((plan.splits - 1) * plan.rows_per_split < rows);    // no empty split
      // Enough blocks to fill the GPU when the rows allow it, and splits not too thin.
      const int64_t blocks = plan.splits * plan.channel_tiles;
      if (rows >= kc::kBnMinRowsPerSplit * kc::kBnTargetBlocks)
        CHECK(blocks >= kc::kBnTargetBlocks);
      if (plan.splits > 1) CHECK(plan.rows_per_split >= kc::kBnMinRowsPerSplit);
      CHECK(blocks <= kc::kBnTargetBlocks + plan.channel_tiles);
    }
  // ResNet-50 layer1 at batch 64: [200704, 256] -> 8 tiles x 128 splits of 1568 rows.
  const auto layer1 = kc::batch_norm_reduction_plan(64 * 56 * 56, 256);
  CHECK(layer1.channel_tiles == 8);
  CHECK(layer1.splits == 128);
  CHECK(layer1.rows_per_split == 1568);
  CHECK(kc::batch_norm_row_blocks(1) == 1);
  CHECK(kc::batch_norm_row_blocks(int64_t{1} << 40) == kc::kMaxGridY);
}

namespace {

// The workspace each batch-norm entry point lays out (kernels/cuda/batch_norm.cu), written out from
// the plan here rather than through batch_norm_math.h's layout table: partial sums
// [splits][quantities][c], then the per-channel arrays [c].
struct BnWorkspaces {
  size_t forward_train, forward_eval, backward, backward_eval;
};

BnWorkspaces bn_workspaces_from_plan(const k::BatchNormShape& s) {
  if (s.rows <= 0 || s.c <= 0) return {0, 0, 0, 0};
  const auto plan = kc::batch_norm_reduction_plan(s.rows, s.c);
  const size_t splits = static_cast<size_t>(plan.splits), c = static_cast<size_t>(s.c);
  const size_t f = sizeof(float);
  return {(splits * 2 + 2) * c * f,   // sums of d, d^2; mean_lo, scale
          c * f,                      // scale
          (splits * 3 + 4) * c * f,   // sums of d, dy*d, dy; dx coefficients k, a, b, delta
          (splits * 3 + 1) * c * f};  // sums of d, dy*d, dy; scale
}

BnWorkspaces bn_workspaces_queried(const k::BatchNormShape& s) {
  return {kc::batch_norm_forward_train_workspace_bytes(s),
          kc::batch_norm_forward_eval_workspace_bytes(s), kc::batch_norm_backward_workspace_bytes(s),
          kc::batch_norm_backward_eval_workspace_bytes(s)};
}

void check_bn_workspaces(const k::BatchNormShape& s) {
  CAPTURE(s.rows);
  CAPTURE(s.c);
  const BnWorkspaces want = bn_workspaces_from_plan(s), got = bn_workspaces_queried(s);
  CHECK(got.forward_train == want.forward_train);
  CHECK(got.forward_eval == want.forward_eval);
  CHECK(got.backward == want.backward);
  CHECK(got.backward_eval == want.backward_eval);
}

// ResNet-50's batch norms (torchvision, stride in the 3x3 conv): every (channels, spatial size).
constexpr int64_t kResNet50BatchNorms[][2] = {
    {64, 112}, {64, 56},  {256, 56}, {128, 56}, {128, 28}, {512, 28},
    {256, 28}, {256, 14}, {1024, 14}, {512, 14}, {512, 7},  {2048, 7}};

}  // namespace

TEST_CASE("cuda plan: batch-norm workspace queries are exactly what the launch plans lay out") {
  const int64_t rows_list[] = {0, 1, 2, 3, 63, 64, 65, 98, 1000, 6272, 25088, 200704, 802816, 3'000'017};
  const int64_t c_list[] = {0, 1, 3, 17, 32, 33, 64, 256, 2048, 5000};
  for (int64_t rows : rows_list)
    for (int64_t c : c_list) check_bn_workspaces({rows, c});
  // Empty shapes: the calls return before any launch and need nothing.
  CHECK(kc::batch_norm_backward_workspace_bytes({0, 64}) == 0);
  CHECK(kc::batch_norm_forward_train_workspace_bytes({6272, 0}) == 0);
  CHECK(kc::batch_norm_forward_eval_workspace_bytes({0, 7}) == 0);

  for (int64_t c : {int64_t{3}, int64_t{64}, int64_t{256}, int64_t{2048}}) {
    CAPTURE(c);
    const size_t cf = static_cast<size_t>(c) * sizeof(float);
    // Tiny shapes (under two splits' worth of rows): one split, the smallest workspace.
    for (int64_t rows : {int64_t{2}, int64_t{5}, int64_t{64}, int64_t{127}}) {
      CAPTURE(rows);
      CHECK(kc::batch_norm_forward_train_workspace_bytes({rows, c}) == 4 * cf);
      CHECK(kc::batch_norm_backward_workspace_bytes({rows, c}) == 7 * cf);
      CHECK(kc::batch_norm_backward_eval_workspace_bytes({rows, c}) == 4 * cf);
    }
    // The eval forward has no reduction: one scale per channel, whatever the rows.
    CHECK(kc::batch_norm_forward_eval_workspace_bytes({2, c}) == cf);
    CHECK(kc::batch_norm_forward_eval_workspace_bytes({3'000'017, c}) == cf);
    // It grows with the rows, one split per kBnMinRowsPerSplit rows, up to the split limit
    // (kBnTargetBlocks over the channel tiles)...
    const int64_t limit = kc::ceil_div(kc::kBnTargetBlocks, kc::ceil_div(c, kc::kBnChannelTile));
    for (int64_t splits = 1; splits <= limit; ++splits) {
      CAPTURE(splits);
      const k::BatchNormShape s{splits * kc::kBnMinRowsPerSplit, c};
      CHECK(kc::batch_norm_forward_train_workspace_bytes(s) == static_cast<size_t>(2 * splits + 2) * cf);
      CHECK(kc::batch_norm_backward_workspace_bytes(s) == static_cast<size_t>(3 * splits + 4) * cf);
    }
    // ...and never past it, at any row count: a caller can size once for the largest batch. (Not
    // monotonic one row at a time: ceil(rows / ceil(rows / splits)) may round one split away.)
    const size_t most_forward = static_cast<size_t>(2 * limit + 2) * cf;
    const size_t most_backward = static_cast<size_t>(3 * limit + 4) * cf;
    for (int64_t rows = 2; rows < 4'000'000; rows = rows * 5 / 4 + 1) {
      CAPTURE(rows);
      CHECK(kc::batch_norm_forward_train_workspace_bytes({rows, c}) <= most_forward);
      CHECK(kc::batch_norm_backward_workspace_bytes({rows, c}) <= most_backward);
    }
    CHECK(kc::batch_norm_forward_train_workspace_bytes({limit * 1000, c}) == most_forward);
    CHECK(kc::batch_norm_backward_workspace_bytes({limit * 1000, c}) == most_backward);
    CHECK(kc::batch_norm_backward_workspace_bytes({int64_t{1} << 40, c}) <= most_backward);
  }
}

TEST_CASE("cuda plan: batch-norm workspaces for every ResNet-50 layer at batch 2 and 64") {
  for (int64_t batch : {int64_t{2}, int64_t{64}}) {
    CAPTURE(batch);
    size_t most = 0;
    for (const auto& ch : kResNet50BatchNorms) {
      const k::BatchNormShape s{batch * ch[1] * ch[1], ch[0]};
      check_bn_workspaces(s);
      const BnWorkspaces w = bn_workspaces_queried(s);
      // The backward's is the largest: three sums a split against two, four coefficients.
      CHECK(w.backward >= w.forward_train);
      CHECK(w.backward >= w.backward_eval);
      CHECK(w.forward_train >= w.forward_eval);
      most = std::max(most, w.backward);
    }
    CHECK(most < (size_t{1} << 20));  // under 1 MiB, as kernels/batch_norm.h says
    if (batch == 64) CHECK(most == 425984);  // the 2048-channel layers: (16 x 3 + 4) x 2048 floats
  }
  // layer1 at batch 64: 128 splits (see the reduction plan test) of 2 sums, then mean_lo, scale.
  CHECK(kc::batch_norm_forward_train_workspace_bytes({64 * 56 * 56, 256}) == (128 * 2 + 2) * 256 * 4);
}

TEST_CASE("cuda plan: the loss workspace is one double per block plus the total") {
  CHECK(kc::loss_workspace_bytes(0) == 0);  // loss_forward rejects n <= 0 before any launch
  CHECK(kc::loss_workspace_bytes(-5) == 0);
  CHECK(kc::loss_workspace_bytes(1) == 2 * sizeof(double));
  CHECK(kc::loss_workspace_bytes(kc::kLossThreads * 16) == 2 * sizeof(double));
  CHECK(kc::loss_workspace_bytes(kc::kLossThreads * 16 + 1) == 3 * sizeof(double));
  CHECK(kc::loss_workspace_bytes(int64_t{1} << 40) == (kc::kLossMaxBlocks + 1) * sizeof(double));
  size_t previous = 0;
  for (int64_t n = 1; n < 100'000'000; n = n * 3 / 2 + 1) {
    CAPTURE(n);
    const size_t bytes = kc::loss_workspace_bytes(n);
    CHECK(bytes == static_cast<size_t>(kc::loss_blocks(n) + 1) * sizeof(double));
    CHECK(bytes >= previous);  // the block count only grows with n
    CHECK(bytes <= 2056);      // at most 257 doubles, as kernels/elementwise.h says
    previous = bytes;
  }
}

namespace {

std::string error_of(void (*f)(const void*, size_t), const void* workspace, size_t bytes) {
  try {
    f(workspace, bytes);
  } catch (const hotlap::Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("cuda plan: a workspace too small, null or misaligned is refused with op, shape and sizes") {
  auto check = [](const void* workspace, size_t bytes) {
    const k::BatchNormShape s{6272, 256};
    kc::check_workspace("cuda::batch_norm_backward", "batch_norm_backward_workspace_bytes", 1000,
                        workspace, bytes, "rows=", s.rows, " c=", s.c);
  };
  alignas(256) static unsigned char buffer[2048];
  CHECK(error_of(check, buffer, 1000) == "(no error)");
  CHECK(error_of(check, buffer, 2048) == "(no error)");

  const std::string small = error_of(check, buffer, 999);
  MESSAGE("too small: " << small);
  CHECK(contains(small, "cuda::batch_norm_backward"));
  CHECK(contains(small, "rows=6272 c=256"));
  CHECK(contains(small, "needs 1000 bytes, given 999"));
  CHECK(contains(small, "batch_norm_backward_workspace_bytes"));

  const std::string null = error_of(check, nullptr, 1000);
  CHECK(contains(null, "null"));
  CHECK(contains(null, "rows=6272 c=256"));
  CHECK(contains(null, "needs 1000 bytes"));

  const std::string misaligned = error_of(check, buffer + 4, 1000);
  MESSAGE("misaligned: " << misaligned);
  CHECK(contains(misaligned, "256-byte aligned"));
  CHECK(contains(misaligned, "rows=6272 c=256"));
  CHECK(contains(misaligned, "1000 bytes needed, given 1000"));
  CHECK(kc::kWorkspaceAlignment == 256);

  // Nothing needed (an empty shape): anything goes, null included.
  CHECK_NOTHROW(kc::check_workspace("op", "query", 0, nullptr, 0, "n=", 0));
  CHECK_NOTHROW(kc::check_workspace("op", "query", 0, buffer + 1, 0, "n=", 0));
}

TEST_CASE("cuda plan: element-wise grids and float4 eligibility") {
  CHECK(kc::elementwise_blocks(1) == 1);
  CHECK(kc::elementwise_blocks(256) == 1);
  CHECK(kc::elementwise_blocks(257) == 2);
  CHECK(kc::elementwise_blocks(int64_t{1} << 40) == kc::kMaxElementwiseBlocks);
  alignas(16) float buf[12] = {};
  CHECK(kc::float4_groups(11, {buf, buf + 4, nullptr}) == 2);
  CHECK(kc::float4_groups(11, {buf, buf + 1}) == 0);  // one misaligned operand: all scalar
  CHECK(kc::float4_groups(3, {buf}) == 0);
  CHECK(kc::loss_blocks(1) == 1);
  CHECK(kc::loss_blocks(int64_t{1} << 40) == kc::kLossMaxBlocks);
}

TEST_CASE("cuda emulated: batch-norm training forward with epilogues matches the CPU kernel") {
  const int64_t cases[][2] = {{2, 1}, {3, 3}, {1000, 3}, {333, 17}, {259, 33}, {2 * 28 * 28, 64},
                              {98, 2048}, {4099, 31}};
  uint64_t seed = 10;
  for (const auto& rc : cases)
    for (int epi = 0; epi < 4; ++epi) {
      const k::BatchNormShape s{rc[0], rc[1]};
      CAPTURE(s.rows);
      CAPTURE(s.c);
      CAPTURE(epi);
      const size_t n = static_cast<size_t>(s.rows * s.c), c = static_cast<size_t>(s.c);
      const auto x = random_floats(n, ++seed, 2.0f, 4.0f), res = random_floats(n, ++seed);
      const auto gamma = random_floats(c, ++seed, 0.5f, 1.5f), beta = random_floats(c, ++seed);
      const auto rm = random_floats(c, ++seed), rv = random_floats(c, ++seed, 0.5f, 2.0f);
      const bool residual = epi & 1, relu = epi & 2;
      BnForward want{std::vector<float>(n), std::vector<float>(c), std::vector<float>(c), rm, rv};
      cpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f,
                                   want.running_mean.data(), want.running_var.data(), want.y.data(),
                                   want.mean.data(), want.invstd.data(),
                                   {residual ? res.data() : nullptr, relu});
      const BnForward got = emulate_bn_forward_train(s, x, gamma, beta, 1e-5f, 0.1f, rm, rv,
                                                     residual ? res.data() : nullptr, relu);
      CHECK(max_rel_error(got.y, want.y) < 1e-5);
      CHECK(max_rel_error(got.mean, want.mean) < 1e-6);
      CHECK(max_rel_error(got.invstd, want.invstd) < 1e-4);
      CHECK(max_rel_error(got.running_mean, want.running_mean) < 1e-6);
      CHECK(max_rel_error(got.running_var, want.running_var) < 1e-4);
    }
}

TEST_CASE("cuda emulated: batch-norm backward (training and eval) matches the CPU kernel") {
  const int64_t cases[][2] = {{2, 1}, {1000, 3}, {333, 17}, {2 * 28 * 28, 64}, {98, 2048}};
  uint64_t seed = 20;
  for (const auto& rc : cases) {
    const k::BatchNormShape s{rc[0], rc[1]};
    CAPTURE(s.rows);
    CAPTURE(s.c);
    const size_t n = static_cast<size_t>(s.rows * s.c), c = static_cast<size_t>(s.c);
    const hotlap::test::BatchNormBackwardReference<> ref(s, seed);
    const auto& [x, dy, gamma, beta, mean, invstd, dg0, db0, dx, dgamma, dbeta] = ref;
    const auto plan = kc::batch_norm_reduction_plan(s.rows, s.c);
    const auto partial = emulate_channel_sums<true>(s, plan, x.data(), dy.data(), mean.data());
    std::vector<float> coef(4 * c), e_dx(n, NAN), e_dg = dg0, e_db = db0;
    for (int64_t j = 0; j < s.c; ++j)
      kc::batch_norm_finalize_backward_channel(j, s.rows, s.c, plan.splits, partial.data(),
                                              gamma.data(), invstd.data(), e_dg.data(),
                                              e_db.data(), coef.data());
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t j = 0; j < s.c; ++j) {
        const int64_t i = r * s.c + j;
        e_dx[i] = kc::batch_norm_dx_value(x[i], dy[i], mean[j], coef[j], coef[c + j],
                                         coef[2 * c + j], coef[3 * c + j]);
      }
    CHECK(max_rel_error(e_dx, dx) < 1e-4);
    CHECK(max_rel_error(e_dg, dgamma) < 1e-4);
    CHECK(max_rel_error(e_db, dbeta) < 1e-4);

    // Eval: sums around the running mean, dgamma/dbeta, and dx = dy * scale.
    const auto rm = random_floats(c, ++seed), rv = random_floats(c, ++seed, 0.1f, 2.0f);
    std::vector<float> vdx(n), vdg = dg0, vdb = db0;
    cpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma.data(), rm.data(), rv.data(), 1e-5f,
                                 vdx.data(), vdg.data(), vdb.data());
    const auto vpartial = emulate_channel_sums<true>(s, plan, x.data(), dy.data(), rm.data());
    std::vector<float> evdx(n, NAN), evdg = dg0, evdb = db0;
    for (int64_t j = 0; j < s.c; ++j)
      kc::batch_norm_finalize_backward_eval_channel(j, s.c, plan.splits, vpartial.data(), rv.data(),
                                                   1e-5f, evdg.data(), evdb.data());
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t j = 0; j < s.c; ++j)
        evdx[r * s.c + j] = dy[r * s.c + j] * kc::batch_norm_eval_scale(gamma[j], rv[j], 1e-5f);
    CHECK(same_bits(evdx, vdx));
    CHECK(max_rel_error(evdg, vdg) < 1e-4);
    CHECK(max_rel_error(evdb, vdb) < 1e-4);

    // Eval forward: the normalize pass with the running statistics and a single-float centre.
    std::vector<float> vy(n), evy(n);
    cpu::batch_norm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 1e-5f,
                                vy.data());
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t j = 0; j < s.c; ++j)
        evy[r * s.c + j] = kc::batch_norm_normalize_value(
            x[r * s.c + j], rm[j], 0.0f, kc::batch_norm_eval_scale(gamma[j], rv[j], 1e-5f), beta[j],
            false, 0.0f, false);
    CHECK(same_bits(evy, vy));
  }
}

namespace {

k::PoolShape pool_shape(int64_t n, int64_t h, int64_t w, int64_t c, int64_t wh, int64_t ww,
                        int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool ceil) {
  k::PoolShape s;
  s.n = n, s.h = h, s.w = w, s.c = c, s.window_h = wh, s.window_w = ww, s.stride_h = sh;
  s.stride_w = sw, s.pad_h = ph, s.pad_w = pw, s.ceil_mode = ceil;
  return s;
}

}  // namespace

TEST_CASE("cuda emulated: the pool window ranges match a brute-force search") {
  for (int64_t in = 1; in <= 12; ++in)
    for (int64_t window = 1; window <= 5; ++window)
      for (int64_t stride = 1; stride <= 3; ++stride)
        for (int64_t pad = 0; 2 * pad <= window; ++pad)
          for (bool ceil : {false, true}) {
            if (in + 2 * pad < window) continue;
            const int64_t out = k::PoolShape::out_size(in, pad, window, stride, ceil);
            for (int64_t i = 0; i < in; ++i) {
              int64_t first = out, last = -1;
              for (int64_t o = 0; o < out; ++o)
                if (o * stride - pad <= i && i < o * stride - pad + window) {
                  first = std::min(first, o);
                  last = std::max(last, o);
                }
              CAPTURE(in);
              CAPTURE(window);
              CAPTURE(stride);
              CAPTURE(pad);
              CAPTURE(ceil);
              CAPTURE(i);
              const int64_t f = kc::pool_first_window(i, pad, window, stride);
              const int64_t l = kc::pool_last_window(i, pad, stride, out);
              if (last < 0) {
                CHECK(f > l);
              } else {
                CHECK(f == first);
                CHECK(l == last);
              }
            }
          }
}

TEST_CASE("cuda emulated: max pool forward and gather backward are identical to the CPU's") {
  const k::PoolShape shapes[] = {
      pool_shape(2, 16, 16, 5, 3, 3, 2, 2, 1, 1, false), pool_shape(1, 7, 5, 3, 2, 2, 2, 2, 0, 0, true),
      pool_shape(2, 9, 9, 17, 3, 3, 2, 2, 1, 1, true),   pool_shape(1, 5, 6, 4, 3, 2, 1, 1, 1, 0, false),
      pool_shape(2, 8, 8, 3, 5, 5, 2, 3, 2, 1, false),   pool_shape(1, 1, 1, 2, 1, 1, 1, 1, 0, 0, false),
      pool_shape(1, 12, 11, 2, 3, 3, 2, 2, 0, 0, true),
  };
  uint64_t seed = 30;
  for (const k::PoolShape& s : shapes) {
    CAPTURE(s.h);
    CAPTURE(s.w);
    CAPTURE(s.window_h);
    CAPTURE(s.ceil_mode);
    const int64_t P = s.p(), Q = s.q();
    const size_t in = static_cast<size_t>(s.n * s.h * s.w * s.c);
    const size_t out = static_cast<size_t>(s.n * P * Q * s.c);
    auto x = random_floats(in, ++seed, -3.0f, 3.0f);
    for (float& v : x) v = std::round(v);  // ties
    x[in / 2] = NAN;
    std::vector<float> y(out), e_y(out, 1.0f);
    std::vector<int32_t> idx(out), e_idx(out, 12345);
    cpu::max_pool2d_forward(s, x.data(), y.data(), idx.data());
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q)
          for (int64_t j = 0; j < s.c; ++j)
            kc::max_pool_forward_element(s, P, Q, x.data(), n, p, q, j, e_y.data(), e_idx.data());
    CHECK(same_bits(e_y, y));
    CHECK(e_idx == idx);

    const auto dy = random_floats(out, ++seed);
    std::vector<float> dx(in), e_dx(in, NAN);
    cpu::max_pool2d_backward(s, dy.data(), idx.data(), dx.data());
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t ih = 0; ih < s.h; ++ih)
        for (int64_t iw = 0; iw < s.w; ++iw)
          for (int64_t j = 0; j < s.c; ++j)
            e_dx[((n * s.h + ih) * s.w + iw) * s.c + j] =
                kc::max_pool_backward_element(s, P, Q, dy.data(), idx.data(), n, ih, iw, j);
    CHECK(same_bits(e_dx, dx));
  }
}

TEST_CASE("cuda emulated: global average pool is identical to the CPU's") {
  const int64_t n = 3, hw = 49, c = 300;
  const auto x = random_floats(static_cast<size_t>(n * hw * c), 40);
  std::vector<float> y(n * c), e_y(n * c);
  cpu::global_avg_pool_forward(n, hw, c, x.data(), y.data());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t j = 0; j < c; ++j) e_y[b * c + j] = kc::global_avg_pool_element(hw, c, x.data(), b, j);
  CHECK(same_bits(e_y, y));
}

TEST_CASE("cuda emulated: loss terms and gradients match the CPU kernels") {
  const size_t n = 5001;
  const auto p = random_floats(n, 50), t = random_floats(n, 51);
  for (k::LossKind kind : {k::LossKind::mse, k::LossKind::l1, k::LossKind::smooth_l1})
    for (float beta : {0.0f, 0.3f}) {
      CAPTURE(static_cast<int>(kind));
      CAPTURE(beta);
      double sum = 0.0;
      for (size_t i = 0; i < n; ++i) sum += kc::loss_term(kind, p[i], t[i], beta);
      const double want = cpu::loss_forward(kind, n, p.data(), t.data(), beta);
      CHECK(std::abs(sum / n - want) <= 1e-12 * std::abs(want));
      std::vector<float> g(n), e_g(n);
      cpu::loss_backward(kind, n, p.data(), t.data(), beta, 0.7f, g.data());
      const double norm = 0.7 / static_cast<double>(n);
      const float kf = static_cast<float>(kind == k::LossKind::mse ? 2.0 * norm : norm);
      for (size_t i = 0; i < n; ++i) e_g[i] = kc::loss_grad(kind, p[i], t[i], beta, kf);
      CHECK(same_bits(e_g, g));
    }
  CHECK(std::isnan(hotlap::kernels::Relu::forward(NAN)));
  CHECK(hotlap::kernels::Relu::forward(-1.0f) == 0.0f);
}

// The CPU kernels run the same element functions (kernels/optim_math.h) in vectorised OpenMP loops:
// this checks that vectorising them changes no rounding, so the GPU's thread-per-element updates
// (the scalar functions, built without FMA contraction like the CPU's) give the CPU's bits.
TEST_CASE("cuda emulated: optimizer element updates are identical to the CPU kernels") {
  const size_t n = 4099;
  const auto p0 = random_floats(n, 60), g = random_floats(n, 61), m0 = random_floats(n, 62);
  const auto v0 = random_floats(n, 63, 0.0f, 1.0f);
  for (float momentum : {0.0f, 0.9f})
    for (bool nesterov : {false, true})
      for (bool first : {false, true}) {
        if (nesterov && momentum == 0.0f) continue;
        k::SgdArgs a;
        a.lr = 0.1f, a.momentum = momentum, a.weight_decay = 1e-4f, a.nesterov = nesterov;
        a.dampening = nesterov ? 0.0f : 0.1f, a.first_step = first;
        std::vector<float> p = p0, buf = m0, e_p = p0, e_buf = m0;
        cpu::sgd_update(a, n, p.data(), g.data(), buf.data());
        const k::SgdFactors f = k::sgd_factors(a);
        for (size_t i = 0; i < n; ++i)
          k::sgd_element(f, e_p.data(), g.data(), momentum == 0.0f ? nullptr : e_buf.data(), i);
        CHECK(same_bits(e_p, p));
        CHECK(same_bits(e_buf, buf));
      }
  for (float beta1 : {0.9f, 0.3f}) {
    k::AdamWArgs a;
    a.beta1 = beta1, a.step = 7;
    std::vector<float> p = p0, m = m0, v = v0, e_p = p0, e_m = m0, e_v = v0;
    cpu::adamw_update(a, n, p.data(), g.data(), m.data(), v.data());
    const k::AdamWFactors f = k::adamw_factors(a);
    for (size_t i = 0; i < n; ++i) k::adamw_element(f, e_p.data(), g.data(), e_m.data(), e_v.data(), i);
    CHECK(same_bits(e_p, p));
    CHECK(same_bits(e_m, m));
    CHECK(same_bits(e_v, v));
  }
}

TEST_CASE("cuda emulated: the bf16 bit conversion equals the CPU's on every class of input") {
  const uint32_t specials[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u,
                               0xFFC00001u, 0x7F800001u, 0x00000001u, 0x807FFFFFu, 0x3F808000u,
                               0x3F818000u, 0x7F7FFFFFu, 0x3F807FFFu, 0xFF7FFFFFu};
  for (uint32_t u : specials) {
    float f;
    std::memcpy(&f, &u, 4);
    CHECK(kc::f32_bits_to_bf16(u) == k::float_to_bf16(f).bits);
  }
  uint32_t u = 12345;
  for (int i = 0; i < 1'000'000; ++i) {  // a cheap walk over the bit patterns
    u = u * 1664525u + 1013904223u;
    float f;
    std::memcpy(&f, &u, 4);
    REQUIRE(kc::f32_bits_to_bf16(u) == k::float_to_bf16(f).bits);
  }
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const float f = k::bf16_to_float(bfloat16{static_cast<uint16_t>(b)});
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    REQUIRE(kc::bf16_to_f32_bits(static_cast<uint16_t>(b)) == bits);
  }
}

TEST_CASE("cuda API: without a device (or without CUDA) calls throw hotlap::Error, never crash") {
  if (k::cuda_device_count() > 0) {
    MESSAGE("a CUDA device is present: the no-device behaviour is not exercised here");
    return;
  }
  try {
    kc::device_allocate(1024);
    FAIL("device_allocate succeeded without a device");
  } catch (const hotlap::Error& e) {
    MESSAGE("device_allocate without a device: " << std::string(e.what()));
    CHECK(std::string(e.what()).find("device_allocate") != std::string::npos);
  }
  CHECK_THROWS_AS(kc::synchronize(), hotlap::Error);
  CHECK_THROWS_AS(kc::copy_host_to_device(nullptr, nullptr, 4), hotlap::Error);
  // Shape errors come first, and say what is wrong, with or without a device.
  float dummy = 0.0f;
  try {
    kc::batch_norm_forward_train({1, 4}, &dummy, &dummy, &dummy, 1e-5f, 0.1f, nullptr, nullptr,
                                &dummy, &dummy, &dummy, {}, nullptr, 0);
    FAIL("batch_norm_forward_train accepted a single row");
  } catch (const hotlap::Error& e) {
    const std::string what = e.what();
    CHECK((what.find("more than one value") != std::string::npos ||
           what.find("built without CUDA") != std::string::npos));
  }
  CHECK_THROWS_AS(kc::activation_forward<k::Relu>(int64_t{5}, &dummy, &dummy), hotlap::Error);
  CHECK_THROWS_AS(kc::loss_forward(k::LossKind::mse, 0, &dummy, &dummy, 0.0f, nullptr, 0),
                  hotlap::Error);
  // A missing workspace: the workspace check, or "built without CUDA"; either way an Error.
  CHECK_THROWS_AS(kc::batch_norm_backward({64, 4}, &dummy, &dummy, &dummy, &dummy, &dummy, &dummy,
                                         &dummy, &dummy, nullptr, 0),
                  hotlap::Error);
  CHECK_THROWS_AS(kc::loss_forward(k::LossKind::mse, 5, &dummy, &dummy, 0.0f, nullptr, 0),
                  hotlap::Error);
  // The workspace queries are host arithmetic: real numbers here too, device or not.
  CHECK(kc::batch_norm_backward_workspace_bytes({64, 4}) == (3 + 4) * 4 * sizeof(float));
  CHECK(kc::loss_workspace_bytes(5) == 2 * sizeof(double));
}
