// The kernel settings and the choice functions: see kernels/choice.h. The only place hotlap reads
// an environment variable that picks a kernel.
#include "kernels/choice.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/conv.h"
#include "kernels/error.h"
#include "kernels/profile.h"

namespace hotlap::kernels {

namespace {

// The variable's value, or "" when unset.
std::string environment(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

KernelOptions from_environment() {
  KernelOptions o;
  const std::string reference = environment("HOTLAP_REFERENCE");
  if (reference == "1")
    o.reference = true;
  else if (!reference.empty() && reference != "0")
    throw_error("HOTLAP_REFERENCE=", reference, " is neither 1 (the readable kernels everywhere) nor 0");
  if (const std::string v = environment("HOTLAP_CONV"); !v.empty()) o.conv = parse_backend("HOTLAP_CONV", v.c_str());
  if (const std::string v = environment("HOTLAP_BATCHNORM"); !v.empty())
    o.batch_norm = parse_backend("HOTLAP_BATCHNORM", v.c_str());

  const std::string gemm = environment("HOTLAP_GEMM");
  if (gemm == "blocked") {
    o.cpu_gemm = CpuGemm::blocked;
  } else if (gemm == "openblas") {
    HOTLAP_CHECK(cpu::openblas_available(),
                 "HOTLAP_GEMM=openblas, but this build has no OpenBLAS (configure with "
                 "-DHOTLAP_BLAS=ON); valid values: auto, blocked");
    o.cpu_gemm = CpuGemm::openblas;
  } else if (!gemm.empty() && gemm != "auto") {
    throw_error("HOTLAP_GEMM=", gemm, " is not a CPU GEMM; valid values: auto, blocked, openblas");
  }

  const std::string conv = environment("HOTLAP_CONV_CPU");
  if (conv == "im2col")
    o.cpu_conv = CpuConv::im2col;
  else if (conv == "winograd")
    o.cpu_conv = CpuConv::winograd;
  else if (conv == "direct")
    o.cpu_conv = CpuConv::direct;
  else if (!conv.empty() && conv != "auto")
    throw_error("HOTLAP_CONV_CPU=", conv, " is not a CPU convolution algorithm; valid values: auto, "
                "im2col, winograd, direct");

  const std::string by_shape = environment("HOTLAP_CONV_GEMM");
  if (by_shape == "gemm")
    o.cpu_conv_gemm_by_shape = false;
  else if (!by_shape.empty() && by_shape != "auto")
    throw_error("HOTLAP_CONV_GEMM=", by_shape, " is not a convolution GEMM choice; valid values: auto, gemm");
  return o;
}

// The current settings, read without a lock: every GEMM and convolution call asks for them. A set
// publishes a new copy; the old ones stay (a reader may still be copying one), a few bytes per set.
std::mutex g_mutex;
std::atomic<const KernelOptions*> g_current{nullptr};
std::vector<std::unique_ptr<const KernelOptions>> g_all;  // owns every copy published, under g_mutex

const KernelOptions* publish(const KernelOptions& o) {  // call under g_mutex
  g_all.push_back(std::make_unique<const KernelOptions>(o));
  g_current.store(g_all.back().get(), std::memory_order_release);
  return g_all.back().get();
}

// Winograd's weight transform (16 or 36 * K * C floats written per call) is paid once per call and
// reused by every output pixel of the batch; with few pixels it costs more than the multiplies it
// saves: layer4 of ResNet-50 at batch 8 (392 pixels) runs slower on it than on im2col, layer1-3
// (1568 and more) faster (bench/NOTES.md).
constexpr int64_t kWinogradMinPixels = 640;

}  // namespace

const char* backend_name(Backend b) { return b == Backend::cudnn ? "cudnn" : "native"; }

Backend parse_backend(const char* what, const char* text) {
  if (std::strcmp(text, "native") == 0) return Backend::native;
  if (std::strcmp(text, "cudnn") == 0) return Backend::cudnn;
  throw Error(std::string(what) + ": unknown backend '" + text + "' (native or cudnn)");
}

KernelOptions kernel_options() {
  if (const KernelOptions* o = g_current.load(std::memory_order_acquire)) return *o;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (const KernelOptions* o = g_current.load(std::memory_order_acquire)) return *o;
  return *publish(from_environment());  // a throw publishes nothing: the next read throws again
}

void set_kernel_options(const KernelOptions& options) {
  HOTLAP_CHECK(options.cpu_gemm != CpuGemm::openblas || cpu::openblas_available(),
               "the CPU GEMM openblas: this build has no OpenBLAS (configure with -DHOTLAP_BLAS=ON)");
  std::lock_guard<std::mutex> lock(g_mutex);
  publish(options);
}

cpu::CpuIsa cpu_isa_from_environment() {
  const char* v = std::getenv("HOTLAP_CPU_ISA");
  return cpu::cpu_isa_from_env_value(v, cpu::detected_cpu_isa());
}

// ---- the per-setting accessors of gemm.h and conv.h ----------------------------------------------

namespace cpu {

CpuGemm cpu_gemm_impl() {
  const KernelOptions o = kernel_options();
  if (o.reference) return CpuGemm::blocked;
  return o.cpu_gemm ? *o.cpu_gemm : default_cpu_gemm();
}

std::optional<CpuIsa> openblas_core_isa(const std::string& core) {
  std::string name;
  for (char ch : core) name += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  // OpenBLAS's x86-64 core names (its dynamic.c), by the widest vectors their single-precision
  // kernels use. Cooperlake and SapphireRapids run SkylakeX's SGEMM; Zen and Excavator Haswell's.
  static const char* const avx512[] = {"skylakex", "cooperlake", "sapphirerapids"};
  static const char* const avx2[] = {"haswell", "zen", "excavator"};
  static const char* const below[] = {"prescott", "core2",     "penryn",     "dunnington", "nehalem",
                                      "atom",     "sandybridge", "katmai",   "coppermine", "northwood",
                                      "banias",   "athlon",    "opteron",    "opteron_sse3", "barcelona",
                                      "nano",     "bobcat",    "bulldozer",  "piledriver", "steamroller",
                                      "unknown"};
  const auto in = [&](const auto& names) {
    return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
  };
  if (in(avx512)) return CpuIsa::avx512;
  if (in(avx2)) return CpuIsa::avx2;
  if (in(below)) return CpuIsa::baseline;
  return std::nullopt;
}

bool openblas_below(const std::string& core, CpuIsa level) {
  const std::optional<CpuIsa> isa = openblas_core_isa(core);
  return isa && *isa < level;
}

CpuGemm default_cpu_gemm() {  // asked on every GEMM call: the name is looked up once
  if (!openblas_available()) return CpuGemm::blocked;
  static const std::optional<CpuIsa> core_isa = openblas_core_isa(openblas_core());  // fixed at OpenBLAS's load
  return core_isa && *core_isa < active_cpu_isa() ? CpuGemm::blocked : CpuGemm::openblas;
}

void set_cpu_gemm(CpuGemm impl) {
  HOTLAP_CHECK(impl == CpuGemm::blocked || impl == CpuGemm::openblas, "set_cpu_gemm: unknown implementation ",
               static_cast<int>(impl));
  HOTLAP_CHECK(impl != CpuGemm::openblas || openblas_available(),
               "set_cpu_gemm(openblas): this build has no OpenBLAS (configure with -DHOTLAP_BLAS=ON)");
  KernelOptions o = kernel_options();
  o.cpu_gemm = impl;
  set_kernel_options(o);
}

CpuConv cpu_conv_impl() { return kernel_options().cpu_conv; }

void set_cpu_conv(CpuConv impl) {
  HOTLAP_CHECK(impl == CpuConv::automatic || impl == CpuConv::im2col || impl == CpuConv::winograd ||
                   impl == CpuConv::direct,
               "set_cpu_conv: unknown algorithm ", static_cast<int>(impl));
  KernelOptions o = kernel_options();
  o.cpu_conv = impl;
  set_kernel_options(o);
}

bool cpu_conv_gemm_by_shape() {
  const KernelOptions o = kernel_options();
  return o.cpu_conv_gemm_by_shape && !o.reference;
}

void set_cpu_conv_gemm_by_shape(bool by_shape) {
  KernelOptions o = kernel_options();
  o.cpu_conv_gemm_by_shape = by_shape;
  set_kernel_options(o);
}

// The GEMM a convolution's GEMM runs on (im2col's, a 1x1's, Winograd's: kernels/gemm.h conv_gemm):
// part of the convolution's choice, made per GEMM call from the call's shape and the level, never
// from the number of threads or whether the call runs inside the batch-parallel plan's parallel
// region: the two GEMMs round differently, and a convolution must give the same bits on any number
// of threads. Two measured machines set the rule (bench/NOTES.md).
//
// Below AVX-512 (hotlap's avx2 or generic micro-kernel, against OpenBLAS's AVX2 kernels): the
// hand-written GEMM for every convolution GEMM. On the native AVX2 machine measured (AMD EPYC,
// OpenBLAS 0.3.21's Zen kernels), OpenBLAS ran a GEMM of 256 columns or fewer at 10-12 GFLOP/s a
// thread where the hand-written one ran at 30-36 (a layer3 3x3 at batch 1: 196 x 256 x 2304), and
// gemm_openblas cuts a GEMM outside a parallel region into blocks of 256 columns (the same bits at
// any thread count), so every batch-1 GEMM landed there; of the single-threaded GEMMs of batch 8,
// OpenBLAS was ahead on one (layer4's downsample, 196 x 2048 x 1024: 22 against 17 GFLOP/s). There,
// too, OpenBLAS's speed on the same GEMMs changed with what else the process had run: Winograd's
// GEMMs took 1.75x as long once the other convolutions stopped calling OpenBLAS.
//
// At AVX-512 (the Xeon measured, OpenBLAS's SkylakeX kernels): OpenBLAS for the im2col GEMMs of k x k
// filters (the two were within 3-13% of each other there, OpenBLAS ahead on most), and for 1x1
// convolutions the rule from the conv_1x1 cases of bench/bench_conv.cpp (every 1x1 shape of
// ResNet-50 at batch 1 and 8, 2 threads). The hand-written GEMM reads a non-transposed A in place, so
// it wins where A is not transposed (forward: x, backward data: dy) and there are enough rows to
// amortise packing B (the weights): 1.2-2.7x on the shallow layer1-2 GEMMs. OpenBLAS stays ahead
// where M is small against N - layer4 at batch 1 (M = 49) - and in backward filter (A = dy
// transposed, both GEMMs pack everything), except when the sum runs over many pixels (layer1-2 at
// batch 8: k = 25088), where the hand-written GEMM's split of C over the threads streams the operands
// better (+3-35%). (The strided downsamples of layer3-4 at batch 8, single-threaded GEMMs of 196-784
// rows against 1024-2048 columns, had measured a little faster on OpenBLAS; they run on the
// hand-written GEMM, as on one thread, for the same bits.)
CpuGemm choose_conv_gemm(const GemmArgs& g, bool one_by_one) {
  const CpuGemm impl = cpu_gemm_impl();
  if (impl != CpuGemm::openblas || !cpu_conv_gemm_by_shape()) return impl;
  if (active_cpu_isa() < CpuIsa::avx512) return CpuGemm::blocked;
  if (!one_by_one) return CpuGemm::openblas;
  bool blocked;
  if (!g.trans_a)  // forward, backward data
    blocked = g.m >= g.n || g.m >= 128;
  else  // backward filter
    blocked = g.k >= 16384;
  return blocked ? CpuGemm::blocked : CpuGemm::openblas;
}

}  // namespace cpu

// ---- the choice functions -------------------------------------------------------------------------

std::string ConvChoice::name() const {
  switch (kernel) {
    case ConvKernel::cpu_direct: return "direct";
    case ConvKernel::cpu_pointwise: return std::string("1x1 gemm (") + cpu::cpu_gemm_name(gemm) + ")";
    case ConvKernel::cpu_im2col:
      return std::string("im2col + gemm (") + (gemm_by_shape ? "by shape" : cpu::cpu_gemm_name(gemm)) + ")";
    case ConvKernel::cpu_winograd: return "winograd";
    case ConvKernel::cuda_native: return std::string("cuda ") + cuda::conv_variant_name(variant);
    case ConvKernel::cudnn: return "cudnn";
  }
  return "unknown";
}

ConvChoice choose_conv_cpu(const ConvShape& s, ConvPass pass) {
  const KernelOptions o = kernel_options();
  if (o.reference || o.cpu_conv == CpuConv::direct) return {ConvKernel::cpu_direct};
  const bool winograd_shape = cpu::winograd_supported(s) && pass != ConvPass::backward_filter;
  const bool winograd = winograd_shape && (o.cpu_conv == CpuConv::winograd ||
                                           (o.cpu_conv == CpuConv::automatic && s.n * s.p() * s.q() >= kWinogradMinPixels));
  if (winograd) return {ConvKernel::cpu_winograd};
  ConvChoice c{s.is_pointwise() ? ConvKernel::cpu_pointwise : ConvKernel::cpu_im2col};
  c.gemm = cpu::cpu_gemm_impl();
  if (s.is_pointwise()) {  // one GEMM over the batch, outside any parallel region (kernels/cpu/conv.cpp)
    GemmArgs g;
    const int64_t pixels = s.n * s.h * s.w;
    g.trans_a = pass == ConvPass::backward_filter;
    g.m = pass == ConvPass::backward_filter ? s.k : pixels;
    g.n = pass == ConvPass::backward_data ? s.c : (pass == ConvPass::forward ? s.k : s.c);
    g.k = pass == ConvPass::backward_filter ? pixels : (pass == ConvPass::forward ? s.c : s.k);
    c.gemm = cpu::choose_conv_gemm(g, true);
  } else {  // im2col: by the level; a strided 1x1's GEMMs by each call's shape where OpenBLAS is left
    c.gemm = cpu::choose_conv_gemm(GemmArgs{}, false);
    c.gemm_by_shape = s.r == 1 && s.s == 1 && c.gemm == CpuGemm::openblas && o.cpu_conv_gemm_by_shape;
  }
  return c;
}

ConvChoice choose_conv_gpu(const ConvShape& s, ConvPass pass, bool bf16) {
  const KernelOptions o = kernel_options();
  if (o.reference) return {ConvKernel::cuda_native, bf16 ? cuda::ConvVariant::bf16_simple : cuda::ConvVariant::simple};
  if (o.conv == Backend::cudnn) return {ConvKernel::cudnn};
  return {ConvKernel::cuda_native, bf16 ? cuda::conv2d_bf16_variant(s, pass) : cuda::conv2d_variant(s, pass)};
}

Backend choose_batch_norm_gpu() {
  const KernelOptions o = kernel_options();
  return o.reference ? Backend::native : o.batch_norm;
}

// ---- notes ------------------------------------------------------------------------------------------

namespace {
std::atomic<bool> g_notes_on{false};
std::mutex g_notes_mutex;
// (layer, its passes in the order first seen as "pass kernel")
std::vector<std::pair<std::string, std::vector<std::string>>> g_notes;
}  // namespace

void set_choice_notes(bool on) { g_notes_on.store(on, std::memory_order_relaxed); }

bool choice_notes_on() { return g_notes_on.load(std::memory_order_relaxed) || profile_enabled(); }

void note_choice(const std::string& layer, const char* pass, const std::string& kernel) {
  const std::string entry = std::string(pass) + ": " + kernel;
  std::lock_guard<std::mutex> lock(g_notes_mutex);
  auto it = std::find_if(g_notes.begin(), g_notes.end(), [&](const auto& n) { return n.first == layer; });
  if (it == g_notes.end()) it = g_notes.insert(g_notes.end(), {layer, {}});
  if (std::find(it->second.begin(), it->second.end(), entry) == it->second.end()) it->second.push_back(entry);
}

std::string choice_notes_report() {
  std::lock_guard<std::mutex> lock(g_notes_mutex);
  std::string out;
  for (const auto& [layer, passes] : g_notes) {
    out += "  " + layer + "\n";
    for (const std::string& p : passes) out += "      " + p + "\n";
  }
  return out;
}

void clear_choice_notes() {
  std::lock_guard<std::mutex> lock(g_notes_mutex);
  g_notes.clear();
}

}  // namespace hotlap::kernels
