// Batch norm on cuDNN: cudnnBatchNormalizationForwardTraining, cudnnBatchNormalizationForwardInference
// and cudnnBatchNormalizationBackward (modes: below), over hotlap's rows x c NHWC
// data described as N = 1, H x W = rows, C = c (cudnn_batch_norm_dims, kernels/cudnn.h). Any split of
// the rows into N x H x W is the same bytes, and gives the same per-channel statistics, since SPATIAL
// mode reduces over N, H and W together; this one keeps N, which cuDNN's legacy batch norm caps
// (N > 65535 is refused in inference), at 1 for every batch size, where rows as N would fail from a
// batch of 21 at 56x56. The yardstick for the hand-written kernels of kernels/cuda/batch_norm.cu;
// memory-bound like them (training forward reads x twice and writes y once: 12 bytes per element).
//
// The contracts are the CPU's (kernels/batch_norm.h):
//  - running statistics: cuDNN's exponentialAverageFactor is PyTorch's momentum
//    (running = (1 - factor) * running + factor * batch statistic), and cuDNN updates the running
//    variance with the unbiased batch variance (rows / (rows - 1)), as PyTorch and the CPU do.
//  - save_mean / save_invstd are cuDNN's resultSaveMean / resultSaveInvVariance; the latter is
//    1 / sqrt(var + eps), despite its name.
//  - dgamma and dbeta accumulate: cudnnBatchNormalizationBackward with betaParamDiff = 1.
//  - the epilogue (residual, ReLU) is a second pass (kernels/cudnn/elementwise.cu): cuDNN's fused
//    add + ReLU (cudnnBatchNormalizationForwardTrainingEx) takes half-precision data only.
//  - eval-mode backward has no cuDNN call: dx and dy * xhat come from one element-wise kernel, and
//    the per-channel sums from cudnnConvolutionBackwardBias (beta = 1, so they accumulate).
// Training forward and backward run in CUDNN_BATCHNORM_SPATIAL_PERSISTENT mode, cuDNN's fast path
// for NHWC data (what PyTorch asks cuDNN for with channels-last batch norm). On an H200 the plain
// SPATIAL mode ran these NHWC calls at 60-140 GB/s, against 1500-3000 GB/s for the hand-written
// kernels (bench/NOTES.md), which made it no yardstick. cuDNN documents that the persistent mode's
// scaled integer reduction may overflow on inputs of a very wide range (for the NCHW layout); the
// GPU tests compare every output with the CPU's. Where cuDNN does not support the persistent mode
// for a shape, the call runs again in SPATIAL mode (nothing is queued by a refused call). Inference,
// one pass with no reduction, stays in SPATIAL mode.
//
// bf16 (the *_bf16 entry points): the data descriptor is CUDNN_DATA_BFLOAT16 and cuDNN derives an
// fp32 one for gamma, beta and the statistics; the epilogue and the eval-mode element-wise kernel
// have bf16 twins, and the eval backward's dbeta sums a widened copy of dy (in the same workspace
// as dy * xhat, one after the other). Half the activation bytes. Whether the legacy API takes bf16
// depends on the cuDNN version and the GPU: a refusal is noted for the process before the call
// throws (set_batch_norm_bf16_refused, kernels/cudnn.h), and nn's dispatch then uses the hand-written
// bf16 kernel instead. Nothing has been queued when cuDNN refuses, so no output is half-written.
#include "kernels/cast.h"
#include "kernels/cudnn.h"
#include "kernels/cudnn/check.h"
#include "kernels/cudnn/descriptors.h"
#include "kernels/cudnn/elementwise.h"
#include "kernels/error.h"

namespace hotlap::kernels::cudnn {

namespace {

constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;
constexpr cudnnBatchNormMode_t kTrainMode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;

// call(mode) in the persistent mode, or again in SPATIAL mode where cuDNN refuses that one.
template <typename Call>
cudnnStatus_t in_train_mode(Call call) {
  const cudnnStatus_t status = call(kTrainMode);
  if (status != CUDNN_STATUS_NOT_SUPPORTED) return status;
  char discard[256];
  cudnnGetLastErrorString(discard, sizeof(discard));
  return call(kMode);
}
const float kOne = 1.0f, kZero = 0.0f;

void check_shape(const char* op, const BatchNormShape& s) {
  HOTLAP_CHECK(s.rows >= 0 && s.c >= 0, op, ": bad shape rows=", s.rows, " c=", s.c,
               " (both must be >= 0)");
}

void check_eps(const char* op, float eps) {
  HOTLAP_CHECK(eps >= CUDNN_BN_MIN_EPSILON, op, ": eps = ", eps, " is below cuDNN's minimum ",
               CUDNN_BN_MIN_EPSILON);
}

// The data type of activations stored as T (float, or bfloat16).
template <typename T>
constexpr cudnnDataType_t data_type() {
  return sizeof(T) == sizeof(float) ? CUDNN_DATA_FLOAT : CUDNN_DATA_BFLOAT16;
}

void epilogue(int64_t n, float* y, const float* residual, bool relu) {
  detail::apply_epilogue(n, y, residual, relu);
}
void epilogue(int64_t n, bfloat16* y, const bfloat16* residual, bool relu) {
  detail::apply_epilogue(n, y, residual, relu);
}
void eval_backward_elementwise(const BatchNormShape& s, const float* x, const float* dy,
                               const float* gamma, const float* mean, const float* var, float eps,
                               float* dx, float* dy_xhat) {
  detail::batch_norm_eval_backward_elementwise(s.rows, s.c, x, dy, gamma, mean, var, eps, dx, dy_xhat);
}
void eval_backward_elementwise(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                               const float* gamma, const float* mean, const float* var, float eps,
                               bfloat16* dx, float* dy_xhat) {
  detail::batch_norm_eval_backward_elementwise(s.rows, s.c, x, dy, gamma, mean, var, eps, dx,
                                                   dy_xhat);
}

// The rows x c data as cuDNN's 1 x H x W x c tensor (kernels/cudnn.h says why).
void set_rows_desc(TensorDesc& desc, const BatchNormShape& s, const char* op,
                   cudnnDataType_t type = CUDNN_DATA_FLOAT) {
  const CudnnBatchNormDims d = cudnn_batch_norm_dims(s.rows);
  desc.set_nhwc(d.n, s.c, d.h, d.w, op, type);
}

// Throws the Error for a failed cuDNN batch-norm call. A bf16 call that cuDNN refuses for its
// configuration is noted first (kernels/cudnn.h), so that nn's dispatch stops asking.
void check_batch_norm_status(cudnnStatus_t status, cudnnDataType_t type, const char* call,
                            const char* op, const BatchNormShape& s) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  if (type == CUDNN_DATA_BFLOAT16 && cudnn_refuses_configuration(status))
    set_batch_norm_bf16_refused(true);
  const CudnnBatchNormDims d = cudnn_batch_norm_dims(s.rows);
  throw_cudnn_error(status, call,
                    describe(op, " rows=", s.rows, " c=", s.c, " (as N=", d.n, " H=", d.h, " W=",
                             d.w, type == CUDNN_DATA_BFLOAT16 ? ", bf16)" : ")"));
}

// The data tensor and the 1 x c x 1 x 1 per-channel tensor cuDNN derives from it.
struct BatchNormDescs {
  TensorDesc data, channel;
  BatchNormDescs(const BatchNormShape& s, const char* op, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    set_rows_desc(data, s, op, type);
    check_batch_norm_status(cudnnDeriveBNTensorDescriptor(channel.get(), data.get(), kMode), type,
                           "cudnnDeriveBNTensorDescriptor", op, s);
  }
};

// ---- the entry points, for activations stored as T (float, or bfloat16) ---------------------

template <typename T>
void forward_train(const char* op, const BatchNormShape& s, const T* x, const float* gamma,
                   const float* beta, float eps, float momentum, float* running_mean,
                   float* running_var, T* y, float* save_mean, float* save_invstd,
                   const BatchNormEpilogueOf<T>& epilogue_args) {
  check_shape(op, s);
  HOTLAP_CHECK(s.rows > 1 || s.c == 0, op,
               ": training needs more than one value per channel (rows = N*H*W = ", s.rows,
               ", c = ", s.c, "); use a batch larger than 1 or eval mode");
  if (s.c == 0) return;
  HOTLAP_CHECK((running_mean == nullptr) == (running_var == nullptr), op,
               ": running_mean and running_var must both be given or both be null (cuDNN updates "
               "them together); rows=", s.rows, " c=", s.c);
  HOTLAP_CHECK(x && gamma && beta && y && save_mean && save_invstd, op,
               ": null tensor pointer for rows=", s.rows, " c=", s.c);
  check_eps(op, eps);
  BatchNormDescs d(s, op, data_type<T>());
  check_batch_norm_status(in_train_mode([&](cudnnBatchNormMode_t mode) {
                            return cudnnBatchNormalizationForwardTraining(
                                cudnn_handle(), mode, &kOne, &kZero, d.data.get(), x, d.data.get(), y,
                                d.channel.get(), gamma, beta, static_cast<double>(momentum), running_mean,
                                running_var, static_cast<double>(eps), save_mean, save_invstd);
                          }),
                          data_type<T>(), "cudnnBatchNormalizationForwardTraining", op, s);
  epilogue(s.rows * s.c, y, epilogue_args.residual, epilogue_args.relu);
}

template <typename T>
void forward_eval(const char* op, const BatchNormShape& s, const T* x, const float* gamma,
                  const float* beta, const float* running_mean, const float* running_var, float eps,
                  T* y, const BatchNormEpilogueOf<T>& epilogue_args) {
  check_shape(op, s);
  if (s.rows == 0 || s.c == 0) return;
  HOTLAP_CHECK(x && gamma && beta && running_mean && running_var && y, op,
               ": null tensor pointer for rows=", s.rows, " c=", s.c);
  check_eps(op, eps);
  BatchNormDescs d(s, op, data_type<T>());
  check_batch_norm_status(cudnnBatchNormalizationForwardInference(
                             cudnn_handle(), kMode, &kOne, &kZero, d.data.get(), x, d.data.get(), y,
                             d.channel.get(), gamma, beta, running_mean, running_var,
                             static_cast<double>(eps)),
                         data_type<T>(), "cudnnBatchNormalizationForwardInference", op, s);
  epilogue(s.rows * s.c, y, epilogue_args.residual, epilogue_args.relu);
}

template <typename T>
void backward(const char* op, const BatchNormShape& s, const T* x, const T* dy, const float* gamma,
              const float* save_mean, const float* save_invstd, T* dx, float* dgamma, float* dbeta) {
  check_shape(op, s);
  if (s.rows == 0 || s.c == 0) return;
  HOTLAP_CHECK(x && dy && gamma && save_mean && save_invstd && dx && dgamma && dbeta, op,
               ": null tensor pointer for rows=", s.rows, " c=", s.c);
  BatchNormDescs d(s, op, data_type<T>());
  // With the saved mean and inverse standard deviation given, cuDNN uses them and not epsilon;
  // it still asks for one, which must be >= CUDNN_BN_MIN_EPSILON.
  const double unused_eps = 1e-5;
  check_batch_norm_status(in_train_mode([&](cudnnBatchNormMode_t mode) {
                            return cudnnBatchNormalizationBackward(
                                cudnn_handle(), mode, &kOne, &kZero, &kOne, &kOne, d.data.get(), x, d.data.get(),
                                dy, d.data.get(), dx, d.channel.get(), gamma, dgamma, dbeta, unused_eps,
                                save_mean, save_invstd);
                          }),
                          data_type<T>(), "cudnnBatchNormalizationBackward", op, s);
}

template <typename T>
void backward_eval(const char* op, const BatchNormShape& s, const T* x, const T* dy,
                   const float* gamma, const float* running_mean, const float* running_var,
                   float eps, T* dx, float* dgamma, float* dbeta, void* workspace,
                   size_t workspace_bytes) {
  check_shape(op, s);
  if (s.rows == 0 || s.c == 0) return;
  HOTLAP_CHECK(x && dy && gamma && running_mean && running_var, op,
               ": null tensor pointer for rows=", s.rows, " c=", s.c);
  // bf16 dy is widened into the scratch for dbeta's sum, so bf16 needs it for dbeta too.
  const bool bf16 = data_type<T>() == CUDNN_DATA_BFLOAT16;
  float* scratch = nullptr;
  if (dgamma != nullptr || (bf16 && dbeta != nullptr)) {
    const size_t needed = batch_norm_backward_eval_workspace_bytes(s);
    HOTLAP_CHECK(workspace != nullptr && workspace_bytes >= needed, op, ": workspace for rows=",
                 s.rows, " c=", s.c, " needs ", needed, " bytes, given ", workspace_bytes,
                 workspace ? "" : " at null",
                 " (size it with cudnn::batch_norm_backward_eval_workspace_bytes)");
    scratch = static_cast<float*>(workspace);
  }
  eval_backward_elementwise(s, x, dy, gamma, running_mean, running_var, eps, dx,
                            dgamma != nullptr ? scratch : nullptr);
  if (dgamma == nullptr && dbeta == nullptr) return;
  // Per-channel sums over the rows, accumulated (beta = 1): what cuDNN's bias gradient computes.
  TensorDesc rows_desc, channel_desc;
  set_rows_desc(rows_desc, s, op);
  channel_desc.set_nhwc(1, s.c, 1, 1, op);
  cudnnHandle_t h = cudnn_handle();
  if (dgamma != nullptr)
    HOTLAP_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &kOne, rows_desc.get(), scratch, &kOne,
                                                    channel_desc.get(), dgamma),
                       op, " dgamma rows=", s.rows, " c=", s.c);
  if (dbeta == nullptr) return;
  const float* dy_f32 = reinterpret_cast<const float*>(dy);
  if (bf16) {  // the scratch is free again (queued after the dgamma sum on the same stream)
    cuda::bf16_to_f32(s.rows * s.c, reinterpret_cast<const bfloat16*>(dy), scratch);
    dy_f32 = scratch;
  }
  HOTLAP_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &kOne, rows_desc.get(), dy_f32, &kOne,
                                                  channel_desc.get(), dbeta),
                     op, " dbeta rows=", s.rows, " c=", s.c);
}

}  // namespace

size_t batch_norm_forward_train_workspace_bytes(const BatchNormShape&) { return 0; }
size_t batch_norm_forward_eval_workspace_bytes(const BatchNormShape&) { return 0; }
size_t batch_norm_backward_workspace_bytes(const BatchNormShape&) { return 0; }
size_t batch_norm_backward_eval_workspace_bytes(const BatchNormShape& s) {
  return s.rows > 0 && s.c > 0 ? static_cast<size_t>(s.rows) * static_cast<size_t>(s.c) * sizeof(float)
                               : 0;
}

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             const BatchNormEpilogue& epilogue, void*, size_t) {
  forward_train("cudnn::batch_norm_forward_train", s, x, gamma, beta, eps, momentum, running_mean,
                running_var, y, save_mean, save_invstd, epilogue);
}

void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, const BatchNormEpilogue& epilogue, void*, size_t) {
  forward_eval("cudnn::batch_norm_forward_eval", s, x, gamma, beta, running_mean, running_var, eps, y,
               epilogue);
}

void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                        float* dbeta, void*, size_t) {
  backward("cudnn::batch_norm_backward", s, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

void batch_norm_backward_eval(const BatchNormShape& s, const float* x, const float* dy,
                             const float* gamma, const float* running_mean, const float* running_var,
                             float eps, float* dx, float* dgamma, float* dbeta, void* workspace,
                             size_t workspace_bytes) {
  backward_eval("cudnn::batch_norm_backward_eval", s, x, dy, gamma, running_mean, running_var, eps, dx,
                dgamma, dbeta, workspace, workspace_bytes);
}

void batch_norm_forward_train(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                  const float* beta, float eps, float momentum, float* running_mean,
                                  float* running_var, bfloat16* y, float* save_mean,
                                  float* save_invstd, const BatchNormEpilogueBf16& epilogue, void*,
                                  size_t) {
  forward_train("cudnn::batch_norm_forward_train", s, x, gamma, beta, eps, momentum,
                running_mean, running_var, y, save_mean, save_invstd, epilogue);
}

void batch_norm_forward_eval(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                 const float* beta, const float* running_mean,
                                 const float* running_var, float eps, bfloat16* y,
                                 const BatchNormEpilogueBf16& epilogue, void*, size_t) {
  forward_eval("cudnn::batch_norm_forward_eval", s, x, gamma, beta, running_mean, running_var,
               eps, y, epilogue);
}

void batch_norm_backward(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                             const float* gamma, const float* save_mean, const float* save_invstd,
                             bfloat16* dx, float* dgamma, float* dbeta, void*, size_t) {
  backward("cudnn::batch_norm_backward", s, x, dy, gamma, save_mean, save_invstd, dx, dgamma,
           dbeta);
}

void batch_norm_backward_eval(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                                  const float* gamma, const float* running_mean,
                                  const float* running_var, float eps, bfloat16* dx, float* dgamma,
                                  float* dbeta, void* workspace, size_t workspace_bytes) {
  backward_eval("cudnn::batch_norm_backward_eval", s, x, dy, gamma, running_mean, running_var,
                eps, dx, dgamma, dbeta, workspace, workspace_bytes);
}

}  // namespace hotlap::kernels::cudnn
