// Element-wise kernels and the losses (regression, and the classifier's cross-entropy) on the CPU.
//
// Each op is one pass over its operands with a plain loop the compiler vectorises; large arrays are
// split across threads. ReLU after a ResNet-50 stem at batch 32 (25.7M floats): 1 FLOP per 8 bytes,
// so everything here runs against memory bandwidth, never against the ALUs.
//
// Reductions (bias gradient, losses) accumulate in double over fixed-size blocks whose partial sums
// are added in block order, so results do not depend on the thread count (design rule 6).
//
// Losses are means over the n elements, as PyTorch's reduction='mean':
//   mse       (p - t)^2                                         d/dp = 2 (p - t)
//   l1        |p - t|                                           d/dp = sign(p - t)   (0 at p == t)
//   smooth_l1 0.5 d^2 / beta  if |d| < beta,  |d| - 0.5 beta    d/dp = d / beta  or  sign(d)
//             (beta == 0 is L1, as in PyTorch)
#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/activation.h"
#include "kernels/cast.h"
#include "kernels/error.h"

namespace hotlap::kernels::cpu {

namespace {

// Elements; below this the threads cost more than they save.
constexpr int64_t kParallelMin = 1 << 16;
// Elements per partial sum of a reduction.
constexpr int64_t kBlock = 4096;

void check_n(const char* op, int64_t n) { HOTLAP_CHECK(n >= 0, op, ": negative length n=", n); }

// Sum over i < n of term(i), in double, in fixed blocks added in order.
template <typename Term>
double blocked_sum(int64_t n, Term term) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b * kBlock; i < end; ++i) s += term(i);
    partial[b] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

void check_loss(const char* op, int64_t n, float beta) {
  HOTLAP_CHECK(n > 0, op, ": empty input (n=", n, "); a mean over zero elements is undefined");
  HOTLAP_CHECK(beta >= 0.0f, op, ": smooth-L1 beta must be >= 0, got ", beta);
}

}  // namespace

void fill(int64_t n, float value, float* y) {
  check_n("fill", n);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

// ---- the sums, on either storage: fp32 arithmetic, each result stored (bf16: rounded once) -------

namespace {

// Storage to fp32 and back: a bf16 value widens exactly and rounds to nearest even.
inline float load(float v) { return v; }
inline float load(bfloat16 v) { return bf16_to_float(v); }
inline void store(float* p, float v) { *p = v; }
inline void store(bfloat16* p, float v) { *p = float_to_bf16(v); }

// y[i] = op(a[i], b[i]) in fp32. y may alias a or b.
template <typename T, typename Op>
void map2(const char* name, int64_t n, const T* a, const T* b, T* y, Op op) {
  check_n(name, n);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) store(&y[i], op(load(a[i]), load(b[i])));
}

template <typename T>
void copy_values(int64_t n, const T* x, T* y) {  // the bits as they are (a NaN's payload too)
  check_n("copy", n);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i];
}

}  // namespace

void copy(int64_t n, const float* x, float* y) { copy_values(n, x, y); }
void copy(int64_t n, const bfloat16* x, bfloat16* y) { copy_values(n, x, y); }

void add(int64_t n, const float* a, const float* b, float* y) {
  map2("add", n, a, b, y, [](float u, float v) { return u + v; });
}
void add(int64_t n, const bfloat16* a, const bfloat16* b, bfloat16* y) {
  map2("add", n, a, b, y, [](float u, float v) { return u + v; });
}

void accumulate(int64_t n, const float* x, float* y) {
  map2("accumulate", n, y, x, y, [](float u, float v) { return u + v; });
}
void accumulate(int64_t n, const bfloat16* x, bfloat16* y) {
  map2("accumulate", n, y, x, y, [](float u, float v) { return u + v; });
}

// y = max(a + b, 0), NaN kept: the end of every residual block.
void add_relu_forward(int64_t n, const float* a, const float* b, float* y) {
  map2("add_relu_forward", n, a, b, y, [](float u, float v) { return Relu::forward(u + v); });
}
void add_relu_forward(int64_t n, const bfloat16* a, const bfloat16* b, bfloat16* y) {
  map2("add_relu_forward", n, a, b, y, [](float u, float v) { return Relu::forward(u + v); });
}

void scale(int64_t n, float alpha, const float* x, float* y) {
  check_n("scale", n);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
}

// ---- activations (kernels/activation.h): one loop per direction, for every activation and storage --

template <typename Act, typename T>
void activation_forward(int64_t n, const T* x, T* y) {
  check_n(Act::name, n);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) store(&y[i], Act::forward(load(x[i])));
}

template <typename Act, typename T>
void activation_backward(int64_t n, const T* saved, const T* dy, T* dx) {
  check_n(Act::name, n);
  // Both operands are loaded unconditionally: with a load inside a branch (ReLU's), GCC emits
  // scalar code with a data-dependent jump (5 GB/s, mispredicted half the time); as a select it
  // vectorises (25-60 GB/s).
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) store(&dx[i], Act::backward(load(saved[i]), load(dy[i])));
}

HOTLAP_ACTIVATIONS(HOTLAP_ACTIVATION_KERNELS)

void prelu_forward(int64_t rows, int64_t c, const float* x, const float* slope, float* y) {
  check_n("prelu_forward", rows);
  check_n("prelu_forward", c);
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * c;
    float* yi = y + i * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) yi[j] = (xi[j] > 0.0f || std::isnan(xi[j])) ? xi[j] : slope[j] * xi[j];
  }
}

void softmax_forward(int64_t rows, int64_t c, const float* x, float* y) {
  check_n("softmax_forward", rows);
  check_n("softmax_forward", c);
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * c;
    float* yi = y + i * c;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < c; ++j) m = std::max(m, xi[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(static_cast<double>(xi[j]) - m);
    for (int64_t j = 0; j < c; ++j) yi[j] = static_cast<float>(std::exp(static_cast<double>(xi[j]) - m) / sum);
  }
}

void bias_add(int64_t rows, int64_t c, const float* bias, float* y) {
  HOTLAP_CHECK(rows >= 0 && c >= 0, "bias_add: bad shape rows=", rows, " c=", c);
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) yr[j] += bias[j];
  }
}

void bias_backward(int64_t rows, int64_t c, const float* dy, float* dbias) {
  HOTLAP_CHECK(rows >= 0 && c >= 0, "bias_backward: bad shape rows=", rows, " c=", c);
  if (rows == 0 || c == 0) return;
  // Blocks of rows, so each thread owns whole rows and sums along its contiguous channels.
  const int64_t block_rows = std::max<int64_t>(1, kBlock / c);
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  std::vector<double> partial(static_cast<size_t>(blocks * c), 0.0);
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    double* s = partial.data() + b * c;
    const int64_t end = std::min(rows, (b + 1) * block_rows);
    for (int64_t r = b * block_rows; r < end; ++r) {
      const float* dyr = dy + r * c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) s[j] += dyr[j];
    }
  }
  for (int64_t j = 0; j < c; ++j) {
    double total = 0.0;
    for (int64_t b = 0; b < blocks; ++b) total += partial[b * c + j];
    dbias[j] = static_cast<float>(dbias[j] + total);
  }
}

double loss_forward(LossKind kind, int64_t n, const float* pred, const float* target, float beta) {
  check_loss("loss_forward", n, beta);
  double sum = 0.0;
  switch (kind) {
    case LossKind::mse:
      sum = blocked_sum(n, [=](int64_t i) {
        const double d = static_cast<double>(pred[i]) - target[i];
        return d * d;
      });
      break;
    case LossKind::l1:
      sum = blocked_sum(
          n, [=](int64_t i) { return std::abs(static_cast<double>(pred[i]) - target[i]); });
      break;
    case LossKind::smooth_l1: {
      const double b = beta;
      sum = blocked_sum(n, [=](int64_t i) {
        const double d = std::abs(static_cast<double>(pred[i]) - target[i]);
        return d < b ? 0.5 * d * d / b : d - 0.5 * b;  // b == 0: never d < b, so |d| (L1)
      });
      break;
    }
    default:
      throw_error("loss_forward: unknown loss kind ", static_cast<int>(kind));
  }
  return sum / static_cast<double>(n);
}

void loss_backward(LossKind kind, int64_t n, const float* pred, const float* target, float beta,
                   float grad_scale, float* dpred) {
  check_loss("loss_backward", n, beta);
  const double norm = static_cast<double>(grad_scale) / static_cast<double>(n);
  switch (kind) {
    case LossKind::mse: {
      const float k = static_cast<float>(2.0 * norm);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) dpred[i] = k * (pred[i] - target[i]);
      break;
    }
    case LossKind::l1: {
      const float k = static_cast<float>(norm);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const float d = pred[i] - target[i];
        dpred[i] = d > 0.0f ? k : (d < 0.0f ? -k : 0.0f);
      }
      break;
    }
    case LossKind::smooth_l1: {
      const float k = static_cast<float>(norm);
      const float b = beta;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const float d = pred[i] - target[i];
        // |d| < beta (never when beta == 0): the quadratic part; else sign(d), 0 at d == 0.
        const float g = std::abs(d) < b ? d / b : (d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f));
        dpred[i] = k * g;
      }
      break;
    }
    default:
      throw_error("loss_backward: unknown loss kind ", static_cast<int>(kind));
  }
}

// ---- softmax cross-entropy ----------------------------------------------------------------------

}  // namespace hotlap::kernels::cpu

namespace hotlap::kernels {

void check_cross_entropy_args(const char* op, int64_t rows, int64_t classes, float smoothing) {
  HOTLAP_CHECK(rows > 0 && classes > 0, op, ": empty logits [", rows, ", ", classes,
               "]; a mean over zero rows is undefined");
  HOTLAP_CHECK(smoothing >= 0.0f && smoothing < 1.0f, op, ": label smoothing must be in [0, 1), got ", smoothing);
}

}  // namespace hotlap::kernels

namespace hotlap::kernels::cpu {

namespace {

void check_cross_entropy(const char* op, int64_t rows, int64_t classes, const float* labels, float smoothing) {
  check_cross_entropy_args(op, rows, classes, smoothing);
  for (int64_t i = 0; i < rows; ++i)
    HOTLAP_CHECK(is_class_index(labels[i], classes), op, ": label ", labels[i], " of row ", i,
                 " is not a class index in [0, ", classes, ")");
}

// Row i's largest logit and sum_j exp(x_ij - max), in double.
struct RowSoftmax {
  double max = 0.0, sum = 0.0;
};
RowSoftmax row_softmax(int64_t classes, const float* x) {
  RowSoftmax r;
  r.max = x[0];
  for (int64_t j = 1; j < classes; ++j) r.max = std::max(r.max, static_cast<double>(x[j]));
  for (int64_t j = 0; j < classes; ++j) r.sum += std::exp(static_cast<double>(x[j]) - r.max);
  return r;
}

// Rows in parallel when the logits are this many or more.
constexpr int64_t kCrossEntropyParallelMin = 1 << 14;

}  // namespace

double cross_entropy_forward(int64_t rows, int64_t classes, const float* logits, const float* labels,
                             float smoothing) {
  check_cross_entropy("cross_entropy_forward", rows, classes, labels, smoothing);
  const double e = smoothing, on_label = 1.0 - e, each = e / static_cast<double>(classes);
  std::vector<double> row_loss(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (rows * classes >= kCrossEntropyParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float* x = logits + i * classes;
    const RowSoftmax r = row_softmax(classes, x);
    double total = 0.0;
    for (int64_t j = 0; j < classes; ++j) total += x[j];
    const double lse = r.max + std::log(r.sum);
    row_loss[i] = lse - on_label * x[static_cast<int64_t>(labels[i])] - each * total;
  }
  double sum = 0.0;
  for (double l : row_loss) sum += l;  // in row order: the same at any thread count
  return sum / static_cast<double>(rows);
}

void cross_entropy_backward(int64_t rows, int64_t classes, const float* logits, const float* labels,
                            float smoothing, float grad_scale, float* dlogits) {
  check_cross_entropy("cross_entropy_backward", rows, classes, labels, smoothing);
  const double e = smoothing, on_label = 1.0 - e, each = e / static_cast<double>(classes);
  const double k = static_cast<double>(grad_scale) / static_cast<double>(rows);
#pragma omp parallel for schedule(static) if (rows * classes >= kCrossEntropyParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    const float* x = logits + i * classes;
    const RowSoftmax r = row_softmax(classes, x);
    const int64_t y = static_cast<int64_t>(labels[i]);
    for (int64_t j = 0; j < classes; ++j) {
      const double p = std::exp(static_cast<double>(x[j]) - r.max) / r.sum;
      dlogits[i * classes + j] = static_cast<float>(k * (p - each - (j == y ? on_label : 0.0)));
    }
  }
}

}  // namespace hotlap::kernels::cpu
