// The CUDA kernels' workspace sizes: host arithmetic on their launch plans (batch_norm_math.h,
// elementwise_math.h, conv_math.h), no CUDA header, so it is built with or without CUDA and a caller can size
// its memory the same way in both. The kernels lay their workspaces out from the same functions.
#include "kernels/batch_norm.h"
#include "kernels/conv.h"
#include "kernels/cuda/batch_norm_math.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/cuda/elementwise_math.h"
#include "kernels/elementwise.h"
#include "kernels/math_mode.h"

namespace hotlap::kernels::cuda {

size_t batch_norm_forward_train_workspace_bytes(const BatchNormShape& s) {
  return batch_norm_workspace_floats(s, kBnForwardTrainWorkspace) * sizeof(float);
}

size_t batch_norm_forward_eval_workspace_bytes(const BatchNormShape& s) {
  return batch_norm_workspace_floats(s, kBnForwardEvalWorkspace) * sizeof(float);
}

size_t batch_norm_backward_workspace_bytes(const BatchNormShape& s) {
  return batch_norm_workspace_floats(s, kBnBackwardWorkspace) * sizeof(float);
}

size_t batch_norm_backward_eval_workspace_bytes(const BatchNormShape& s) {
  return batch_norm_workspace_floats(s, kBnBackwardEvalWorkspace) * sizeof(float);
}

size_t loss_workspace_bytes(int64_t n) { return loss_workspace_doubles(n) * sizeof(double); }

size_t cross_entropy_workspace_bytes(int64_t rows) { return cross_entropy_workspace_doubles(rows) * sizeof(double); }

// The convolution's variant choice and workspace sizes: host arithmetic too (kernels/cuda/conv_math.h).
const char* conv_variant_name(ConvVariant v) { return conv_variant_text(v); }

ConvVariant conv2d_variant(const ConvShape& s, ConvPass pass) {
  return choose_conv_variant(s, pass, math_mode());
}

size_t conv2d_workspace_bytes(const ConvShape& s, ConvPass pass, ConvVariant variant) {
  return conv_variant_workspace_bytes(s, pass, variant);
}

size_t conv2d_workspace_bytes(const ConvShape& s, ConvPass pass) {
  return conv_variant_workspace_bytes(s, pass, conv2d_variant(s, pass));
}

ConvVariant conv2d_bf16_variant(const ConvShape& s, ConvPass pass) {
  return choose_conv_variant_bf16(s, pass);
}

size_t conv2d_bf16_workspace_bytes(const ConvShape& s, ConvPass pass) {
  return conv_variant_workspace_bytes(s, pass, conv2d_bf16_variant(s, pass));
}

}  // namespace hotlap::kernels::cuda
