#include "nn/layers/ops.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/math_mode.h"
#include "kernels/pool.h"
#include "kernels/profile.h"
#include "nn/runtime/dispatch.h"

namespace hotlap::ops {

namespace kc = kernels::cpu;
using kernels::ProfileScope;  // HOTLAP_PROFILE=1: wall time per op, forward and backward

namespace {

// Under MathMode::bf16 the ops below compute on bf16 activations (the autocast rules in ops.h).
bool bf16_compute() { return kernels::math_mode() == kernels::MathMode::bf16; }

// The kernels take contiguous tensors, all on one device: the device of the op's first input
// (`device`). Checked once per op input. Parameters are f32; an activation (`activation`) may also
// be bf16 under MathMode::bf16.
void check_input(const char* op, const char* what, const Tensor& t, int64_t ndim, Device device = Device::cpu,
                 bool activation = false) {
  HOTLAP_CHECK(t.defined(), op, ": ", what, " is undefined");
  HOTLAP_CHECK(t.device() == device, op, ": ", what, " is on ", device_name(t.device()), " but the op runs on ",
               device_name(device), " (move every input with .to(Device::", device_name(device), "))");
  const bool bf16_ok = activation && bf16_compute() && t.dtype() == DType::bf16;
  HOTLAP_CHECK(t.dtype() == DType::f32 || bf16_ok, op, ": ", what, " is ", t.describe(), "; compute needs f32",
               activation ? " (bf16 activations need --precision bf16, MathMode::bf16)" : "");
  HOTLAP_CHECK(ndim < 0 || t.ndim() == ndim, op, ": ", what, " must have ", ndim, " dimensions, got ",
               t.describe());
}

Device device_of(const Tensor& t) { return t.defined() ? t.device() : Device::cpu; }

// A gradient in the dtype its op's kernels take (it already is, unless an f32 accumulator wrote it).
Tensor grad_in(const Tensor& g, DType dtype) { return g.dtype() == dtype ? g : g.to(dtype); }

// The gradient buffer a `+=` kernel writes for `t`: t's own gradient when it needs one, otherwise
// zeroed scratch (kernels that compute several gradients at once write all of them). Always f32.
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

// ---- the ops' bodies, once for each storage type T of the activations (float or bfloat16) ----

// residual and relu: the epilogue, given only when nothing is recorded (conv2d with a residual).
template <typename T>
Tensor conv2d_typed(const Tensor& x, const Tensor& weight, const Tensor& bias, const kernels::ConvShape& s,
                    const Tensor& residual = Tensor(), bool relu = false) {
  const Device dev = x.device();
  const DType dtype = x.dtype();
  Tensor y = Tensor::empty({s.n, s.p(), s.q(), s.k}, dtype, dev);
  {
    ProfileScope family(kernels::conv_family(s), double(s.flops()));  // the profile's per-family lines
    dispatch::conv2d_forward(dev, s, tensor_data<T>(x), tensor_data<T>(weight),
                             bias.defined() ? bias.f32() : nullptr, tensor_data<T>(y),
                             residual.defined() ? tensor_data<T>(residual) : nullptr, relu);
  }
  if (residual.defined() || relu) return y;  // never recorded (see conv2d)
  Autograd::record("conv2d", {x, weight, bias}, y, [x, weight, bias, s, dev, dtype](const Tensor& grad) {
    const Tensor g = grad_in(grad, dtype);
    if (x.requires_grad()) {
      ProfileScope scope("conv2d.backward_data");
      GradSink dx(x);
      dispatch::conv2d_backward_data(dev, s, tensor_data<T>(g), tensor_data<T>(weight), dx.data<T>());
      dx.commit();
    }
    if (weight.requires_grad() || (bias.defined() && bias.requires_grad())) {
      ProfileScope scope("conv2d.backward_filter");
      Tensor dw_scratch;
      float* dw = accumulator_or_scratch(weight, dw_scratch);  // fp32 even for a bf16 weight copy
      float* db = bias.defined() && bias.requires_grad() ? Autograd::grad_accumulator(bias) : nullptr;
      dispatch::conv2d_backward_filter(dev, s, tensor_data<T>(x), tensor_data<T>(g), dw, db);
    }
  });
  return y;
}

template <typename T>
Tensor batch_norm_typed(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                        const Tensor& running_var, bool training, float momentum, float eps,
                        const Tensor& residual, bool relu) {
  const Device dev = x.device();
  const DType dtype = x.dtype();
  const int64_t c = x.dim(-1);
  const kernels::BatchNormShape s{.rows = x.numel() / std::max<int64_t>(c, 1), .c = c};
  const kernels::BatchNormEpilogueOf<T> epilogue{residual.defined() ? tensor_data<T>(residual) : nullptr, relu};
  // Eval on the CPU with nothing to record, and x handed over by its only owner (std::move): the
  // result overwrites x. An inference pass then streams each activation in and out once, and
  // allocates (and page-faults in) no second buffer per batch norm: bench/NOTES.md.
  // (would_record's list holds handles to x until the end of its statement: ask it first.)
  const bool records = Autograd::would_record({x, gamma, beta, residual});
  const bool in_place = !training && !records && dev == Device::cpu && x.is_sole_owner();
  Tensor y = in_place ? x : Tensor::empty(x.shape(), dtype, dev);
  Tensor save_mean, save_invstd;
  if (training) {
    save_mean = Tensor::empty({c}, DType::f32, dev);
    save_invstd = Tensor::empty({c}, DType::f32, dev);
    dispatch::batch_norm_forward_train(dev, s, tensor_data<T>(x), gamma.f32(), beta.f32(), eps, momentum,
                                      running_mean.defined() ? running_mean.f32() : nullptr,
                                      running_var.defined() ? running_var.f32() : nullptr, tensor_data<T>(y),
                                      save_mean.f32(), save_invstd.f32(), epilogue);
  } else {
    dispatch::batch_norm_forward_eval(dev, s, tensor_data<T>(x), gamma.f32(), beta.f32(), running_mean.f32(),
                                     running_var.f32(), eps, tensor_data<T>(y), epilogue);
  }
  // The backward needs x, the statistics, and (for the ReLU mask) the final output only: the batch
  // norm's own output before the epilogue is never kept.
  const Tensor y_saved = y.detach();
  Autograd::record("batch_norm", {x, gamma, beta, residual}, y,
                   [=](const Tensor& grad) {
    ProfileScope scope("batch_norm.backward");
    const Tensor g = grad_in(grad, dtype);
    // g_bn: the gradient at the batch norm's output = at the residual: g through the ReLU mask.
    // It is written straight into the residual's gradient when that needs one.
    const T* g_bn = tensor_data<T>(g);
    Tensor masked;
    std::unique_ptr<GradSink> dres;
    if (residual.defined() && residual.requires_grad()) dres = std::make_unique<GradSink>(residual);
    if (relu || dres) {
      T* out = dres ? dres->data<T>() : tensor_data<T>(masked = Tensor::empty(y_saved.shape(), dtype, dev));
      if (relu)
        dispatch::activation_backward<kernels::Relu>(dev, g.numel(), tensor_data<T>(y_saved), tensor_data<T>(g), out);
      else
        dispatch::copy(dev, g.numel(), tensor_data<T>(g), out);
      g_bn = out;
    }
    std::unique_ptr<GradSink> dx;
    if (x.requires_grad()) dx = std::make_unique<GradSink>(x);
    if (training) {
      // The kernel computes all three gradients together; parts nobody needs go to scratch.
      Tensor dx_scratch, dgamma_scratch, dbeta_scratch;
      T* dxp = dx ? dx->data<T>() : tensor_data<T>(dx_scratch = Tensor::empty(x.shape(), dtype, dev));
      float* dg = accumulator_or_scratch(gamma, dgamma_scratch);
      float* db = accumulator_or_scratch(beta, dbeta_scratch);
      dispatch::batch_norm_backward(dev, s, tensor_data<T>(x), g_bn, gamma.f32(), save_mean.f32(), save_invstd.f32(),
                                   dxp, dg, db);
    } else {
      float* dg = gamma.requires_grad() ? Autograd::grad_accumulator(gamma) : nullptr;
      float* db = beta.requires_grad() ? Autograd::grad_accumulator(beta) : nullptr;
      dispatch::batch_norm_backward_eval(dev, s, tensor_data<T>(x), g_bn, gamma.f32(), running_mean.f32(),
                                        running_var.f32(), eps, dx ? dx->data<T>() : nullptr, dg, db);
    }
    if (dx) dx->commit();
    if (dres) dres->commit();
  });
  return y;
}

template <typename Act, typename T>
Tensor activation_typed(const Tensor& x) {
  const Device dev = x.device();
  const DType dtype = x.dtype();
  Tensor y = Tensor::empty(x.shape(), dtype, dev);
  dispatch::activation_forward<Act>(dev, x.numel(), tensor_data<T>(x), tensor_data<T>(y));
  // The backward needs the output (ReLU: its sign) or the input, not both.
  const Tensor saved = Act::saves_output ? y.detach() : x.detach();
  Autograd::record(Act::name, {x}, y, [x, saved, dev, dtype](const Tensor& grad) {
    static const std::string backward_name = std::string(Act::name) + ".backward";
    ProfileScope scope(backward_name.c_str());
    const Tensor g = grad_in(grad, dtype);
    GradSink dx(x);
    dispatch::activation_backward<Act>(dev, x.numel(), tensor_data<T>(saved), tensor_data<T>(g), dx.data<T>());
    dx.commit();
  });
  return y;
}

// Passes g on to both operands of a sum (through the relu mask when `mask` is defined). The masked
// gradient is computed once, into the first operand's gradient when it needs one.
template <typename T>
void add_backward(const Tensor& a, const Tensor& b, const Tensor& grad, const Tensor& mask) {
  const Device dev = grad.device();
  const Tensor g = grad_in(grad, a.dtype());
  const T* gp = tensor_data<T>(g);
  Tensor masked;
  if (mask.defined()) {
    masked = Tensor::empty(g.shape(), a.dtype(), dev);
    dispatch::activation_backward<kernels::Relu>(dev, g.numel(), tensor_data<T>(mask), tensor_data<T>(g),
                                                  tensor_data<T>(masked));
    gp = tensor_data<T>(masked);
  }
  for (const Tensor* t : {&a, &b}) {
    if (!t->requires_grad()) continue;
    GradSink d(*t);
    dispatch::copy(dev, g.numel(), gp, d.data<T>());
    d.commit();
  }
}

template <typename T>
Tensor add_typed(const Tensor& a, const Tensor& b, bool relu) {
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  if (relu)
    dispatch::add_relu_forward(a.device(), a.numel(), tensor_data<T>(a), tensor_data<T>(b), tensor_data<T>(y));
  else
    dispatch::add(a.device(), a.numel(), tensor_data<T>(a), tensor_data<T>(b), tensor_data<T>(y));
  const Tensor mask = relu ? y.detach() : Tensor();
  Autograd::record(relu ? "add_relu" : "add", {a, b}, y, [a, b, mask, relu](const Tensor& g) {
    ProfileScope scope(relu ? "add_relu.backward" : "add.backward");
    add_backward<T>(a, b, g, mask);
  });
  return y;
}

template <typename T>
Tensor max_pool2d_typed(const Tensor& x, const kernels::PoolShape& s) {
  const Device dev = x.device();
  const DType dtype = x.dtype();
  Tensor y = Tensor::empty({s.n, s.p(), s.q(), s.c}, dtype, dev);
  // The argmax of each window, int32, on the op's device. Tensors hold floats, so the indices live
  // in an f32 tensor of the same element size, read through an int32 pointer.
  static_assert(sizeof(int32_t) == sizeof(float));
  const Tensor indices = Tensor::empty(y.shape(), DType::f32, dev);
  auto* index_data = static_cast<int32_t*>(indices.raw());
  dispatch::max_pool2d_forward(dev, s, tensor_data<T>(x), tensor_data<T>(y), index_data);
  Autograd::record("max_pool2d", {x}, y, [x, s, indices, dev, dtype](const Tensor& grad) {
    ProfileScope scope("max_pool2d.backward");
    const Tensor g = grad_in(grad, dtype);
    GradSink dx(x);
    dispatch::max_pool2d_backward(dev, s, tensor_data<T>(g), static_cast<const int32_t*>(indices.raw()),
                                 dx.data<T>());
    dx.commit();
  });
  return y;
}

template <typename T>
Tensor global_avg_pool_typed(const Tensor& x) {
  const Device dev = x.device();
  const DType dtype = x.dtype();
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  Tensor y = Tensor::empty({n, c}, dtype, dev);
  dispatch::global_avg_pool_forward(dev, n, hw, c, tensor_data<T>(x), tensor_data<T>(y));
  Autograd::record("global_avg_pool", {x}, y, [x, n, hw, c, dev, dtype](const Tensor& grad) {
    ProfileScope scope("global_avg_pool.backward");
    const Tensor g = grad_in(grad, dtype);
    GradSink dx(x);
    dispatch::global_avg_pool_backward(dev, n, hw, c, tensor_data<T>(g), dx.data<T>());
    dx.commit();
  });
  return y;
}

// Under MathMode::bf16: `t` as bf16 (a differentiable cast when it is f32). Otherwise t itself.
Tensor bf16_if_compute(const Tensor& t) { return bf16_compute() && t.defined() ? cast(t, DType::bf16) : t; }

}  // namespace

Tensor cast(const Tensor& x, DType dtype) {
  HOTLAP_CHECK(x.defined(), "cast: input is undefined");
  if (x.dtype() == dtype) return x;
  ProfileScope scope("cast.forward");
  Tensor y = x.to(dtype);
  Autograd::record("cast", {x}, y, [x](const Tensor& g) {
    ProfileScope scope("cast.backward");
    GradSink dx(x);
    Tensor target = dx.target();
    target.copy_from(g);  // converts g (either dtype) to x's dtype
    dx.commit();
  });
  return y;
}

namespace {

// The convolution's shape, once its inputs are checked.
kernels::ConvShape conv2d_shape(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias, int64_t stride,
                                int64_t padding) {
  check_input("conv2d", "input", x_in, 4, device_of(x_in), true);
  const Device dev = x_in.device();
  check_input("conv2d", "weight", weight_in, 4, dev);
  HOTLAP_CHECK(weight_in.dim(3) == x_in.dim(3), "conv2d: input ", x_in.describe(), " has ", x_in.dim(3),
               " channels but weight ", weight_in.describe(), " (OHWI) expects ", weight_in.dim(3));
  check_bias("conv2d", weight_in, bias);
  const kernels::ConvShape s{.n = x_in.dim(0), .h = x_in.dim(1), .w = x_in.dim(2), .c = x_in.dim(3),
                             .k = weight_in.dim(0), .r = weight_in.dim(1), .s = weight_in.dim(2),
                             .stride_h = stride, .stride_w = stride, .pad_h = padding, .pad_w = padding};
  HOTLAP_CHECK(stride >= 1 && padding >= 0 && s.p() >= 1 && s.q() >= 1, "conv2d: input ",
               x_in.describe(), " with a ", s.r, "x", s.s, " filter, stride ", stride, ", padding ",
               padding, " gives no output");
  return s;
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias, int64_t stride, int64_t padding) {
  ProfileScope scope("conv2d.forward");
  const kernels::ConvShape s = conv2d_shape(x_in, weight_in, bias, stride, padding);
  // bf16: input and a fresh bf16 copy of the weight, each through a differentiable cast, so the
  // weight's gradient (computed in fp32) reaches the fp32 parameter; the bias stays fp32.
  const Tensor x = bf16_if_compute(x_in), weight = bf16_if_compute(weight_in);
  return x.dtype() == DType::bf16 ? conv2d_typed<bfloat16>(x, weight, bias, s) : conv2d_typed<float>(x, weight, bias, s);
}

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias, int64_t stride, int64_t padding,
              const Tensor& residual_in, bool relu) {
  if (!residual_in.defined() && !relu) return conv2d(x_in, weight_in, bias, stride, padding);
  // A gradient needs each op's own record.
  if (Autograd::would_record({x_in, weight_in, bias, residual_in})) {
    const Tensor y = conv2d(x_in, weight_in, bias, stride, padding);
    if (residual_in.defined()) return relu ? add_relu(y, residual_in) : add(y, residual_in);
    return ops::relu(y);
  }
  ProfileScope scope("conv2d.forward");
  const kernels::ConvShape s = conv2d_shape(x_in, weight_in, bias, stride, padding);
  const Tensor x = bf16_if_compute(x_in), weight = bf16_if_compute(weight_in);
  Tensor residual;
  if (residual_in.defined()) {
    check_input("conv2d", "residual", residual_in, 4, x_in.device(), true);
    HOTLAP_CHECK(residual_in.shape() == Shape({s.n, s.p(), s.q(), s.k}), "conv2d: residual ", residual_in.describe(),
                 " for an output of ", shape_str({s.n, s.p(), s.q(), s.k}));
    residual = residual_in.dtype() == x.dtype() ? residual_in : cast(residual_in, x.dtype());
  }
  return x.dtype() == DType::bf16 ? conv2d_typed<bfloat16>(x, weight, bias, s, residual, relu)
                                  : conv2d_typed<float>(x, weight, bias, s, residual, relu);
}

Tensor batch_norm(Tensor x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, const BatchNormOptions& options) {
  const bool training = options.training, relu = options.relu;
  const float momentum = options.momentum, eps = options.eps;
  const Tensor& residual_in = options.residual;
  ProfileScope scope("batch_norm.forward");
  check_input("batch_norm", "input", x, -1, device_of(x), true);
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
  if (residual_in.defined()) {
    check_input("batch_norm", "residual", residual_in, -1, dev, true);
    HOTLAP_CHECK(residual_in.shape() == x.shape(), "batch_norm: residual ", residual_in.describe(),
                 " for input ", x.describe());
  }
  HOTLAP_CHECK(training || (running_mean.defined() && running_var.defined()),
               "batch_norm: eval mode needs running statistics");
  // The residual is read in x's dtype (bf16 activations: a bf16 residual).
  const Tensor residual = residual_in.defined() ? cast(residual_in, x.dtype()) : residual_in;
  return x.dtype() == DType::bf16
             ? batch_norm_typed<bfloat16>(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                          residual, relu)
             : batch_norm_typed<float>(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                       residual, relu);
}

template <typename Act>
Tensor activation(const Tensor& x) {
  static const std::string forward_name = std::string(Act::name) + ".forward";
  ProfileScope scope(forward_name.c_str());
  check_input(Act::name, "input", x, -1, device_of(x), true);
  return x.dtype() == DType::bf16 ? activation_typed<Act, bfloat16>(x) : activation_typed<Act, float>(x);
}
#define HOTLAP_OPS_ACTIVATION(Act) template Tensor activation<kernels::Act>(const Tensor&);
HOTLAP_ACTIVATIONS(HOTLAP_OPS_ACTIVATION)
#undef HOTLAP_OPS_ACTIVATION

// The two operands of a sum, checked; under MathMode::bf16 in one dtype (bf16 when either is).
static std::pair<Tensor, Tensor> sum_operands(const char* op, const Tensor& a, const Tensor& b) {
  check_input(op, "first operand", a, -1, device_of(a), true);
  check_input(op, "second operand", b, -1, a.device(), true);
  HOTLAP_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.describe(), " and ", b.describe());
  if (a.dtype() == b.dtype()) return {a, b};
  return {cast(a, DType::bf16), cast(b, DType::bf16)};
}

Tensor add(const Tensor& a_in, const Tensor& b_in) {
  ProfileScope scope("add.forward");
  const auto [a, b] = sum_operands("add", a_in, b_in);
  return a.dtype() == DType::bf16 ? add_typed<bfloat16>(a, b, false) : add_typed<float>(a, b, false);
}

Tensor add_relu(const Tensor& a_in, const Tensor& b_in) {
  ProfileScope scope("add_relu.forward");
  const auto [a, b] = sum_operands("add_relu", a_in, b_in);
  return a.dtype() == DType::bf16 ? add_typed<bfloat16>(a, b, true) : add_typed<float>(a, b, true);
}

Tensor max_pool2d(const Tensor& x, int64_t window, int64_t stride, int64_t padding, bool ceil_mode) {
  ProfileScope scope("max_pool2d.forward");
  check_input("max_pool2d", "input", x, 4, device_of(x), true);
  const kernels::PoolShape s{.n = x.dim(0), .h = x.dim(1), .w = x.dim(2), .c = x.dim(3),
                             .window_h = window, .window_w = window, .stride_h = stride, .stride_w = stride,
                             .pad_h = padding, .pad_w = padding, .ceil_mode = ceil_mode};
  HOTLAP_CHECK(window >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= window && s.p() >= 1 &&
                   s.q() >= 1,
               "max_pool2d: input ", x.describe(), " with window ", window, ", stride ", stride,
               ", padding ", padding, " gives no output (padding may be at most half the window)");
  return x.dtype() == DType::bf16 ? max_pool2d_typed<bfloat16>(x, s) : max_pool2d_typed<float>(x, s);
}

Tensor global_avg_pool(const Tensor& x) {
  ProfileScope scope("global_avg_pool.forward");
  check_input("global_avg_pool", "input", x, 4, device_of(x), true);
  HOTLAP_CHECK(x.dim(1) * x.dim(2) > 0, "global_avg_pool: empty spatial size in ", x.describe());
  return x.dtype() == DType::bf16 ? global_avg_pool_typed<bfloat16>(x) : global_avg_pool_typed<float>(x);
}

Tensor linear(const Tensor& x_in, const Tensor& weight, const Tensor& bias) {
  ProfileScope scope("linear.forward");
  check_input("linear", "input", x_in, 2, device_of(x_in), true);
  // fp32 in every mode: a bf16 input is cast up (differentiably). The head is tiny.
  const Tensor x = cast(x_in, DType::f32);
  const Device dev = x.device();
  check_input("linear", "weight", weight, 2, dev);
  HOTLAP_CHECK(x.dim(1) == weight.dim(1), "linear: input ", x.describe(), " has ", x.dim(1),
               " features but weight ", weight.describe(), " expects ", weight.dim(1));
  check_bias("linear", weight, bias);
  const kernels::LinearShape s{.rows = x.dim(0), .in = x.dim(1), .out = weight.dim(0)};
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
  HOTLAP_CHECK(!Autograd::would_record({a, b}), op,
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
  dispatch::prelu_forward(x.device(), c == 0 ? 0 : x.numel() / c, c, x.f32(), slope.f32(), y.f32());
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
  dispatch::softmax_forward(x.device(), x.numel() / c, c, x.f32(), y.f32());
  return y;
}

Tensor loss(kernels::LossKind kind, const Tensor& pred_in, const Tensor& target, float beta) {
  ProfileScope scope("loss.forward");
  check_input("loss", "prediction", pred_in, -1, device_of(pred_in), true);
  const Tensor pred = cast(pred_in, DType::f32);  // fp32 in every mode, like linear
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

Tensor cross_entropy(const Tensor& logits_in, const Tensor& labels, float label_smoothing) {
  ProfileScope scope("cross_entropy.forward");
  check_input("cross_entropy", "logits", logits_in, 2, device_of(logits_in), true);
  const Tensor logits = cast(logits_in, DType::f32);  // fp32 in every mode, like the other losses
  const Device dev = logits.device();
  check_input("cross_entropy", "labels", labels, -1, dev);
  const int64_t rows = logits.dim(0), classes = logits.dim(1);
  HOTLAP_CHECK(labels.numel() == rows && (labels.ndim() == 1 || (labels.ndim() == 2 && labels.dim(1) == 1)),
               "cross_entropy: labels ", labels.describe(), " are not one class index for each row of the logits ",
               logits.describe());
  Tensor y = Tensor::scalar(static_cast<float>(dispatch::cross_entropy_forward(
                                dev, rows, classes, logits.f32(), labels.f32(), label_smoothing)))
                 .to(dev);
  Autograd::record("cross_entropy", {logits}, y, [logits, labels, label_smoothing, rows, classes, dev](const Tensor& g) {
    ProfileScope scope("cross_entropy.backward");
    GradSink d(logits);
    dispatch::cross_entropy_backward(dev, rows, classes, logits.f32(), labels.f32(), label_smoothing, g.item(),
                                     d.data());
    d.commit();
  });
  return y;
}

}  // namespace hotlap::ops
