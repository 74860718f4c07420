// The nn layer on the GPU against the CPU: tensors moved and converted, every differentiable op
// forward and backward on ResNet-50's shapes (batch 2), for both GPU backends. (A whole ResNet-50
// training step: tests/resnet/test_cuda_resnet.cpp.)
//
// Without a CUDA device each case says why and returns (ctest: Skipped). What runs everywhere: the
// backend choice and the errors a cpu-only machine gives.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/conv_shapes.h"
#include "kernels/cudnn.h"
#include "kernels/device.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/caching_allocator.h"
#include "nn/runtime/dispatch.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/random.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::bf16_error;
using test::max_rel_error;
using test::random_floats;

Tensor random_tensor(const Shape& shape, uint64_t seed, Device device = Device::cpu) {
  return Tensor::from_vector(shape, random_floats(static_cast<size_t>(shape_numel(shape)), seed)).to(device);
}

using ErrorMeasure = double (*)(const std::vector<float>&, const std::vector<float>&);

// Runs `op` on the cpu and on the gpu with the same inputs (each input a leaf that requires a
// gradient), backpropagates the same random output gradient, and compares outputs and input
// gradients: error(gpu, cpu) < tolerance.
void check_op(const std::string& what, const std::vector<Shape>& shapes,
              const std::function<Tensor(const std::vector<Tensor>&)>& op, double tolerance,
              ErrorMeasure error = &max_rel_error<float, float>) {
  CAPTURE(what);
  std::vector<Tensor> on_cpu, on_gpu;
  for (size_t i = 0; i < shapes.size(); ++i) {
    on_cpu.push_back(random_tensor(shapes[i], 100 + i));
    on_gpu.push_back(on_cpu.back().to(Device::cuda));
    on_cpu.back().set_requires_grad();
    on_gpu.back().set_requires_grad();
  }
  // loss = mean((y - t)^2) with a random target: d loss / d y is a dense random gradient. One graph
  // at a time: a backward() frees the whole tape (nn/runtime/autograd.h).
  const Tensor y_cpu = op(on_cpu);
  const Tensor target = random_tensor(y_cpu.shape(), 7);
  ops::mse_loss(y_cpu, target).backward();
  const Tensor y_gpu = op(on_gpu);
  REQUIRE(y_gpu.device() == Device::cuda);
  REQUIRE(y_gpu.shape() == y_cpu.shape());
  CHECK(y_gpu.dtype() == y_cpu.dtype());
  CHECK(error(y_gpu.to_vector(), y_cpu.to_vector()) < tolerance);
  ops::mse_loss(y_gpu, target.to(Device::cuda)).backward();
  for (size_t i = 0; i < shapes.size(); ++i) {
    CAPTURE(i);
    REQUIRE(on_gpu[i].grad().defined());
    CHECK(on_gpu[i].grad().dtype() == DType::f32);  // fp32 leaves, fp32 gradients in every mode
    CHECK(error(on_gpu[i].grad().to_vector(), on_cpu[i].grad().to_vector()) < tolerance);
  }
}

struct BackendGuard {  // restores the process-wide backend choice and math mode
  dispatch::Backends saved = dispatch::backends();
  kernels::MathMode mode = kernels::math_mode();
  ~BackendGuard() {
    dispatch::set_backends(saved);
    kernels::set_math_mode(mode);
  }
};

}  // namespace

TEST_CASE("nn dispatch: backends parse, and cuda work on a cpu-only machine is one clear error") {
  CHECK(dispatch::parse_backend("--conv", "cudnn") == dispatch::Backend::cudnn);
  CHECK(dispatch::parse_backend("--conv", "native") == dispatch::Backend::native);
  CHECK_THROWS_WITH_AS(dispatch::parse_backend("HOTLAP_CONV", "fast"), doctest::Contains("HOTLAP_CONV"), Error);
  if (test::have_cuda_device()) return;
  CHECK_THROWS_AS(Tensor::empty({3}, DType::f32, Device::cuda), Error);
  CHECK_THROWS_AS(Tensor::full({3}, 1.0f).to(Device::cuda), Error);
  CHECK_THROWS_AS(Tensor::empty_pinned({3}), Error);
}

// The decision behind the bf16 batch norms under the cudnn backend (nn/runtime/dispatch.h), with stand-ins
// for the cuDNN call and the hand-written kernel: no GPU needed.
TEST_CASE("nn dispatch: bf16 batch norm falls back to the hand-written kernel once cuDNN refuses bf16") {
  namespace kdn = kernels::cudnn;
  const bool saved = kdn::batch_norm_bf16_refused();
  kdn::set_batch_norm_bf16_refused(false);
  int cudnn_calls = 0, native_calls = 0;
  const auto cudnn_runs = [&] { ++cudnn_calls; };
  const auto native = [&] { ++native_calls; };
  // cuDNN takes it: the hand-written kernel does not run.
  dispatch::run_batch_norm_bf16_on_cudnn_or_native(cudnn_runs, native);
  CHECK(cudnn_calls == 1);
  CHECK(native_calls == 0);
  // Any other failure is the caller's: it propagates, and nothing runs in its place.
  CHECK_THROWS_WITH_AS(dispatch::run_batch_norm_bf16_on_cudnn_or_native(
                           [&] {
                             ++cudnn_calls;
                             throw Error("cudnn::batch_norm_forward_train: cuDNN error 4000");
                           },
                           native),
                       doctest::Contains("4000"), Error);
  CHECK(native_calls == 0);
  CHECK_FALSE(kdn::batch_norm_bf16_refused());
  // cuDNN refuses: the refused call notes it, as kernels/cudnn/batch_norm.cpp does, and throws; the
  // hand-written kernel runs in its place (the notice goes to stderr, once) ...
  dispatch::run_batch_norm_bf16_on_cudnn_or_native(
      [&] {
        ++cudnn_calls;
        kdn::set_batch_norm_bf16_refused(true);
        throw Error("cudnn::batch_norm_forward_train: cuDNN error 3000 (CUDNN_STATUS_NOT_SUPPORTED)");
      },
      native);
  CHECK(cudnn_calls == 3);
  CHECK(native_calls == 1);
  // ... and so does every later call, without asking cuDNN again.
  dispatch::run_batch_norm_bf16_on_cudnn_or_native(cudnn_runs, native);
  CHECK(cudnn_calls == 3);
  CHECK(native_calls == 2);
  kdn::set_batch_norm_bf16_refused(saved);
}

TEST_CASE("cuda tensors: copies, zeros, fill, casts and in-place moves") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const Tensor host = random_tensor({3, 5, 7}, 1);
  const Tensor dev = host.to(Device::cuda);
  CHECK(dev.device() == Device::cuda);
  CHECK(dev.to_vector() == host.to_vector());
  CHECK(dev.clone().to_vector() == host.to_vector());
  CHECK(dev.to(DType::bf16).to(DType::f32).to_vector() == host.to(DType::bf16).to(DType::f32).to_vector());
  CHECK(Tensor::zeros({4, 4}, DType::f32, Device::cuda).to_vector() == std::vector<float>(16, 0.0f));
  Tensor filled = Tensor::empty({9}, DType::f32, Device::cuda);
  filled.fill_(2.5f);
  CHECK(filled.to_vector() == std::vector<float>(9, 2.5f));
  // Pinned host memory: the copy to the GPU is asynchronous; the values arrive all the same, and the
  // buffer can be dropped right after (its release waits for the copy).
  {
    Tensor pinned = Tensor::empty_pinned({3, 5, 7});
    pinned.copy_from(host);
    CHECK(pinned.is_pinned());
    const Tensor moved = pinned.to(Device::cuda);
    pinned = Tensor();
    CHECK(moved.to_vector() == host.to_vector());
  }
  // Released while its copy may still be running and handed out again at once (the pinned caching
  // allocator reuses the block): the release waited for that copy, so it delivered the old values.
  {
    const Tensor big = random_tensor({1 << 24}, 2);  // 64 MiB: a copy of a few milliseconds
    Tensor moved;
    {
      Tensor pinned = Tensor::empty_pinned(big.shape());
      pinned.copy_from(big);
      moved = pinned.to(Device::cuda);
    }
    Tensor reused = Tensor::empty_pinned(big.shape());
    reused.fill_(-1.0f);
    CHECK(moved.to_vector() == big.to_vector());
  }
  Tensor leaf = host.clone();
  Tensor alias = leaf;
  leaf.move_to_(Device::cuda);
  CHECK(alias.device() == Device::cuda);  // every handle sees the move
  CHECK(alias.to_vector() == host.to_vector());
}

TEST_CASE("cuda autograd: a reshape's gradient stays on the GPU, first and later contributions") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  Tensor x = random_tensor({2, 3, 4}, 5).to(Device::cuda);
  x.set_requires_grad();
  // x reaches the loss twice through reshapes: the second gradient is added onto the first.
  const Tensor target = Tensor::zeros({24}, DType::f32, Device::cuda);
  const Tensor loss = ops::add(ops::mse_loss(x.reshape({24}), target), ops::mse_loss(x.reshape({6, 4}), target));
  loss.backward();
  const std::vector<float> xs = x.to_vector(), grad = x.grad().to_vector();
  REQUIRE(x.grad().device() == Device::cuda);
  for (size_t i = 0; i < xs.size(); ++i) CHECK(grad[i] == doctest::Approx(2.0 * 2.0 * xs[i] / 24.0));
}

namespace {

// How the ops are checked in one math mode: what turns a leaf into an activation (as a
// convolution's output would be), and the error measure and tolerances.
struct ModeCheck {
  kernels::MathMode mode;
  std::function<Tensor(const Tensor&)> activation;
  ErrorMeasure conv_bn_error;
  double conv_bn_tolerance, avg_pool_tolerance, linear_tolerance;
};

// Every op of a ResNet under m.mode, on both backends where the backend matters (convolution and
// batch norm), the element-wise ops and pools once.
void check_resnet_ops(const ModeCheck& m) {
  BackendGuard guard;
  kernels::set_math_mode(m.mode);
  const std::string mode = std::string(kernels::math_mode_name(m.mode)) + " ";
  for (dispatch::Backend backend : {dispatch::Backend::native, dispatch::Backend::cudnn}) {
    const std::string backend_label = dispatch::backend_name(backend);
    CAPTURE(backend_label);
    dispatch::set_backends({backend, backend});
    for (const kernels::ConvShape& c : test::resnet50_conv_shapes(2)) {
      check_op(mode + "conv2d " + test::describe(c), {{c.n, c.h, c.w, c.c}, {c.k, c.r, c.s, c.c}},
               [&](const std::vector<Tensor>& t) { return ops::conv2d(t[0], t[1], Tensor(), c.stride_h, c.pad_h); },
               m.conv_bn_tolerance, m.conv_bn_error);
    }
    // A folded network's convolutions at inference: bias, residual and ReLU with nothing recorded (on
    // the cpu in the GEMM's store; on the gpu the convolution, then the add and ReLU kernels).
    for (const kernels::ConvShape& c : {test::conv_shape(2, 56, 56, 64, 256, 1, 1, 1, 0),
                                        test::conv_shape(2, 14, 14, 256, 256, 3, 3, 1, 1),
                                        test::conv_shape(2, 224, 224, 3, 64, 7, 7, 2, 3)})
      for (bool residual : {false, true}) {
        CAPTURE(test::describe(c));
        CAPTURE(residual);
        NoGradGuard no_grad;
        const Tensor x = random_tensor({c.n, c.h, c.w, c.c}, 1), w = random_tensor({c.k, c.r, c.s, c.c}, 2);
        const Tensor b = random_tensor({c.k}, 3), r = random_tensor({c.n, c.p(), c.q(), c.k}, 4);
        const Tensor res = residual ? r : Tensor(), res_gpu = residual ? r.to(Device::cuda) : Tensor();
        const Tensor y_cpu = ops::conv2d(x, w, b, c.stride_h, c.pad_h, res, true);
        const Tensor y_gpu = ops::conv2d(x.to(Device::cuda), w.to(Device::cuda), b.to(Device::cuda), c.stride_h,
                                         c.pad_h, res_gpu, true);
        REQUIRE(y_gpu.device() == Device::cuda);
        CHECK(m.conv_bn_error(y_gpu.to_vector(), y_cpu.to_vector()) < m.conv_bn_tolerance);
      }
    for (int64_t ch : {64, 256, 512, 2048}) {
      const int64_t hw = ch == 64 ? 56 : ch == 256 ? 56 : ch == 512 ? 28 : 7;
      for (bool residual : {false, true})
        for (bool relu : {false, true})
          for (bool training : {true, false}) {
            Tensor mean = Tensor::zeros({ch}), var = Tensor::full({ch}, 1.0f);
            check_op(mode + "batch_norm c" + std::to_string(ch) + (residual ? " +residual" : "") +
                         (relu ? " relu" : "") + (training ? " train" : " eval"),
                     residual ? std::vector<Shape>{{2, hw, hw, ch}, {ch}, {ch}, {2, hw, hw, ch}}
                              : std::vector<Shape>{{2, hw, hw, ch}, {ch}, {ch}},
                     [&](const std::vector<Tensor>& t) {
                       const Device d = t[0].device();
                       return ops::batch_norm(m.activation(t[0]), t[1], t[2], mean.to(d), var.to(d),
                                              {.training = training,
                                               .residual = residual ? m.activation(t[3]) : Tensor(),
                                               .relu = relu});
                     },
                     m.conv_bn_tolerance, m.conv_bn_error);
          }
    }
  }
  const auto& a = m.activation;
  check_op(mode + "relu", {{2, 56, 56, 64}}, [&](const std::vector<Tensor>& t) { return ops::relu(a(t[0])); }, 1e-6);
  check_op(mode + "add", {{2, 28, 28, 512}, {2, 28, 28, 512}},
           [&](const std::vector<Tensor>& t) { return ops::add(a(t[0]), a(t[1])); }, 1e-6);
  check_op(mode + "add_relu", {{2, 14, 14, 1024}, {2, 14, 14, 1024}},
           [&](const std::vector<Tensor>& t) { return ops::add_relu(a(t[0]), a(t[1])); }, 1e-6);
  check_op(mode + "max_pool2d", {{2, 112, 112, 64}},
           [&](const std::vector<Tensor>& t) { return ops::max_pool2d(a(t[0]), 3, 2, 1, false); }, 1e-6);
  check_op(mode + "global_avg_pool", {{2, 7, 7, 2048}},
           [&](const std::vector<Tensor>& t) { return ops::global_avg_pool(a(t[0])); }, m.avg_pool_tolerance);
  check_op(mode + "linear", {{2, 2048}, {1, 2048}, {1}},
           [&](const std::vector<Tensor>& t) { return ops::linear(a(t[0]), t[1], t[2]); }, m.linear_tolerance);
}

}  // namespace

TEST_CASE("cuda ops: every op of a ResNet matches the cpu, forward and backward, both backends") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  check_resnet_ops({kernels::MathMode::fp32, [](const Tensor& t) { return t; }, &max_rel_error<float, float>, 1e-3,
                    1e-5, 1e-4});
}

// bf16 compute: the same ops under MathMode::bf16 on the gpu (hand-written bf16 kernels or cuDNN's
// bf16 paths) against the cpu's bf16 emulation, from the same fp32 leaves (each cast to bf16 the
// same way on both: the casts are identical to the bit). Every activation op gets a bf16 input, as
// behind a bf16 convolution in a ResNet; conv2d casts its own input and weight.
//   - relu, add, add_relu, the pools: the bf16 kernels do the cpu's fp32 arithmetic and round once,
//     so outputs and gradients are identical (1e-6 as in fp32).
//   - conv2d, batch_norm: fp32 sums in another order, each bf16 result a bf16 step (2^-8) apart at
//     most, and the output gradient is rounded to bf16 from slightly different outputs; a value
//     within rounding of a ReLU's kink may fall on the other side on the gpu. So the bf16 tests'
//     measure and tolerance (tests/nn/test_bf16_ops.cpp): 2e-2 of the largest value, the largest
//     2% of the element errors left out.
//   - linear: fp32 on bf16 inputs, then the input gradient rounded to bf16 by the cast: 1e-2.
TEST_CASE("cuda ops bf16: every op of a ResNet under MathMode::bf16 matches the cpu, forward and backward, "
          "both backends") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  check_resnet_ops({kernels::MathMode::bf16, [](const Tensor& t) { return ops::cast(t, DType::bf16); }, &bf16_error,
                    2e-2, 1e-6, 1e-2});
}

// Where cuDNN refuses bf16 batch norm (here: told so), the cudnn backend's bf16 batch norms run the
// hand-written kernels: forward, backward and running statistics are the native backend's to the bit
// (those kernels are deterministic). Where cuDNN takes bf16, the case above checks its results.
TEST_CASE("cuda ops bf16: batch norm on the cudnn backend runs the hand-written kernels once cuDNN refuses bf16") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  namespace kdn = kernels::cudnn;
  BackendGuard guard;
  kernels::set_math_mode(kernels::MathMode::bf16);
  const bool saved = kdn::batch_norm_bf16_refused();
  const auto run = [](dispatch::Backend backend) {
    dispatch::set_backends({dispatch::Backend::native, backend});
    Tensor x = random_tensor({2, 14, 14, 256}, 21, Device::cuda), gamma = random_tensor({256}, 22, Device::cuda);
    Tensor beta = random_tensor({256}, 23, Device::cuda), res = random_tensor({2, 14, 14, 256}, 24, Device::cuda);
    Tensor mean = Tensor::zeros({256}, DType::f32, Device::cuda), var = Tensor::full({256}, 1.0f).to(Device::cuda);
    for (Tensor* t : {&x, &gamma, &beta, &res}) t->set_requires_grad();
    const Tensor y = ops::batch_norm(ops::cast(x, DType::bf16), gamma, beta, mean, var,
                                     {.training = true, .residual = ops::cast(res, DType::bf16), .relu = true});
    ops::mse_loss(y, random_tensor(y.shape(), 25, Device::cuda)).backward();
    return std::vector<std::vector<float>>{y.to_vector(),          x.grad().to_vector(),   gamma.grad().to_vector(),
                                           beta.grad().to_vector(), res.grad().to_vector(), mean.to_vector(),
                                           var.to_vector()};
  };
  const auto native = run(dispatch::Backend::native);
  kdn::set_batch_norm_bf16_refused(true);
  const auto fallen_back = run(dispatch::Backend::cudnn);
  kdn::set_batch_norm_bf16_refused(saved);
  REQUIRE(fallen_back.size() == native.size());
  for (size_t i = 0; i < native.size(); ++i) {
    CAPTURE(i);
    CHECK(fallen_back[i] == native[i]);
  }
}

}  // namespace hotlap
