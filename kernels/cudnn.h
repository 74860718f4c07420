// The cuDNN/cuBLAS backend: hotlap's pointer-level interfaces (kernels/conv.h, batch_norm.h,
// gemm.h) on NVIDIA's libraries. It is the fallback for the hand-written CUDA kernels and the
// yardstick every one of them is benchmarked and tested against.
//
// One header for the whole backend rather than a `namespace cudnn` block in each family header:
// the backend has settings and machinery of its own that the CPU and hand-written CUDA versions do
// not (one library handle each, the per-shape algorithm choice and its cache, math mode and
// determinism, library versions), and it exists only in builds with cuDNN (HOTLAP_HAVE_CUDNN).
// The op declarations mirror the family headers' cpu/cuda blocks one for one.
//
// Contracts: the same as the CPU versions of each op, on device pointers. Work is queued on the
// one compute stream (kernels/cuda_memory.h) and the call returns before it is done. Shapes are
// checked at once and throw hotlap::Error; a failed cuDNN/cuBLAS call throws an Error that names
// the op, the shape, the library call and the library's own status name. In a build without cuDNN
// every op throws "built without the cuDNN/cuBLAS backend" (kernels/cudnn/none.cpp), so callers
// compile and link either way; the host-arithmetic workspace queries give the same numbers.
//
// Numerics follow kernels/math_mode.h: MathMode::fp32 matches the CPU to fp32 rounding (about
// 1e-5 relative on ResNet-50's convolutions); MathMode::tf32 lets convolutions and GEMMs use TF32
// tensor cores (about 1e-3). deterministic() restricts convolutions to algorithms cuDNN marks
// deterministic. bf16 compute: the *_bf16 entry points take bf16 activations (and bf16 weight
// copies for the convolutions) with fp32 sums, whatever the math mode; about 1e-2 relative.
//
// Test: hotlap_kernel_tests -tc='cudnn*'; benchmark: hotlap_bench --benchmark_filter='gpu_'.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/math_mode.h"

namespace hotlap::kernels::cudnn {

// ---- convolution --------------------------------------------------------------------------------
// NHWC activations and OHWI weights are cuDNN's CUDNN_TENSOR_NHWC tensors and filters as they are:
// no transposition anywhere. fp32 data.
//
// The algorithm for a (shape, pass, math mode, determinism) is chosen once: by cuDNN's timed search
// (cudnnFindConvolution*Algorithm: every algorithm run once, the fastest taken), or under
// deterministic() by its heuristics (cudnnGetConvolution*Algorithm_v7: no timing runs, no
// allocation, the same choice every run), the first deterministic one they rank; either way within
// kConvWorkspaceCap (kernels/cudnn/conv.cpp says why and what it cost to do otherwise). The
// choice is cached for the life of the process; conv2d_workspace_bytes gives its
// workspace, which the caller provides (from its caching allocator) to the call itself. The query
// needs the GPU (the choice depends on it) and must be made under the same math mode and
// determinism setting as the call.

// The passes are kernels/conv.h's.
using kernels::ConvPass;
using kernels::conv_pass_name;

// Algorithms needing more workspace than this are passed over (a ResNet-50 layer at batch 256
// rarely gains from more; the caching allocator would otherwise hold it for the whole run).
constexpr size_t kConvWorkspaceCap = size_t{256} << 20;

size_t conv2d_workspace_bytes(const ConvShape& s, ConvPass pass);

// y = conv(x, w) (+ bias[k] when bias is not null). y is overwritten.
void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                    void* workspace, size_t workspace_bytes);
// dx = conv_transpose(dy, w). dx is overwritten.
void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx,
                          void* workspace, size_t workspace_bytes);
// dw += correlation of x with dy; dbias += sum of dy over N,P,Q (dbias may be null).
void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw,
                            float* dbias, void* workspace, size_t workspace_bytes);

// bf16: x, w, y, dy, dx are CUDNN_DATA_BFLOAT16 tensors (bfloat16), the convolution's compute
// type CUDNN_DATA_FLOAT (fp32 sums; bf16 tensor cores under the heuristic's math type, never
// ALLOW_CONVERSION); bias, dw and dbias stay fp32. The legacy API wants the filter gradient in the
// filter's type, so backward filter writes a bf16 dW into the front of its workspace and a small
// kernel widens it and adds it into the fp32 dw (which keeps accumulating in fp32); the bias and
// its gradient are small kernels as well (kernels/cudnn/elementwise.cu). The signatures are those
// of the hand-written bf16 convolution (kernels/conv.h), so a dispatch can swap one for the other;
// conv2d_workspace_bytes_bf16 sizes the workspace (scratch dW included). Cached apart from the fp32
// plans (the key holds the data type).
size_t conv2d_workspace_bytes_bf16(const ConvShape& s, ConvPass pass);
void conv2d_forward(const ConvShape& s, const bfloat16* x, const bfloat16* w, const float* bias,
                         bfloat16* y, void* workspace, size_t workspace_bytes);
void conv2d_backward_data(const ConvShape& s, const bfloat16* dy, const bfloat16* w, bfloat16* dx,
                               void* workspace, size_t workspace_bytes);
void conv2d_backward_filter(const ConvShape& s, const bfloat16* x, const bfloat16* dy, float* dw,
                                 float* dbias, void* workspace, size_t workspace_bytes);

// What the algorithm cache holds for one key, for benchmarks and `hotlap info`-style reports.
struct ConvAlgoChoice {
  int algo = -1;               // the cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t value
  int math_type = 0;           // the cudnnMathType_t it runs under
  bool deterministic = false;  // as cuDNN marks it
  size_t workspace_bytes = 0;
  bool searched = false;       // by the timed search (else by the heuristics)
  float time_ms = -1.0f;       // the search's time for it (one run); -1 from the heuristics
};
ConvAlgoChoice conv2d_algorithm(const ConvShape& s, ConvPass pass);
ConvAlgoChoice conv2d_algorithm_bf16(const ConvShape& s, ConvPass pass);
// Entries in the algorithm cache (each also holds the shape's cuDNN descriptors).
size_t conv2d_algorithm_cache_size();

// ---- batch norm ---------------------------------------------------------------------------------
// cuDNN's spatial batch norm over rows x c NHWC data, described to cuDNN as 1 x H x W x C with
// H * W = rows (cudnn_batch_norm_dims below: hotlap's BatchNormShape has no N, H, W, and every split
// of the rows gives the same per-channel statistics). The running variance cuDNN keeps is the
// unbiased one, as PyTorch's and the CPU's; save_invstd is cuDNN's "saved inverse variance",
// 1/sqrt(var + eps).
//
// The epilogue (residual add, ReLU) is a second pass over y by a small kernel: cuDNN's fused
// add+ReLU batch norm (cudnnBatchNormalizationForwardTrainingEx) is for half precision only.
// running_mean and running_var are both null or both set (cuDNN updates the two together).
//
// The signatures are those of the hand-written kernels' (namespace cuda in kernels/batch_norm.h),
// workspace included, so a dispatch can swap one for the other. Only the eval-mode backward uses
// its workspace (a rows x c scratch for dy * xhat, reduced per channel by cuDNN).
size_t batch_norm_forward_train_workspace_bytes(const BatchNormShape& s);
size_t batch_norm_forward_eval_workspace_bytes(const BatchNormShape& s);
size_t batch_norm_backward_workspace_bytes(const BatchNormShape& s);
size_t batch_norm_backward_eval_workspace_bytes(const BatchNormShape& s);

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             const BatchNormEpilogue& epilogue, void* workspace,
                             size_t workspace_bytes);
void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, const BatchNormEpilogue& epilogue, void* workspace,
                            size_t workspace_bytes);
// Training-mode backward. dx is overwritten; dgamma, dbeta are accumulated (+=).
void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                        float* dbeta, void* workspace, size_t workspace_bytes);
// Eval-mode backward: dx (may be null) overwritten, dgamma and dbeta (may be null) accumulated.
void batch_norm_backward_eval(const BatchNormShape& s, const float* x, const float* dy,
                             const float* gamma, const float* running_mean, const float* running_var,
                             float eps, float* dx, float* dgamma, float* dbeta, void* workspace,
                             size_t workspace_bytes);

// bf16 activations (x, y, dy, dx, residual: CUDNN_DATA_BFLOAT16); gamma, beta, the statistics and
// their gradients fp32 (cuDNN derives an fp32 parameter descriptor from a bf16 one), sums fp32.
// The same workspaces and queries as the fp32 versions; the epilogue is the bf16 twin of the fp32
// one.
void batch_norm_forward_train(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                  const float* beta, float eps, float momentum, float* running_mean,
                                  float* running_var, bfloat16* y, float* save_mean,
                                  float* save_invstd, const BatchNormEpilogueBf16& epilogue,
                                  void* workspace, size_t workspace_bytes);
void batch_norm_forward_eval(const BatchNormShape& s, const bfloat16* x, const float* gamma,
                                 const float* beta, const float* running_mean,
                                 const float* running_var, float eps, bfloat16* y,
                                 const BatchNormEpilogueBf16& epilogue, void* workspace,
                                 size_t workspace_bytes);
void batch_norm_backward(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                             const float* gamma, const float* save_mean, const float* save_invstd,
                             bfloat16* dx, float* dgamma, float* dbeta, void* workspace,
                             size_t workspace_bytes);
void batch_norm_backward_eval(const BatchNormShape& s, const bfloat16* x, const bfloat16* dy,
                                  const float* gamma, const float* running_mean,
                                  const float* running_var, float eps, bfloat16* dx, float* dgamma,
                                  float* dbeta, void* workspace, size_t workspace_bytes);

// bf16 batch norm that cuDNN refuses. Whether cuDNN's legacy batch norm takes bf16 data depends on
// the cuDNN version and the GPU. A *_bf16 call above that cuDNN refuses for its configuration
// (cudnn_refuses_configuration, kernels/cudnn/check.h) has queued nothing and written nothing; it
// notes the refusal here, for the rest of the process, and throws its Error as usual. nn's dispatch
// asks batch_norm_bf16_refused() first and, once it is true, runs bf16 batch norm on the hand-written
// kernels (kernels/batch_norm.h) instead: the call that was refused, and every later one.
// set_batch_norm_bf16_refused(false) forgets the refusal: for tests, which take either route with it
// on any machine. Inline, so every build has them (a build without cuDNN never refuses: its calls
// all throw).
inline std::atomic<bool> g_batch_norm_bf16_refused{false};
inline bool batch_norm_bf16_refused() { return g_batch_norm_bf16_refused.load(); }
inline void set_batch_norm_bf16_refused(bool refused) { g_batch_norm_bf16_refused.store(refused); }

// ---- GEMM (cuBLAS) ------------------------------------------------------------------------------
// Row-major GemmArgs as in kernels/gemm.h, on device pointers; see column_major_gemm below for how
// they reach cuBLAS. Sizes and leading dimensions must fit in int.
void gemm(const GemmArgs& args);
// y = x W^T + b (b may be null).
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y);
// dx = dy W (dx may be null); dW += dy^T x; db += sum over rows of dy (db may be null).
void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db);

// ---- the libraries ------------------------------------------------------------------------------
// "cuBLAS 13.1.0\ncuDNN 9.19.0 (built against 9.19.0)": the versions of the libraries loaded at
// run time. Needs no GPU.
std::string library_versions();

// ---- host helpers (inline: every build has them) -------------------------------------------------

// cuBLAS is column-major. A row-major matrix with row stride ld is the column-major matrix of its
// transpose with the same ld, so the row-major C = op(A) op(B) is computed as the column-major
//   C^T[n,m] = op(B)^T[n,k] * op(A)^T[k,m]
// with B first and A second, each transposed for cuBLAS exactly when it is transposed in GemmArgs.
struct ColumnMajorGemm {
  bool trans_first = false, trans_second = false;  // CUBLAS_OP_T when true, else CUBLAS_OP_N
  int64_t m = 0, n = 0, k = 0;                     // cuBLAS's m, n, k
  float alpha = 1.0f;
  const float* first = nullptr;  // cuBLAS's A
  int64_t ld_first = 0;
  const float* second = nullptr;  // cuBLAS's B
  int64_t ld_second = 0;
  float beta = 0.0f;
  float* c = nullptr;
  int64_t ldc = 0;
};

inline ColumnMajorGemm column_major_gemm(const GemmArgs& g) {
  ColumnMajorGemm r;
  r.trans_first = g.trans_b;
  r.trans_second = g.trans_a;
  r.m = g.n;
  r.n = g.m;
  r.k = g.k;
  r.alpha = g.alpha;
  r.first = g.b;
  r.ld_first = g.ldb;
  r.second = g.a;
  r.ld_second = g.lda;
  r.beta = g.beta;
  r.c = g.c;
  r.ldc = g.ldc;
  return r;
}

// How the batch norm's rows x c data is described to cuDNN: N x H x W x C with N * H * W = rows.
// Any split is the same bytes (dense NHWC strides) and the same statistics (CUDNN_BATCHNORM_SPATIAL
// reduces each channel over N, H and W together), so the split is chosen for cuDNN's limits alone.
// Its legacy batch norm caps N: inference refuses N > 65535 (CUDNN_STATUS_NOT_SUPPORTED) and
// training fails near N = 131070, so rows as N (a batch of 64 at 56x56 is 200704 rows) cannot work.
// Here N = 1, whatever the batch, and the rows go to H x W with both at most
// kCudnnBatchNormMaxSpatial (inside a 16-bit grid dimension, should cuDNN map either to one)
// whenever rows has such a factor pair: always for ResNet shapes (rows = batch * side^2). When it
// has none (a prime above the limit, say), H = rows and W = 1: still within cuDNN's int
// dimensions whenever the tensor is within its 2^31-element limit.
constexpr int64_t kCudnnBatchNormMaxSpatial = 65535;

struct CudnnBatchNormDims {
  int64_t n = 1, h = 0, w = 1;
};

// The smallest W >= rows / kCudnnBatchNormMaxSpatial that divides rows (so H = rows / W fits too),
// searched up to sqrt(rows): if a pair within the limit exists, its smaller member is in that range.
// At most ~14k trial divisions (a prime near 2^31), a handful for ResNet's row counts.
inline CudnnBatchNormDims cudnn_batch_norm_dims(int64_t rows) {
  constexpr int64_t kMax = kCudnnBatchNormMaxSpatial;
  if (rows <= kMax) return {1, rows, 1};
  for (int64_t w = (rows + kMax - 1) / kMax; w <= kMax && w * w <= rows; ++w)
    if (rows % w == 0) return {1, rows / w, w};
  return {1, rows, 1};
}

// The convolution's data type: fp32, or bf16 (the *_bf16 entry points).
enum class ConvData : uint8_t { f32, bf16 };

// The algorithm cache's key: everything the choice depends on (the GPU aside: one per process).
struct ConvAlgoKey {
  ConvShape shape;
  ConvPass pass = ConvPass::forward;
  MathMode math = MathMode::fp32;
  bool deterministic = false;
  ConvData data = ConvData::f32;

  bool operator==(const ConvAlgoKey& o) const {
    const ConvShape &a = shape, &b = o.shape;
    return a.n == b.n && a.h == b.h && a.w == b.w && a.c == b.c && a.k == b.k && a.r == b.r &&
           a.s == b.s && a.stride_h == b.stride_h && a.stride_w == b.stride_w &&
           a.pad_h == b.pad_h && a.pad_w == b.pad_w && pass == o.pass && math == o.math &&
           deterministic == o.deterministic && data == o.data;
  }
};

struct ConvAlgoKeyHash {
  size_t operator()(const ConvAlgoKey& key) const {
    const ConvShape& s = key.shape;
    const int64_t fields[] = {s.n,        s.h,        s.w,     s.c,     s.k,
                              s.r,        s.s,        s.stride_h, s.stride_w, s.pad_h,
                              s.pad_w,    static_cast<int64_t>(key.pass),
                              static_cast<int64_t>(key.math), key.deterministic ? 1 : 0,
                              static_cast<int64_t>(key.data)};
    size_t h = 1469598103934665603ull;  // FNV-1a over the fields' hashes
    for (int64_t f : fields) {
      h ^= std::hash<int64_t>{}(f);
      h *= 1099511628211ull;
    }
    return h;
  }
};

}  // namespace hotlap::kernels::cudnn
