// hotlap's CUDA convolution kernels, by name (the variants), and which one the automatic choice runs
// for a shape and pass. The kernels themselves: kernels/conv.h (hotlap::kernels::cuda), whose
// *_variant entry points run a named one; the choice between them and cuDNN: kernels/choice.h.
#pragma once

#include "kernels/conv_shape.h"

namespace hotlap::kernels::cuda {

// The kernels of each pass, side by side (each file's opening comment gives its tiles, arithmetic
// intensity and the peak it aims at):
//   simple       fp32 on the CUDA cores, one thread per output element: the readable reference
//   tiled        fp32, 64x64 shared-memory tiles, 4x4 register micro-tiles, 16-byte loads through a
//                register double buffer, split-K (backward filter)
//   tiled_1x1    tiled on 1x1 stride-1 unpadded convolutions as plain GEMMs (no im2col arithmetic)
//   tf32         the tiled kernels with the products on the tensor cores (wmma m16n16k8, TF32
//                inputs, fp32 sums): about 1e-3 relative error, like cuDNN under MathMode::tf32
//   tf32_async   128x64 tiles on the tensor cores, operands copied by cp.async into two
//                shared-memory stages (no registers on the way), TF32 products, fp32 sums
//   tf32_1x1     tf32_async on 1x1 stride-1 unpadded convolutions as plain GEMMs
//   bf16_simple  bf16 tensors, one thread per output, fp32 sums: the bf16 reference
//   bf16         tf32_async's pipeline with bf16 operands (wmma m16n16k16), fp32 sums
//   bf16_1x1     bf16 on 1x1 stride-1 unpadded convolutions as plain GEMMs
// The bf16 variants run through the *_bf16 entry points, the others through the fp32 ones; a
// *_1x1 variant takes only 1x1 stride-1 unpadded shapes (ConvShape::is_pointwise).
enum class ConvVariant {
  simple,
  tiled,
  tiled_1x1,
  tf32,
  tf32_async,
  tf32_1x1,
  bf16_simple,
  bf16,
  bf16_1x1,
};
const char* conv_variant_name(ConvVariant v);

// The variants that take bf16 tensors (the *_bf16 entry points); the others take fp32 ones.
constexpr bool conv_variant_is_bf16(ConvVariant v) {
  return v == ConvVariant::bf16_simple || v == ConvVariant::bf16 || v == ConvVariant::bf16_1x1;
}
// The plain-GEMM variants, which run 1x1 stride-1 convolutions without padding only.
constexpr bool conv_variant_is_1x1(ConvVariant v) {
  return v == ConvVariant::tiled_1x1 || v == ConvVariant::tf32_1x1 || v == ConvVariant::bf16_1x1;
}

// The variant the plain fp32 entry points run (kernels/cuda/conv_math.h: choose_conv_variant, by
// shape class and kernels::math_mode()), and the one the bf16 entry points run (by shape class).
ConvVariant conv2d_variant(const ConvShape& s, ConvPass pass);
ConvVariant conv2d_bf16_variant(const ConvShape& s, ConvPass pass);

}  // namespace hotlap::kernels::cuda
