// The op table's rows: see op_table.h. Each row's reference is the op's definition in double, with
// no attempt at speed; the kernels are checked against these.
#include "nn/layers/op_table.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/device.h"
#include "kernels/pool.h"
#include "nn/layers/ops.h"
#include "nn/runtime/random.h"

namespace hotlap::op_table {

namespace {

// ---- inputs ----------------------------------------------------------------------------------------

Tensor uniform(const Shape& shape, Rng& rng, double lo = -1.0, double hi = 1.0) {
  if (shape.empty()) return Tensor();
  Tensor t = Tensor::empty(shape);
  fill_uniform(t, lo, hi, rng);
  return t;
}

// Uniform in [-1, 1] but at least `gap` from 0: away from ReLU's kink, and from an L1 loss's when
// used as a difference.
Tensor away_from_zero(const Shape& shape, Rng& rng, double gap = 0.02) {
  Tensor t = uniform(shape, rng, gap, 1.0);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (rng.uniform() < 0.5) p[i] = -p[i];
  return t;
}

std::vector<Tensor> uniform_inputs(const Case& c, uint64_t seed) {
  Rng rng(seed);
  std::vector<Tensor> in;
  for (const Shape& s : c.shapes) in.push_back(uniform(s, rng));
  return in;
}

// ---- references --------------------------------------------------------------------------------------

// y[n,p,q,k] = bias[k] + sum over r, s, c of x[n, p*stride - pad + r, q*stride - pad + s, c] * w[k,r,s,c]
// (NHWC activations, OHWI weights; taps outside the input are zero padding); then, as a folded
// ResNet block ends, + residual[n,p,q,k] and the ReLU when params[2] says so.
Values conv2d_reference(const std::vector<Values>& in, const Case& c) {
  const Shape &xs = c.shapes[0], &ws = c.shapes[1];
  const int64_t n = xs[0], h = xs[1], w = xs[2], ch = xs[3], k = ws[0], r = ws[1], s = ws[2];
  const int64_t stride = c.params[0], pad = c.params[1];
  const int64_t p = (h + 2 * pad - r) / stride + 1, q = (w + 2 * pad - s) / stride + 1;
  const Values &x = in[0], &wt = in[1], &bias = in[2];
  Values y(static_cast<size_t>(n * p * q * k));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < p; ++i)
      for (int64_t j = 0; j < q; ++j)
        for (int64_t o = 0; o < k; ++o) {
          double sum = bias.empty() ? 0.0 : bias[o];
          for (int64_t u = 0; u < r; ++u) {
            const int64_t hi = i * stride - pad + u;
            if (hi < 0 || hi >= h) continue;
            for (int64_t v = 0; v < s; ++v) {
              const int64_t wi = j * stride - pad + v;
              if (wi < 0 || wi >= w) continue;
              const double* xp = &x[((b * h + hi) * w + wi) * ch];
              const double* wp = &wt[((o * r + u) * s + v) * ch];
              for (int64_t e = 0; e < ch; ++e) sum += xp[e] * wp[e];
            }
          }
          const int64_t at = ((b * p + i) * q + j) * k + o;
          if (!in[3].empty()) sum += in[3][at];
          y[at] = c.params[2] != 0 ? std::max(sum, 0.0) : sum;
        }
  return y;
}

// Batch norm over the last dimension: params {training, relu}; inputs x, gamma, beta, running_mean,
// running_var, residual. Training: the batch's mean and biased variance; eval: the running ones.
// Then y = relu?(gamma * (x - mean) / sqrt(var + eps) + beta + residual).
constexpr double kEps = 1e-5;
Values batch_norm_reference(const std::vector<Values>& in, const Case& c) {
  const Values &x = in[0], &gamma = in[1], &beta = in[2], &rm = in[3], &rv = in[4], &res = in[5];
  const bool training = c.params[0] != 0, relu = c.params[1] != 0;
  const int64_t ch = c.shapes[0].back(), rows = static_cast<int64_t>(x.size()) / ch;
  Values y(x.size());
  for (int64_t j = 0; j < ch; ++j) {
    double mean = 0.0, var = 0.0;
    if (training) {
      for (int64_t i = 0; i < rows; ++i) mean += x[i * ch + j];
      mean /= static_cast<double>(rows);
      for (int64_t i = 0; i < rows; ++i) var += (x[i * ch + j] - mean) * (x[i * ch + j] - mean);
      var /= static_cast<double>(rows);
    } else {
      mean = rm[j];
      var = rv[j];
    }
    const double invstd = 1.0 / std::sqrt(var + static_cast<double>(static_cast<float>(kEps)));
    for (int64_t i = 0; i < rows; ++i) {
      double v = gamma[j] * (x[i * ch + j] - mean) * invstd + beta[j];
      if (!res.empty()) v += res[i * ch + j];
      y[i * ch + j] = relu ? std::max(v, 0.0) : v;
    }
  }
  return y;
}

Values map1(const Values& x, double (*f)(double)) {
  Values y(x.size());
  std::transform(x.begin(), x.end(), y.begin(), f);
  return y;
}

// Max over each window (padding never wins); the output size is PoolShape's, PyTorch's rule.
// params {window, stride, padding, ceil_mode}.
kernels::PoolShape pool_shape(const Case& c) {
  const Shape& s = c.shapes[0];
  const int64_t w = c.params[0], st = c.params[1], pad = c.params[2];
  return {.n = s[0], .h = s[1], .w = s[2], .c = s[3], .window_h = w, .window_w = w, .stride_h = st, .stride_w = st,
          .pad_h = pad, .pad_w = pad, .ceil_mode = c.params[3] != 0};
}

Values max_pool_reference(const std::vector<Values>& in, const Case& c) {
  const kernels::PoolShape s = pool_shape(c);
  const Values& x = in[0];
  Values y;
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t i = 0; i < s.p(); ++i)
      for (int64_t j = 0; j < s.q(); ++j)
        for (int64_t ch = 0; ch < s.c; ++ch) {
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t u = 0; u < s.window_h; ++u)
            for (int64_t v = 0; v < s.window_w; ++v) {
              const int64_t hi = i * s.stride_h - s.pad_h + u, wi = j * s.stride_w - s.pad_w + v;
              if (hi >= 0 && hi < s.h && wi >= 0 && wi < s.w) m = std::max(m, x[((b * s.h + hi) * s.w + wi) * s.c + ch]);
            }
          y.push_back(m);
        }
  return y;
}

Values global_avg_pool_reference(const std::vector<Values>& in, const Case& c) {
  const Shape& s = c.shapes[0];
  const int64_t n = s[0], hw = s[1] * s[2], ch = s[3];
  Values y(static_cast<size_t>(n * ch), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t j = 0; j < ch; ++j) y[b * ch + j] += in[0][(b * hw + i) * ch + j] / static_cast<double>(hw);
  return y;
}

// y[i, o] = b[o] + sum_e x[i, e] w[o, e].
Values linear_reference(const std::vector<Values>& in, const Case& c) {
  const int64_t rows = c.shapes[0][0], features = c.shapes[0][1], out = c.shapes[1][0];
  Values y(static_cast<size_t>(rows * out));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double sum = in[2].empty() ? 0.0 : in[2][o];
      for (int64_t e = 0; e < features; ++e) sum += in[0][i * features + e] * in[1][o * features + e];
      y[i * out + o] = sum;
    }
  return y;
}

// The mean over the elements of the loss between prediction and target; beta = 1 for smooth L1.
Values loss_reference(kernels::LossKind kind, const std::vector<Values>& in) {
  double sum = 0.0;
  for (size_t i = 0; i < in[0].size(); ++i) {
    const double d = in[0][i] - in[1][i], a = std::abs(d);
    sum += kind == kernels::LossKind::mse ? d * d : kind == kernels::LossKind::l1 ? a : (a < 1.0 ? 0.5 * d * d : a - 0.5);
  }
  return {sum / static_cast<double>(in[0].size())};
}

// ---- inputs and FLOPs of particular rows -----------------------------------------------------------

// x, weight, bias, residual; with a ReLU, every pre-ReLU value at least 0.05 from the kink (the
// residual moves where one is closer).
std::vector<Tensor> conv2d_inputs(const Case& c, uint64_t seed) {
  std::vector<Tensor> t = uniform_inputs(c, seed);
  if (c.params[2] != 0) {
    HOTLAP_CHECK(t[3].defined(), "op table: a convolution with a ReLU needs a residual here");
    std::vector<Values> v;
    for (const Tensor& x : t) v.push_back(values(x));
    const Values y = conv2d_reference(v, Case{c.label, c.shapes, {c.params[0], c.params[1], 0}});
    float* p = t[3].f32();
    for (size_t i = 0; i < y.size(); ++i)
      if (std::abs(y[i]) < 0.05) p[i] += y[i] < 0 ? -0.1f : 0.1f;
  }
  return t;
}

double conv2d_flops(const Case& c) {
  const Shape &xs = c.shapes[0], &ws = c.shapes[1];
  const int64_t p = (xs[1] + 2 * c.params[1] - ws[1]) / c.params[0] + 1;
  const int64_t q = (xs[2] + 2 * c.params[1] - ws[2]) / c.params[0] + 1;
  return 2.0 * double(xs[0] * p * q) * double(ws[0] * ws[1] * ws[2] * ws[3]);
}

// x, gamma, beta, running mean, running variance, residual. With a ReLU, every pre-ReLU value is
// kept at least 0.05 from the kink: where one is closer, its residual moves (or, in eval mode
// without a residual, its x: the statistics are fixed there, and gamma > 0).
std::vector<Tensor> batch_norm_inputs(const Case& c, uint64_t seed) {
  Rng rng(seed);
  std::vector<Tensor> t{uniform(c.shapes[0], rng, -2, 2), uniform(c.shapes[1], rng, 0.5, 1.5),
                        uniform(c.shapes[2], rng), uniform(c.shapes[3], rng, -0.2, 0.2),
                        uniform(c.shapes[4], rng, 0.5, 1.5), uniform(c.shapes[5], rng)};
  if (c.params[1] != 0) {
    std::vector<Values> v;
    for (const Tensor& x : t) v.push_back(values(x));
    const Values y = batch_norm_reference(v, Case{c.label, c.shapes, {c.params[0], 0}});
    HOTLAP_CHECK(t[5].defined() || c.params[0] == 0, "op table: a training batch norm with a ReLU needs a residual");
    float* p = t[5].defined() ? t[5].f32() : t[0].f32();
    for (size_t i = 0; i < y.size(); ++i)
      if (std::abs(y[i]) < 0.05) p[i] += y[i] < 0 ? -0.1f : 0.1f;
  }
  return t;
}

// The element-wise rows' cases: odd sizes, one past the CPU's threading threshold, empty, and
// ResNet-50's largest activation, after the stem.
std::vector<Case> elementwise_cases(int operands) {
  auto shapes = [&](const Shape& s) { return std::vector<Shape>(static_cast<size_t>(operands), s); };
  return {{"odd sizes", shapes({2, 3, 4, 5}), {}},
          {"one row", shapes({1, 17}), {}},
          {"past the threading threshold", shapes({100003}), {}},
          {"empty", shapes({0, 3}), {}},
          {"ResNet-50 after the stem", shapes({1, 112, 112, 64}), {}, true}};
}

std::vector<Tensor> one_away_from_zero(const Case& c, uint64_t seed) {
  Rng rng(seed);
  return {away_from_zero(c.shapes[0], rng)};
}

// a and b with a + b at least 0.02 from 0 (ReLU's kink): |a| is at most 0.45 |b|, |b| >= 0.05.
std::vector<Tensor> sum_operands(const Case& c, uint64_t seed) {
  Rng rng(seed);
  Tensor a = uniform(c.shapes[0], rng), b = away_from_zero(c.shapes[1], rng, 0.05);
  float *pa = a.f32(), *pb = b.f32();
  for (int64_t i = 0; i < a.numel(); ++i) pa[i] = 0.45f * std::abs(pb[i]) * pa[i];
  return {a, b};
}

Values sum_reference(const std::vector<Values>& in, bool relu) {
  Values y(in[0].size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = relu ? std::max(in[0][i] + in[1][i], 0.0) : in[0][i] + in[1][i];
  return y;
}

// Distinct values (a shuffled ramp): no ties inside a window, so the argmax is unambiguous.
std::vector<Tensor> shuffled_ramp(const Case& c, uint64_t seed) {
  Tensor t = Tensor::empty(c.shapes[0]);
  const int64_t n = t.numel();
  float* p = t.f32();
  for (int64_t i = 0; i < n; ++i) p[i] = -1.0f + 2.0f * static_cast<float>(i) / static_cast<float>(std::max<int64_t>(n, 1));
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.below(i + 1)]);
  return {t};
}

// A prediction and a target 1-5 (a SCUT score) whose difference keeps clear of 0 (L1's kink) and of
// +-1 (smooth L1's beta, where only the second derivative jumps, but straddling it is a poor test).
std::vector<Tensor> prediction_and_target(const Case& c, uint64_t seed) {
  Rng rng(seed);
  Tensor target = uniform(c.shapes[1], rng, 1.0, 5.0);
  Tensor d = away_from_zero(c.shapes[0], rng, 0.02);
  float *pd = d.f32(), *pt = target.f32();
  for (int64_t i = 0; i < d.numel(); ++i) {
    if (std::abs(std::abs(pd[i]) * 2.0f - 1.0f) < 0.02f) pd[i] *= 1.1f;
    pd[i] = pt[i] + 2.0f * pd[i];
  }
  return {d, target};
}

Values prelu_reference(const std::vector<Values>& in, const Case&) {
  Values y(in[0].size());
  const size_t c = in[1].size();
  for (size_t i = 0; i < y.size(); ++i) y[i] = in[0][i] > 0 ? in[0][i] : in[1][i % c] * in[0][i];
  return y;
}

// Over the last dimension, max-shifted: exp(x - max) / sum exp(x - max).
Values softmax_reference(const std::vector<Values>& in, const Case& c) {
  const size_t n = static_cast<size_t>(c.shapes[0].back());
  Values y(in[0].size());
  for (size_t i = 0; i < y.size(); i += n) {
    const double m = *std::max_element(in[0].begin() + i, in[0].begin() + i + n);
    double sum = 0.0;
    for (size_t j = 0; j < n; ++j) sum += std::exp(in[0][i + j] - m);
    for (size_t j = 0; j < n; ++j) y[i + j] = std::exp(in[0][i + j] - m) / sum;
  }
  return y;
}

// Logits in [-8, 8] (a spread where the max shift matters and no probability is negligible to the
// finite differences) and a class index per row, as floats.
std::vector<Tensor> logits_and_labels(const Case& c, uint64_t seed) {
  Rng rng(seed);
  Tensor logits = uniform(c.shapes[0], rng, -8.0, 8.0);
  Tensor labels = Tensor::empty(c.shapes[1]);
  const int64_t classes = c.shapes[0][1];
  for (int64_t i = 0; i < labels.numel(); ++i) labels.f32()[i] = static_cast<float>(rng.below(classes));
  return {logits, labels};
}

// The mean over the rows of -sum_j target_j log softmax(x)_j, with target = (1 - e) one-hot + e / K,
// e = params[0] / 100: the definition, log-softmax written out as x_j - log sum exp(x).
Values cross_entropy_reference(const std::vector<Values>& in, const Case& c) {
  const size_t rows = static_cast<size_t>(c.shapes[0][0]), classes = static_cast<size_t>(c.shapes[0][1]);
  const double e = static_cast<double>(c.params[0]) / 100.0;
  double sum = 0.0;
  for (size_t i = 0; i < rows; ++i) {
    const double* x = in[0].data() + i * classes;
    const double m = *std::max_element(x, x + classes);
    double exps = 0.0;
    for (size_t j = 0; j < classes; ++j) exps += std::exp(x[j] - m);
    const double log_sum = m + std::log(exps);
    for (size_t j = 0; j < classes; ++j) {
      const double target = (j == static_cast<size_t>(in[1][i]) ? 1.0 - e : 0.0) + e / static_cast<double>(classes);
      sum -= target * (x[j] - log_sum);
    }
  }
  return {sum / static_cast<double>(rows)};
}

// ---- the rows -------------------------------------------------------------------------------------
//
// Tolerances: an fp32 result is one rounding (6e-8 relative) or a sum of roundings; a bf16 result
// is rounded once more to 8 significant bits (at most 2^-8 = 3.9e-3 relative), and a bf16 gradient
// twice (the incoming gradient, then the result). The errors measured on the CPU are in the
// comments; HOTLAP_OP_TABLE_ERRORS=1 prints them (tests/nn/test_op_table.cpp).

// (Functions, not namespace-scope vectors: rows() may run from another file's static initialiser,
// a benchmark's registration, before this file's statics exist.)
std::vector<DType> both_dtypes() { return {DType::f32, DType::bf16}; }
std::vector<DType> f32_only() { return {DType::f32}; }

Row activation_row(const char* op, double (*reference)(double), double tolerance, double cpu_agreement,
                   Tensor (*run)(const Tensor&)) {
  return {.op = op,
          .dtypes = both_dtypes(),
          .activations = {0},
          .bf16_rounded = {0},
          .differentiable = {0},
          .tolerance_f32 = tolerance,
          .tolerance_bf16 = 5e-3,
          .grad_tolerance_f32 = 1e-6,  // 1e-7 measured
          .grad_tolerance_bf16 = 1e-2,
          .cpu_agreement = cpu_agreement,
          .cases = elementwise_cases(1),
          .inputs = one_away_from_zero,
          .run = [run](const std::vector<Tensor>& t, const Case&) { return run(t[0]); },
          .reference = [reference](const std::vector<Values>& in, const Case&) { return map1(in[0], reference); }};
}

Row sum_row(const char* op, bool relu) {
  return {.op = op,
          .dtypes = both_dtypes(),
          .activations = {0, 1},
          .bf16_rounded = {0, 1},
          .differentiable = {0, 1},
          .tolerance_f32 = 1e-7,  // one rounding: 5e-8 measured
          .tolerance_bf16 = 5e-3,
          .grad_tolerance_f32 = 1e-6,
          .grad_tolerance_bf16 = 1e-2,
          .cpu_agreement = 1e-6,
          .cases = elementwise_cases(2),
          .inputs = sum_operands,
          .run = [relu](const std::vector<Tensor>& t, const Case&) { return relu ? ops::add_relu(t[0], t[1]) : ops::add(t[0], t[1]); },
          .reference = [relu](const std::vector<Values>& in, const Case&) { return sum_reference(in, relu); }};
}

Row loss_row(const char* op, kernels::LossKind kind) {
  return {.op = op,
          .dtypes = both_dtypes(),  // bf16: the prediction is cast up; losses compute in fp32
          .activations = {0},
          .bf16_rounded = {0},
          .differentiable = {0},
          .tolerance_f32 = 1e-6,  // sums in double: 5e-8 measured
          .tolerance_bf16 = 1e-6,
          .grad_tolerance_f32 = 1e-6,
          .grad_tolerance_bf16 = 1e-2,
          .cases = {{"a batch of scores", {{8, 1}, {8, 1}}, {}}, {"past the threading threshold", {{100003}, {100003}}, {}}},
          .inputs = prediction_and_target,
          .run = [kind](const std::vector<Tensor>& t, const Case&) { return ops::loss(kind, t[0], t[1]); },
          .reference = [kind](const std::vector<Values>& in, const Case&) { return loss_reference(kind, in); }};
}

std::vector<Row> make_rows() {
  const Shape none, bn_x{3, 4, 3, 5}, ch{5};
  return {
      {.op = "conv2d",
       .params_meaning = "stride, padding, relu",
       .dtypes = both_dtypes(),
       .activations = {0, 3},  // the input and the residual
       .bf16_rounded = {0, 1, 3},  // and the weight's bf16 copy
       .differentiable = {0, 1, 2, 3},
       // f32: sums of up to 4608 products, and the Winograd and FFT algorithms' transforms (the
       // CPU's for 3x3 stride 1, cuDNN's where it picks them): 8e-7 measured on the CPU.
       .tolerance_f32 = 1e-4,
       .tolerance_bf16 = 6e-3,  // 3.2e-3 measured
       .grad_tolerance_f32 = 1e-4,  // 3e-7 measured
       .grad_tolerance_bf16 = 2e-2,
       .cases = {{"3x3 stride 1 with bias", {{2, 5, 5, 3}, {4, 3, 3, 3}, {4}, none}, {1, 1, 0}},
                 {"3x3 stride 2", {{1, 6, 7, 2}, {3, 3, 3, 2}, none, none}, {2, 1, 0}},
                 {"1x1 with bias", {{2, 4, 4, 3}, {5, 1, 1, 3}, {5}, none}, {1, 0, 0}},
                 {"5x5 stride 2 padding 2", {{1, 7, 7, 1}, {2, 5, 5, 1}, none, none}, {2, 2, 0}},
                 {"3x3 stride 1, 16 channels (Winograd)", {{1, 8, 8, 16}, {16, 3, 3, 16}, {16}, none}, {1, 1, 0}},
                 {"3x3 stride 1 + residual, ReLU (a folded block's end)", {{2, 5, 5, 3}, {4, 3, 3, 3}, {4}, {2, 5, 5, 4}}, {1, 1, 1}},
                 {"1x1 stride 2 + residual", {{1, 6, 6, 8}, {16, 1, 1, 8}, {16}, {1, 3, 3, 16}}, {2, 0, 0}},
                 {"ResNet-50 stem 7x7 stride 2", {{1, 224, 224, 3}, {64, 7, 7, 3}, none, none}, {2, 3, 0}, true},
                 {"ResNet-50 layer1 1x1 64->256", {{1, 56, 56, 64}, {256, 1, 1, 64}, none, none}, {1, 0, 0}, true},
                 {"ResNet-50 layer1 3x3", {{1, 56, 56, 64}, {64, 3, 3, 64}, none, none}, {1, 1, 0}, true},
                 {"ResNet-50 layer2 3x3 stride 2", {{1, 56, 56, 128}, {128, 3, 3, 128}, none, none}, {2, 1, 0}, true},
                 {"ResNet-50 layer3 1x1 stride 2", {{1, 28, 28, 512}, {1024, 1, 1, 512}, none, none}, {2, 0, 0}, true},
                 {"ResNet-50 layer4 3x3", {{1, 7, 7, 512}, {512, 3, 3, 512}, none, none}, {1, 1, 0}, true},
                 {"ResNet-50 layer3 1x1 folded: + bias, residual, ReLU",
                  {{1, 14, 14, 256}, {1024, 1, 1, 256}, {1024}, {1, 14, 14, 1024}},
                  {1, 0, 1},
                  true}},
       .inputs = conv2d_inputs,
       // With a residual or a ReLU and nothing to record: one op with the epilogue in its store; when
       // recording: the convolution, add and ReLU as separate ops (ops.h).
       .run =
           [](const std::vector<Tensor>& t, const Case& c) {
             return ops::conv2d(t[0], t[1], t[2], c.params[0], c.params[1], t[3], c.params[2] != 0);
           },
       .reference = conv2d_reference,
       .flops = conv2d_flops},
      {.op = "batch_norm",
       .params_meaning = "training, relu",
       .dtypes = both_dtypes(),
       .activations = {0, 5},  // x and the residual
       .bf16_rounded = {0, 5},
       .differentiable = {0, 1, 2, 5},
       .tolerance_f32 = 1e-5,  // 1.1e-7 measured
       .tolerance_bf16 = 6e-3,
       .grad_tolerance_f32 = 1e-5,  // 1.7e-7 measured
       .grad_tolerance_bf16 = 2e-2,  // 6.4e-3 measured
       .cases = {{"training", {bn_x, ch, ch, ch, ch, none}, {1, 0}},
                 {"eval", {bn_x, ch, ch, ch, ch, none}, {0, 0}},
                 {"training, relu(bn(x) + residual)", {bn_x, ch, ch, ch, ch, bn_x}, {1, 1}},
                 {"eval, relu(bn(x))", {bn_x, ch, ch, ch, ch, none}, {0, 1}},
                 {"ResNet-50 layer1 256 channels, training", {{1, 56, 56, 256}, {256}, {256}, {256}, {256}, none}, {1, 0}, true},
                 {"ResNet-50 layer3 1024 channels, eval, residual and ReLU",
                  {{1, 14, 14, 1024}, {1024}, {1024}, {1024}, {1024}, {1, 14, 14, 1024}},
                  {0, 1},
                  true}},
       .inputs = batch_norm_inputs,
       .run =
           [](const std::vector<Tensor>& t, const Case& c) {
             return ops::batch_norm(t[0], t[1], t[2], t[3], t[4],
                                    {.training = c.params[0] != 0, .eps = static_cast<float>(kEps), .residual = t[5],
                                     .relu = c.params[1] != 0});
           },
       .reference = batch_norm_reference},
      activation_row("relu", [](double x) { return std::max(x, 0.0); }, 0.0, 1e-6, ops::relu),
      // (expf differs by an ulp or two between the CPU's and CUDA's libraries: no agreement promised)
      activation_row("silu", [](double x) { return x / (1.0 + std::exp(-x)); }, 1e-6, -1, ops::silu),
      sum_row("add", false),
      sum_row("add_relu", true),
      {.op = "max_pool2d",
       .params_meaning = "window, stride, padding, ceil_mode",
       .dtypes = both_dtypes(),
       .activations = {0},
       .bf16_rounded = {0},
       .differentiable = {0},
       .tolerance_f32 = 0.0,  // a max picks an input: exact
       .tolerance_bf16 = 0.0,
       .grad_tolerance_f32 = 1e-6,
       .grad_tolerance_bf16 = 1e-2,
       .cpu_agreement = 1e-6,
       .cases = {{"3x3 stride 2 padding 1", {{2, 7, 7, 3}}, {3, 2, 1, 0}},
                 {"2x2 stride 2", {{1, 6, 6, 2}}, {2, 2, 0, 0}},
                 {"3x3 stride 2, ceil mode", {{1, 6, 6, 2}}, {3, 2, 0, 1}},
                 {"ResNet-50 stem", {{1, 112, 112, 64}}, {3, 2, 1, 0}, true}},
       .inputs = shuffled_ramp,
       .run =
           [](const std::vector<Tensor>& t, const Case& c) {
             return ops::max_pool2d(t[0], c.params[0], c.params[1], c.params[2], c.params[3] != 0);
           },
       .reference = max_pool_reference},
      {.op = "global_avg_pool",
       .dtypes = both_dtypes(),
       .activations = {0},
       .bf16_rounded = {0},
       .differentiable = {0},
       .tolerance_f32 = 1e-6,
       .tolerance_bf16 = 5e-3,
       .grad_tolerance_f32 = 1e-6,
       .grad_tolerance_bf16 = 1e-2,
       .cases = {{"odd sizes", {{2, 3, 4, 5}}, {}}, {"ResNet-50 head", {{1, 7, 7, 2048}}, {}, true}},
       .inputs = uniform_inputs,
       .run = [](const std::vector<Tensor>& t, const Case&) { return ops::global_avg_pool(t[0]); },
       .reference = global_avg_pool_reference},
      {.op = "linear",
       .dtypes = both_dtypes(),  // bf16: the input is cast up; the head computes in fp32
       .activations = {0},
       .bf16_rounded = {0},
       .differentiable = {0, 1, 2},
       .tolerance_f32 = 2e-6,  // sums of 2048 products: 1.5e-7 measured
       .tolerance_bf16 = 2e-6,
       .grad_tolerance_f32 = 1e-6,
       .grad_tolerance_bf16 = 1e-2,
       .cases = {{"with bias", {{4, 7}, {3, 7}, {3}}, {}},
                 {"without bias", {{1, 5}, {2, 5}, none}, {}},
                 {"ResNet-50 head, batch 8", {{8, 2048}, {1, 2048}, {1}}, {}, true}},
       .inputs = uniform_inputs,
       .run = [](const std::vector<Tensor>& t, const Case&) { return ops::linear(t[0], t[1], t[2]); },
       .reference = linear_reference,
       .flops = [](const Case& c) { return 2.0 * double(c.shapes[0][0] * c.shapes[0][1] * c.shapes[1][0]); }},
      loss_row("mse_loss", kernels::LossKind::mse),
      loss_row("l1_loss", kernels::LossKind::l1),
      loss_row("smooth_l1_loss", kernels::LossKind::smooth_l1),
      {.op = "cross_entropy",
       .params_meaning = "label smoothing, in hundredths",
       .dtypes = both_dtypes(),  // bf16: the logits are cast up; the loss computes in fp32 (double sums)
       .activations = {0},
       .bf16_rounded = {0},
       .differentiable = {0},
       .tolerance_f32 = 1e-6,
       .tolerance_bf16 = 1e-6,
       .grad_tolerance_f32 = 1e-6,
       .grad_tolerance_bf16 = 1e-2,
       .cpu_agreement = 1e-6,
       .cases = {{"4 images, 10 classes", {{4, 10}, {4}}, {0}},
                 {"label smoothing 0.1", {{5, 7}, {5, 1}}, {10}},
                 {"one class", {{3, 1}, {3}}, {0}},
                 {"ImageNet's 1000 classes, batch 2", {{2, 1000}, {2}}, {10}, true},
                 {"past the threading threshold", {{40, 1001}, {40}}, {0}}},
       .inputs = logits_and_labels,
       .run = [](const std::vector<Tensor>& t, const Case& c) {
         return ops::cross_entropy(t[0], t[1], static_cast<float>(c.params[0]) / 100.0f);
       },
       .reference = cross_entropy_reference},
      {.op = "prelu",  // forward only: the face detector's inference
       .dtypes = f32_only(),
       .activations = {0},
       .tolerance_f32 = 1e-7,
       .cases = {{"channels last", {{2, 3, 4, 5}, {5}}, {}}, {"MTCNN's first layer", {{1, 46, 46, 10}, {10}}, {}}},
       .inputs = uniform_inputs,
       .run = [](const std::vector<Tensor>& t, const Case&) { return ops::prelu(t[0], t[1]); },
       .reference = prelu_reference},
      {.op = "softmax",  // forward only: the face detector's inference
       .dtypes = f32_only(),
       .activations = {0},
       .tolerance_f32 = 1e-6,
       .cases = {{"rows of 7", {{3, 7}}, {}}, {"face or not (MTCNN)", {{500, 2}}, {}}},
       .inputs =
           [](const Case& c, uint64_t seed) {
             Rng rng(seed);
             return std::vector<Tensor>{uniform(c.shapes[0], rng, -20, 20)};  // large logits: the shift matters
           },
       .run = [](const std::vector<Tensor>& t, const Case&) { return ops::softmax(t[0]); },
       .reference = softmax_reference},
  };
}

}  // namespace

const std::vector<Row>& rows() {
  static const std::vector<Row> table = make_rows();
  return table;
}

Values values(const Tensor& t) {
  if (!t.defined()) return {};
  const std::vector<float> v = t.to_vector();  // from any device, bf16 widened
  return Values(v.begin(), v.end());
}

namespace {
bool listed(const std::vector<int>& v, size_t i) { return std::find(v.begin(), v.end(), static_cast<int>(i)) != v.end(); }
}  // namespace

std::vector<Tensor> leaves(const Row& row, const std::vector<Tensor>& host, Device device, bool with_grad) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < host.size(); ++i) {
    Tensor leaf = host[i].defined() ? host[i].to(device) : Tensor();
    if (leaf.defined() && leaf.same_as(host[i])) leaf = leaf.clone();
    if (leaf.defined() && with_grad && listed(row.differentiable, i)) leaf.set_requires_grad();
    out.push_back(leaf);
  }
  return out;
}

std::vector<Tensor> args(const Row& row, const std::vector<Tensor>& leaves, DType dtype) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const bool cast = leaves[i].defined() && dtype == DType::bf16 && listed(row.activations, i);
    out.push_back(cast ? ops::cast(leaves[i], DType::bf16) : leaves[i]);
  }
  return out;
}

std::string Target::name() const {
  std::string n = device_name(device);
  if (reference) return n + " reference";
  return device == Device::cuda ? n + " " + kernels::backend_name(backend) : n;
}

std::vector<Target> targets(bool with_reference) {
  using kernels::Backend;
  std::vector<Target> t{{Device::cpu, Backend::native}};
  if (with_reference) t.push_back({Device::cpu, Backend::native, true});
  if (kernels::cuda_device_count() > 0) {
    t.push_back({Device::cuda, Backend::native});
    if (kernels::cudnn_compiled()) t.push_back({Device::cuda, Backend::cudnn});
    if (with_reference) t.push_back({Device::cuda, Backend::native, true});
  }
  return t;
}

RunScope::RunScope(const Target& target, DType dtype)
    : saved_(kernels::kernel_options()),
      mode_(dtype == DType::bf16 ? kernels::MathMode::bf16 : kernels::MathMode::fp32) {
  kernels::KernelOptions o = saved_;
  o.conv = o.batch_norm = target.backend;
  o.reference = target.reference;
  kernels::set_kernel_options(o);
}

RunScope::~RunScope() { kernels::set_kernel_options(saved_); }

const Row& row(std::string_view op) {
  for (const Row& r : rows())
    if (r.op == op) return r;
  throw Error("op table: no row for the op '" + std::string(op) + "'");
}

}  // namespace hotlap::op_table
