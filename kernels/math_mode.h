// How much compute may trade precision and reproducibility for speed: two process-wide settings
// that the cuDNN/cuBLAS backend (kernels/cudnn.h) reads at every call, and that nn/layers/ops.cpp reads to
// pick the activations' storage type (bf16).
//
//   MathMode::fp32  strict fp32: every product and sum in fp32 on the FMA units (cuDNN
//                   CUDNN_FMA_MATH, cuBLAS CUBLAS_DEFAULT_MATH). Results match the CPU's to fp32
//                   rounding. The default.
//   MathMode::tf32  fp32 data, products on the tensor cores in TF32 (10-bit mantissa), sums in fp32
//                   (cuDNN CUDNN_DEFAULT_MATH, cuBLAS CUBLAS_TF32_TENSOR_OP_MATH). About 1e-3
//                   relative error on a ResNet-50 convolution; several times faster on A100/H100.
//   MathMode::bf16  activations (and per-forward copies of the convolution weights) stored as
//                   bf16 (8-bit mantissa); every product summed in fp32, batch-norm statistics
//                   and reductions in fp32. Master weights, gradients of the parameters, optimizer
//                   state and running statistics stay fp32 (nn/layers/ops.cpp casts at the op boundaries,
//                   like an autocast). About 1e-2 relative error per op. On the CPU the
//                   element-wise ops have bf16 loops of their own; convolution, batch norm and the
//                   pools are an emulation (kernels/cpu/bf16_emulation.h), for correctness, not speed. The
//                   GEMM-backed linear layer and the losses stay fp32 in every mode.
//   deterministic   only algorithms that give bit-identical results run to run (cuDNN's
//                   heuristics mark each one); design rule 6, `--deterministic`.
//
// Header-only (inline variables), so every build has them, with or without CUDA. Set them before a
// training step, not while GPU work of another thread is being queued.
#pragma once

#include <atomic>

namespace hotlap::kernels {

enum class MathMode { fp32, tf32, bf16 };

inline const char* math_mode_name(MathMode m) {
  return m == MathMode::tf32 ? "tf32" : m == MathMode::bf16 ? "bf16" : "fp32";
}

namespace detail {
inline std::atomic<MathMode> g_math_mode{MathMode::fp32};
inline std::atomic<bool> g_deterministic{false};
}  // namespace detail

inline MathMode math_mode() { return detail::g_math_mode.load(std::memory_order_relaxed); }
inline void set_math_mode(MathMode m) { detail::g_math_mode.store(m, std::memory_order_relaxed); }

// The math mode set for a scope and restored after it: for work that must run in one mode whatever
// the run's --precision (the face detector's networks are fp32 networks, and their PReLU has no bf16
// version).
class ScopedMathMode {
 public:
  explicit ScopedMathMode(MathMode m) : saved_(math_mode()) { set_math_mode(m); }
  ~ScopedMathMode() { set_math_mode(saved_); }
  ScopedMathMode(const ScopedMathMode&) = delete;
  ScopedMathMode& operator=(const ScopedMathMode&) = delete;

 private:
  MathMode saved_;
};

inline bool deterministic() { return detail::g_deterministic.load(std::memory_order_relaxed); }
inline void set_deterministic(bool on) { detail::g_deterministic.store(on, std::memory_order_relaxed); }

}  // namespace hotlap::kernels
