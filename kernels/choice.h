// Which kernel runs: every setting that changes it, in one struct read from the environment in one
// place (kernels/choice.cpp, once, at first use), and one choice function per op family that
// has more than one kernel, taking the call's shape, pass and device and these settings.
//
//   environment          setting                 what it picks
//   HOTLAP_REFERENCE=1   reference               the readable path everywhere: the direct CPU
//                                                convolution (kernels/cpu/conv_direct.cpp), the
//                                                hand-written GEMM, the simple CUDA convolution,
//                                                the hand-written GPU batch norm: to step through
//                                                the maths, and to check the fast paths against
//   HOTLAP_CONV          conv                    GPU convolution: native (hand-written) | cudnn
//   HOTLAP_BATCHNORM     batchnorm               GPU batch norm: native | cudnn
//   HOTLAP_GEMM          cpu_gemm                CPU GEMM: auto | blocked (hand-written) | openblas
//   HOTLAP_CONV_CPU      cpu_conv                CPU convolution: auto | im2col | winograd | direct
//   HOTLAP_CONV_GEMM     cpu_conv_gemm_by_shape  convolutions' GEMM by shape class: auto | gemm
//   HOTLAP_CPU_ISA       (kernels/cpu_isa.h)     the instruction-set level of the CPU kernels
//
// The command line's --conv and --batchnorm, the tests and the benchmarks set them in code
// (set_kernel_options, or the per-setting setters of gemm.h, conv.h, cpu_isa.h). The choices made
// show in HOTLAP_PROFILE=1's report, per layer (kernels/profile.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "kernels/conv_shape.h"
#include "kernels/conv_variant.h"
#include "kernels/cpu_isa.h"
#include "kernels/gemm.h"

namespace hotlap::kernels {

enum class Backend : uint8_t { native, cudnn };
const char* backend_name(Backend b);
Backend parse_backend(const char* what, const char* text);  // "native" | "cudnn"; Error otherwise

// The CPU convolution's algorithm for the shapes that Winograd can take (3x3, stride 1, padding 1):
//   automatic - by shape class: Winograd when the batch has enough output pixels to pay for
//               transforming the weights on every call (kernels/cpu/conv.cpp), else im2col
//   im2col    - im2col + GEMM everywhere (the reference path)
//   winograd  - Winograd wherever the shape allows it
//   direct    - the definition as loops, every pass, every shape (kernels/cpu/conv_direct.cpp)
// Backward filter is im2col + GEMM in every case; 1x1 stride-1 convolutions are one GEMM.
enum class CpuConv { automatic, im2col, winograd, direct };

struct KernelOptions {
  bool reference = false;
  Backend conv = Backend::native;
  Backend batch_norm = Backend::native;
  std::optional<CpuGemm> cpu_gemm;  // unset: automatic (cpu::default_cpu_gemm, kernels/gemm.h)
  CpuConv cpu_conv = CpuConv::automatic;
  bool cpu_conv_gemm_by_shape = true;
};

// The current settings: the environment's at first use, then whatever set_kernel_options set. A bad
// value in the environment throws an Error naming the variable and the valid values, every time.
KernelOptions kernel_options();
void set_kernel_options(const KernelOptions& options);
// HOTLAP_CPU_ISA's level (auto: the detected one); read here like the others, kept by cpu_isa.cpp.
cpu::CpuIsa cpu_isa_from_environment();

// ---- the choice functions -----------------------------------------------------------------------

// The convolution kernel for one call.
enum class ConvKernel : uint8_t {
  cpu_direct,     // the definition as loops (HOTLAP_REFERENCE, HOTLAP_CONV_CPU=direct)
  cpu_pointwise,  // 1x1 stride 1: one GEMM over the batch, no im2col
  cpu_im2col,     // im2col + GEMM (every backward filter but the direct one's)
  cpu_winograd,   // Winograd F(2x2, 3x3) forward, F(4x4, 3x3) backward data
  cuda_native,    // hotlap's implicit-GEMM CUDA kernels, `variant` says which
  cudnn,          // cuDNN
};
struct ConvChoice {
  ConvKernel kernel = ConvKernel::cpu_im2col;
  cuda::ConvVariant variant = cuda::ConvVariant::simple;  // for cuda_native
  CpuGemm gemm = CpuGemm::blocked;  // for cpu_pointwise and cpu_im2col
  bool gemm_by_shape = false;       // cpu_im2col of a strided 1x1: each GEMM call picks (choose_conv_gemm)
  std::string name() const;  // "winograd", "im2col + gemm", "cuda tiled", "cudnn", ...
};
// On the CPU: direct under reference (or cpu_conv = direct), else Winograd for the 3x3 stride-1
// pad-1 shapes with enough output pixels to pay for the weight transform (forward and backward
// data; cpu_conv can force either way), pointwise for 1x1 stride 1 unpadded, else im2col.
ConvChoice choose_conv_cpu(const ConvShape& s, ConvPass pass);
// On the GPU: cuDNN when chosen (and not reference), else the hand-written variant for the shape
// (kernels/cuda/conv_math.h: choose_conv_variant); simple (or bf16_simple) under reference.
ConvChoice choose_conv_gpu(const ConvShape& s, ConvPass pass, bool bf16);
// The GPU batch norm's backend: native under reference.
Backend choose_batch_norm_gpu();

// ---- what was chosen, per layer ---------------------------------------------------------------------
// While notes are on (set_choice_notes, or HOTLAP_PROFILE=1), nn/runtime/dispatch notes the kernel each
// convolution shape and pass ran on (and, on the GPU, each batch norm's backend); choice_notes_report
// lists them, a layer and its passes, in the order first seen. `hotlap bench --kernels` prints it.
void set_choice_notes(bool on);
bool choice_notes_on();
void note_choice(const std::string& layer, const char* pass, const std::string& kernel);
std::string choice_notes_report();
void clear_choice_notes();

// The CPU convolution's settings, as the kernels read them (HOTLAP_CONV_CPU, HOTLAP_CONV_GEMM).
namespace cpu {

// Which algorithm choice the convolutions follow. Starts from env HOTLAP_CONV_CPU
// (auto|im2col|winograd|direct; default auto); set_cpu_conv overrides it (kernels/choice.h).
CpuConv cpu_conv_impl();
void set_cpu_conv(CpuConv impl);
const char* cpu_conv_name(CpuConv impl);

// The GEMM under the convolutions. When the CPU GEMM is OpenBLAS (by default where it is built in and
// runs kernels for this CPU: default_cpu_gemm, kernels/gemm.h), each GEMM of a convolution runs on
// whichever of OpenBLAS and the hand-written GEMM measured faster for its shape class at the active
// instruction-set level (kernels/choice.cpp: choose_conv_gemm; bench/NOTES.md): below AVX-512 the
// hand-written one everywhere; at AVX-512 OpenBLAS, but the hand-written one for the 1x1 shapes it
// wins. Never by the thread count: a convolution gives the
// same bits on any number of threads. Env HOTLAP_CONV_GEMM=auto|gemm (default auto; or
// set_cpu_conv_gemm_by_shape) turns the choice off: gemm runs every convolution GEMM on
// cpu_gemm_impl(), for comparisons.
bool cpu_conv_gemm_by_shape();
void set_cpu_conv_gemm_by_shape(bool by_shape);
// The GEMM a convolution's GEMM call g runs on under the current settings; one_by_one: a 1x1
// convolution's.
CpuGemm choose_conv_gemm(const GemmArgs& g, bool one_by_one);

}  // namespace cpu

}  // namespace hotlap::kernels
