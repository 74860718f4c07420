// Hand-written single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, row-major.
//
// Algorithm (the BLIS / Goto scheme, five loops around a micro-kernel):
//
//   for jc in N step NC:                 B panel  op(B)[pc:+KC, jc:+NC]  -> packed, lives in L3
//     for pc in K step KC:
//       pack B panel into NR-wide strips  ([KC][NR] each, zero-padded at the right edge)
//       for ic in M step MC:             A block  op(A)[ic:+MC, pc:+KC]  -> packed, lives in L2
//         pack A block into MR-tall strips ([KC][MR] each, zero-padded at the bottom edge) -
//         only when A is transposed (or for a ragged last strip): a non-transposed A is read in
//         place, see gemm_block
//         for jr in NC step NR:          one B strip (KC x NR) stays in L1 while ...
//           for ir in MC step MR:        ... every A strip streams past it from L2
//             micro-kernel: an MR x NR tile of C held in registers, KC rank-1 updates
//
// Packing is what makes the rest simple: after it, the micro-kernel reads both operands with unit
// stride regardless of op(A)/op(B) (transposes are absorbed by the packing loops), and a ragged
// right edge becomes zero padding (the micro-kernel computes all NR columns into a small scratch
// tile and only the valid part is written back; a ragged bottom edge runs a kernel of its row
// count, kMaxMr below). The one exception: a
// non-transposed A already has what the micro-kernel needs (each row's k values contiguous), so a
// "direct" variant of the micro-kernel broadcasts from MR row pointers into A itself.
//
// Micro-kernels (the best that the active instruction-set level allows, kernels/cpu_isa.h: the
// library is built for the x86-64 baseline, each kernel carries its own __attribute__((target))):
//   avx512  MR=12, NR=32: 24 zmm accumulators (12 rows x 2 vectors of 16) + 2 for the B row + the
//           broadcast A value = 27 of 32 registers. Per k step: 2 vector loads, 12 broadcasts, 24 FMAs
//           (768 FLOPs), so loads never limit the two FMA ports.
//   avx2    MR=6, NR=16: 12 ymm accumulators + 2 B + 1 broadcast = 15 of 16 registers (the classic
//           Haswell shape).
//   generic MR=4, NR=16: plain C++ the compiler vectorises with whatever the baseline offers.
//
// Blocking parameters (this machine: 48 KiB L1d and 2 MiB L2 per core, a large shared L3):
//   KC=256: one B strip is 256*32*4 = 32 KiB, which fits L1 next to the A strip being streamed
//           (12 KiB) - the strip is reused MC/MR times per load. Long KC also amortises the C tile's
//           load/store (once per KC rank-1 updates).
//   MC=240: the packed A block is 240*256*4 = 240 KiB, comfortably inside the 2 MiB L2 with room
//           for the B strips passing through; a multiple of MR.
//   NC=3072: the packed B panel is 256*3072*4 = 3 MiB, for L3; a multiple of NR.
//
// Parallelism (OpenMP over the outer blocks): C is cut into a grid of one block per thread (rows
// and columns split to keep every block near-square and aligned to MR/NR); each thread runs the five
// loops above on its block with its own packing buffers. No barriers, no shared writes, one join.
// The price is that a block of A or B is packed once per thread that needs it, which is cheap here
// (a 2 x 1 grid packs B twice). Packing is not free: a packed float costs about as much as 30 FMAs
// on this machine, which is why a finer task grid with dynamic scheduling (tried: tiles of MC x 512)
// ran 10-20% slower at 1024-2048 - it re-packs A and B for every tile. The catch of the static split
// is that a core busy with another process delays the whole call.
//
// Arithmetic: 2*M*N*K FLOPs. At 1024^3: 2.1 GFLOP over 12 MiB of A, B and C - 170 FLOP/byte, so
// it runs against the FMA limit, not memory (peak here: 2 cores x 2 FMA ports x 16 lanes x 2 FLOPs
// x 2.6 GHz ~ 330 GFLOP/s). OpenBLAS is the yardstick (bench/bench_gemm.cpp).
#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <new>
#include <utility>

#include <omp.h>

#include "kernels/cpu/gemm_internal.h"
#include "kernels/cpu_isa.h"
#include "kernels/gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HOTLAP_GEMM_X86 1
#include <immintrin.h>
#endif

namespace hotlap::kernels::cpu {

namespace {

// The micro-kernel contract: c[0:R, 0:NR] (row stride ldc) = alpha * sum_p a(i, p) b[p][0:NR] +
// beta * c, where b is a packed [kc][NR] strip and a either a packed [kc][MR] strip, a(i, p) = a[p
// * MR + i] (lda is ignored), or - the "direct" variant - R rows of a row-major A read where they
// lie, a(i, p) = a[i * lda + p]. R is MR for every strip but a ragged last one (the rows of C left
// over, 1 to MR - 1), which has a kernel of its own row count: it does the FMAs of its rows only
// and reads and writes no row past them (at batch 1 a ResNet's layer4 has 49 rows, and a 12-row
// kernel run on the 49th alone did 18% of the GEMM's FMAs on padding). beta == 0 means C is not
// read (so NaN/garbage in C does not leak through), as in BLAS. ep (null for none): the GEMM's
// epilogue (kernels/gemm.h), its bias and residual pointers moved to the tile's first row and
// column, applied to the values as they are stored: given only with the last K block.
using MicroKernel = void (*)(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                             int64_t ldc, float alpha, float beta, const GemmEpilogue* ep);

// A kernel's variants by row count R = 1..MR (index 0 unused); a kernel with MR above kMaxMr would
// not compile (too many initialisers in row_kernels).
constexpr int kMaxMr = 12;
using RowKernels = std::array<MicroKernel, kMaxMr + 1>;

struct Kernel {
  const char* name;
  CpuIsa isa;  // the level it needs
  int64_t mr, nr;
  RowKernels fn;         // packed A, by row count
  RowKernels fn_direct;  // A read in place, by row count
  int64_t mc, kc, nc;    // cache blocking; mc % mr == 0, nc % nr == 0
};

// The table of K::fn<R, kDirect> for R = 1..sizeof...(I); K wraps one micro-kernel template.
template <class K, bool kDirect, int... I>
constexpr RowKernels row_kernels(std::integer_sequence<int, I...>) {
  return RowKernels{nullptr, K::template fn<I + 1, kDirect>...};
}

// ---- micro-kernels ---------------------------------------------------------------------------------

template <int R, int MR, int NR, bool kDirect>
void micro_kernel_generic(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                          int64_t ldc, float alpha, float beta, const GemmEpilogue* ep) {
  const int64_t a_rs = kDirect ? lda : 1, a_ks = kDirect ? 1 : MR;
  float acc[R][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < R; ++i) {
      const float ai = a[i * a_rs + p * a_ks];
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    b += NR;
  }
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
    if (ep != nullptr)
      detail::epilogue_row(NR, ci, ep->bias, ep->residual != nullptr ? ep->residual + i * ep->ldr : nullptr,
                           ep->relu);
  }
}

#ifdef HOTLAP_GEMM_X86

// The epilogue on one register of a row as it is stored (kernels/gemm.h): + bias, + residual, then
// the ReLU as a select, so that NaN stays NaN and -0 becomes +0, as ops::relu does.
__attribute__((target("avx2,fma"))) inline __m256 epilogue_avx2(__m256 v, const GemmEpilogue& ep, __m256 bias,
                                                                const float* residual) {
  if (ep.bias != nullptr) v = _mm256_add_ps(v, bias);
  if (residual != nullptr) v = _mm256_add_ps(v, _mm256_loadu_ps(residual));
  if (ep.relu) v = _mm256_blendv_ps(_mm256_setzero_ps(), v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NLE_UQ));
  return v;
}

__attribute__((target("avx512f"))) inline __m512 epilogue_avx512(__m512 v, const GemmEpilogue& ep, __m512 bias,
                                                                 const float* residual) {
  if (ep.bias != nullptr) v = _mm512_add_ps(v, bias);
  if (residual != nullptr) v = _mm512_add_ps(v, _mm512_loadu_ps(residual));
  if (ep.relu) v = _mm512_mask_mov_ps(_mm512_setzero_ps(), _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
  return v;
}

template <int R, bool kDirect>
__attribute__((target("avx2,fma"))) void micro_kernel_avx2_6x16(int64_t kc, const float* a,
                                                               int64_t lda, const float* b,
                                                               float* c, int64_t ldc, float alpha,
                                                               float beta, const GemmEpilogue* ep) {
  constexpr int MR = 6;  // the packed strip's stride; R <= MR rows are computed
  // Row i of the A strip starts at ar[i]; step p is ar[i][p * a_ks].
  const int64_t a_rs = kDirect ? lda : 1, a_ks = kDirect ? 1 : MR;
  const float* ar[R];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) ar[i] = a + i * a_rs;
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    const int64_t off = p * a_ks;
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 ai = _mm256_broadcast_ss(ar[i] + off);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    b += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (ep != nullptr) {
    const __m256 bias0 = ep->bias != nullptr ? _mm256_loadu_ps(ep->bias) : _mm256_setzero_ps();
    const __m256 bias1 = ep->bias != nullptr ? _mm256_loadu_ps(ep->bias + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      float* ci = c + i * ldc;
      const float* ri = ep->residual != nullptr ? ep->residual + i * ep->ldr : nullptr;
      __m256 v0 = _mm256_mul_ps(va, acc[i][0]), v1 = _mm256_mul_ps(va, acc[i][1]);
      if (beta != 0.0f) {
        v0 = _mm256_fmadd_ps(va, acc[i][0], _mm256_mul_ps(vb, _mm256_loadu_ps(ci)));
        v1 = _mm256_fmadd_ps(va, acc[i][1], _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8)));
      }
      _mm256_storeu_ps(ci, epilogue_avx2(v0, *ep, bias0, ri));
      _mm256_storeu_ps(ci + 8, epilogue_avx2(v1, *ep, bias1, ri != nullptr ? ri + 8 : nullptr));
    }
    return;
  }
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) {
      _mm256_storeu_ps(ci, _mm256_mul_ps(va, acc[i][0]));
      _mm256_storeu_ps(ci + 8, _mm256_mul_ps(va, acc[i][1]));
    } else {
      _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, acc[i][0], _mm256_mul_ps(vb, _mm256_loadu_ps(ci))));
      _mm256_storeu_ps(ci + 8,
                       _mm256_fmadd_ps(va, acc[i][1], _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8))));
    }
  }
}

template <int R, bool kDirect>
__attribute__((target("avx512f"))) void micro_kernel_avx512_12x32(int64_t kc, const float* a,
                                                                 int64_t lda, const float* b,
                                                                 float* c, int64_t ldc,
                                                                 float alpha, float beta,
                                                                 const GemmEpilogue* ep) {
  constexpr int MR = 12;  // the packed strip's stride; R <= MR rows are computed
  // Row i of the A strip starts at ar[i]; step p is ar[i][p * a_ks].
  const int64_t a_rs = kDirect ? lda : 1, a_ks = kDirect ? 1 : MR;
  const float* ar[R];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) ar[i] = a + i * a_rs;
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    const int64_t off = p * a_ks;
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 ai = _mm512_set1_ps(ar[i][off]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    b += 32;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  if (ep != nullptr) {
    const __m512 bias0 = ep->bias != nullptr ? _mm512_loadu_ps(ep->bias) : _mm512_setzero_ps();
    const __m512 bias1 = ep->bias != nullptr ? _mm512_loadu_ps(ep->bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      float* ci = c + i * ldc;
      const float* ri = ep->residual != nullptr ? ep->residual + i * ep->ldr : nullptr;
      __m512 v0 = _mm512_mul_ps(va, acc[i][0]), v1 = _mm512_mul_ps(va, acc[i][1]);
      if (beta != 0.0f) {
        v0 = _mm512_fmadd_ps(va, acc[i][0], _mm512_mul_ps(vb, _mm512_loadu_ps(ci)));
        v1 = _mm512_fmadd_ps(va, acc[i][1], _mm512_mul_ps(vb, _mm512_loadu_ps(ci + 16)));
      }
      _mm512_storeu_ps(ci, epilogue_avx512(v0, *ep, bias0, ri));
      _mm512_storeu_ps(ci + 16, epilogue_avx512(v1, *ep, bias1, ri != nullptr ? ri + 16 : nullptr));
    }
    return;
  }
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) {
      _mm512_storeu_ps(ci, _mm512_mul_ps(va, acc[i][0]));
      _mm512_storeu_ps(ci + 16, _mm512_mul_ps(va, acc[i][1]));
    } else {
      _mm512_storeu_ps(ci, _mm512_fmadd_ps(va, acc[i][0], _mm512_mul_ps(vb, _mm512_loadu_ps(ci))));
      _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(va, acc[i][1],
                                                _mm512_mul_ps(vb, _mm512_loadu_ps(ci + 16))));
    }
  }
}

#endif  // HOTLAP_GEMM_X86

// Each micro-kernel template as K::fn<R, kDirect>, for row_kernels.
#ifdef HOTLAP_GEMM_X86
struct Avx512Kernels {
  template <int R, bool kDirect>
  static constexpr MicroKernel fn = micro_kernel_avx512_12x32<R, kDirect>;
};
struct Avx2Kernels {
  template <int R, bool kDirect>
  static constexpr MicroKernel fn = micro_kernel_avx2_6x16<R, kDirect>;
};
#endif
struct GenericKernels {
  template <int R, bool kDirect>
  static constexpr MicroKernel fn = micro_kernel_generic<R, 4, 16, kDirect>;
};

template <class K, int MR, bool kDirect>
constexpr RowKernels by_rows = row_kernels<K, kDirect>(std::make_integer_sequence<int, MR>{});

// Every kernel this build has, best first.
constexpr Kernel kKernels[] = {
#ifdef HOTLAP_GEMM_X86
    {"avx512", CpuIsa::avx512, 12, 32, by_rows<Avx512Kernels, 12, false>, by_rows<Avx512Kernels, 12, true>, 240, 256,
     3072},
    {"avx2", CpuIsa::avx2, 6, 16, by_rows<Avx2Kernels, 6, false>, by_rows<Avx2Kernels, 6, true>, 120, 256, 3072},
#endif
    {"generic", CpuIsa::baseline, 4, 16, by_rows<GenericKernels, 4, false>, by_rows<GenericKernels, 4, true>, 128,
     256, 3072},
};

// A kernel runs when the active level (the CPU's best, or lower with HOTLAP_CPU_ISA) includes its
// instructions; generic always does.
bool supported(const Kernel& k) { return k.isa <= active_cpu_isa(); }

std::atomic<const Kernel*> g_forced_kernel{nullptr};  // tests pin a kernel; null = best supported

const Kernel& pick_kernel() {
  const Kernel* forced = g_forced_kernel.load(std::memory_order_relaxed);
  if (forced != nullptr) return *forced;
  for (const Kernel& k : kKernels)
    if (supported(k)) return k;
  return kKernels[std::size(kKernels) - 1];  // not reached: generic is supported everywhere
}

// ---- packing ---------------------------------------------------------------------------------------

// A view of op(X) as a logical row-major matrix: element (i, j) of op(X).
struct Operand {
  const float* p;
  int64_t ld;
  bool trans;
  float at(int64_t i, int64_t j) const { return trans ? p[j * ld + i] : p[i * ld + j]; }
};

// op(A)[i0:i0+mc, p0:p0+kc] -> strips of MR rows, each stored [kc][MR] (k-major, so the micro-kernel
// reads MR consecutive floats per rank-1 update). Rows past mc are zero.
void pack_a(const Operand& A, int64_t i0, int64_t p0, int64_t mc, int64_t kc, int64_t mr,
            float* dst) {
  for (int64_t is = 0; is < mc; is += mr, dst += mr * kc) {
    const int64_t rows = std::min(mr, mc - is);
    if (A.trans) {  // op(A)(i, p) = a[p*lda + i]: each k step is a contiguous run of rows
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = A.p + (p0 + p) * A.ld + (i0 + is);
        float* d = dst + p * mr;
        for (int64_t i = 0; i < rows; ++i) d[i] = src[i];
        for (int64_t i = rows; i < mr; ++i) d[i] = 0.0f;
      }
    } else {  // op(A)(i, p) = a[i*lda + p]: each row is contiguous in k; scatter it with stride MR
      for (int64_t i = 0; i < rows; ++i) {
        const float* src = A.p + (i0 + is + i) * A.ld + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p];
      }
      for (int64_t i = rows; i < mr; ++i)
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = 0.0f;
    }
  }
}

#ifdef HOTLAP_GEMM_X86
// One strip of a transposed op(B) (op(B)(p, j) = b[j * ldb + p]: each column contiguous in k) into
// [kc][nr], for cols <= nr columns, the rest zero. The scalar loop writes one float per column per k
// step with a stride of nr floats, and in the few-row GEMMs of batch 1 (49-196 rows, each packed value
// used that many times) it took over a third of the GEMM's time. Here 8 columns x 8 k steps go at
// once: eight 8-float loads, an 8x8 transpose in registers, eight 8-float stores. A copy: the packed
// values, and so every result, are the same bits as the scalar loop's.
__attribute__((target("avx2,fma"))) void pack_b_strip_trans_avx2(const float* b, int64_t ldb, int64_t kc,
                                                                 int64_t cols, int64_t nr, float* dst) {
  const int64_t cols8 = cols / 8 * 8, kc8 = kc / 8 * 8;
  for (int64_t j = 0; j < cols8; j += 8) {
    const float* src = b + j * ldb;
    for (int64_t p = 0; p < kc8; p += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ldb + p);
      const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
      float* d = dst + p * nr + j;  // row p of the strip, columns j..j+7
      _mm256_storeu_ps(d + 0 * nr, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + 1 * nr, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * nr, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * nr, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * nr, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * nr, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * nr, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * nr, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (int64_t i = 0; i < 8; ++i)  // the last kc % 8 steps
      for (int64_t p = kc8; p < kc; ++p) dst[p * nr + j + i] = src[i * ldb + p];
  }
  for (int64_t j = cols8; j < cols; ++j)
    for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = b[j * ldb + p];
  for (int64_t p = 0; p < kc; ++p)
    for (int64_t j = cols; j < nr; ++j) dst[p * nr + j] = 0.0f;
}
#endif  // HOTLAP_GEMM_X86

// op(B)[p0:p0+kc, j0:j0+nc] -> strips of NR columns, each stored [kc][NR]. Columns past nc are zero.
// vector_trans: the AVX2 transposing copy may run (the active level has AVX2, and nr is a multiple of 8).
void pack_b(const Operand& B, int64_t p0, int64_t j0, int64_t kc, int64_t nc, int64_t nr, bool vector_trans,
            float* dst) {
  for (int64_t js = 0; js < nc; js += nr, dst += nr * kc) {
    const int64_t cols = std::min(nr, nc - js);
    if (!B.trans) {  // op(B)(p, j) = b[p*ldb + j]: each k step is a contiguous run of columns
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = B.p + (p0 + p) * B.ld + (j0 + js);
        float* d = dst + p * nr;
        for (int64_t j = 0; j < cols; ++j) d[j] = src[j];
        for (int64_t j = cols; j < nr; ++j) d[j] = 0.0f;
      }
      continue;
    }
    // op(B)(p, j) = b[j*ldb + p]: each column is contiguous in k
#ifdef HOTLAP_GEMM_X86
    if (vector_trans) {
      pack_b_strip_trans_avx2(B.p + (j0 + js) * B.ld + p0, B.ld, kc, cols, nr, dst);
      continue;
    }
#else
    (void)vector_trans;
#endif
    for (int64_t j = 0; j < cols; ++j) {
      const float* src = B.p + (j0 + js + j) * B.ld + p0;
      for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = src[p];
    }
    for (int64_t j = cols; j < nr; ++j)
      for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = 0.0f;
  }
}

// Per-thread packing buffers, 64-byte aligned, grown on demand and kept for the next call (OpenMP
// reuses its threads, so thread_local buffers are allocated once per thread).
struct AlignedBuffer {
  struct Free {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<float[], Free> data;
  int64_t size = 0;
  float* get(int64_t n) {
    if (n > size) {
      data.reset(static_cast<float*>(::operator new[](sizeof(float) * n, std::align_val_t{64})));
      size = n;
    }
    return data.get();
  }
};

// The five loops on one block of C (one thread's share).
//
// A non-transposed A is not packed: its rows already hold each row's k values contiguously, and the
// direct micro-kernel broadcasts them from where they lie (MR row pointers instead of one packed
// strip; a broadcast from memory costs the same load either way). Packing such an A is a scatter
// (each row spread with stride MR), the costliest kind of packing, and in the shallow GEMMs of 1x1
// convolutions (k = 64-256, each A value used for only N = 64-256 columns) perf put the packing
// loops at about as many cycles as the micro-kernel. Reading in place: 1.3-1.4x on those GEMMs, 0-20%
// on deeper ones (one thread; bench/NOTES.md). A ragged last strip of fewer than MR rows is read in
// place too, by the kernel of its row count. A transposed A is still packed: its packing is a
// contiguous copy, and reading it in place (each k step of a strip from another row of A) measured
// 15-20% slower; its ragged last strip is zero-padded to MR rows there, and only its rows computed.
//
// The epilogue (ep, its pointers at this block's first row and column; empty for none) is given to
// the micro-kernel with the last K block, so each tile is finished while it is in registers.
void gemm_block(const Kernel& kern, const Operand& A, const Operand& B, int64_t m, int64_t n,
                int64_t k, float alpha, float beta, float* c, int64_t ldc, const GemmEpilogue& ep,
                bool vector_pack) {
  const int64_t mr = kern.mr, nr = kern.nr;
  const int64_t MC = kern.mc, KC = kern.kc, NC = kern.nc;
  const bool direct_a = !A.trans;  // then every row is read in place, a ragged last strip's too
  // With every row of C in one MC block (the few-row GEMMs of batch 1), each B strip is used by one
  // pass over the A strips and then never again: it is packed just before that pass, into one
  // strip-sized buffer that stays in L1, instead of into a panel (up to KC x NC, beyond L2) written
  // out and read back.
  const bool strip_at_a_time = m <= MC;
  thread_local AlignedBuffer a_buf, b_buf;
  float* a_pack = a_buf.get(std::min(MC, (m + mr - 1) / mr * mr) * std::min(KC, k));
  float* b_pack = b_buf.get((strip_at_a_time ? nr : std::min(NC, (n + nr - 1) / nr * nr)) * std::min(KC, k));
  alignas(64) float tile[16 * 32];  // scratch for edge tiles; mr*nr <= 512 for every kernel

  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const float beta_block = pc == 0 ? beta : 1.0f;  // later K blocks accumulate onto C
      const bool finish = pc + kc >= k && !ep.empty();   // the last K block stores the epilogue
      if (!strip_at_a_time) pack_b(B, pc, jc, kc, nc, nr, vector_pack, b_pack);
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = std::min(MC, m - ic);
        // Rows [ic, ic + full) are read in place; the rest (all of them unless direct_a) packed.
        const int64_t full = direct_a ? mc : 0;
        pack_a(A, ic + full, pc, mc - full, kc, mr, a_pack);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t cols = std::min(nr, nc - jr);
          if (strip_at_a_time) pack_b(B, pc, jc + jr, kc, cols, nr, vector_pack, b_pack);
          const float* b_strip = strip_at_a_time ? b_pack : b_pack + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t rows = std::min(mr, mc - ir);
            const bool in_place = ir < full;
            const float* a_strip =
                in_place ? A.p + (ic + ir) * A.ld + pc : a_pack + (ir - full) * kc;
            const MicroKernel fn = (in_place ? kern.fn_direct : kern.fn)[rows];  // rows < mr: the last strip
            float* c_tile = c + (ic + ir) * ldc + (jc + jr);
            GemmEpilogue tile_ep = ep;  // moved to the tile
            if (finish) {
              if (ep.bias != nullptr) tile_ep.bias = ep.bias + jc + jr;
              if (ep.residual != nullptr) tile_ep.residual = ep.residual + (ic + ir) * ep.ldr + jc + jr;
            }
            if (cols == nr) {
              fn(kc, a_strip, A.ld, b_strip, c_tile, ldc, alpha, beta_block, finish ? &tile_ep : nullptr);
            } else {  // ragged right edge: the strip's rows into scratch, then the valid columns into C
              fn(kc, a_strip, A.ld, b_strip, tile, nr, 1.0f, 0.0f, nullptr);
              for (int64_t i = 0; i < rows; ++i) {
                float* ci = c_tile + i * ldc;
                for (int64_t j = 0; j < cols; ++j) {
                  const float v = alpha * tile[i * nr + j];
                  ci[j] = beta_block == 0.0f ? v : v + beta_block * ci[j];
                }
                if (finish)
                  detail::epilogue_row(cols, ci, tile_ep.bias,
                                       tile_ep.residual != nullptr ? tile_ep.residual + i * ep.ldr : nullptr,
                                       ep.relu);
              }
            }
          }
        }
      }
    }
  }
}

// Splits C among `threads` as a tm x tn grid, choosing the grid whose largest block (rounded up to
// whole micro-tiles) is smallest; ties go to the squarer block (less packing per FLOP).
void choose_grid(int64_t m, int64_t n, int64_t mr, int64_t nr, int threads, int& tm, int& tn) {
  tm = 1;
  tn = 1;
  int64_t best_work = INT64_MAX, best_perimeter = INT64_MAX;
  for (int a = 1; a <= threads; ++a) {
    if (threads % a != 0) continue;
    const int b = threads / a;
    const int64_t rows = ((m + mr - 1) / mr + a - 1) / a * mr;
    const int64_t cols = ((n + nr - 1) / nr + b - 1) / b * nr;
    const int64_t work = rows * cols, perimeter = rows + cols;
    if (work < best_work || (work == best_work && perimeter < best_perimeter)) {
      best_work = work;
      best_perimeter = perimeter;
      tm = a;
      tn = b;
    }
  }
}

}  // namespace

const char* gemm_blocked_kernel_name() { return pick_kernel().name; }
bool gemm_blocked_use_kernel(const char* name) {
  if (name == nullptr) {
    g_forced_kernel.store(nullptr);
    return true;
  }
  for (const Kernel& k : kKernels)
    if (std::strcmp(k.name, name) == 0 && supported(k)) {
      g_forced_kernel.store(&k);
      return true;
    }
  return false;
}

void gemm_blocked(const GemmArgs& g) {
  detail::check_gemm_args(g, "gemm_blocked");
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0 || g.alpha == 0.0f) {  // BLAS semantics: A and B are not read, C = beta * C
    detail::scale_c(g);
    detail::apply_epilogue(g);
    return;
  }
  const Kernel& kern = pick_kernel();
  const Operand A{g.a, g.lda, g.trans_a}, B{g.b, g.ldb, g.trans_b};
  const bool vector_pack = active_cpu_isa() >= CpuIsa::avx2 && kern.nr % 8 == 0;

  // Threads only pay off once there is enough work to hide the fork/join (~a few microseconds).
  const double flops = 2.0 * double(g.m) * double(g.n) * double(g.k);
  int threads = (omp_in_parallel() || flops < 4e6) ? 1 : omp_get_max_threads();
  if (threads <= 1) {
    gemm_block(kern, A, B, g.m, g.n, g.k, g.alpha, g.beta, g.c, g.ldc, g.epilogue, vector_pack);
    return;
  }
  int tm, tn;
  choose_grid(g.m, g.n, kern.mr, kern.nr, threads, tm, tn);
  const int64_t mtiles = (g.m + kern.mr - 1) / kern.mr, ntiles = (g.n + kern.nr - 1) / kern.nr;
  const int64_t rows_per = (mtiles + tm - 1) / tm * kern.mr, cols_per = (ntiles + tn - 1) / tn * kern.nr;

#pragma omp parallel num_threads(tm * tn)
  {
    const int t = omp_get_thread_num();
    const int64_t i0 = (t / tn) * rows_per, j0 = (t % tn) * cols_per;
    const int64_t rows = std::min(rows_per, g.m - i0), cols = std::min(cols_per, g.n - j0);
    if (rows > 0 && cols > 0) {
      // Sub-matrices: op(A) rows i0.., op(B) columns j0.., C block (i0, j0).
      const Operand As{A.trans ? A.p + i0 : A.p + i0 * A.ld, A.ld, A.trans};
      const Operand Bs{B.trans ? B.p + j0 * B.ld : B.p + j0, B.ld, B.trans};
      GemmEpilogue ep = g.epilogue;  // moved to the block
      if (ep.bias != nullptr) ep.bias += j0;
      if (ep.residual != nullptr) ep.residual += i0 * ep.ldr + j0;
      gemm_block(kern, As, Bs, rows, cols, g.k, g.alpha, g.beta, g.c + i0 * g.ldc + j0, g.ldc, ep, vector_pack);
    }
  }
}

}  // namespace hotlap::kernels::cpu
