// The cuDNN/cuBLAS backend against the CPU kernels on the same random inputs:
//  - convolution forward (with and without bias), backward-data, and backward-filter (dw and dbias
//    pre-filled, so the accumulation is checked) for every distinct ResNet-50 v1.5 convolution at
//    batch 2 and a few odd shapes, in strict fp32 (1e-4 relative) and TF32 (1e-2);
//  - determinism on request, the algorithm cache, the workspace contract;
//  - batch norm: training and eval forward with each epilogue, training and eval backward, on every
//    ResNet-50 batch-norm shape at batch 2 and odd ones, and at batch 64 (more rows than cuDNN's
//    legacy batch norm takes as N); NaN through the ReLU epilogue;
//  - GEMM with each transpose combination, padded leading dimensions, odd sizes, k = 0 and
//    alpha = 0 (C = beta * C); the linear layer.
// Outputs are poisoned with NaN before each GPU run (an element never written shows up), workspaces
// are exactly the queried size with a guard after them that must come back untouched.
//
// Without a CUDA device, or in a build without cuDNN, each case prints why and returns; ctest
// reports it as skipped ("CUDA test skipped:" in the output, see tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/device.h"

#ifdef HOTLAP_HAVE_CUDNN

#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/conv.h"
#include "kernels/conv_shapes.h"
#include "kernels/cuda_memory.h"
#include "kernels/cudnn.h"
#include "kernels/device_buffers.h"
#include "kernels/error.h"
#include "kernels/gemm.h"
#include "kernels/math_mode.h"
#include "test_util.h"

// Cases templated on the storage type are named "...<float>" and "...<bf16>".
TYPE_TO_STRING_AS("bf16", hotlap::kernels::bfloat16);

namespace k = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace cpu = hotlap::kernels::cpu;
namespace gpu = hotlap::kernels::cuda;
namespace dnn = hotlap::kernels::cudnn;
using hotlap::test::as_elements;
using hotlap::test::as_floats;
using hotlap::test::conv_shape;
using hotlap::test::max_rel_error;
using hotlap::test::poisoned;
using hotlap::test::random_floats;
using hotlap::test::Workspace;
using DeviceArray = hotlap::test::DeviceArray<float>;
using DeviceBf16 = hotlap::test::DeviceArray<bfloat16>;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sets the math mode and determinism for a scope.
struct Numerics {
  k::MathMode saved_mode = k::math_mode();
  bool saved_det = k::deterministic();
  Numerics(k::MathMode mode, bool det) {
    k::set_math_mode(mode);
    k::set_deterministic(det);
  }
  ~Numerics() {
    k::set_math_mode(saved_mode);
    k::set_deterministic(saved_det);
  }
};

double tolerance(k::MathMode mode) { return mode == k::MathMode::tf32 ? 1e-2 : 1e-4; }

std::vector<k::ConvShape> odd_conv_shapes() {
  return {
      k::ConvShape{1, 5, 7, 3, 5, 3, 3, 2, 2, 1, 1},  // C=3, K=5, stride 2 over odd H, W
      k::ConvShape{3, 1, 1, 3, 5, 1, 1, 1, 1, 0, 0},  // 1x1 spatial, 1x1 filter
      k::ConvShape{2, 1, 1, 7, 5, 3, 3, 1, 1, 1, 1},  // 1x1 spatial, 3x3 filter all padding
      k::ConvShape{2, 9, 6, 5, 3, 2, 4, 1, 2, 0, 1},  // rectangular filter, unequal strides/pads
      k::ConvShape{2, 11, 11, 1, 1, 5, 5, 3, 3, 2, 2},
  };
}

template <typename Fn>
void check_workspace_use(size_t bytes, Fn&& run) {
  Workspace ws(bytes);
  run(ws.get(), ws.bytes());
  CHECK(ws.guard_intact());
}

std::vector<float> scaled(std::vector<float> v, float factor) {
  for (float& x : v) x *= factor;
  return v;
}

float largest_magnitude(const std::vector<float>& v) {
  float m = 0.0f;
  for (float x : v) m = std::max(m, std::abs(x));
  return m;
}

// One shape, all three passes, in `modes`, against the CPU, for activations and weights stored as T
// (float: fp32 and tf32 modes; bfloat16: against the CPU's bf16 version, in bf16 mode).
template <typename T>
void check_conv_shape(const k::ConvShape& s, bool with_bias, uint64_t seed, std::initializer_list<k::MathMode> modes) {
  constexpr bool fp32 = std::is_same_v<T, float>;
  CAPTURE(hotlap::test::describe(s));
  CAPTURE(with_bias);
  const size_t nx = s.n * s.h * s.w * s.c, nw = s.k * s.r * s.s * s.c, ny = s.n * s.p() * s.q() * s.k;
  const std::vector<T> x = as_elements<T>(random_floats(nx, seed));
  const std::vector<T> w = as_elements<T>(random_floats(nw, seed + 1));
  const auto bias = random_floats(s.k, seed + 2);
  const std::vector<T> dy = as_elements<T>(random_floats(ny, seed + 3));

  std::vector<float> cpu_ws(static_cast<size_t>(cpu::conv2d_workspace_floats(s)) + 1);
  std::vector<T> y(ny), dx(nx);
  cpu::conv2d_forward(s, x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data(), cpu_ws.data());
  cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), cpu_ws.data());
  // The starting values of dw and dbias, which the backward adds to. bf16: sized like the gradient
  // itself, so that the sum's bf16-input error is not lost under a much larger start.
  std::vector<float> dw0 = random_floats(nw, seed + 4), db0 = random_floats(s.k, seed + 5);
  if constexpr (!fp32) {
    std::vector<float> grad_w(nw, 0.0f), grad_b(s.k, 0.0f);
    cpu::conv2d_backward_filter(s, x.data(), dy.data(), grad_w.data(), grad_b.data(), cpu_ws.data());
    dw0 = scaled(dw0, largest_magnitude(grad_w));
    db0 = scaled(db0, largest_magnitude(grad_b));
  }
  std::vector<float> dw = dw0, db = db0;
  cpu::conv2d_backward_filter(s, x.data(), dy.data(), dw.data(), with_bias ? db.data() : nullptr, cpu_ws.data());

  const auto workspace_bytes = [&](dnn::ConvPass pass) {
    return fp32 ? dnn::conv2d_workspace_bytes(s, pass) : dnn::conv2d_workspace_bytes_bf16(s, pass);
  };
  hotlap::test::DeviceArray<T> d_x(x), d_w(w), d_dy(dy);
  DeviceArray d_bias(bias);
  for (k::MathMode mode : modes) {
    const std::string mode_label = k::math_mode_name(mode);
    CAPTURE(mode_label);
    Numerics numerics(mode, false);
    const double tol = fp32 ? tolerance(mode) : 1e-2;

    auto d_y = hotlap::test::poisoned_as<T>(ny);
    check_workspace_use(workspace_bytes(dnn::ConvPass::forward), [&](void* p, size_t b) {
      dnn::conv2d_forward(s, d_x.get(), d_w.get(), with_bias ? d_bias.get() : nullptr, d_y.get(), p, b);
    });
    CHECK(max_rel_error(as_floats(d_y.download()), as_floats(y)) < tol);

    auto d_dx = hotlap::test::poisoned_as<T>(nx);
    check_workspace_use(workspace_bytes(dnn::ConvPass::backward_data), [&](void* p, size_t b) {
      dnn::conv2d_backward_data(s, d_dy.get(), d_w.get(), d_dx.get(), p, b);
    });
    CHECK(max_rel_error(as_floats(d_dx.download()), as_floats(dx)) < tol);

    DeviceArray d_dw(dw0), d_db(db0);
    check_workspace_use(workspace_bytes(dnn::ConvPass::backward_filter), [&](void* p, size_t b) {
      dnn::conv2d_backward_filter(s, d_x.get(), d_dy.get(), d_dw.get(), with_bias ? d_db.get() : nullptr, p, b);
    });
    CHECK(max_rel_error(d_dw.download(), dw) < tol);
    CHECK(max_rel_error(d_db.download(), with_bias ? db : db0) < tol);
  }
}

}  // namespace

TEST_CASE("cudnn conv: every ResNet-50 shape at batch 2, fp32 and tf32, against the CPU") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  MESSAGE(k::cuda_versions());
  uint64_t seed = 100;
  const auto shapes = hotlap::test::resnet50_conv_shapes(2);
  CHECK(shapes.size() == 23);
  for (const auto& s : shapes) {
    check_conv_shape<float>(s, /*with_bias=*/seed % 2 == 0, seed, {k::MathMode::fp32, k::MathMode::tf32});
    seed += 10;
  }
}

TEST_CASE("cudnn conv: odd shapes, with and without bias") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  uint64_t seed = 900;
  for (const auto& s : odd_conv_shapes()) {
    check_conv_shape<float>(s, true, seed, {k::MathMode::fp32});
    check_conv_shape<float>(s, false, seed + 5, {k::MathMode::fp32, k::MathMode::tf32});
    seed += 10;
  }
}

TEST_CASE("cudnn conv: the algorithm comes from cuDNN's timed search, or its heuristics under --deterministic") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const k::ConvShape s = conv_shape(8, 14, 14, 256, 256, 3, 3, 1, 1);
  for (k::MathMode mode : {k::MathMode::fp32, k::MathMode::tf32, k::MathMode::bf16}) {
    for (bool det : {false, true}) {
      Numerics numerics(mode, det);
      for (auto pass : {dnn::ConvPass::forward, dnn::ConvPass::backward_data, dnn::ConvPass::backward_filter}) {
        const dnn::ConvAlgoChoice c = mode == k::MathMode::bf16 ? dnn::conv2d_algorithm_bf16(s, pass)
                                                                : dnn::conv2d_algorithm(s, pass);
        const std::string mode_label = k::math_mode_name(mode), pass_label = dnn::conv_pass_name(pass);
        CAPTURE(mode_label);
        CAPTURE(det);
        CAPTURE(pass_label);
        MESSAGE(mode_label, det ? " deterministic " : " ", pass_label, ": algo ",
                c.algo, ", math type ", c.math_type, ", ", c.searched ? "searched, " : "heuristic, ", c.time_ms,
                " ms, workspace ", c.workspace_bytes);
        CHECK(c.searched == !det);  // the search found one to take (the heuristics are its fallback)
        CHECK((c.time_ms >= 0.0f) == c.searched);
        CHECK(c.workspace_bytes <= dnn::kConvWorkspaceCap);
        if (det) CHECK(c.deterministic);
      }
    }
  }
}

TEST_CASE("cudnn conv: deterministic mode, the algorithm cache and the workspace contract") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const k::ConvShape s = conv_shape(2, 28, 28, 128, 128, 3, 3, 1, 1);
  const size_t nx = s.n * s.h * s.w * s.c, nw = s.k * s.r * s.s * s.c, ny = s.n * s.p() * s.q() * s.k;
  DeviceArray d_x(random_floats(nx, 1)), d_dy(random_floats(ny, 2)), d_w(random_floats(nw, 3));
  {
    Numerics numerics(k::MathMode::fp32, true);
    for (auto pass : {dnn::ConvPass::forward, dnn::ConvPass::backward_data, dnn::ConvPass::backward_filter}) {
      const dnn::ConvAlgoChoice c = dnn::conv2d_algorithm(s, pass);
      const std::string pass_label = dnn::conv_pass_name(pass);
      CAPTURE(pass_label);
      MESSAGE(dnn::conv_pass_name(pass) << ": algo " << c.algo << ", math type " << c.math_type
                                        << ", workspace " << c.workspace_bytes);
      CHECK(c.deterministic);
      CHECK(c.workspace_bytes <= dnn::kConvWorkspaceCap);
    }
    const size_t bytes = dnn::conv2d_workspace_bytes(s, dnn::ConvPass::backward_filter);
    Workspace ws(bytes);
    std::vector<std::vector<float>> runs;
    for (int run = 0; run < 2; ++run) {
      DeviceArray d_dw(std::vector<float>(nw, 0.0f));
      dnn::conv2d_backward_filter(s, d_x.get(), d_dy.get(), d_dw.get(), nullptr, ws.get(), ws.bytes());
      runs.push_back(d_dw.download());
    }
    CHECK(std::memcmp(runs[0].data(), runs[1].data(), nw * sizeof(float)) == 0);
  }
  // Each (math mode, determinism) is its own cache entry; asking again adds nothing.
  const size_t before = dnn::conv2d_algorithm_cache_size();
  {
    Numerics numerics(k::MathMode::tf32, false);
    (void)dnn::conv2d_workspace_bytes(s, dnn::ConvPass::forward);
    (void)dnn::conv2d_workspace_bytes(s, dnn::ConvPass::forward);
  }
  {
    Numerics numerics(k::MathMode::fp32, true);
    (void)dnn::conv2d_workspace_bytes(s, dnn::ConvPass::forward);
  }
  CHECK(dnn::conv2d_algorithm_cache_size() <= before + 1);

  // A workspace smaller than the query's, or null, throws before any work.
  Numerics numerics(k::MathMode::fp32, false);
  for (auto pass : {dnn::ConvPass::forward, dnn::ConvPass::backward_data, dnn::ConvPass::backward_filter}) {
    const size_t bytes = dnn::conv2d_workspace_bytes(s, pass);
    if (bytes == 0) continue;
    Workspace ws(bytes);
    DeviceArray out = poisoned(std::max(nx, std::max(nw, ny)));
    auto call = [&](void* p, size_t b) {
      if (pass == dnn::ConvPass::forward)
        dnn::conv2d_forward(s, d_x.get(), d_w.get(), nullptr, out.get(), p, b);
      else if (pass == dnn::ConvPass::backward_data)
        dnn::conv2d_backward_data(s, d_dy.get(), d_w.get(), out.get(), p, b);
      else
        dnn::conv2d_backward_filter(s, d_x.get(), d_dy.get(), out.get(), nullptr, p, b);
    };
    CHECK_THROWS_WITH_AS(call(ws.get(), bytes - 1), doctest::Contains("conv2d_workspace_bytes"),
                         hotlap::Error);
    CHECK_THROWS_AS(call(nullptr, bytes), hotlap::Error);
  }
}

namespace {

struct BnCase {
  int64_t rows, c;
};

// Every ResNet-50 batch-norm shape at batch 2 (rows = 2*H*W), odd ones, and layer1's at batch 64:
// 200704 rows, which cuDNN's legacy batch norm refuses as N (kernels/cudnn.h: it gets 1 x H x W).
std::vector<BnCase> batch_norm_shapes() {
  return {{2 * 112 * 112, 64}, {2 * 56 * 56, 64}, {2 * 56 * 56, 256}, {2 * 56 * 56, 128},
          {2 * 28 * 28, 128},  {2 * 28 * 28, 512}, {2 * 28 * 28, 256}, {2 * 14 * 14, 256},
          {2 * 14 * 14, 1024}, {2 * 14 * 14, 512}, {2 * 7 * 7, 512},   {2 * 7 * 7, 2048},
          {3, 5},              {2, 1},             {7, 3},             {1000, 7},
          {64 * 56 * 56, 64}};
}

struct BnData {
  std::vector<float> x, gamma, beta, rm, rv, residual, dy, dgamma0, dbeta0;
  BnData(const k::BatchNormShape& s, uint64_t seed) {
    const size_t n = s.rows * s.c, c = s.c;
    x = random_floats(n, seed, -1.0f, 3.0f);  // off-centre, so the mean matters
    gamma = random_floats(c, seed + 1, 0.5f, 1.5f);
    beta = random_floats(c, seed + 2);
    rm = random_floats(c, seed + 3);
    rv = random_floats(c, seed + 4, 0.5f, 1.5f);
    residual = random_floats(n, seed + 5);
    dy = random_floats(n, seed + 6);
    dgamma0 = random_floats(c, seed + 7);
    dbeta0 = random_floats(c, seed + 8);
  }
};

// Whether cuDNN refuses bf16 batch norm on this machine (kernels/cudnn.h), asked once with each
// of the three bf16 calls on a small shape; then says so, and the case returns (ctest: skipped).
// nn's dispatch runs the hand-written bf16 kernels there instead (tests/nn/test_cuda_ops.cpp checks
// it). Any other failure propagates.
bool cudnn_refuses_bf16_batch_norm() {
  static const bool refused = [] {
    const k::BatchNormShape s{4, 2};
    DeviceBf16 x(hotlap::test::as_elements<bfloat16>({1, 2, 3, 4, 5, 6, 7, 8}));
    DeviceBf16 y = hotlap::test::poisoned_bf16(8);
    DeviceArray gamma(std::vector<float>(2, 1.0f)), beta(std::vector<float>(2, 0.0f)), mean = poisoned(2),
        invstd = poisoned(2), dgamma(std::vector<float>(2, 0.0f)), dbeta(std::vector<float>(2, 0.0f));
    try {
      dnn::batch_norm_forward_train(s, x.get(), gamma.get(), beta.get(), 1e-5f, 0.1f, nullptr, nullptr,
                                        y.get(), mean.get(), invstd.get(), {}, nullptr, 0);
      dnn::batch_norm_forward_eval(s, x.get(), gamma.get(), beta.get(), mean.get(), invstd.get(), 1e-5f,
                                       y.get(), {}, nullptr, 0);
      dnn::batch_norm_backward(s, x.get(), x.get(), gamma.get(), mean.get(), invstd.get(), y.get(),
                                   dgamma.get(), dbeta.get(), nullptr, 0);
    } catch (const hotlap::Error&) {
      if (!dnn::batch_norm_bf16_refused()) throw;
    }
    return dnn::batch_norm_bf16_refused();
  }();
  if (refused)
    MESSAGE("CUDA test skipped: cuDNN refuses bf16 batch norm on this machine; hotlap runs its "
            "hand-written bf16 kernels there instead");
  return refused;
}

}  // namespace

// The ReLU after the batch norm keeps a NaN a NaN, as the CPU's and torch.relu do (not max(v, 0),
// which makes it 0). In eval a NaN in x or in the residual spoils its own element; in training a
// NaN in x spoils its channel's statistics and so the whole channel.
// The batch-norm cases, once for each storage type T: fp32, and bf16 against the CPU's bf16 version
// (on a cuDNN that refuses bf16 batch norm the bf16 case says so and returns). bf16 outputs are a
// rounding to 8 bits apart at most, and their gradients' sums take bf16 inputs: looser bounds.
template <typename T>
struct BnBounds {
  static constexpr bool fp32 = std::is_same_v<T, float>;
  static constexpr double out = fp32 ? 1e-4 : 1e-2;      // y, dx
  static constexpr double params = fp32 ? 1e-4 : 1e-3;   // dgamma, dbeta
};

TEST_CASE_TEMPLATE("cudnn batch_norm: training and eval forward with every epilogue", T, float, bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  if (!BnBounds<T>::fp32 && cudnn_refuses_bf16_batch_norm()) return;
  Numerics numerics(BnBounds<T>::fp32 ? k::MathMode::fp32 : k::MathMode::bf16, false);
  const double tol = BnBounds<T>::out;
  const float eps = 1e-5f, momentum = 0.1f;
  uint64_t seed = BnBounds<T>::fp32 ? 2000 : 9500;
  for (const BnCase& bc : batch_norm_shapes()) {
    const k::BatchNormShape s{bc.rows, bc.c};
    CAPTURE(s.rows);
    CAPTURE(s.c);
    const BnData d(s, seed += 20);
    const size_t n = s.rows * s.c, c = s.c;
    const std::vector<T> x = as_elements<T>(d.x), res = as_elements<T>(d.residual);
    hotlap::test::DeviceArray<T> d_x(x), d_res(res);
    DeviceArray d_gamma(d.gamma), d_beta(d.beta);
    for (int variant = 0; variant < 4; ++variant) {
      const bool with_res = variant & 1, relu = variant & 2;
      CAPTURE(with_res);
      CAPTURE(relu);
      const k::BatchNormEpilogueOf<T> cpu_epi{with_res ? res.data() : nullptr, relu};
      const k::BatchNormEpilogueOf<T> gpu_epi{with_res ? d_res.get() : nullptr, relu};

      // Training.
      std::vector<T> y(n);
      std::vector<float> mean(c), invstd(c), rm = d.rm, rv = d.rv;
      cpu::batch_norm_forward_train(s, x.data(), d.gamma.data(), d.beta.data(), eps, momentum, rm.data(), rv.data(),
                                   y.data(), mean.data(), invstd.data(), cpu_epi);
      auto d_y = hotlap::test::poisoned_as<T>(n);
      DeviceArray d_mean = poisoned(c), d_inv = poisoned(c), d_rm(d.rm), d_rv(d.rv);
      check_workspace_use(dnn::batch_norm_forward_train_workspace_bytes(s), [&](void* p, size_t b) {
        dnn::batch_norm_forward_train(s, d_x.get(), d_gamma.get(), d_beta.get(), eps, momentum, d_rm.get(), d_rv.get(),
                                     d_y.get(), d_mean.get(), d_inv.get(), gpu_epi, p, b);
      });
      CHECK(max_rel_error(as_floats(d_y.download()), as_floats(y)) < tol);
      CHECK(max_rel_error(d_mean.download(), mean) < 1e-5);
      CHECK(max_rel_error(d_inv.download(), invstd) < 1e-4);
      CHECK(max_rel_error(d_rm.download(), rm) < 1e-5);
      CHECK(max_rel_error(d_rv.download(), rv) < 1e-4);  // the unbiased variance, as PyTorch

      // Eval.
      std::vector<T> ye(n);
      cpu::batch_norm_forward_eval(s, x.data(), d.gamma.data(), d.beta.data(), d.rm.data(), d.rv.data(), eps, ye.data(),
                                  cpu_epi);
      auto d_ye = hotlap::test::poisoned_as<T>(n);
      DeviceArray d_rm0(d.rm), d_rv0(d.rv);
      check_workspace_use(dnn::batch_norm_forward_eval_workspace_bytes(s), [&](void* p, size_t b) {
        dnn::batch_norm_forward_eval(s, d_x.get(), d_gamma.get(), d_beta.get(), d_rm0.get(), d_rv0.get(), eps,
                                    d_ye.get(), gpu_epi, p, b);
      });
      CHECK(max_rel_error(as_floats(d_ye.download()), as_floats(ye)) < tol);
    }
    // No running statistics at all.
    std::vector<T> y(n);
    std::vector<float> mean(c), invstd(c);
    cpu::batch_norm_forward_train(s, x.data(), d.gamma.data(), d.beta.data(), eps, momentum, nullptr, nullptr, y.data(),
                                 mean.data(), invstd.data());
    auto d_y = hotlap::test::poisoned_as<T>(n);
    DeviceArray d_mean = poisoned(c), d_inv = poisoned(c);
    dnn::batch_norm_forward_train(s, d_x.get(), d_gamma.get(), d_beta.get(), eps, momentum, nullptr, nullptr,
                                 d_y.get(), d_mean.get(), d_inv.get(), {}, nullptr, 0);
    CHECK(max_rel_error(as_floats(d_y.download()), as_floats(y)) < tol);
    CHECK(max_rel_error(d_mean.download(), mean) < 1e-5);
  }
}

TEST_CASE_TEMPLATE("cudnn batch_norm: training and eval backward accumulate the parameter gradients", T, float,
                   bfloat16) {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  if (!BnBounds<T>::fp32 && cudnn_refuses_bf16_batch_norm()) return;
  Numerics numerics(BnBounds<T>::fp32 ? k::MathMode::fp32 : k::MathMode::bf16, false);
  const double tol = BnBounds<T>::out, tol_params = BnBounds<T>::params;
  const float eps = 1e-5f;
  uint64_t seed = BnBounds<T>::fp32 ? 5000 : 9800;
  for (const BnCase& bc : batch_norm_shapes()) {
    const k::BatchNormShape s{bc.rows, bc.c};
    CAPTURE(s.rows);
    CAPTURE(s.c);
    const BnData d(s, seed += 20);
    const size_t n = s.rows * s.c, c = s.c;
    const std::vector<T> x = as_elements<T>(d.x), dy = as_elements<T>(d.dy);
    // The CPU's saved statistics feed both backward passes, so each is checked on its own.
    std::vector<T> y(n);
    std::vector<float> mean(c), invstd(c);
    cpu::batch_norm_forward_train(s, x.data(), d.gamma.data(), d.beta.data(), eps, 0.1f, nullptr, nullptr, y.data(),
                                 mean.data(), invstd.data());
    hotlap::test::DeviceArray<T> d_x(x), d_dy(dy);
    DeviceArray d_gamma(d.gamma), d_mean(mean), d_inv(invstd), d_rm(d.rm), d_rv(d.rv);

    std::vector<T> dx(n);
    std::vector<float> dg = d.dgamma0, db = d.dbeta0;
    cpu::batch_norm_backward(s, x.data(), dy.data(), d.gamma.data(), mean.data(), invstd.data(), dx.data(), dg.data(),
                            db.data());
    auto d_dx = hotlap::test::poisoned_as<T>(n);
    DeviceArray d_dg(d.dgamma0), d_db(d.dbeta0);
    check_workspace_use(dnn::batch_norm_backward_workspace_bytes(s), [&](void* p, size_t b) {
      dnn::batch_norm_backward(s, d_x.get(), d_dy.get(), d_gamma.get(), d_mean.get(), d_inv.get(), d_dx.get(),
                              d_dg.get(), d_db.get(), p, b);
    });
    // Against the size of dx's terms: with two rows per channel dx is ~1e-5 of them (test_util.h).
    CHECK(hotlap::test::max_rel_error_at_scale(as_floats(d_dx.download()), as_floats(dx),
                                               hotlap::test::batch_norm_dx_term_scale(d.gamma, invstd, as_floats(dy))) <
          tol);
    CHECK(max_rel_error(d_dg.download(), dg) < tol_params);
    CHECK(max_rel_error(d_db.download(), db) < tol_params);

    std::vector<T> dxe(n);
    std::vector<float> dge = d.dgamma0, dbe = d.dbeta0;
    cpu::batch_norm_backward_eval(s, x.data(), dy.data(), d.gamma.data(), d.rm.data(), d.rv.data(), eps, dxe.data(),
                                 dge.data(), dbe.data());
    auto d_dxe = hotlap::test::poisoned_as<T>(n);
    DeviceArray d_dge(d.dgamma0), d_dbe(d.dbeta0);
    check_workspace_use(dnn::batch_norm_backward_eval_workspace_bytes(s), [&](void* p, size_t b) {
      dnn::batch_norm_backward_eval(s, d_x.get(), d_dy.get(), d_gamma.get(), d_rm.get(), d_rv.get(), eps, d_dxe.get(),
                                   d_dge.get(), d_dbe.get(), p, b);
    });
    CHECK(max_rel_error(as_floats(d_dxe.download()), as_floats(dxe)) < tol);
    CHECK(max_rel_error(d_dge.download(), dge) < tol_params);
    CHECK(max_rel_error(d_dbe.download(), dbe) < tol_params);

    // dx alone (frozen parameters: no workspace needed), and the parameter gradients alone (a bf16 dy
    // is widened into the workspace for dbeta's sum).
    auto d_dx2 = hotlap::test::poisoned_as<T>(n);
    dnn::batch_norm_backward_eval(s, d_x.get(), d_dy.get(), d_gamma.get(), d_rm.get(), d_rv.get(), eps, d_dx2.get(),
                                 nullptr, nullptr, nullptr, 0);
    CHECK(max_rel_error(as_floats(d_dx2.download()), as_floats(dxe)) < tol);
    DeviceArray d_dg2(d.dgamma0), d_db2(d.dbeta0);
    Workspace ws(dnn::batch_norm_backward_eval_workspace_bytes(s));
    dnn::batch_norm_backward_eval(s, d_x.get(), d_dy.get(), d_gamma.get(), d_rm.get(), d_rv.get(), eps,
                                 static_cast<T*>(nullptr), d_dg2.get(), d_db2.get(), ws.get(), ws.bytes());
    CHECK(max_rel_error(d_dg2.download(), dge) < tol_params);
    CHECK(max_rel_error(d_db2.download(), dbe) < tol_params);
    CHECK(ws.guard_intact());
  }
}

TEST_CASE("cudnn batch_norm: NaN goes through the ReLU epilogue as on the CPU") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const k::BatchNormShape s{2 * 7 * 7, 8};
  const float eps = 1e-5f;
  BnData d(s, 4500);
  d.x[3] = kNaN;               // row 0, channel 3
  d.residual[s.c + 5] = kNaN;  // row 1, channel 5
  const size_t n = s.rows * s.c, c = s.c;
  DeviceArray d_x(d.x), d_gamma(d.gamma), d_beta(d.beta), d_res(d.residual), d_rm(d.rm), d_rv(d.rv);
  for (bool with_res : {false, true}) {
    CAPTURE(with_res);
    const k::BatchNormEpilogue cpu_epi{with_res ? d.residual.data() : nullptr, true};
    const k::BatchNormEpilogue gpu_epi{with_res ? d_res.get() : nullptr, true};
    std::vector<float> ye(n);
    cpu::batch_norm_forward_eval(s, d.x.data(), d.gamma.data(), d.beta.data(), d.rm.data(), d.rv.data(), eps,
                                ye.data(), cpu_epi);
    DeviceArray d_ye = poisoned(n);
    dnn::batch_norm_forward_eval(s, d_x.get(), d_gamma.get(), d_beta.get(), d_rm.get(), d_rv.get(), eps,
                                d_ye.get(), gpu_epi, nullptr, 0);
    const auto got = d_ye.download();
    CHECK(std::isnan(got[3]));
    CHECK(std::isnan(got[s.c + 5]) == with_res);
    CHECK(max_rel_error(got, ye) < 1e-4);  // NaN exactly where the CPU has one (test_util.h)

    std::vector<float> y(n), mean(c), invstd(c);
    cpu::batch_norm_forward_train(s, d.x.data(), d.gamma.data(), d.beta.data(), eps, 0.1f, nullptr, nullptr,
                                 y.data(), mean.data(), invstd.data(), cpu_epi);
    DeviceArray d_y = poisoned(n), d_mean = poisoned(c), d_inv = poisoned(c);
    dnn::batch_norm_forward_train(s, d_x.get(), d_gamma.get(), d_beta.get(), eps, 0.1f, nullptr, nullptr,
                                 d_y.get(), d_mean.get(), d_inv.get(), gpu_epi, nullptr, 0);
    const auto got_train = d_y.download();
    for (int64_t r = 0; r < s.rows; ++r) CHECK(std::isnan(got_train[r * s.c + 3]));
    CHECK(max_rel_error(got_train, y) < 1e-4);
  }
}

TEST_CASE("cudnn gemm: every transpose combination, padded strides, odd sizes, fp32 and tf32") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  struct Size {
    int64_t m, n, k, pad;
  };
  const Size sizes[] = {{1, 1, 1, 0},     {7, 5, 3, 2},     {33, 17, 65, 0},
                        {128, 96, 256, 0}, {257, 129, 71, 5}, {5, 3, 0, 1}};
  uint64_t seed = 7000;
  for (k::MathMode mode : {k::MathMode::fp32, k::MathMode::tf32}) {
    Numerics numerics(mode, false);
    for (const Size& z : sizes)
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (float beta : {0.0f, 0.5f}) {
            const std::string mode_label = k::math_mode_name(mode);
            CAPTURE(mode_label);
            CAPTURE(z.m);
            CAPTURE(z.n);
            CAPTURE(z.k);
            CAPTURE(ta);
            CAPTURE(tb);
            CAPTURE(beta);
            k::GemmArgs g;
            g.trans_a = ta;
            g.trans_b = tb;
            g.m = z.m;
            g.n = z.n;
            g.k = z.k;
            g.alpha = 0.75f;
            g.beta = beta;
            const int64_t a_rows = ta ? z.k : z.m, a_cols = ta ? z.m : z.k;
            const int64_t b_rows = tb ? z.n : z.k, b_cols = tb ? z.k : z.n;
            g.lda = a_cols + z.pad;
            g.ldb = b_cols + z.pad;
            g.ldc = z.n + z.pad;
            const auto a = random_floats(static_cast<size_t>(a_rows * g.lda), seed++);
            const auto b = random_floats(static_cast<size_t>(b_rows * g.ldb), seed++);
            // beta = 0: C starts as NaN and must not be read; padding must stay untouched.
            const auto c0 = beta == 0.0f ? std::vector<float>(z.m * g.ldc, kNaN)
                                         : random_floats(static_cast<size_t>(z.m * g.ldc), seed++);
            std::vector<float> want = c0;
            g.a = a.data();
            g.b = b.data();
            g.c = want.data();
            cpu::gemm(g);
            DeviceArray d_a(a), d_b(b), d_c(c0);
            g.a = d_a.get();
            g.b = d_b.get();
            g.c = d_c.get();
            dnn::gemm(g);
            const auto got = d_c.download();
            CHECK(max_rel_error(got, want) < tolerance(mode));
            if (z.pad > 0 && beta == 0.0f) CHECK(std::isnan(got[z.n]));  // row 0's padding
          }
  }
}

// k == 0 or alpha == 0: C = beta * C, and beta == 0 writes zeros without reading C (NaN in C must
// not survive), as the CPU gemm does; A and B are not read (null for k == 0, NaN for alpha == 0),
// and the padding after each row of C is never touched. The same bits as the CPU's.
TEST_CASE("cudnn gemm: k == 0 and alpha == 0 only scale C by beta, as the CPU gemm") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const int64_t m = 5, n = 3, ldc = n + 2;
  const std::vector<float> nan_ab(static_cast<size_t>(m * 7 + 7 * n), kNaN);
  DeviceArray d_ab(nan_ab);
  uint64_t seed = 7500;
  for (int64_t depth : {0, 7})
    for (float beta : {0.0f, 1.0f, 0.5f}) {
      CAPTURE(depth);
      CAPTURE(beta);
      k::GemmArgs g;
      g.m = m;
      g.n = n;
      g.k = depth;
      g.alpha = depth == 0 ? 0.75f : 0.0f;
      g.beta = beta;
      g.lda = depth;
      g.ldb = n;
      g.ldc = ldc;
      auto c0 = random_floats(static_cast<size_t>(m * ldc), seed++);
      for (int64_t i = 0; i < m; ++i) c0[i * ldc + n] = kNaN;  // padding: must stay as it is
      if (beta == 0.0f) c0[1] = kNaN;                           // must not leak into the result
      std::vector<float> want = c0;
      g.c = want.data();
      cpu::gemm(g);
      DeviceArray d_c(c0);
      g.a = depth == 0 ? nullptr : d_ab.get();
      g.b = depth == 0 ? nullptr : d_ab.get() + m * depth;
      g.c = d_c.get();
      dnn::gemm(g);
      const auto got = d_c.download();
      CHECK(hotlap::test::same_float_values(got, want));
      if (beta == 0.0f) CHECK(got[1] == 0.0f);
    }
}

TEST_CASE("cudnn linear: forward and backward against the CPU") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const k::LinearShape shapes[] = {{2, 2048, 1}, {5, 7, 3}, {16, 512, 10}};
  uint64_t seed = 8000;
  for (const auto& s : shapes) {
    CAPTURE(s.rows);
    CAPTURE(s.in);
    CAPTURE(s.out);
    const auto x = random_floats(s.rows * s.in, seed++), w = random_floats(s.out * s.in, seed++);
    const auto b = random_floats(s.out, seed++), dy = random_floats(s.rows * s.out, seed++);
    const auto dw0 = random_floats(s.out * s.in, seed++), db0 = random_floats(s.out, seed++);
    std::vector<float> y(s.rows * s.out), dx(s.rows * s.in), dw = dw0, db = db0;
    cpu::linear_forward(s, x.data(), w.data(), b.data(), y.data());
    cpu::linear_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    DeviceArray d_x(x), d_w(w), d_b(b), d_dy(dy), d_dw(dw0), d_db(db0);
    DeviceArray d_y = poisoned(y.size()), d_dx = poisoned(dx.size());
    dnn::linear_forward(s, d_x.get(), d_w.get(), d_b.get(), d_y.get());
    dnn::linear_backward(s, d_x.get(), d_w.get(), d_dy.get(), d_dx.get(), d_dw.get(), d_db.get());
    CHECK(max_rel_error(d_y.download(), y) < 1e-4);
    CHECK(max_rel_error(d_dx.download(), dx) < 1e-4);
    CHECK(max_rel_error(d_dw.download(), dw) < 1e-4);
    CHECK(max_rel_error(d_db.download(), db) < 1e-4);
  }
}

// ---- bf16 ------------------------------------------------------------------------------------------
// The *_bf16 entry points against the CPU's bf16 versions (kernels/cpu/bf16_emulation.h) on the same
// bf16 inputs, under MathMode::bf16 (how nn calls them). Tolerances:
//  - y, dx of the convolutions and batch norms: 1e-2 of the largest value. Both sides sum in fp32
//    (cuDNN in its own order, on bf16 tensor cores) and round to bf16 (2^-9 relative each); cuDNN
//    rounds y before the bias or the batch norm's epilogue and rounds again after it, so two bf16
//    roundings, still under 1% of the largest value. A wrong or unwritten element is off by O(1).
//  - dw: cuDNN writes the filter gradient in bf16 (one rounding, 2^-9) before it is widened and
//    added into the fp32 dw: 1e-2 too. dw and dbias start from values as large as the gradient
//    itself, so an implementation that overwrote them (or added twice) would be off by O(1): the
//    check covers the += contract.
//  - the batch-norm statistics and parameter gradients are fp32 sums of the same bf16 values as on
//    the CPU: the fp32 cases' bounds, except dgamma and dbeta at 1e-3 (cuDNN's bf16 backward may
//    form x-hat at bf16 precision before it sums).

namespace {

using Bf16 = std::vector<bfloat16>;


}  // namespace

TEST_CASE("cudnn bf16 conv: every ResNet-50 shape at batch 2 and odd shapes, against the CPU's bf16 version") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  uint64_t seed = 9100;
  const auto shapes = hotlap::test::resnet50_conv_shapes(2);
  CHECK(shapes.size() == 23);
  // A shape cuDNN refuses in bf16 (no algorithm for it) throws: reported, and the others still run.
  for (const auto& s : shapes) {
    CAPTURE(hotlap::test::describe(s));
    CHECK_NOTHROW(check_conv_shape<bfloat16>(s, /*with_bias=*/seed % 20 == 0, seed, {k::MathMode::bf16}));
    seed += 10;
  }
  for (const auto& s : odd_conv_shapes()) {
    CAPTURE(hotlap::test::describe(s));
    CHECK_NOTHROW(check_conv_shape<bfloat16>(s, true, seed, {k::MathMode::bf16}));
    CHECK_NOTHROW(check_conv_shape<bfloat16>(s, false, seed + 5, {k::MathMode::bf16}));
    seed += 10;
  }
}

#else  // !HOTLAP_HAVE_CUDNN

TEST_CASE("cudnn: the cuDNN/cuBLAS backend against the CPU") {
  MESSAGE("CUDA test skipped: built without the cuDNN/cuBLAS backend (" << hotlap::kernels::cuda_device_summary()
                                                                        << ")");
}

#endif  // HOTLAP_HAVE_CUDNN
