#include "nn/ops.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/pool.h"
#include "kernels/profile.h"
#include "nn/dispatch.h"

namespace hotlap::ops {

namespace kc = kernels::cpu;
using kernels::ProfileScope;  // HOTLAP_PROFILE=1: wall time per op, forward and backward

namespace {

// The kernels take f32, contiguous tensors, all on one device: the device of the op's first input
// (`device`). Checked once per op input.
void check_input(const char* op, const char* what, const Tensor& t, int64_t ndim, Device device = Device::cpu) {
  HOTLAP_CHECK(t.defined(), op, ": ", what, " is undefined");
  HOTLAP_CHECK(t.device() == device, op, ": ", what, " is on ", device_name(t.device()), " but the op runs on ",
               device_name(device), " (move every input with .to(Device::", device_name(device), "))");
  HOTLAP_CHECK(t.dtype() == DType::f32, op, ": ", what, " is ", t.describe(), "; compute needs f32");
  HOTLAP_CHECK(ndim < 0 || t.ndim() == ndim, op, ": ", what, " must have ", ndim, " dimensions, got ",
               t.describe());
}

// The gradient buffer a `+=` kernel writes for `t`: t's own gradient when it needs one, otherwise
// zeroed scratch (kernels that compute several gradients at once write all of them).
float* accumulator_or_scratch(const Tensor& t, Tensor& scratch_tensor) {
  if (t.requires_grad()) return Autograd::grad_accumulator(t);
  scratch_tensor = Tensor::zeros(t.shape(), DType::f32, t.device());
  return scratch_tensor.f32();
}

// A weight's first dimension counts the outputs; a bias, when given, has one value per output.
void check_bias(const char* op, const Tensor& weight, const Tensor& bias) {
  if (!bias.defined()) return;
  check_input(op, "bias", bias, 1, weight.device());
  HOTLAP_CHECK(bias.dim(0) == weight.dim(0), op, ": bias ", bias.describe(), " for ", weight.dim(0),
               " outputs");
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding) {
  ProfileScope scope("conv2d.forward");
  check_input("conv2d", "input", x, 4, x.defined() ? x.device() : Device::cpu);
  const Device dev = x.device();
  check_input("conv2d", "weight", weight, 4, dev);
  HOTLAP_CHECK(weight.dim(3) == x.dim(3), "conv2d: input ", x.describe(), " has ", x.dim(3),
               " channels but weight ", weight.describe(), " (OHWI) expects ", weight.dim(3));
  check_bias("conv2d", weight, bias);
  kernels::ConvShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), weight.dim(0), weight.dim(1),
                       weight.dim(2), stride, stride, padding, padding};
  HOTLAP_CHECK(stride >= 1 && padding >= 0 && s.p() >= 1 && s.q() >= 1, "conv2d: input ",
               x.describe(), " with a ", s.r, "x", s.s, " filter, stride ", stride, ", padding ",
               padding, " gives no output");
  Tensor y = Tensor::empty({s.n, s.p(), s.q(), s.k}, DType::f32, dev);
  dispatch::conv2d_forward(dev, s, x.f32(), weight.f32(), bias.defined() ? bias.f32() : nullptr, y.f32());
  Autograd::record("conv2d", {x, weight, bias}, y, [x, weight, bias, s, dev](const Tensor& g) {
    if (x.requires_grad()) {
      ProfileScope scope("conv2d.backward_data");
      GradSink dx(x);
      dispatch::conv2d_backward_data(dev, s, g.f32(), weight.f32(), dx.data());
      dx.commit();
    }
    if (weight.requires_grad() || (bias.defined() && bias.requires_grad())) {
      ProfileScope scope("conv2d.backward_filter");
      Tensor dw_scratch;
      float* dw = accumulator_or_scratch(weight, dw_scratch);
      float* db = bias.defined() && bias.requires_grad() ? Autograd::grad_accumulator(bias) : nullptr;
      dispatch::conv2d_backward_filter(dev, s, x.f32(), g.f32(), dw, db);
    }
  });
  return y;
}

Tensor batch_norm(Tensor x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool training, float momentum, float eps, const Tensor& residual,
                  bool relu) {
  ProfileScope scope("batch_norm.forward");
  check_input("batch_norm", "input", x, -1, x.defined() ? x.device() : Device::cpu);
  const Device dev = x.device();
  const int64_t c = x.dim(-1);
  for (const Tensor* t : {&gamma, &beta}) {
    check_input("batch_norm", "affine parameter", *t, 1, dev);
    HOTLAP_CHECK(t->dim(0) == c, "batch_norm: parameter ", t->describe(), " for ", c, " channels");
  }
  for (const Tensor* t : {&running_mean, &running_var}) {
    if (!t->defined()) continue;
    check_input("batch_norm", "running statistic", *t, 1, dev);
    HOTLAP_CHECK(t->dim(0) == c, "batch_norm: running statistic ", t->describe(), " for ", c,
                 " channels");
  }
  if (residual.defined()) {
    check_input("batch_norm", "residual", residual, -1, dev);
    HOTLAP_CHECK(residual.shape() == x.shape(), "batch_norm: residual ", residual.describe(),
                 " for input ", x.describe());
  }
  HOTLAP_CHECK(training || (running_mean.defined() && running_var.defined()),
               "batch_norm: eval mode needs running statistics");
  kernels::BatchNormShape s{x.numel() / std::max<int64_t>(c, 1), c};
  const kernels::BatchNormEpilogue epilogue{residual.defined() ? residual.f32() : nullptr, relu};
  // Eval on the CPU with nothing to record, and x handed over by its only owner (std::move): the
  // result overwrites x. An inference pass then streams each activation in and out once, and
  // allocates (and page-faults in) no second buffer per batch norm: bench/NOTES.md.
  const bool records = Autograd::grad_enabled() &&
                       (x.requires_grad() || gamma.requires_grad() || beta.requires_grad() ||
                        (residual.defined() && residual.requires_grad()));
  const bool in_place = !training && !records && dev == Device::cpu && x.is_sole_owner();
  Tensor y = in_place ? x : Tensor::empty(x.shape(), DType::f32, dev);
  Tensor save_mean, save_invstd;
  if (training) {
    save_mean = Tensor::empty({c}, DType::f32, dev);
    save_invstd = Tensor::empty({c}, DType::f32, dev);
    dispatch::batchnorm_forward_train(dev, s, x.f32(), gamma.f32(), beta.f32(), eps, momentum,
                                running_mean.defined() ? running_mean.f32() : nullptr,
                                running_var.defined() ? running_var.f32() : nullptr, y.f32(),
                                save_mean.f32(), save_invstd.f32(), epilogue);
  } else {
    dispatch::batchnorm_forward_eval(dev, s, x.f32(), gamma.f32(), beta.f32(), running_mean.f32(),
                               running_var.f32(), eps, y.f32(), epilogue);
  }
  // The backward needs x, the statistics, and (for the ReLU mask) the final output only: the batch
  // norm's own output before the epilogue is never kept.
  const Tensor y_saved = y.detach();
  Autograd::record("batch_norm", {x, gamma, beta, residual}, y,
                   [=](const Tensor& g) {
    ProfileScope scope("batch_norm.backward");
    // g_bn: the gradient at the batch norm's output = at the residual: g through the ReLU mask.
    // It is written straight into the residual's gradient when that needs one.
    const float* g_bn = g.f32();
    Tensor masked;
    std::unique_ptr<GradSink> dres;
    if (residual.defined() && residual.requires_grad()) dres = std::make_unique<GradSink>(residual);
    if (relu || dres) {
      float* out = dres ? dres->data() : (masked = Tensor::empty(y_saved.shape(), DType::f32, dev)).f32();
      if (relu)
        dispatch::relu_backward(dev, g.numel(), y_saved.f32(), g.f32(), out);
      else
        dispatch::copy(dev, g.numel(), g.f32(), out);
      g_bn = out;
    }
    std::unique_ptr<GradSink> dx;
    if (x.requires_grad()) dx = std::make_unique<GradSink>(x);
    if (training) {
      // The kernel computes all three gradients together; parts nobody needs go to scratch.
      Tensor dx_scratch, dgamma_scratch, dbeta_scratch;
      float* dxp = dx ? dx->data() : (dx_scratch = Tensor::empty(x.shape(), DType::f32, dev)).f32();
      float* dg = accumulator_or_scratch(gamma, dgamma_scratch);
      float* db = accumulator_or_scratch(beta, dbeta_scratch);
      dispatch::batchnorm_backward(dev, s, x.f32(), g_bn, gamma.f32(), save_mean.f32(), save_invstd.f32(), dxp, dg, db);
    } else {
      float* dg = gamma.requires_grad() ? Autograd::grad_accumulator(gamma) : nullptr;
      float* db = beta.requires_grad() ? Autograd::grad_accumulator(beta) : nullptr;
      dispatch::batchnorm_backward_eval(dev, s, x.f32(), g_bn, gamma.f32(), running_mean.f32(), running_var.f32(), eps,
                                  dx ? dx->data() : nullptr, dg, db);
    }
    if (dx) dx->commit();
    if (dres) dres->commit();
  });
  return y;
}

Tensor relu(const Tensor& x) {
  ProfileScope scope("relu.forward");
  check_input("relu", "input", x, -1, x.defined() ? x.device() : Device::cpu);
  const Device dev = x.device();
  Tensor y = Tensor::empty(x.shape(), DType::f32, dev);
  dispatch::relu_forward(dev, x.numel(), x.f32(), y.f32());
  Tensor y_saved = y.detach();  // the backward needs only the output's sign
  Autograd::record("relu", {x}, y, [x, y_saved, dev](const Tensor& g) {
    ProfileScope scope("relu.backward");
    GradSink dx(x);
    dispatch::relu_backward(dev, x.numel(), y_saved.f32(), g.f32(), dx.data());
    dx.commit();
  });
  return y;
}

static void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  check_input(op, "first operand", a, -1, a.defined() ? a.device() : Device::cpu);
  check_input(op, "second operand", b, -1, a.device());
  HOTLAP_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.describe(), " and ", b.describe());
}

// Passes g on to both operands of a sum (through the relu mask when `mask` is defined). The masked
// gradient is computed once, into the first operand's gradient when it needs one.
static void add_backward(const Tensor& a, const Tensor& b, const Tensor& g, const Tensor& mask) {
  const Device dev = g.device();
  const float* grad = g.f32();
  Tensor masked;
  if (mask.defined()) {
    masked = Tensor::empty(g.shape(), DType::f32, dev);
    dispatch::relu_backward(dev, g.numel(), mask.f32(), g.f32(), masked.f32());
    grad = masked.f32();
  }
  for (const Tensor* t : {&a, &b}) {
    if (!t->requires_grad()) continue;
    GradSink d(*t);
    dispatch::copy(dev, g.numel(), grad, d.data());
    d.commit();
  }
}

Tensor add(const Tensor& a, const Tensor& b) {
  ProfileScope scope("add.forward");
  check_same_shape("add", a, b);
  Tensor y = Tensor::empty(a.shape(), DType::f32, a.device());
  dispatch::add(a.device(), a.numel(), a.f32(), b.f32(), y.f32());
  Autograd::record("add", {a, b}, y, [a, b](const Tensor& g) {
    ProfileScope scope("add.backward");
    add_backward(a, b, g, Tensor());
  });
  return y;
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  ProfileScope scope("add_relu.forward");
  check_same_shape("add_relu", a, b);
  Tensor y = Tensor::empty(a.shape(), DType::f32, a.device());
  dispatch::add_relu_forward(a.device(), a.numel(), a.f32(), b.f32(), y.f32());
  Tensor y_saved = y.detach();
  Autograd::record("add_relu", {a, b}, y,
                   [a, b, y_saved](const Tensor& g) {
                     ProfileScope scope("add_relu.backward");
                     add_backward(a, b, g, y_saved);
                   });
  return y;
}

Tensor max_pool2d(const Tensor& x, int64_t window, int64_t stride, int64_t padding, bool ceil_mode) {
  ProfileScope scope("max_pool2d.forward");
  check_input("max_pool2d", "input", x, 4, x.defined() ? x.device() : Device::cpu);
  const Device dev = x.device();
  kernels::PoolShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), window, window, stride, stride,
                       padding, padding, ceil_mode};
  HOTLAP_CHECK(window >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= window && s.p() >= 1 &&
                   s.q() >= 1,
               "max_pool2d: input ", x.describe(), " with window ", window, ", stride ", stride,
               ", padding ", padding, " gives no output (padding may be at most half the window)");
  Tensor y = Tensor::empty({s.n, s.p(), s.q(), s.c}, DType::f32, dev);
  // The argmax of each window, int32, on the op's device. Tensors hold floats, so the indices live
  // in an f32 tensor of the same element size, read through an int32 pointer.
  static_assert(sizeof(int32_t) == sizeof(float));
  const Tensor indices = Tensor::empty(y.shape(), DType::f32, dev);
  auto* index_data = static_cast<int32_t*>(indices.raw());
  dispatch::maxpool2d_forward(dev, s, x.f32(), y.f32(), index_data);
  Autograd::record("max_pool2d", {x}, y, [x, s, indices, dev](const Tensor& g) {
    ProfileScope scope("max_pool2d.backward");
    GradSink dx(x);
    dispatch::maxpool2d_backward(dev, s, g.f32(), static_cast<const int32_t*>(indices.raw()), dx.data());
    dx.commit();
  });
  return y;
}

Tensor global_avg_pool(const Tensor& x) {
  ProfileScope scope("global_avg_pool.forward");
  check_input("global_avg_pool", "input", x, 4, x.defined() ? x.device() : Device::cpu);
  const Device dev = x.device();
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  HOTLAP_CHECK(hw > 0, "global_avg_pool: empty spatial size in ", x.describe());
  Tensor y = Tensor::empty({n, c}, DType::f32, dev);
  dispatch::global_avgpool_forward(dev, n, hw, c, x.f32(), y.f32());
  Autograd::record("global_avg_pool", {x}, y, [x, n, hw, c, dev](const Tensor& g) {
    ProfileScope scope("global_avg_pool.backward");
    GradSink dx(x);
    dispatch::global_avgpool_backward(dev, n, hw, c, g.f32(), dx.data());
    dx.commit();
  });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  ProfileScope scope("linear.forward");
  check_input("linear", "input", x, 2, x.defined() ? x.device() : Device::cpu);
  const Device dev = x.device();
  check_input("linear", "weight", weight, 2, dev);
  HOTLAP_CHECK(x.dim(1) == weight.dim(1), "linear: input ", x.describe(), " has ", x.dim(1),
               " features but weight ", weight.describe(), " expects ", weight.dim(1));
  check_bias("linear", weight, bias);
  kernels::LinearShape s{x.dim(0), x.dim(1), weight.dim(0)};
  Tensor y = Tensor::empty({s.rows, s.out}, DType::f32, dev);
  dispatch::linear_forward(dev, s, x.f32(), weight.f32(), bias.defined() ? bias.f32() : nullptr, y.f32());
  Autograd::record("linear", {x, weight, bias}, y, [x, weight, bias, s, dev](const Tensor& g) {
    ProfileScope scope("linear.backward");
    std::unique_ptr<GradSink> dx;
    if (x.requires_grad()) dx = std::make_unique<GradSink>(x);
    Tensor dw_scratch;
    float* dw = accumulator_or_scratch(weight, dw_scratch);
    float* db = bias.defined() && bias.requires_grad() ? Autograd::grad_accumulator(bias) : nullptr;
    dispatch::linear_backward(dev, s, x.f32(), weight.f32(), g.f32(), dx ? dx->data() : nullptr, dw, db);
    if (dx) dx->commit();
  });
  return y;
}

static void check_forward_only(const char* op, const Tensor& a, const Tensor& b = Tensor()) {
  const bool wants_grad = a.requires_grad() || (b.defined() && b.requires_grad());
  HOTLAP_CHECK(!(Autograd::grad_enabled() && wants_grad), op,
               ": forward only (no backward); run it under NoGradGuard or on tensors that need no "
               "gradient");
}

Tensor prelu(const Tensor& x, const Tensor& slope) {
  ProfileScope scope("prelu.forward");
  check_input("prelu", "input", x, -1);
  check_input("prelu", "slope", slope, 1);
  HOTLAP_CHECK(x.ndim() >= 1 && x.dim(-1) == slope.dim(0), "prelu: input ", x.describe(),
               " has a last dimension other than the slope's ", slope.describe());
  check_forward_only("prelu", x, slope);
  Tensor y = Tensor::empty(x.shape());
  const int64_t c = slope.dim(0);
  kc::prelu_forward(c == 0 ? 0 : x.numel() / c, c, x.f32(), slope.f32(), y.f32());
  return y;
}

Tensor softmax(const Tensor& x) {
  ProfileScope scope("softmax.forward");
  check_input("softmax", "input", x, -1);
  HOTLAP_CHECK(x.ndim() >= 1 && x.dim(-1) >= 1, "softmax: input ", x.describe(),
               " has an empty last dimension");
  check_forward_only("softmax", x);
  Tensor y = Tensor::empty(x.shape());
  const int64_t c = x.dim(-1);
  kc::softmax_forward(x.numel() / c, c, x.f32(), y.f32());
  return y;
}

Tensor loss(kernels::LossKind kind, const Tensor& pred, const Tensor& target, float beta) {
  ProfileScope scope("loss.forward");
  check_input("loss", "prediction", pred, -1, pred.defined() ? pred.device() : Device::cpu);
  const Device dev = pred.device();
  check_input("loss", "target", target, -1, dev);
  HOTLAP_CHECK(pred.numel() == target.numel() && pred.numel() > 0, "loss: prediction ",
               pred.describe(), " and target ", target.describe(), " differ in size");
  const int64_t n = pred.numel();
  // The value comes back to the host (a GPU loss waits for the step's forward pass); the tensor lives
  // on the op's device like its inputs, so backward() starts there.
  Tensor y = Tensor::scalar(static_cast<float>(dispatch::loss_forward(dev, kind, n, pred.f32(), target.f32(), beta)))
                 .to(dev);
  Autograd::record("loss", {pred}, y, [kind, pred, target, beta, n, dev](const Tensor& g) {
    ProfileScope scope("loss.backward");
    GradSink d(pred);
    dispatch::loss_backward(dev, kind, n, pred.f32(), target.f32(), beta, g.item(), d.data());
    d.commit();
  });
  return y;
}

}  // namespace hotlap::ops
