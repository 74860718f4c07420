// The hand-written CUDA convolution (kernels/conv.h, namespace cuda) against the CPU convolution on
// the same random inputs: every variant (simple, tiled, tf32) and every pass, on every distinct
// ResNet-50 convolution at batch 2 and on odd shapes (C=3, K=5, 1x1 spatial, H != W, 3x3 without
// padding, stride 2 with odd H, a misaligned tensor that must take the scalar fetches).
//
// Outputs are poisoned with NaN before each run, so an element a kernel forgets shows up; dw and
// dbias are pre-filled with known values, as backward filter accumulates into them. Workspaces are
// allocated at exactly the size their query gives, filled with NaN, and followed by a guard that
// must come back untouched.
//
// Tolerances (max_rel_error: largest difference over largest reference value): fp32 1e-4 (sums of
// up to 4608 terms in a different order than the CPU's GEMM), tf32 1e-2 (10-bit mantissas).
//
// Without a CUDA device (or in a build without CUDA) the GPU cases print why and return; ctest
// reports them as skipped. The argument checks run everywhere.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"
#include "kernels/conv_shapes.h"
#include "test_util.h"

namespace k = hotlap::kernels;
namespace cpu = hotlap::kernels::cpu;
namespace gpu = hotlap::kernels::cuda;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;
using k::ConvShape;
using gpu::ConvPass;
using gpu::ConvVariant;

namespace {

using hotlap::test::conv_shape;
using hotlap::test::describe;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A device copy of a host vector that frees itself; `offset` floats before the data make a view
// that is not 16-byte aligned.
class DeviceFloats {
 public:
  explicit DeviceFloats(const std::vector<float>& host, size_t offset = 0)
      : n_(host.size()), offset_(offset) {
    base_ = static_cast<float*>(gpu::device_allocate((n_ + offset_) * sizeof(float) + 16));
    gpu::copy_host_to_device(get(), host.data(), n_ * sizeof(float));
  }
  ~DeviceFloats() {
    try {
      gpu::device_free(base_);
    } catch (...) {
    }
  }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  float* get() const { return base_ + offset_; }
  std::vector<float> download() const {
    std::vector<float> host(n_);
    gpu::copy_device_to_host(host.data(), get(), n_ * sizeof(float));  // waits for the kernels
    return host;
  }

 private:
  float* base_ = nullptr;
  size_t n_, offset_;
};

// Exactly `bytes` of workspace, NaN-filled, with a 256-byte guard after it.
class Workspace {
 public:
  explicit Workspace(size_t bytes) : bytes_(bytes) {
    mem_ = static_cast<unsigned char*>(gpu::device_allocate(bytes_ + kGuard));
    gpu::fill_bytes_async(mem_, 0xFF, bytes_);
    gpu::fill_bytes_async(mem_ + bytes_, kGuardByte, kGuard);
  }
  ~Workspace() {
    try {
      gpu::device_free(mem_);
    } catch (...) {
    }
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return bytes_ > 0 ? mem_ : nullptr; }
  size_t bytes() const { return bytes_; }
  bool guard_intact() const {
    std::vector<unsigned char> guard(kGuard);
    gpu::copy_device_to_host(guard.data(), mem_ + bytes_, kGuard);
    return guard == std::vector<unsigned char>(kGuard, kGuardByte);
  }

 private:
  static constexpr size_t kGuard = 256;
  static constexpr unsigned char kGuardByte = 0xA5;
  size_t bytes_;
  unsigned char* mem_ = nullptr;
};

// Every distinct convolution of torchvision's ResNet-50 (stride in the 3x3) at batch 2.
std::vector<ConvShape> resnet50_shapes() {
  const int64_t b = 2;
  return {
      conv_shape(b, 224, 224, 3, 64, 7, 7, 2, 3),  // stem
      // layer1, 56x56
      conv_shape(b, 56, 56, 64, 64, 1, 1, 1, 0), conv_shape(b, 56, 56, 64, 64, 3, 3, 1, 1),
      conv_shape(b, 56, 56, 64, 256, 1, 1, 1, 0),  // expand and downsample (stride 1)
      conv_shape(b, 56, 56, 256, 64, 1, 1, 1, 0),
      // layer2, 56 -> 28
      conv_shape(b, 56, 56, 256, 128, 1, 1, 1, 0), conv_shape(b, 56, 56, 128, 128, 3, 3, 2, 1),
      conv_shape(b, 28, 28, 128, 512, 1, 1, 1, 0), conv_shape(b, 56, 56, 256, 512, 1, 1, 2, 0),
      conv_shape(b, 28, 28, 512, 128, 1, 1, 1, 0), conv_shape(b, 28, 28, 128, 128, 3, 3, 1, 1),
      // layer3, 28 -> 14
      conv_shape(b, 28, 28, 512, 256, 1, 1, 1, 0), conv_shape(b, 28, 28, 256, 256, 3, 3, 2, 1),
      conv_shape(b, 14, 14, 256, 1024, 1, 1, 1, 0), conv_shape(b, 28, 28, 512, 1024, 1, 1, 2, 0),
      conv_shape(b, 14, 14, 1024, 256, 1, 1, 1, 0), conv_shape(b, 14, 14, 256, 256, 3, 3, 1, 1),
      // layer4, 14 -> 7
      conv_shape(b, 14, 14, 1024, 512, 1, 1, 1, 0), conv_shape(b, 14, 14, 512, 512, 3, 3, 2, 1),
      conv_shape(b, 7, 7, 512, 2048, 1, 1, 1, 0), conv_shape(b, 14, 14, 1024, 2048, 1, 1, 2, 0),
      conv_shape(b, 7, 7, 2048, 512, 1, 1, 1, 0), conv_shape(b, 7, 7, 512, 512, 3, 3, 1, 1),
  };
}

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
  };
}

std::vector<ConvShape> all_shapes() {
  std::vector<ConvShape> shapes = resnet50_shapes();
  for (const ConvShape& s : odd_shapes()) shapes.push_back(s);
  return shapes;
}

double tolerance(ConvVariant v) { return v == ConvVariant::tf32 ? 1e-2 : 1e-4; }

// The inputs of one shape and the CPU's results for them.
struct Reference {
  std::vector<float> x, w, bias, dy, y, dx, dw0, dbias0, dw, dbias;
  explicit Reference(const ConvShape& s)
      : x(random_floats(static_cast<size_t>(s.n * s.h * s.w * s.c), 21)),
        w(random_floats(static_cast<size_t>(s.k * s.r * s.s * s.c), 22, -0.2f, 0.2f)),
        bias(random_floats(static_cast<size_t>(s.k), 23)),
        dy(random_floats(static_cast<size_t>(s.n * s.p() * s.q() * s.k), 24)),
        dw0(random_floats(w.size(), 25, 3.0f, 4.0f)),
        dbias0(random_floats(bias.size(), 26, -4.0f, -3.0f)) {
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

// Runs the three passes of `variant` on the GPU and compares them with the reference.
void check_variant(const ConvShape& s, const Reference& ref, ConvVariant variant,
                   size_t misalign = 0) {
  CAPTURE(gpu::conv_variant_name(variant));
  CAPTURE(misalign);
  const double tol = tolerance(variant);
  const DeviceFloats x(ref.x, misalign), w(ref.w, misalign), bias(ref.bias), dy(ref.dy, misalign);
  {
    DeviceFloats y(std::vector<float>(ref.y.size(), kNaN), misalign);
    Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::forward, variant));
    gpu::conv2d_forward_variant(s, x.get(), w.get(), bias.get(), y.get(), ws.get(), ws.bytes(),
                                variant);
    CHECK(max_rel_error(y.download(), ref.y) < tol);
    CHECK(ws.guard_intact());
  }
  {
    DeviceFloats dx(std::vector<float>(ref.dx.size(), kNaN), misalign);
    Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::backward_data, variant));
    gpu::conv2d_backward_data_variant(s, dy.get(), w.get(), dx.get(), ws.get(), ws.bytes(),
                                      variant);
    CHECK(max_rel_error(dx.download(), ref.dx) < tol);
    CHECK(ws.guard_intact());
  }
  {
    DeviceFloats dw(ref.dw0, misalign), dbias(ref.dbias0);
    Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::backward_filter, variant));
    gpu::conv2d_backward_filter_variant(s, x.get(), dy.get(), dw.get(), dbias.get(), ws.get(),
                                        ws.bytes(), variant);
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
    gpu::conv2d_backward_filter_variant(s, x.get(), dy.get(), dw2.get(), nullptr, ws.get(),
                                        ws.bytes(), variant);
    CHECK(max_rel_error(dw2.download(), ref.dw) < tol);
  }
}

}  // namespace

TEST_CASE("cuda conv: every variant and pass against the CPU, ResNet-50 shapes at batch 2 and odd shapes") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  for (const ConvShape& s : all_shapes()) {
    CAPTURE(describe(s));
    const Reference ref(s);
    for (ConvVariant v : {ConvVariant::simple, ConvVariant::tiled, ConvVariant::tf32})
      check_variant(s, ref, v);
  }
}

TEST_CASE("cuda conv: misaligned tensors take the scalar fetches") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  for (const ConvShape& s : {conv_shape(2, 14, 14, 64, 64, 3, 3, 1, 1),
                             conv_shape(2, 15, 15, 32, 64, 1, 1, 2, 0)}) {
    CAPTURE(describe(s));
    const Reference ref(s);
    for (ConvVariant v : {ConvVariant::tiled, ConvVariant::tf32}) check_variant(s, ref, v, 1);
  }
}

TEST_CASE("cuda conv: the plain entry points run the chosen variant") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const ConvShape s = conv_shape(2, 28, 28, 128, 128, 3, 3, 2, 1);
  const Reference ref(s);
  const k::MathMode before = k::math_mode();
  for (k::MathMode mode : {k::MathMode::fp32, k::MathMode::tf32}) {
    CAPTURE(k::math_mode_name(mode));
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
}

TEST_CASE("cuda conv: tiled backward filter is deterministic (split-K summed in order)") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  const ConvShape s = conv_shape(2, 224, 224, 3, 64, 7, 7, 2, 3);  // split many ways
  const Reference ref(s);
  const DeviceFloats x(ref.x), dy(ref.dy);
  Workspace ws(gpu::conv2d_workspace_bytes(s, ConvPass::backward_filter, ConvVariant::tiled));
  std::vector<float> first;
  for (int run = 0; run < 3; ++run) {
    DeviceFloats dw(ref.dw0), dbias(ref.dbias0);
    gpu::conv2d_backward_filter_variant(s, x.get(), dy.get(), dw.get(), dbias.get(), ws.get(),
                                        ws.bytes(), ConvVariant::tiled);
    std::vector<float> got = dw.download();
    const std::vector<float> db = dbias.download();
    got.insert(got.end(), db.begin(), db.end());
    if (run == 0)
      first = got;
    else
      CHECK(std::memcmp(first.data(), got.data(), got.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("cuda conv: bad arguments throw hotlap::Error (every build)") {
  // These fail before any CUDA call (or, without CUDA, at the stand-in), so they run everywhere.
  const ConvShape good = conv_shape(2, 8, 8, 4, 4, 3, 3, 1, 1);
  ConvShape bad = good;
  bad.c = 0;
  float dummy = 0.0f;
  for (ConvVariant v : {ConvVariant::simple, ConvVariant::tiled, ConvVariant::tf32}) {
    CHECK_THROWS_AS(gpu::conv2d_forward_variant(bad, &dummy, &dummy, nullptr, &dummy, nullptr, 0, v),
                    hotlap::Error);
    CHECK_THROWS_AS(gpu::conv2d_backward_data_variant(good, nullptr, &dummy, &dummy, nullptr, 0, v),
                    hotlap::Error);
  }
  // A missing or short workspace for the tiled backward filter.
  const size_t need = gpu::conv2d_workspace_bytes(good, ConvPass::backward_filter, ConvVariant::tiled);
  CHECK(need > 0);
  CHECK_THROWS_AS(gpu::conv2d_backward_filter_variant(good, &dummy, &dummy, &dummy, nullptr, nullptr,
                                                      need, ConvVariant::tiled),
                  hotlap::Error);
  CHECK_THROWS_AS(gpu::conv2d_backward_filter_variant(good, &dummy, &dummy, &dummy, nullptr,
                                                      &dummy, need - 4, ConvVariant::tiled),
                  hotlap::Error);
  // A shape whose tensors pass 2^31 elements.
  const ConvShape huge = conv_shape(1024, 112, 112, 256, 64, 1, 1, 1, 0);
  CHECK_THROWS_AS(gpu::conv2d_forward_variant(huge, &dummy, &dummy, nullptr, &dummy, nullptr, 0,
                                              ConvVariant::tiled),
                  hotlap::Error);
}
