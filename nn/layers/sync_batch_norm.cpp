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
// Sums in double, three all-reduces a call (two forward, one backward). Plain loops: this is the
// readable version, the one the two-rank tests hold to one process's batch norm.
#include <cmath>
#include <vector>

#include "kernels/comm.h"
#include "kernels/error.h"
#include "nn/layers/ops.h"
#include "nn/runtime/autograd.h"

namespace hotlap::ops {

Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, const BatchNormOptions& o) {
  namespace comm = kernels::comm;
  if (comm::world().size == 1 || !o.training)
    return batch_norm(x, gamma, beta, running_mean, running_var, o);
  HOTLAP_CHECK(x.device() == Device::cpu && x.dtype() == DType::f32, "sync_batch_norm: CPU f32 tensors only, not ",
               x.describe());
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
  for (int64_t k = 0; k < c; ++k) {
    const double var = squares[static_cast<size_t>(k)] / total;
    save_mean.f32()[k] = static_cast<float>(mean[static_cast<size_t>(k)]);
    save_invstd.f32()[k] = static_cast<float>(1.0 / std::sqrt(var + o.eps));
    if (running_mean.defined())
      running_mean.f32()[k] = static_cast<float>((1.0 - o.momentum) * running_mean.f32()[k] +
                                                 o.momentum * mean[static_cast<size_t>(k)]);
    if (running_var.defined())
      running_var.f32()[k] = static_cast<float>((1.0 - o.momentum) * running_var.f32()[k] +
                                                o.momentum * var * total / (total - 1.0));
  }
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

}  // namespace hotlap::ops
