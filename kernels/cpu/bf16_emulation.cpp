// The CPU's bf16 convolution, batch norm and pools: each is the fp32 kernel of its family run through Bf16Emulation
// (kernels/cpu/bf16_emulation.h): widened inputs, fp32 compute, outputs rounded to bf16 once.
// An emulation for correctness and tests, not speed: it adds a conversion pass per operand.
#include "kernels/cpu/bf16_emulation.h"

#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/conv.h"
#include "kernels/pool.h"

namespace hotlap::kernels::cpu {

float* Bf16Emulation::scratch(int64_t n) {
  buffers_.push_back(std::make_unique<float[]>(static_cast<size_t>(n > 0 ? n : 1)));
  return buffers_.back().get();
}

const float* Bf16Emulation::widen(const bfloat16* x, int64_t n) {
  if (x == nullptr) return nullptr;
  float* f = scratch(n);
  bf16_to_f32(n, x, f);
  return f;
}

float* Bf16Emulation::output(bfloat16* y, int64_t n) {
  if (y == nullptr) return nullptr;
  float* f = scratch(n);
  outputs_.push_back({y, f, n});
  return f;
}

float* Bf16Emulation::in_out(bfloat16* y, int64_t n) {
  float* f = output(y, n);
  if (f != nullptr) bf16_to_f32(n, y, f);
  return f;
}

void Bf16Emulation::round_outputs() {
  for (const Output& o : outputs_) f32_to_bf16(o.n, o.values, o.destination);
  outputs_.clear();
}

// ---- convolution ---------------------------------------------------------------------------------

namespace {
int64_t input_elements(const ConvShape& s) { return s.n * s.h * s.w * s.c; }
int64_t weight_elements(const ConvShape& s) { return s.k * s.r * s.s * s.c; }
int64_t output_elements(const ConvShape& s) { return s.n * s.p() * s.q() * s.k; }
}  // namespace

void conv2d_forward(const ConvShape& s, const bfloat16* x, const bfloat16* w, const float* bias,
                         bfloat16* y, float* workspace) {
  Bf16Emulation e;
  conv2d_forward(s, e.widen(x, input_elements(s)), e.widen(w, weight_elements(s)), bias,
                 e.output(y, output_elements(s)), workspace);
  e.round_outputs();
}

void conv2d_backward_data(const ConvShape& s, const bfloat16* dy, const bfloat16* w, bfloat16* dx,
                               float* workspace) {
  Bf16Emulation e;
  conv2d_backward_data(s, e.widen(dy, output_elements(s)), e.widen(w, weight_elements(s)),
                       e.output(dx, input_elements(s)), workspace);
  e.round_outputs();
}

void conv2d_backward_filter(const ConvShape& s, const bfloat16* x, const bfloat16* dy, float* dw,
                                 float* dbias, float* workspace) {
  Bf16Emulation e;
  conv2d_backward_filter(s, e.widen(x, input_elements(s)), e.widen(dy, output_elements(s)), dw, dbias,
                         workspace);
}

// ---- batch norm ------------------------------------------------------------------------------------

void batch_norm_forward_train(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                  const float* beta, float eps, float momentum, float* running_mean,
                                  float* running_var, bfloat16* y, float* save_mean,
                                  float* save_invstd, const BatchNormEpilogueBf16& epilogue) {
  const int64_t n = s.rows * s.c;
  Bf16Emulation e;
  batch_norm_forward_train(s, e.widen(x, n), gamma, beta, eps, momentum, running_mean, running_var,
                          e.output(y, n), save_mean, save_invstd,
                          {e.widen(epilogue.residual, n), epilogue.relu});
  e.round_outputs();
}

void batch_norm_forward_eval(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                 const float* beta, const float* running_mean,
                                 const float* running_var, float eps, bfloat16* y,
                                 const BatchNormEpilogueBf16& epilogue) {
  const int64_t n = s.rows * s.c;
  Bf16Emulation e;
  batch_norm_forward_eval(s, e.widen(x, n), gamma, beta, running_mean, running_var, eps,
                         e.output(y, n), {e.widen(epilogue.residual, n), epilogue.relu});
  e.round_outputs();
}

void batch_norm_backward(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                             const float* gamma, const float* save_mean, const float* save_invstd,
                             bfloat16* dx, float* dgamma, float* dbeta) {
  const int64_t n = s.rows * s.c;
  Bf16Emulation e;
  batch_norm_backward(s, e.widen(x, n), e.widen(dy, n), gamma, save_mean, save_invstd, e.output(dx, n),
                     dgamma, dbeta);
  e.round_outputs();
}

void batch_norm_backward_eval(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                                  const float* gamma, const float* running_mean,
                                  const float* running_var, float eps, bfloat16* dx, float* dgamma,
                                  float* dbeta) {
  const int64_t n = s.rows * s.c;
  Bf16Emulation e;
  batch_norm_backward_eval(s, e.widen(x, n), e.widen(dy, n), gamma, running_mean, running_var, eps,
                          e.output(dx, n), dgamma, dbeta);
  e.round_outputs();
}

// ---- pooling ---------------------------------------------------------------------------------------

void max_pool2d_forward(const PoolShape& s, const bfloat16* x, bfloat16* y, int32_t* indices) {
  Bf16Emulation e;
  max_pool2d_forward(s, e.widen(x, s.n * s.h * s.w * s.c), e.output(y, s.n * s.p() * s.q() * s.c),
                    indices);
  e.round_outputs();
}

void max_pool2d_backward(const PoolShape& s, const bfloat16* dy, const int32_t* indices,
                             bfloat16* dx) {
  Bf16Emulation e;
  max_pool2d_backward(s, e.widen(dy, s.n * s.p() * s.q() * s.c), indices,
                     e.output(dx, s.n * s.h * s.w * s.c));
  e.round_outputs();
}

void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const bfloat16* x, bfloat16* y) {
  Bf16Emulation e;
  global_avg_pool_forward(n, hw, c, e.widen(x, n * hw * c), e.output(y, n * c));
  e.round_outputs();
}

void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const bfloat16* dy,
                                  bfloat16* dx) {
  Bf16Emulation e;
  global_avg_pool_backward(n, hw, c, e.widen(dy, n * c), e.output(dx, n * hw * c));
  e.round_outputs();
}

}  // namespace hotlap::kernels::cpu
