// torchvision-format ResNet checkpoints into hotlap's ResNets and back (nn/files/torch_format.h).
//
// The fixtures tests/data/tv_resnet{18,50}_w8_*.safetensors are written by tools/make_resnet_goldens.py
// with PyTorch: torchvision's ResNet topology and names with a stem width of 8, num_classes 10,
// NCHW/OIHW, an I64 num_batches_tracked = 7 per batch norm, metadata format=pt. Every imported value
// is checked against the file's value at the permuted index, computed here with an independent index
// loop and an independent F16/BF16 decoder.
#include <doctest/doctest.h>

#include "test_util.h"
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "nn/files/safetensors.h"
#include "nn/files/torch_format.h"
#include "resnet/resnet.h"

namespace fs = std::filesystem;
namespace st = hotlap::safetensors;

namespace hotlap {
namespace {

using hotlap::test::TempDir;
using hotlap::test::read_bytes;

const std::string kData = HOTLAP_TEST_DATA_DIR;

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// IEEE half -> float, exactly (every half is a float): sign, 5-bit exponent (bias 15), 10-bit mantissa.
float decode_f16(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0)
    v = std::ldexp(static_cast<double>(mant), -24);  // subnormal: mant * 2^-24
  else if (exp == 31)
    v = mant ? NAN : INFINITY;
  else
    v = std::ldexp(1024.0 + mant, exp - 25);  // (1 + mant/1024) * 2^(exp-15)
  return static_cast<float>(sign ? -v : v);
}

// bfloat16 is the top half of a float.
float decode_bf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A record's values as floats, decoded here (not by the code under test).
std::vector<float> decode(const st::Record& r) {
  const size_t n = static_cast<size_t>(r.numel());
  std::vector<float> out(n);
  REQUIRE((r.dtype == st::DType::F32 || r.dtype == st::DType::F16 || r.dtype == st::DType::BF16));
  for (size_t k = 0; k < n; ++k) {
    if (r.dtype == st::DType::F32) {
      std::memcpy(&out[k], r.bytes.data() + 4 * k, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, r.bytes.data() + 2 * k, 2);
      out[k] = r.dtype == st::DType::F16 ? decode_f16(h) : decode_bf16(h);
    }
  }
  return out;
}

std::map<std::string, std::vector<uint8_t>> snapshot(const Module& m) {
  std::map<std::string, std::vector<uint8_t>> out;
  for (auto& [name, t] : m.state()) {
    auto* p = static_cast<const uint8_t*>(t.raw());
    out[name] = std::vector<uint8_t>(p, p + t.nbytes());
  }
  return out;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Every model tensor equals the file's value at the permuted index, bit for bit.
void check_values(const Module& model, const st::File& file) {
  int64_t checked = 0;
  for (const auto& [name, t] : model.state()) {
    CAPTURE(name);
    const st::Record& r = file.at(name);
    const std::vector<float> want = decode(r);  // PyTorch layout
    const float* got = t.f32();
    REQUIRE(static_cast<size_t>(t.numel()) == want.size());
    size_t bad = 0;
    if (t.ndim() == 4) {
      // model [O,H,W,I] (OHWI); file [O,I,H,W] (OIHW)
      const int64_t O = t.dim(0), H = t.dim(1), W = t.dim(2), I = t.dim(3);
      REQUIRE(r.shape == std::vector<int64_t>{O, I, H, W});
      for (int64_t o = 0; o < O; ++o)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            for (int64_t i = 0; i < I; ++i)
              bad += bits(got[((o * H + h) * W + w) * I + i]) != bits(want[((o * I + i) * H + h) * W + w]);
    } else {
      REQUIRE(r.shape == t.shape());
      for (size_t k = 0; k < want.size(); ++k) bad += bits(got[k]) != bits(want[k]);
    }
    CHECK(bad == 0);
    ++checked;
  }
  CHECK(checked > 0);
}

struct Fixture {
  const char* file;
  int depth;
};

TEST_CASE("torchvision import: ResNet-18/50 fixtures (F32, F16, BF16) load strictly, value for value") {
  for (const Fixture& fx : {Fixture{"tv_resnet18_w8_f32.safetensors", 18}, Fixture{"tv_resnet50_w8_f16.safetensors", 50},
                            Fixture{"tv_resnet50_w8_bf16.safetensors", 50}}) {
    CAPTURE(fx.file);
    const std::string path = kData + "/" + fx.file;
    const st::File file = st::read_file(path);
    auto model = resnet::make_resnet({fx.depth, 10, 8});
    const ImportReport report = import_torch_state(*model, path);
    CHECK(report.missing.empty());
    CHECK(report.unexpected.empty());
    CHECK(report.mismatched.empty());
    CHECK(report.skipped.empty());
    CHECK(report.loaded.size() == model->state().size());
    size_t batch_norms = 0;
    for (const auto& [name, t] : model->state()) batch_norms += ends_with(name, ".running_mean");
    CHECK(report.ignored.size() == batch_norms);
    for (const auto& name : report.ignored) CHECK(ends_with(name, ".num_batches_tracked"));
    check_values(*model, file);
  }
}

TEST_CASE("torchvision export: importing then exporting gives back the F32 file exactly") {
  TempDir dir;
  const std::string original = kData + "/tv_resnet18_w8_f32.safetensors";
  auto model = resnet::make_resnet({18, 10, 8});
  import_torch_state(*model, original);
  const std::string out = dir.file("exported.safetensors");
  export_torch_state(*model, out, {}, 7);

  const st::File a = st::read_file(original), b = st::read_file(out);
  CHECK(b.metadata.at("format") == "pt");
  std::set<std::string> names_a, names_b;
  for (const auto& r : a.records) names_a.insert(r.name);
  for (const auto& r : b.records) names_b.insert(r.name);
  CHECK(names_a == names_b);
  for (const auto& r : a.records) {
    CAPTURE(r.name);
    const st::Record* e = b.find(r.name);
    REQUIRE(e != nullptr);
    CHECK(st::dtype_name(e->dtype) == std::string(st::dtype_name(r.dtype)));
    CHECK(e->shape == r.shape);
    CHECK(e->bytes == r.bytes);
  }
}

TEST_CASE("torchvision import: a ResNet-18 file into a ResNet-50 fails strictly, naming the tensors") {
  const std::string path = kData + "/tv_resnet18_w8_f32.safetensors";
  auto model = resnet::make_resnet({50, 10, 8});
  const auto before = snapshot(*model);
  const std::string msg = error_of([&] { import_torch_state(*model, path); });
  INFO(msg);
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find("missing: layer1.0.conv3.weight") != std::string::npos);
  CHECK(msg.find("mismatched: layer1.0.conv1.weight: file [8,8,3,3] (PyTorch layout), model [8,1,1,8]") !=
        std::string::npos);
  CHECK(msg.find("... and ") != std::string::npos);
  CHECK(snapshot(*model) == before);
}

TEST_CASE("torchvision import: a new regression head with skip_prefixes {\"fc.\"}") {
  for (const Fixture& fx : {Fixture{"tv_resnet18_w8_f32.safetensors", 18}, Fixture{"tv_resnet50_w8_bf16.safetensors", 50}}) {
    CAPTURE(fx.file);
    const std::string path = kData + "/" + fx.file;
    auto model = resnet::make_resnet({fx.depth, 1, 8});
    const auto before = snapshot(*model);
    CHECK(error_of([&] { import_torch_state(*model, path); }).find("fc.weight: file [10,") != std::string::npos);

    ImportOptions options;
    options.skip_prefixes = {"fc."};
    const ImportReport report = import_torch_state(*model, path, options);
    CHECK(std::set<std::string>(report.skipped.begin(), report.skipped.end()) ==
          std::set<std::string>{"fc.weight", "fc.bias"});
    CHECK(report.missing.empty());
    CHECK(report.loaded.size() == model->state().size() - 2);
    const auto after = snapshot(*model);
    CHECK(after.at("fc.weight") == before.at("fc.weight"));
    CHECK(after.at("fc.bias") == before.at("fc.bias"));
    CHECK(after.at("conv1.weight") != before.at("conv1.weight"));
    CHECK(report.summary().find("fc.weight") != std::string::npos);
  }
}

TEST_CASE("torchvision import: a truncated fixture fails, naming the file, and changes nothing") {
  TempDir dir;
  const std::string src = kData + "/tv_resnet50_w8_f16.safetensors";
  auto model = resnet::make_resnet({50, 10, 8});
  const auto before = snapshot(*model);
  for (uintmax_t size : {fs::file_size(src) - 2, fs::file_size(src) / 3, uintmax_t{100}}) {
    CAPTURE(size);
    const std::string cut = dir.file("cut_" + std::to_string(size) + ".safetensors");
    fs::copy_file(src, cut);
    fs::resize_file(cut, size);
    const std::string msg = error_of([&] { import_torch_state(*model, cut); });
    INFO(msg);
    CHECK(msg.find(cut) != std::string::npos);
    CHECK(snapshot(*model) == before);
  }
}

}  // namespace
}  // namespace hotlap
