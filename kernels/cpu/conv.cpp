// CPU 2-D convolution, NHWC activations and OHWI weights: im2col + GEMM, one image at a time (or a
// few stacked into one GEMM when the output is small: images_per_gemm).
//
// Batch-parallel (plan): with T = omp_get_max_threads() > 1, a batch of n >= T and >= 20 MFLOP per
// image group, the groups are shared out over T OpenMP workers, each with its own col buffer in the
// workspace and a single-threaded GEMM (OpenBLAS's OpenMP build runs on one thread inside a
// parallel region; the blocked GEMM checks omp_in_parallel). This beats one 2-thread GEMM per image
// on narrow GEMMs (N = 64: stem, layer1 3x3), which OpenBLAS splits poorly (bench/NOTES.md:
// "Convolution plans"). Batch 1 keeps the one-GEMM-per-image path. Backward
// filter, which sums over the batch, shares it out by the shape alone (filter_plan: four shares,
// share 0 accumulating into dW and the others into zeroed partials added in share order, whatever
// the thread count, so dW has the same bits on any number of threads); skipped when a share's GEMM
// has < 512 rows (layer3-4), where summing the partials costs more than it gains. The workspace size
// depends on omp_get_max_threads(): query it under the same thread setting as the calls.
//
// Forward, per image n:
//   col[P*Q, R*S*C]   row (p,q) = the R x S x C input window under output pixel (p,q), zero where
//                     the window hangs over the padding. In NHWC the S*C values of one filter row r
//                     are contiguous in x, so each row of col is R memcpy's (clipped at the edges).
//   y_n[P*Q, K] = col * W^T        W is [K, R*S*C] row-major, which is exactly OHWI.
//                  Each GEMM stores its rows through the epilogue (kernels/conv.h: bias, residual,
//                  ReLU) as it writes them, so nothing after it passes over y again.
// Backward data:   dcol = dy_n[P*Q, K] * W[K, R*S*C], then col2im as a gather: every input pixel
//                  (h, w) sums the dcol entries that read it, so threads own input rows and never
//                  write to the same place.
// Backward filter: dW[K, R*S*C] += dy_n^T * col_n (GEMM with beta = 1, accumulated over images);
//                  dbias[K] += sum of dy over N, P, Q.
// Pointwise (1x1, stride 1, no padding): x is already the [N*H*W, C] matrix: one GEMM for the whole
// batch, no im2col, no workspace.
//
// Cost, ResNet-50 layer2 3x3 conv (28x28x128 -> 28x28x128, pad 1), per image:
//   FLOPs  2 * 784 * 128 * 1152 = 231 MFLOP
//   bytes  x 0.4 MB + W 0.6 MB + y 0.4 MB, plus the col buffer 784*1152*4 = 3.6 MB written once and
//          read once by the GEMM: ~8.6 MB -> ~27 FLOP/byte. The col buffer stays in L2/L3, and the
//          GEMM (K=1152 deep) is FMA-bound, so the layer runs against the compute limit; im2col is a
//          few percent of the time. The 1x1 layers with few channels (layer1 1x1, 56x56x64 -> 64:
//          2*3136*64*64 = 26 MFLOP over 1.6 MB, 16 FLOP/byte, GEMM only 64 deep) are the ones that
//          drift towards the memory limit.
//
// Algorithm choice (kernels/choice.h: choose_conv_cpu): 3x3 stride-1 pad-1 shapes with enough
// output pixels in the batch run forward and backward data as Winograd (kernels/cpu/conv_winograd.cpp);
// under HOTLAP_REFERENCE every pass is the direct loop (kernels/cpu/conv_direct.cpp); everything
// else, and every other backward filter, is the code here.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <omp.h>

#include "kernels/choice.h"
#include "kernels/conv.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/gemm_internal.h"
#include "kernels/cpu_isa.h"
#include "kernels/error.h"
#include "kernels/gemm.h"
#include "kernels/profile.h"

namespace hotlap::kernels::cpu {

// ---- algorithm choice: kernels/choice.h (choose_conv_cpu) ------------------------------------------

const char* cpu_conv_name(CpuConv impl) {
  switch (impl) {
    case CpuConv::automatic: return "auto";
    case CpuConv::im2col: return "im2col";
    case CpuConv::winograd: return "winograd";
    case CpuConv::direct: return "direct";
  }
  return "unknown";
}

bool winograd_supported(const ConvShape& s) {
  return s.r == 3 && s.s == 3 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 1 && s.pad_w == 1;
}

bool conv2d_uses_winograd(const ConvShape& s) {
  return choose_conv_cpu(s, ConvPass::forward).kernel == ConvKernel::cpu_winograd;
}


namespace {

// Every GEMM of the convolutions goes through here, on the GEMM chosen for its shape class
// (kernels/choice.cpp: choose_conv_gemm).
void conv_gemm(const ConvShape& s, const GemmArgs& g) { cpu::conv_gemm(g, s.r == 1 && s.s == 1); }

void check_shape(const ConvShape& s, const char* op) {
  const bool positive = s.n > 0 && s.h > 0 && s.w > 0 && s.c > 0 && s.k > 0 && s.r > 0 && s.s > 0 &&
                        s.stride_h > 0 && s.stride_w > 0 && s.pad_h >= 0 && s.pad_w >= 0;
  const bool fits = s.h + 2 * s.pad_h >= s.r && s.w + 2 * s.pad_w >= s.s;
  HOTLAP_CHECK(positive && fits, op, ": bad shape x[N=", s.n, ",H=", s.h, ",W=", s.w, ",C=", s.c,
               "] w[K=", s.k, ",R=", s.r, ",S=", s.s, "] stride ", s.stride_h, "x", s.stride_w,
               " pad ", s.pad_h, "x", s.pad_w,
               positive ? ": the filter is larger than the padded input (output would be empty)"
                        : ": sizes and strides must be positive, padding non-negative");
}

// Threads are worth waking only when a loop has real work in it.
bool worth_parallel(int64_t elements) { return elements > (1 << 15); }

// col[P*Q, R*S*C] for one image x_n[H, W, C].
void im2col(const ConvShape& s, const float* x_n, float* col) {
  const int64_t P = s.p(), Q = s.q(), SC = s.s * s.c, RSC = s.r * SC;
#pragma omp parallel for schedule(static) if (worth_parallel(P * Q * RSC))
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t q = 0; q < Q; ++q) {
      float* row = col + (p * Q + q) * RSC;
      const int64_t w0 = q * s.stride_w - s.pad_w;  // input column under filter column 0
      // Filter columns [s_lo, s_hi) land inside the image; the rest read padding.
      const int64_t s_lo = std::min(s.s, std::max<int64_t>(0, -w0));
      const int64_t s_hi = std::max(s_lo, std::min(s.s, s.w - w0));
      for (int64_t r = 0; r < s.r; ++r) {
        float* dst = row + r * SC;
        const int64_t h = p * s.stride_h - s.pad_h + r;
        if (h < 0 || h >= s.h) {
          std::memset(dst, 0, sizeof(float) * SC);
          continue;
        }
        std::memset(dst, 0, sizeof(float) * s_lo * s.c);
        if (s_hi > s_lo)
          std::memcpy(dst + s_lo * s.c, x_n + (h * s.w + w0 + s_lo) * s.c,
                      sizeof(float) * (s_hi - s_lo) * s.c);
        std::memset(dst + s_hi * s.c, 0, sizeof(float) * (s.s - s_hi) * s.c);
      }
    }
  }
}

// The im2col buffers of images [n, n + g), one after another: the A matrix of one stacked GEMM.
void im2col_images(const ConvShape& s, const float* x, int64_t n, int64_t g, float* col) {
  const int64_t image = s.h * s.w * s.c, rows = s.p() * s.q() * s.r * s.s * s.c;
  for (int64_t i = 0; i < g; ++i) im2col(s, x + (n + i) * image, col + i * rows);
}

// dx_n[H, W, C] = the sum, for every input pixel, of the dcol entries that im2col copied from it.
void col2im_gather(const ConvShape& s, const float* dcol, float* dx_n) {
  const int64_t P = s.p(), Q = s.q(), RSC = s.r * s.s * s.c;
#pragma omp parallel for schedule(static) if (worth_parallel(P * Q * RSC))
  for (int64_t h = 0; h < s.h; ++h) {
    for (int64_t w = 0; w < s.w; ++w) {
      float* out = dx_n + (h * s.w + w) * s.c;
      std::fill(out, out + s.c, 0.0f);
      for (int64_t r = 0; r < s.r; ++r) {
        const int64_t t = h + s.pad_h - r;  // = p * stride_h for the output row p that reads h
        if (t < 0) break;                   // t only decreases with r
        if (t % s.stride_h != 0 || t / s.stride_h >= P) continue;
        const int64_t p = t / s.stride_h;
        for (int64_t fs = 0; fs < s.s; ++fs) {
          const int64_t u = w + s.pad_w - fs;
          if (u < 0) break;
          if (u % s.stride_w != 0 || u / s.stride_w >= Q) continue;
          const int64_t q = u / s.stride_w;
          const float* src = dcol + (p * Q + q) * RSC + (r * s.s + fs) * s.c;
#pragma omp simd
          for (int64_t c = 0; c < s.c; ++c) out[c] += src[c];
        }
      }
    }
  }
}

// The forward GEMM's epilogue for the output rows from `first_row` on (one row per output pixel).
GemmEpilogue gemm_epilogue(const ConvShape& s, const ConvEpilogue& ep, int64_t first_row) {
  GemmEpilogue g;
  g.bias = ep.bias;
  g.residual = ep.residual != nullptr ? ep.residual + first_row * s.k : nullptr;
  g.ldr = s.k;
  g.relu = ep.relu;
  return g;
}

void check_pointers(const ConvShape& s, const char* op, const void* in1, const void* in2,
                    const void* out, const float* workspace) {
  HOTLAP_CHECK(in1 != nullptr && in2 != nullptr && out != nullptr, op, ": null tensor pointer");
  HOTLAP_CHECK(workspace != nullptr || conv2d_workspace_floats(s) == 0, op,
               ": null workspace, need conv2d_workspace_floats = ", conv2d_workspace_floats(s),
               " floats");
}

// How many images share one GEMM. Large outputs (P*Q >= 784, layer1-2 of a ResNet at 224) go one
// image at a time: M = P*Q is tall enough, and a larger im2col buffer only costs cache. Small ones
// (layer3: 14x14 = 196 rows, layer4: 49) make GEMMs too short for the register tiles and the packing
// to pay off, so images are stacked until M reaches ~2048 rows (bench/NOTES.md: "Convolution
// plans").
int64_t images_per_gemm(const ConvShape& s) {
  const int64_t rows = s.p() * s.q();
  if (rows >= 784) return 1;
  return std::min<int64_t>(s.n, (2048 + rows - 1) / rows);
}

// How the im2col path runs: `threads` workers each take whole groups of `group` images, with their
// own slice of the workspace and a single-threaded GEMM (threads == 1: one group at a time, the GEMM
// and im2col threaded inside). Read by conv2d_workspace_floats and by the kernels alike, so both
// see the same omp_get_max_threads().
struct Plan {
  int64_t group = 1;
  int threads = 1;
  int shares = 1;  // backward filter: dW summed as this many partials (1: straight into dW)
};

// Images per GEMM when the batch is split into `ways` parts, or 0 when it is not worth splitting.
int64_t split_group(const ConvShape& s, int ways) {
  if (ways < 2 || s.n < ways) return 0;
  // At least `ways` groups: split the batch evenly when images_per_gemm would take too much.
  const int64_t group = std::min(images_per_gemm(s), (s.n + ways - 1) / ways);
  const double group_flops = double(s.flops()) / double(s.n) * double(group);
  return group_flops < 2e7 ? 0 : group;  // too little per worker to pay for the fork
}

// The workers' GEMMs read HOTLAP_GEMM and HOTLAP_CPU_ISA: read them first, where a bad value's
// hotlap::Error reaches the caller (it cannot leave an OpenMP region; the program aborts).
void read_settings() {
  cpu_gemm_impl();
  active_cpu_isa();
}

// Forward and backward data: a worker per thread (each output is one GEMM's, whichever runs it).
Plan plan(const ConvShape& s) {
  Plan pl;
  pl.group = images_per_gemm(s);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (const int64_t group = split_group(s, threads)) {
    read_settings();
    pl.group = group;
    pl.threads = threads;
  }
  return pl;
}

// Backward filter sums over the batch, so the way its images are shared out sets the order of dW's
// sums. That way is fixed by the shape alone: kFilterShares shares of the batch, each summed into a
// partial of its own, the partials then added in share order, whatever the number of threads that
// run them. dW has the same bits on 1 thread or 16, and a training run resumed on another machine
// (or a busy one, with fewer threads) goes on bit for bit. Not shared out when a share's GEMM would
// be short (fewer than 512 rows: layer3-4 of a ResNet at batch 8), where adding the partials
// (K*R*S*C floats each) costs more than it gains; then one group after another goes straight into dW.
constexpr int kFilterShares = 4;
Plan filter_plan(const ConvShape& s) {
  Plan pl;
  pl.group = images_per_gemm(s);
  const int64_t group = split_group(s, kFilterShares);
  if (group == 0 || group * s.p() * s.q() < 512) return pl;
  read_settings();
  pl.group = group;
  pl.shares = kFilterShares;
  pl.threads = std::min(kFilterShares, omp_in_parallel() ? 1 : omp_get_max_threads());
  return pl;
}

int64_t im2col_workspace_floats(const ConvShape& s) {
  const int64_t rows = s.p() * s.q() * s.r * s.s * s.c;
  const Plan pl = plan(s), pf = filter_plan(s);
  // A col buffer per worker; backward filter adds a partial for each share after the first (which
  // accumulates straight into dW).
  return std::max(pl.threads * pl.group * rows,
                  pf.threads * pf.group * rows + (pf.shares - 1) * s.k * s.r * s.s * s.c);
}

}  // namespace

int64_t conv2d_workspace_floats(const ConvShape& s) {
  check_shape(s, "conv2d_workspace_floats");
  if (s.is_pointwise() || choose_conv_cpu(s, ConvPass::forward).kernel == ConvKernel::cpu_direct) return 0;
  // Winograd (forward, backward data) and im2col (backward filter) share the one workspace.
  const int64_t wino = conv2d_uses_winograd(s) ? winograd::workspace_floats(s) : 0;
  return std::max(wino, im2col_workspace_floats(s));
}

void conv2d_forward(const ConvShape& s, const float* x, const float* w, const ConvEpilogue& ep, float* y,
                    float* workspace) {
  check_shape(s, "conv2d_forward");
  check_pointers(s, "conv2d_forward", x, w, y, workspace);
  const int64_t P = s.p(), Q = s.q(), RSC = s.r * s.s * s.c;
  if (ep.residual != nullptr) {
    const auto bytes = static_cast<uintptr_t>(s.n * P * Q * s.k) * sizeof(float);
    const auto r = reinterpret_cast<uintptr_t>(ep.residual), out = reinterpret_cast<uintptr_t>(y);
    HOTLAP_CHECK(r + bytes <= out || out + bytes <= r, "conv2d_forward: the residual overlaps the output");
  }
  switch (choose_conv_cpu(s, ConvPass::forward).kernel) {
    case ConvKernel::cpu_direct: {
      ProfileScope scope("conv2d.forward.direct", double(s.flops()));
      return direct::forward(s, x, w, ep, y);
    }
    case ConvKernel::cpu_winograd:
      return winograd::forward(s, x, w, ep, y, workspace);
    default:
      break;
  }
  // Every GEMM below stores its rows of y through the epilogue (its rows' share of the residual).
  // a: [rows, depth], the im2col rows (or x itself for a pointwise convolution).
  auto forward_gemm = [&](const float* a, int64_t depth, int64_t rows, int64_t first_row) {
    GemmArgs g{.trans_b = true, .m = rows, .n = s.k, .k = depth, .a = a, .lda = depth, .b = w, .ldb = depth,
               .c = y + first_row * s.k, .ldc = s.k};
    g.epilogue = gemm_epilogue(s, ep, first_row);
    conv_gemm(s, g);
  };
  if (s.is_pointwise()) {  // y[N*H*W, K] = x[N*H*W, C] * W[K, C]^T
    ProfileScope scope("conv2d.forward.gemm", double(s.flops()));
    forward_gemm(x, s.c, s.n * s.h * s.w, 0);
  } else if (const Plan pl = plan(s); pl.threads > 1) {
    // Batch-parallel: each worker runs im2col + a single-threaded GEMM on its own groups of images
    // (im2col's and the GEMM's own parallel regions are nested, hence inactive; OpenBLAS's OpenMP
    // build runs on one thread inside a parallel region).
    ProfileScope scope("conv2d.forward.batch_parallel", double(s.flops()));
    const int64_t groups = (s.n + pl.group - 1) / pl.group, col = pl.group * P * Q * RSC;
#pragma omp parallel for schedule(static) num_threads(pl.threads)
    for (int64_t gi = 0; gi < groups; ++gi) {
      float* ws = workspace + omp_get_thread_num() * col;
      const int64_t n = gi * pl.group, g = std::min(pl.group, s.n - n);
      im2col_images(s, x, n, g, ws);
      forward_gemm(ws, RSC, g * P * Q, n * P * Q);
    }
  } else {
    const int64_t group = pl.group;
    for (int64_t n = 0; n < s.n; n += group) {
      const int64_t g = std::min(group, s.n - n);
      {
        ProfileScope scope("conv2d.forward.im2col");
        im2col_images(s, x, n, g, workspace);
      }
      ProfileScope scope("conv2d.forward.gemm", double(s.flops() / s.n * g));
      forward_gemm(workspace, RSC, g * P * Q, n * P * Q);
    }
  }
}

void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx,
                          float* workspace) {
  check_shape(s, "conv2d_backward_data");
  check_pointers(s, "conv2d_backward_data", dy, w, dx, workspace);
  const int64_t P = s.p(), Q = s.q(), RSC = s.r * s.s * s.c;
  switch (choose_conv_cpu(s, ConvPass::backward_data).kernel) {
    case ConvKernel::cpu_direct: {
      ProfileScope scope("conv2d.backward_data.direct", double(s.flops()));
      return direct::backward_data(s, dy, w, dx);
    }
    case ConvKernel::cpu_winograd:
      return winograd::backward_data(s, dy, w, dx, workspace);
    default:
      break;
  }
  if (s.is_pointwise()) {  // dx[N*H*W, C] = dy[N*H*W, K] * W[K, C]
    ProfileScope scope("conv2d.backward_data.gemm", double(s.flops()));
    conv_gemm(s,
              GemmArgs{.m = s.n * s.h * s.w, .n = s.c, .k = s.k, .a = dy, .lda = s.k, .b = w, .ldb = s.c, .c = dx,
                       .ldc = s.c});
    return;
  }
  const Plan pl = plan(s);
  if (pl.threads > 1) {  // batch-parallel, as in conv2d_forward
    ProfileScope scope("conv2d.backward_data.batch_parallel", double(s.flops()));
    const int64_t groups = (s.n + pl.group - 1) / pl.group, col = pl.group * P * Q * RSC;
#pragma omp parallel for schedule(static) num_threads(pl.threads)
    for (int64_t gi = 0; gi < groups; ++gi) {
      float* ws = workspace + omp_get_thread_num() * col;
      const int64_t n = gi * pl.group, g = std::min(pl.group, s.n - n);
      conv_gemm(s, GemmArgs{.m = g * P * Q, .n = RSC, .k = s.k, .a = dy + n * P * Q * s.k, .lda = s.k, .b = w,
                            .ldb = RSC, .c = ws, .ldc = RSC});
      for (int64_t i = 0; i < g; ++i)
        col2im_gather(s, ws + i * P * Q * RSC, dx + (n + i) * s.h * s.w * s.c);
    }
    return;
  }
  const int64_t group = pl.group;
  for (int64_t n = 0; n < s.n; n += group) {
    const int64_t g = std::min(group, s.n - n);
    {
      ProfileScope scope("conv2d.backward_data.gemm", double(s.flops() / s.n * g));
      conv_gemm(s, GemmArgs{.m = g * P * Q, .n = RSC, .k = s.k, .a = dy + n * P * Q * s.k, .lda = s.k, .b = w,
                            .ldb = RSC, .c = workspace, .ldc = RSC});
    }
    ProfileScope scope("conv2d.backward_data.col2im");
    for (int64_t i = 0; i < g; ++i)
      col2im_gather(s, workspace + i * P * Q * RSC, dx + (n + i) * s.h * s.w * s.c);
  }
}

void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw,
                            float* dbias, float* workspace) {
  check_shape(s, "conv2d_backward_filter");
  check_pointers(s, "conv2d_backward_filter", x, dy, dw, workspace);
  if (choose_conv_cpu(s, ConvPass::backward_filter).kernel == ConvKernel::cpu_direct) {
    ProfileScope scope("conv2d.backward_filter.direct", double(s.flops()));
    return direct::backward_filter(s, x, dy, dw, dbias);
  }
  const int64_t P = s.p(), Q = s.q(), RSC = s.r * s.s * s.c;
  if (s.is_pointwise()) {  // dW[K, C] += dy[N*H*W, K]^T * x[N*H*W, C]
    ProfileScope scope("conv2d.backward_filter.gemm", double(s.flops()));
    conv_gemm(s, GemmArgs{.trans_a = true, .m = s.k, .n = s.c, .k = s.n * s.h * s.w, .a = dy, .lda = s.k, .b = x,
                          .ldb = s.c, .beta = 1.0f, .c = dw, .ldc = s.c});
  } else if (const Plan pl = filter_plan(s); pl.shares > 1) {
    // The batch's groups in kFilterShares shares, share 0 accumulating into dW itself and the others
    // into zeroed partials (after the col buffers in the workspace), run by up to that many threads
    // (thread t takes shares t, t + T, ...); then dW += the partials, in share order.
    ProfileScope scope("conv2d.backward_filter.batch_parallel", double(s.flops()));
    const int64_t groups = (s.n + pl.group - 1) / pl.group, col = pl.group * P * Q * RSC;
    const int64_t KRSC = s.k * RSC;
    float* partials = workspace + pl.threads * col;
#pragma omp parallel num_threads(pl.threads)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      float* ws = workspace + t * col;
      for (int share = t; share < pl.shares; share += nt) {
        float* acc = share == 0 ? dw : partials + (share - 1) * KRSC;
        if (share != 0) std::fill(acc, acc + KRSC, 0.0f);
        for (int64_t gi = groups * share / pl.shares; gi < groups * (share + 1) / pl.shares; ++gi) {
          const int64_t n = gi * pl.group, g = std::min(pl.group, s.n - n);
          im2col_images(s, x, n, g, ws);
          conv_gemm(s, GemmArgs{.trans_a = true, .m = s.k, .n = RSC, .k = g * P * Q, .a = dy + n * P * Q * s.k,
                                .lda = s.k, .b = ws, .ldb = RSC, .beta = 1.0f, .c = acc, .ldc = RSC});
        }
      }
#pragma omp barrier
      // Every partial is complete. Each thread now sums a slice of dW over the partials, in share order.
#pragma omp for schedule(static)
      for (int64_t j = 0; j < KRSC; ++j) {
        float v = dw[j];
        for (int u = 1; u < pl.shares; ++u) v += partials[(u - 1) * KRSC + j];
        dw[j] = v;
      }
    }
  } else {
    const int64_t group = pl.group;
    for (int64_t n = 0; n < s.n; n += group) {
      const int64_t g = std::min(group, s.n - n);
      {
        ProfileScope scope("conv2d.backward_filter.im2col");
        im2col_images(s, x, n, g, workspace);
      }
      ProfileScope scope("conv2d.backward_filter.gemm", double(s.flops() / s.n * g));
      conv_gemm(s, GemmArgs{.trans_a = true, .m = s.k, .n = RSC, .k = g * P * Q, .a = dy + n * P * Q * s.k,
                            .lda = s.k, .b = workspace, .ldb = RSC, .beta = 1.0f, .c = dw, .ldc = RSC});
    }
  }
  if (dbias != nullptr) {
    ProfileScope scope("conv2d.backward_filter.bias");
    detail::add_column_sums(s.n * P * Q, s.k, dy, dbias);
  }
}

}  // namespace hotlap::kernels::cpu
