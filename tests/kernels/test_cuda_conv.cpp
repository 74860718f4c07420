// The hand-written CUDA convolution (kernels/conv.h, namespace cuda) against the CPU convolution on
// the same random inputs: every variant (simple, tiled, tiled_1x1, tf32, tf32_async, tf32_1x1,
// bf16_simple, bf16, bf16_1x1; the *_1x1 ones on the 1x1 stride-1 shapes) and every pass, on every
// distinct ResNet-50 convolution at batch 2 and on odd shapes (C=3, K=5, 1x1 spatial, H != W, 3x3
// without padding, stride 2 with odd H, a misaligned tensor that must take the scalar fetches). The
// bf16 variants are compared with the CPU convolution run in fp32 on the bf16-rounded inputs.
//
// Outputs are poisoned with NaN before each run, so an element a kernel forgets shows up; dw and
// dbias are pre-filled with known values, as backward filter accumulates into them. Workspaces are
// allocated at exactly the size their query gives, filled with NaN, and followed by a guard that
// must come back untouched.
//
// Tolerances (max_rel_error: largest difference over largest reference value): fp32 1e-4 (sums of
// up to 4608 terms in a different order than the CPU's GEMM), tf32 1e-2 (10-bit mantissas), bf16
// 1e-2 (y and dx rounded once to 8-bit mantissas; the products of bf16 inputs are exact in fp32).
//
// Without a CUDA device (or in a build without CUDA) the GPU cases print why and return; ctest
// reports them as skipped. The argument checks run everywhere.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cast.h"
#include "kernels/conv.h"
#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"
#include "kernels/conv_shapes.h"
#include "kernels/device_buffers.h"
#include "test_util.h"

namespace k = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace cpu = hotlap::kernels::cpu;
namespace gpu = hotlap::kernels::cuda;
using hotlap::test::as_elements;
using hotlap::test::as_floats;
using hotlap::test::DeviceArray;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
using hotlap::test::Workspace;
using k::ConvShape;
using gpu::ConvPass;
using gpu::ConvVariant;

namespace {

using hotlap::test::conv_shape;
using hotlap::test::describe;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

using DeviceFloats = DeviceArray<float>;

std::vector<ConvShape> odd_shapes() {
  return {
      conv_shape(2, 9, 9, 3, 5, 3, 3, 1, 1),     // C=3, K=5
      conv_shape(2, 1, 1, 8, 12, 1, 1, 1, 0),    // 1x1 spatial
      conv_shape(3, 13, 7, 6, 10, 3, 3, 1, 1),   // H != W
      conv_shape(2, 10, 9, 16, 24, 3, 3, 1, 0),  // 3x3 without padding
      conv_shape(2, 15, 15, 8, 16, 3, 3, 2, 1),  // stride 2, odd H
      conv_shape(2, 15, 11, 5, 7, 1, 1, 2, 0),   // strided 1x1, odd sizes
      conv_shape(1, 9, 9, 4, 4, 2, 2, 3, 1),     // stride 3: phases with no tap
      conv_shape(2, 33, 31, 3, 65, 7, 7, 2, 3),  // a small stem with a K tail past one tile
      conv_shape(3, 11, 13, 20, 70, 1, 1, 1, 0),  // 1x1: C and K past 8-value runs and one tile
      conv_shape(2, 13, 11, 136, 12, 1, 1, 1, 0),  // 1x1: M past 128, C past one bf16 K-step
  };
}

std::vector<ConvShape> all_shapes() {
  std::vector<ConvShape> shapes = hotlap::test::resnet50_conv_shapes(2);
  for (const ConvShape& s : odd_shapes()) shapes.push_back(s);
  return shapes;
}

double tolerance(ConvVariant v) {
  if (gpu::conv_variant_is_bf16(v)) return 1e-2;
  return v == ConvVariant::tf32 || v == ConvVariant::tf32_async || v == ConvVariant::tf32_1x1 ? 1e-2
                                                                                             : 1e-4;
}

constexpr ConvVariant kFp32Variants[] = {ConvVariant::simple,     ConvVariant::tiled,
                                         ConvVariant::tiled_1x1,  ConvVariant::tf32,
                                         ConvVariant::tf32_async, ConvVariant::tf32_1x1};
constexpr ConvVariant kBf16Variants[] = {ConvVariant::bf16_simple, ConvVariant::bf16,
                                         ConvVariant::bf16_1x1};

// Whether a variant runs a shape: the *_1x1 ones take 1x1 stride-1 unpadded shapes only.
bool runs(ConvVariant v, const ConvShape& s) { return !gpu::conv_variant_is_1x1(v) || s.is_pointwise(); }

std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (float& x : v) x = k::bf16_to_float(k::float_to_bf16(x));
  return v;
}

// The inputs of one shape and the CPU's results for them; with bf16_inputs, x, w and dy are
// rounded to bf16 first (the bias, dw and dbias stay fp32).
struct Reference {
  std::vector<float> x, w, bias, dy, y, dx, dw0, dbias0, dw, dbias;
  Reference(const ConvShape& s, bool bf16_inputs)
      : x(random_floats(static_cast<size_t>(s.n * s.h * s.w * s.c), 21)),
        w(random_floats(static_cast<size_t>(s.k * s.r * s.s * s.c), 22, -0.2f, 0.2f)),
        bias(random_floats(static_cast<size_t>(s.k), 23)),
        dy(random_floats(static_cast<size_t>(s.n * s.p() * s.q() * s.k), 24)),
        dw0(random_floats(w.size(), 25, 3.0f, 4.0f)),
        dbias0(random_floats(bias.size(), 26, -4.0f, -3.0f)) {
    if (bf16_inputs) {
      x = rounded_to_bf16(x);
      w = rounded_to_bf16(w);
      dy = rounded_to_bf16(dy);
    }
    std::vector<float> ws(static_cast<size_t>(cpu::conv2d_workspace_floats(s)) + 1);
    y.resize(dy.size());
    dx.resize(x.size());
    dw = dw0;
    dbias = dbias0;
    cpu::conv2d_forward(s, x.data(), w.data(), bias.data(), y.data(), ws.data());
    cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), ws.data());
    cpu::conv2d_backward_filter(s, x.data(), dy.data(), dw.data(), dbias.data(), ws.data());
  }
};

// The _variant entry points of each element type.
void forward_variant(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                     void* ws, size_t bytes, ConvVariant v) {
  gpu::conv2d_forward_variant(s, x, w, bias, y, ws, bytes, v);
}
void forward_variant(const ConvShape& s, const bfloat16* x, const bfloat16* w, const float* bias,
                     bfloat16* y, void* ws, size_t bytes, ConvVariant v) {
  gpu::conv2d_forward_variant(s, x, w, bias, y, ws, bytes, v);
}
void backward_data_variant(const ConvShape& s, const float* dy, const float* w, float* dx, void* ws,
                           size_t bytes, ConvVariant v) {
  gpu::conv2d_backward_data_variant(s, dy, w, dx, ws, bytes, v);
}
void backward_data_variant(const ConvShape& s, const bfloat16* dy, const bfloat16* w, bfloat16* dx,
                           void* ws, size_t bytes, ConvVariant v) {
  gpu::conv2d_backward_data_variant(s, dy, w, dx, ws, bytes, v);
}
void backward_filter_variant(const ConvShape& s, const float* x, const float* dy, float* dw,
                             float* dbias, void* ws, size_t bytes, ConvVariant v) {
  gpu::conv2d_backward_filter_variant(s, x, dy, dw, dbias, ws, bytes, v);
}
void backward_filter_variant(const ConvShape& s, const bfloat16* x, const bfloat16* dy, float* dw,
                             float* dbias, void* ws, size_t bytes, ConvVariant v) {
  gpu::conv2d_backward_filter_variant(s, x, dy, dw, dbias, ws, bytes, v);
}

// Runs the three passes of `variant` (element type T) on the GPU and compares them with the
// reference (made on the inputs as T holds them).
template <class T>
void check_variant(const ConvShape& s, const Reference& ref, ConvVariant variant,
                   size_t misalign = 0) {
  CAPTURE(gpu::conv_variant_name(variant));
  CAPTURE(misalign);
  const T nan = as_elements<T>({kNaN})[0];
  const double tol = tolerance(variant);
  const DeviceArray<T> x(as_elements<T>(ref.x), misalign), w(as_elements<T>(ref.w), misalign),
      dy(as_elements<T>(ref.dy), misalign);
  const DeviceFloats bias(ref.bias);
  {
    DeviceArray<T> y(std::vector<T>(ref.y.size(), nan), misalign);
    Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::forward, variant));
    forward_variant(s, x.get(), w.get(), bias.get(), y.get(), ws.get(), ws.bytes(), variant);
    CHECK(max_rel_error(as_floats(y.download()), ref.y) < tol);
    CHECK(ws.guard_intact());
  }
  {
    DeviceArray<T> dx(std::vector<T>(ref.dx.size(), nan), misalign);
    Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::backward_data, variant));
    backward_data_variant(s, dy.get(), w.get(), dx.get(), ws.get(), ws.bytes(), variant);
    CHECK(max_rel_error(as_floats(dx.download()), ref.dx) < tol);
    CHECK(ws.guard_intact());
  }
  {
    DeviceFloats dw(ref.dw0, misalign), dbias(ref.dbias0);
    Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::backward_filter, variant));
    backward_filter_variant(s, x.get(), dy.get(), dw.get(), dbias.get(), ws.get(), ws.bytes(),
                            variant);
    // Relative to the accumulated values' scale, which the pre-fill dominates: compare the
    // increments as well, so a lost gradient of a small layer cannot hide under the pre-fill.
    const std::vector<float> got = dw.download();
    std::vector<double> inc(got.size()), inc_ref(got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      inc[i] = static_cast<double>(got[i]) - ref.dw0[i];
      inc_ref[i] = static_cast<double>(ref.dw[i]) - ref.dw0[i];
    }
    CHECK(max_rel_error(got, ref.dw) < tol);
    CHECK(max_rel_error(inc, inc_ref) < tol * 10);  // the difference loses the pre-fill's bits
    CHECK(max_rel_error(dbias.download(), ref.dbias) < tol);
    CHECK(ws.guard_intact());
    // Without dbias: dw alone.
    DeviceFloats dw2(ref.dw0, misalign);
    backward_filter_variant(s, x.get(), dy.get(), dw2.get(), nullptr, ws.get(), ws.bytes(), variant);
    CHECK(max_rel_error(dw2.download(), ref.dw) < tol);
  }
}

}  // namespace

TEST_CASE("cuda conv: every variant and pass against the CPU, ResNet-50 shapes at batch 2 and odd shapes") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  for (const ConvShape& s : all_shapes()) {
    CAPTURE(describe(s));
    const Reference ref(s, false), ref_bf16(s, true);
    for (ConvVariant v : kFp32Variants)
      if (runs(v, s)) check_variant<float>(s, ref, v);
    for (ConvVariant v : kBf16Variants)
      if (runs(v, s)) check_variant<bfloat16>(s, ref_bf16, v);
  }
}

TEST_CASE("cuda conv: misaligned tensors take the scalar fetches") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  for (const ConvShape& s : {conv_shape(2, 14, 14, 64, 64, 3, 3, 1, 1),
                             conv_shape(2, 15, 15, 32, 64, 1, 1, 2, 0),
                             conv_shape(2, 14, 14, 64, 128, 1, 1, 1, 0)}) {
    CAPTURE(describe(s));
    const Reference ref(s, false), ref_bf16(s, true);
    for (ConvVariant v : kFp32Variants)
      if (v != ConvVariant::simple && runs(v, s)) check_variant<float>(s, ref, v, 1);
    for (ConvVariant v : kBf16Variants)
      if (v != ConvVariant::bf16_simple && runs(v, s)) check_variant<bfloat16>(s, ref_bf16, v, 1);
  }
}

TEST_CASE("cuda conv: the plain entry points run the chosen variant") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  for (const ConvShape& s : {conv_shape(2, 28, 28, 128, 128, 3, 3, 2, 1),
                             conv_shape(2, 28, 28, 128, 512, 1, 1, 1, 0)}) {
    CAPTURE(describe(s));
    const Reference ref(s, false);
    const k::MathMode before = k::math_mode();
    for (k::MathMode mode : {k::MathMode::fp32, k::MathMode::tf32}) {
      const std::string mode_label = k::math_mode_name(mode);
      CAPTURE(mode_label);
      k::set_math_mode(mode);
      const double tol = mode == k::MathMode::tf32 ? 1e-2 : 1e-4;
      const DeviceFloats x(ref.x), w(ref.w), bias(ref.bias), dy(ref.dy);
      DeviceFloats y(std::vector<float>(ref.y.size(), kNaN)), dx(std::vector<float>(ref.dx.size(), kNaN));
      DeviceFloats dw(ref.dw0), dbias(ref.dbias0);
      Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::backward_filter));
      gpu::conv2d_forward(s, x.get(), w.get(), bias.get(), y.get(), nullptr, 0);
      gpu::conv2d_backward_data(s, dy.get(), w.get(), dx.get(), nullptr, 0);
      gpu::conv2d_backward_filter(s, x.get(), dy.get(), dw.get(), dbias.get(), ws.get(), ws.bytes());
      CHECK(max_rel_error(y.download(), ref.y) < tol);
      CHECK(max_rel_error(dx.download(), ref.dx) < tol);
      CHECK(max_rel_error(dw.download(), ref.dw) < tol);
      CHECK(max_rel_error(dbias.download(), ref.dbias) < tol);
      CHECK(ws.guard_intact());
    }
    k::set_math_mode(before);
    // The bf16 entry points, whatever the math mode.
    const Reference ref_bf16(s, true);
    const DeviceArray<bfloat16> x(as_elements<bfloat16>(ref_bf16.x)), w(as_elements<bfloat16>(ref_bf16.w)),
        dy(as_elements<bfloat16>(ref_bf16.dy));
    const DeviceFloats bias(ref_bf16.bias);
    const bfloat16 nan = k::float_to_bf16(kNaN);
    DeviceArray<bfloat16> y(std::vector<bfloat16>(ref_bf16.y.size(), nan)),
        dx(std::vector<bfloat16>(ref_bf16.dx.size(), nan));
    DeviceFloats dw(ref_bf16.dw0), dbias(ref_bf16.dbias0);
    Workspace ws(gpu::conv2d_bf16_workspace_bytes(s, ConvPass::backward_filter));
    gpu::conv2d_forward(s, x.get(), w.get(), bias.get(), y.get(), nullptr, 0);
    gpu::conv2d_backward_data(s, dy.get(), w.get(), dx.get(), nullptr, 0);
    gpu::conv2d_backward_filter(s, x.get(), dy.get(), dw.get(), dbias.get(), ws.get(), ws.bytes());
    CHECK(max_rel_error(as_floats(y.download()), ref_bf16.y) < 1e-2);
    CHECK(max_rel_error(as_floats(dx.download()), ref_bf16.dx) < 1e-2);
    CHECK(max_rel_error(dw.download(), ref_bf16.dw) < 1e-2);
    CHECK(max_rel_error(dbias.download(), ref_bf16.dbias) < 1e-2);
    CHECK(ws.guard_intact());
  }
}

TEST_CASE("cuda conv: tiled backward filter is deterministic (split-K summed in order)") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const ConvShape s = conv_shape(2, 224, 224, 3, 64, 7, 7, 2, 3);  // split many ways
  const Reference ref(s, true);  // bf16-exact values serve both element types
  for (ConvVariant v : {ConvVariant::tiled, ConvVariant::tf32_async, ConvVariant::bf16}) {
    CAPTURE(gpu::conv_variant_name(v));
    Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::backward_filter, v));
    std::vector<float> first;
    for (int run = 0; run < 3; ++run) {
      DeviceFloats dw(ref.dw0), dbias(ref.dbias0);
      if (gpu::conv_variant_is_bf16(v)) {
        const DeviceArray<bfloat16> x(as_elements<bfloat16>(ref.x)), dy(as_elements<bfloat16>(ref.dy));
        gpu::conv2d_backward_filter_variant(s, x.get(), dy.get(), dw.get(), dbias.get(),
                                                 ws.get(), ws.bytes(), v);
      } else {
        const DeviceFloats x(ref.x), dy(ref.dy);
        gpu::conv2d_backward_filter_variant(s, x.get(), dy.get(), dw.get(), dbias.get(), ws.get(),
                                            ws.bytes(), v);
      }
      std::vector<float> got = dw.download();
      const std::vector<float> db = dbias.download();
      got.insert(got.end(), db.begin(), db.end());
      if (run == 0)
        first = got;
      else
        CHECK(std::memcmp(first.data(), got.data(), got.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("cuda conv: bad arguments throw hotlap::Error (every build)") {
  // These fail before any CUDA call (or, without CUDA, at the stand-in), so they run everywhere.
  const ConvShape good = conv_shape(2, 8, 8, 4, 4, 3, 3, 1, 1);
  ConvShape bad = good;
  bad.c = 0;
  float dummy = 0.0f;
  bfloat16 dummy_bf16{0};
  for (ConvVariant v : kFp32Variants) {
    CHECK_THROWS_AS(gpu::conv2d_forward_variant(bad, &dummy, &dummy, nullptr, &dummy, nullptr, 0, v),
                    hotlap::Error);
    CHECK_THROWS_AS(gpu::conv2d_backward_data_variant(good, nullptr, &dummy, &dummy, nullptr, 0, v),
                    hotlap::Error);
    // A variant of the other element type.
    CHECK_THROWS_AS(gpu::conv2d_forward_variant(good, &dummy_bf16, &dummy_bf16, nullptr,
                                                     &dummy_bf16, nullptr, 0, v),
                    hotlap::Error);
  }
  for (ConvVariant v : kBf16Variants) {
    CHECK_THROWS_AS(gpu::conv2d_forward_variant(bad, &dummy_bf16, &dummy_bf16, nullptr,
                                                     &dummy_bf16, nullptr, 0, v),
                    hotlap::Error);
    CHECK_THROWS_AS(gpu::conv2d_forward_variant(good, &dummy, &dummy, nullptr, &dummy, nullptr, 0, v),
                    hotlap::Error);
  }
  // A plain-GEMM variant on a 3x3 convolution.
  for (ConvVariant v : {ConvVariant::tiled_1x1, ConvVariant::tf32_1x1})
    CHECK_THROWS_AS(gpu::conv2d_forward_variant(good, &dummy, &dummy, nullptr, &dummy, nullptr, 0, v),
                    hotlap::Error);
  CHECK_THROWS_AS(gpu::conv2d_backward_data_variant(good, &dummy_bf16, &dummy_bf16, &dummy_bf16,
                                                         nullptr, 0, ConvVariant::bf16_1x1),
                  hotlap::Error);
  // A missing or short workspace for the tiled backward filter.
  for (ConvVariant v : {ConvVariant::tiled, ConvVariant::bf16}) {
    const size_t need = gpu::conv2d_workspace_bytes(good, ConvPass::backward_filter, v);
    CHECK(need > 0);
    if (gpu::conv_variant_is_bf16(v)) {
      CHECK_THROWS_AS(gpu::conv2d_backward_filter_variant(good, &dummy_bf16, &dummy_bf16, &dummy,
                                                               nullptr, nullptr, need, v),
                      hotlap::Error);
      continue;
    }
    CHECK_THROWS_AS(gpu::conv2d_backward_filter_variant(good, &dummy, &dummy, &dummy, nullptr, nullptr,
                                                        need, v),
                    hotlap::Error);
    CHECK_THROWS_AS(gpu::conv2d_backward_filter_variant(good, &dummy, &dummy, &dummy, nullptr,
                                                        &dummy, need - 4, v),
                    hotlap::Error);
  }
  // A shape whose tensors pass 2^31 elements.
  const ConvShape huge = conv_shape(1024, 112, 112, 256, 64, 1, 1, 1, 0);
  CHECK_THROWS_AS(gpu::conv2d_forward_variant(huge, &dummy, &dummy, nullptr, &dummy, nullptr, 0,
                                              ConvVariant::tiled),
                  hotlap::Error);
}
