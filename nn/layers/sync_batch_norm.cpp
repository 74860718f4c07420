// Batch norm over the ranks of a data-parallel job (ops::sync_batch_norm, nn/layers/ops.h).
//
// With R rows (N*H*W) on this rank and T over all ranks, per channel c:
//   forward   mean = sum_ranks(sum x) / T;  var = sum_ranks(sum (x - mean)^2) / T (two passes, so a
//             mean far from zero costs no precision); y = relu?((x - mean) * invstd * gamma + beta
//             + residual); the running variance takes the unbiased var * T / (T - 1).
//   backward  g = dy through the ReLU mask (and that is the residual's gradient); with
//             xhat = (x - mean) * invstd, G1 = sum_ranks(sum g), G2 = sum_ranks(sum g * xhat):
//             dx = gamma * invstd * (g - G1 / T - xhat * G2 / T); dgamma += sum g * xhat and
//             dbeta += sum g over this rank's rows.
// Sums in double, three all-reduces a call (two forward, one backward). Plain loops on the CPU: the
// readable version, the one the two-rank tests hold to one process's batch norm. GPU tensors take
// sync_batch_norm_by_kernels (below): the same sums, from the batch-norm kernels.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/comm.h"
#include "kernels/error.h"
#include "nn/layers/ops.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/dispatch.h"

namespace hotlap::ops {

namespace {

// running = (1 - momentum) * running + momentum * the job's statistic, the variance unbiased
// (var * T / (T - 1)), on the running tensors' own device (through a host copy of their C floats).
// mean and var: the job's, per channel, in double; total: T, the values per channel over the ranks.
void update_running(const Tensor& running_mean, const Tensor& running_var, const std::vector<double>& mean,
                    const std::vector<double>& var, double total, float momentum) {
  if (running_mean.defined()) {
    std::vector<float> r = running_mean.to_vector();
    for (size_t k = 0; k < r.size(); ++k) r[k] = static_cast<float>((1.0 - momentum) * r[k] + momentum * mean[k]);
    Tensor target = running_mean;  // a handle on the buffer
    target.copy_from(Tensor::from_vector(running_mean.shape(), r));
  }
  if (running_var.defined()) {
    std::vector<float> r = running_var.to_vector();
    for (size_t k = 0; k < r.size(); ++k)
      r[k] = static_cast<float>((1.0 - momentum) * r[k] + momentum * var[k] * total / (total - 1.0));
    Tensor target = running_var;
    target.copy_from(Tensor::from_vector(running_var.shape(), r));
  }
}

}  // namespace

Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, const BatchNormOptions& o) {
  namespace comm = kernels::comm;
  if (comm::world().size == 1 || !o.training)
    return batch_norm(x, gamma, beta, running_mean, running_var, o);
  HOTLAP_CHECK(x.dtype() == DType::f32, "sync_batch_norm: f32 tensors only (--precision fp32 or tf32), not ",
               x.describe());
  if (x.device() != Device::cpu) return sync_batch_norm_by_kernels(x, gamma, beta, running_mean, running_var, o);
  const int64_t c = x.dim(-1), rows = x.numel() / c;
  HOTLAP_CHECK(gamma.numel() == c && beta.numel() == c, "sync_batch_norm: parameters for ", c, " channels");
  const Tensor& residual = o.residual;
  HOTLAP_CHECK(!residual.defined() || (residual.shape() == x.shape() && residual.dtype() == DType::f32),
               "sync_batch_norm: residual ", residual.defined() ? residual.describe() : "", " for ", x.describe());
  const float* px = x.f32();
  // The mean: the sums and the row count over every rank.
  std::vector<double> sums(static_cast<size_t>(c) + 1, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) sums[static_cast<size_t>(k)] += px[r * c + k];
  sums[static_cast<size_t>(c)] = static_cast<double>(rows);
  comm::allreduce_sum(sums.data(), c + 1, "sync_batch_norm's sums");
  const double total = sums[static_cast<size_t>(c)];
  HOTLAP_CHECK(total > 1, "sync_batch_norm: training needs more than one value per channel over the ranks");
  std::vector<double> mean(static_cast<size_t>(c)), squares(static_cast<size_t>(c), 0.0);
  for (int64_t k = 0; k < c; ++k) mean[static_cast<size_t>(k)] = sums[static_cast<size_t>(k)] / total;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k) {
      const double d = px[r * c + k] - mean[static_cast<size_t>(k)];
      squares[static_cast<size_t>(k)] += d * d;
    }
  comm::allreduce_sum(squares.data(), c, "sync_batch_norm's squares");
  Tensor save_mean = Tensor::empty({c}), save_invstd = Tensor::empty({c});
  std::vector<double> var(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) {
    var[static_cast<size_t>(k)] = squares[static_cast<size_t>(k)] / total;
    save_mean.f32()[k] = static_cast<float>(mean[static_cast<size_t>(k)]);
    save_invstd.f32()[k] = static_cast<float>(1.0 / std::sqrt(var[static_cast<size_t>(k)] + o.eps));
  }
  update_running(running_mean, running_var, mean, var, total, o.momentum);
  Tensor y = Tensor::empty(x.shape());
  {
    float* py = y.f32();
    const float *m = save_mean.f32(), *is = save_invstd.f32(), *g = gamma.f32(), *b = beta.f32();
    const float* pr = residual.defined() ? residual.f32() : nullptr;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < c; ++k) {
        float v = (px[r * c + k] - m[k]) * is[k] * g[k] + b[k];
        if (pr) v += pr[r * c + k];
        py[r * c + k] = o.relu && !(v > 0.0f) && !std::isnan(v) ? 0.0f : v;
      }
  }
  const Tensor y_saved = y.detach();
  const bool relu = o.relu;
  Autograd::record("sync_batch_norm", {x, gamma, beta, residual}, y, [=](const Tensor& grad_out) {
    const Tensor grad = grad_out.to(DType::f32);
    const float* dy = grad.f32();
    const float *m = save_mean.f32(), *is = save_invstd.f32(), *pg = gamma.f32();
    // g: the gradient at the batch norm's output (and the residual's), through the ReLU mask.
    std::vector<float> g(static_cast<size_t>(rows * c));
    for (int64_t i = 0; i < rows * c; ++i) g[static_cast<size_t>(i)] = relu && !(y_saved.f32()[i] > 0.0f) ? 0.0f : dy[i];
    if (residual.defined() && residual.requires_grad()) {
      GradSink dres(residual);
      std::copy(g.begin(), g.end(), dres.data());
      dres.commit();
    }
    std::vector<double> local(static_cast<size_t>(2 * c), 0.0);  // sum g, then sum g * xhat
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < c; ++k) {
        const double gv = g[static_cast<size_t>(r * c + k)];
        local[static_cast<size_t>(k)] += gv;
        local[static_cast<size_t>(c + k)] += gv * ((px[r * c + k] - m[k]) * is[k]);
      }
    if (gamma.requires_grad()) {
      float* dg = Autograd::grad_accumulator(gamma);
      for (int64_t k = 0; k < c; ++k) dg[k] += static_cast<float>(local[static_cast<size_t>(c + k)]);
    }
    if (beta.requires_grad()) {
      float* db = Autograd::grad_accumulator(beta);
      for (int64_t k = 0; k < c; ++k) db[k] += static_cast<float>(local[static_cast<size_t>(k)]);
    }
    std::vector<double> global = local;
    comm::allreduce_sum(global.data(), 2 * c, "sync_batch_norm's gradient sums");
    if (x.requires_grad()) {
      GradSink dx(x);
      float* pdx = dx.data();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < c; ++k) {
          const double xhat = (px[r * c + k] - m[k]) * is[k];
          pdx[r * c + k] = static_cast<float>(pg[k] * is[k] *
                                              (g[static_cast<size_t>(r * c + k)] - global[static_cast<size_t>(k)] / total -
                                               xhat * global[static_cast<size_t>(c + k)] / total));
        }
      dx.commit();
    }
  });
  return y;
}

// ---- from the kernels ------------------------------------------------------------------------------
//
// forward  1. the training kernel on this rank's rows gives its mean m_r and 1/sqrt(var_r + eps)
//             (its output is discarded); on the host, in double: mean = sum_ranks(rows_r m_r) / T,
//             var = sum_ranks(rows_r (var_r + (m_r - mean)^2)) / T (two all-reduces, as above);
//          2. y from the eval-mode kernel, given mean and var as its "running" statistics, with the
//             epilogue.
// backward 1. g as above; the eval-mode backward, given mean and var, sums g * xhat and g per
//             channel (its dx not asked for): this rank's dgamma and dbeta, and after one
//             all-reduce G2 and G1;
//          2. g - G1 / T - xhat * G2 / T is the eval-mode forward of x with gamma' = -G2 / T,
//             beta' = -G1 / T and g as the residual; dx is the eval-mode backward of that (gamma *
//             invstd times it).
Tensor sync_batch_norm_by_kernels(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                                  const Tensor& running_var, const BatchNormOptions& o) {
  namespace comm = kernels::comm;
  HOTLAP_CHECK(x.dtype() == DType::f32, "sync_batch_norm: f32 tensors only, not ", x.describe());
  const Device dev = x.device();
  const int64_t c = x.dim(-1), rows = x.numel() / c;
  const kernels::BatchNormShape s{.rows = rows, .c = c};
  HOTLAP_CHECK(gamma.numel() == c && beta.numel() == c, "sync_batch_norm: parameters for ", c, " channels");
  const Tensor& residual = o.residual;
  HOTLAP_CHECK(!residual.defined() || (residual.shape() == x.shape() && residual.dtype() == DType::f32 &&
                                       residual.device() == dev),
               "sync_batch_norm: residual ", residual.defined() ? residual.describe() : "", " for ", x.describe());
  // This rank's statistics.
  Tensor local_mean = Tensor::empty({c}, DType::f32, dev), local_invstd = Tensor::empty({c}, DType::f32, dev);
  {
    Tensor discarded = Tensor::empty(x.shape(), DType::f32, dev);
    dispatch::batch_norm_forward_train(dev, s, x.f32(), gamma.f32(), beta.f32(), o.eps, o.momentum, nullptr, nullptr,
                                      discarded.f32(), local_mean.f32(), local_invstd.f32(),
                                      kernels::BatchNormEpilogue{});
  }
  const std::vector<float> m = local_mean.to_vector(), is = local_invstd.to_vector();
  // The job's, in double.
  std::vector<double> sums(static_cast<size_t>(c) + 1);
  for (int64_t k = 0; k < c; ++k) sums[static_cast<size_t>(k)] = static_cast<double>(rows) * m[static_cast<size_t>(k)];
  sums[static_cast<size_t>(c)] = static_cast<double>(rows);
  comm::allreduce_sum(sums.data(), c + 1, "sync_batch_norm's sums");
  const double total = sums[static_cast<size_t>(c)];
  HOTLAP_CHECK(total > 1, "sync_batch_norm: training needs more than one value per channel over the ranks");
  std::vector<double> squares(static_cast<size_t>(c)), mean(static_cast<size_t>(c)), var(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) {
    const size_t i = static_cast<size_t>(k);
    const double local_var = std::max(0.0, 1.0 / (double(is[i]) * is[i]) - o.eps);
    mean[i] = sums[i] / total;
    squares[i] = static_cast<double>(rows) * (local_var + (m[i] - mean[i]) * (m[i] - mean[i]));
  }
  comm::allreduce_sum(squares.data(), c, "sync_batch_norm's squares");
  for (int64_t k = 0; k < c; ++k) var[static_cast<size_t>(k)] = squares[static_cast<size_t>(k)] / total;
  update_running(running_mean, running_var, mean, var, total, o.momentum);
  const std::vector<float> mean_f(mean.begin(), mean.end()), var_f(var.begin(), var.end());
  const Tensor job_mean = Tensor::from_vector({c}, mean_f).to(dev), job_var = Tensor::from_vector({c}, var_f).to(dev);
  Tensor y = Tensor::empty(x.shape(), DType::f32, dev);
  dispatch::batch_norm_forward_eval(dev, s, x.f32(), gamma.f32(), beta.f32(), job_mean.f32(), job_var.f32(), o.eps,
                                   y.f32(), kernels::BatchNormEpilogue{residual.defined() ? residual.f32() : nullptr, o.relu});
  const Tensor y_saved = y.detach();
  const bool relu = o.relu;
  const float eps = o.eps;
  Autograd::record("sync_batch_norm", {x, gamma, beta, residual}, y, [=](const Tensor& grad_out) {
    const Tensor grad = grad_out.to(DType::f32);
    // g: the gradient at the batch norm's output (and the residual's), through the ReLU mask.
    Tensor g = grad;
    if (relu) {
      g = Tensor::empty(x.shape(), DType::f32, dev);
      dispatch::activation_backward<kernels::Relu>(dev, g.numel(), y_saved.f32(), grad.f32(), g.f32());
    }
    if (residual.defined() && residual.requires_grad()) {
      GradSink dres(residual);
      dispatch::copy(dev, g.numel(), g.f32(), dres.data());
      dres.commit();
    }
    // This rank's sums of g * xhat and g.
    Tensor sum_gx = Tensor::zeros({c}, DType::f32, dev), sum_g = Tensor::zeros({c}, DType::f32, dev);
    dispatch::batch_norm_backward_eval(dev, s, x.f32(), g.f32(), gamma.f32(), job_mean.f32(), job_var.f32(), eps,
                                      static_cast<float*>(nullptr), sum_gx.f32(), sum_g.f32());
    if (gamma.requires_grad()) dispatch::accumulate(dev, c, sum_gx.f32(), Autograd::grad_accumulator(gamma));
    if (beta.requires_grad()) dispatch::accumulate(dev, c, sum_g.f32(), Autograd::grad_accumulator(beta));
    if (!x.requires_grad()) return;
    const std::vector<float> local_g = sum_g.to_vector(), local_gx = sum_gx.to_vector();
    std::vector<double> global(static_cast<size_t>(2 * c));
    for (int64_t k = 0; k < c; ++k) {
      global[static_cast<size_t>(k)] = local_g[static_cast<size_t>(k)];
      global[static_cast<size_t>(c + k)] = local_gx[static_cast<size_t>(k)];
    }
    comm::allreduce_sum(global.data(), 2 * c, "sync_batch_norm's gradient sums");
    std::vector<float> shift(static_cast<size_t>(c)), slope(static_cast<size_t>(c));
    for (int64_t k = 0; k < c; ++k) {
      shift[static_cast<size_t>(k)] = static_cast<float>(-global[static_cast<size_t>(k)] / total);
      slope[static_cast<size_t>(k)] = static_cast<float>(-global[static_cast<size_t>(c + k)] / total);
    }
    const Tensor slope_t = Tensor::from_vector({c}, slope).to(dev), shift_t = Tensor::from_vector({c}, shift).to(dev);
    Tensor centred = Tensor::empty(x.shape(), DType::f32, dev);  // g - G1 / T - xhat * G2 / T
    dispatch::batch_norm_forward_eval(dev, s, x.f32(), slope_t.f32(), shift_t.f32(), job_mean.f32(), job_var.f32(), eps,
                                     centred.f32(), kernels::BatchNormEpilogue{g.f32(), false});
    GradSink dx(x);
    dispatch::batch_norm_backward_eval(dev, s, x.f32(), centred.f32(), gamma.f32(), job_mean.f32(), job_var.f32(), eps,
                                      dx.data(), nullptr, nullptr);
    dx.commit();
  });
  return y;
}

}  // namespace hotlap::ops
