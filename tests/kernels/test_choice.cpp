// kernels/choice.h: the settings that pick kernels, and the convolution's choice function.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "kernels/choice.h"
#include "kernels/conv.h"
#include "kernels/error.h"
#include "conv_shapes.h"
#include "test_util.h"

namespace k = hotlap::kernels;
namespace cpu = hotlap::kernels::cpu;

namespace {

// Restores the settings a test changes, however it ends.
struct OptionsGuard {
  k::KernelOptions saved = k::kernel_options();
  ~OptionsGuard() { k::set_kernel_options(saved); }
};

// n images of hw x hw x c, kout filters r x r.
k::ConvShape shape(int64_t n, int64_t hw, int64_t c, int64_t kout, int64_t r, int64_t stride, int64_t pad) {
  return hotlap::test::conv_shape(n, hw, hw, c, kout, r, r, stride, pad);
}

}  // namespace

TEST_CASE("kernel choice: the CPU convolution by shape, pass and setting") {
  OptionsGuard guard;
  k::KernelOptions o = k::kernel_options();
  o.reference = false;
  o.cpu_conv = k::CpuConv::automatic;
  k::set_kernel_options(o);
  const k::ConvShape layer1 = shape(8, 56, 64, 64, 3, 1, 1), layer4 = shape(1, 7, 512, 512, 3, 1, 1);
  // Winograd where the batch has the pixels to pay for the weight transform, never for backward filter.
  CHECK(k::choose_conv_cpu(layer1, k::ConvPass::forward).kernel == k::ConvKernel::cpu_winograd);
  CHECK(k::choose_conv_cpu(layer1, k::ConvPass::backward_data).kernel == k::ConvKernel::cpu_winograd);
  CHECK(k::choose_conv_cpu(layer1, k::ConvPass::backward_filter).kernel == k::ConvKernel::cpu_im2col);
  CHECK(k::choose_conv_cpu(layer4, k::ConvPass::forward).kernel == k::ConvKernel::cpu_im2col);
  CHECK(k::choose_conv_cpu(shape(8, 56, 64, 256, 1, 1, 0), k::ConvPass::forward).kernel == k::ConvKernel::cpu_pointwise);
  CHECK(k::choose_conv_cpu(shape(8, 56, 256, 512, 1, 2, 0), k::ConvPass::forward).kernel == k::ConvKernel::cpu_im2col);
  CHECK(k::choose_conv_cpu(shape(8, 56, 64, 64, 3, 2, 1), k::ConvPass::forward).kernel == k::ConvKernel::cpu_im2col);
  CHECK(cpu::conv2d_uses_winograd(layer1));

  o.cpu_conv = k::CpuConv::im2col;
  k::set_kernel_options(o);
  CHECK(k::choose_conv_cpu(layer1, k::ConvPass::forward).kernel == k::ConvKernel::cpu_im2col);
  o.cpu_conv = k::CpuConv::winograd;
  k::set_kernel_options(o);
  CHECK(k::choose_conv_cpu(layer4, k::ConvPass::forward).kernel == k::ConvKernel::cpu_winograd);
  CHECK(k::choose_conv_cpu(shape(1, 7, 8, 8, 5, 1, 2), k::ConvPass::forward).kernel == k::ConvKernel::cpu_im2col);
  o.cpu_conv = k::CpuConv::direct;
  k::set_kernel_options(o);
  CHECK(k::choose_conv_cpu(layer1, k::ConvPass::forward).kernel == k::ConvKernel::cpu_direct);
  CHECK(cpu::conv2d_workspace_floats(layer1) == 0);  // the direct loops need no scratch
}

TEST_CASE("kernel choice: the GEMM the CPU convolution names, by instruction-set level") {
  if (!cpu::openblas_available()) return;  // without OpenBLAS there is one GEMM
  OptionsGuard guard;
  const cpu::CpuIsa saved_isa = cpu::active_cpu_isa();
  k::KernelOptions o = k::kernel_options();
  o.reference = false;
  o.cpu_conv = k::CpuConv::automatic;
  o.cpu_gemm = k::CpuGemm::openblas;
  o.cpu_conv_gemm_by_shape = true;
  k::set_kernel_options(o);
  const k::ConvShape layer4_b1 = shape(1, 7, 512, 512, 3, 1, 1), stem = shape(1, 224, 3, 64, 7, 2, 3);
  const k::ConvShape downsample = shape(1, 14, 1024, 2048, 1, 2, 0);
  const k::ConvShape pointwise_b1 = shape(1, 7, 512, 2048, 1, 1, 0);
  cpu::set_cpu_isa(cpu::CpuIsa::baseline);  // below AVX-512: the hand-written GEMM everywhere
  for (const k::ConvShape& s : {layer4_b1, stem, downsample}) {
    const k::ConvChoice c = k::choose_conv_cpu(s, k::ConvPass::forward);
    CHECK(c.gemm == k::CpuGemm::blocked);
    CHECK(!c.gemm_by_shape);
    CHECK(c.name() == "im2col + gemm (blocked)");
  }
  CHECK(k::choose_conv_cpu(pointwise_b1, k::ConvPass::forward).name() == "1x1 gemm (blocked)");
  if (cpu::detected_cpu_isa() >= cpu::CpuIsa::avx512) {
    cpu::set_cpu_isa(cpu::CpuIsa::avx512);  // the im2col GEMMs of a k x k filter on OpenBLAS
    CHECK(k::choose_conv_cpu(layer4_b1, k::ConvPass::forward).name() == "im2col + gemm (openblas)");
    CHECK(k::choose_conv_cpu(downsample, k::ConvPass::forward).name() == "im2col + gemm (by shape)");
    CHECK(k::choose_conv_cpu(pointwise_b1, k::ConvPass::forward).name() == "1x1 gemm (openblas)");
  }
  o.cpu_conv_gemm_by_shape = false;  // off: the GEMM chosen, everywhere
  k::set_kernel_options(o);
  CHECK(k::choose_conv_cpu(layer4_b1, k::ConvPass::forward).name() == "im2col + gemm (openblas)");
  cpu::set_cpu_isa(saved_isa);
}

TEST_CASE("kernel choice: HOTLAP_REFERENCE's setting picks the readable kernel of every family") {
  OptionsGuard guard;
  k::KernelOptions o = k::kernel_options();
  o.reference = true;
  o.conv = o.batch_norm = k::Backend::cudnn;
  o.cpu_conv = k::CpuConv::winograd;
  k::set_kernel_options(o);
  const k::ConvShape layer1 = shape(8, 56, 64, 64, 3, 1, 1);
  for (k::ConvPass pass : {k::ConvPass::forward, k::ConvPass::backward_data, k::ConvPass::backward_filter}) {
    CHECK(k::choose_conv_cpu(layer1, pass).kernel == k::ConvKernel::cpu_direct);
    const k::ConvChoice gpu = k::choose_conv_gpu(layer1, pass, false), gpu_bf16 = k::choose_conv_gpu(layer1, pass, true);
    CHECK(gpu.kernel == k::ConvKernel::cuda_native);
    CHECK(gpu.variant == k::cuda::ConvVariant::simple);
    CHECK(gpu_bf16.variant == k::cuda::ConvVariant::bf16_simple);
  }
  CHECK(k::choose_batch_norm_gpu() == k::Backend::native);
  CHECK(cpu::cpu_gemm_impl() == k::CpuGemm::blocked);
  CHECK(!cpu::cpu_conv_gemm_by_shape());
  CHECK(k::choose_conv_cpu(layer1, k::ConvPass::forward).name() == "direct");

  o.reference = false;
  k::set_kernel_options(o);
  CHECK(k::choose_conv_gpu(layer1, k::ConvPass::forward, false).kernel == k::ConvKernel::cudnn);
  CHECK(k::choose_batch_norm_gpu() == k::Backend::cudnn);
}

TEST_CASE("kernel choice: notes list each layer's passes once, in the order first seen") {
  k::clear_choice_notes();
  k::note_choice("conv 3x3, 56x56x64 -> 64", "forward", "winograd");
  k::note_choice("conv 1x1, 56x56x64 -> 256", "forward", "1x1 gemm (blocked)");
  k::note_choice("conv 3x3, 56x56x64 -> 64", "forward", "winograd");
  k::note_choice("conv 3x3, 56x56x64 -> 64", "backward_filter", "im2col + gemm (openblas)");
  CHECK(k::choice_notes_report() ==
        "  conv 3x3, 56x56x64 -> 64\n      forward: winograd\n      backward_filter: im2col + gemm (openblas)\n"
        "  conv 1x1, 56x56x64 -> 256\n      forward: 1x1 gemm (blocked)\n");
  k::clear_choice_notes();
  CHECK(k::choice_notes_report().empty());
}
