// The launch of a tiled convolution kernel (conv_tiled.cu, conv_tensor_core.cu): its grid, checked
// against CUDA's limits, and the check after it, whose error names the op, the variant and the
// shape. Internal to the CUDA code (it includes cuda_runtime.h through check.h).
#pragma once

#include "kernels/conv.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_math.h"
#include "kernels/error.h"

namespace hotlap::kernels::cuda {

// One block a tile: conv_tiled_grid, or an error for a shape whose grid CUDA cannot launch.
inline dim3 conv_tiled_blocks(const char* op, const ConvShape& s, ConvPass pass, ConvTiles tiles) {
  const ConvTiledGrid grid = conv_tiled_grid(s, pass, tiles);
  HOTLAP_CHECK(grid.tiles_m <= kMaxGridX && grid.tiles_n <= kMaxGridY && grid.z <= kMaxGridY, op,
               ": shape too large for the tiled grid (", grid.tiles_m, " x ", grid.tiles_n, " x ",
               grid.z, " blocks)");
  return dim3(static_cast<unsigned>(grid.tiles_m), static_cast<unsigned>(grid.tiles_n),
              static_cast<unsigned>(grid.z));
}

inline void check_conv_launch(const char* op, const ConvShape& s, ConvVariant variant) {
  HOTLAP_CUDA_CHECK_LAUNCH(op, " (", conv_variant_text(variant), ") n=", s.n, " h=", s.h,
                           " w=", s.w, " c=", s.c, " k=", s.k, " r=", s.r, " s=", s.s,
                           " stride=", s.stride_h, "x", s.stride_w, " pad=", s.pad_h, "x", s.pad_w);
}

}  // namespace hotlap::kernels::cuda
