// PyTorch-format checkpoints (nn/files/torch_format.h): the layout helpers against hand-computed index
// arithmetic, a bit-exact export/import round trip, F16/BF16/F64 widening, strict errors that list
// every problem and name the file, non-strict reports, skip_prefixes, and all-or-nothing loading.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernels/cast.h"
#include "kernels/error.h"
#include "nn/files/checkpoint.h"
#include "nn/layers/module.h"
#include "nn/runtime/random.h"
#include "nn/files/safetensors.h"
#include "nn/files/torch_format.h"
#include "test_util.h"

namespace fs = std::filesystem;
namespace st = hotlap::safetensors;

namespace hotlap {
namespace {

using hotlap::test::TempDir;
using hotlap::test::read_bytes;

// conv(3->c, 3x3, bias) - bn - relu - avgpool - linear(c->outputs). State names:
// 0.weight [c,3,3,3] (OHWI), 0.bias, 1.weight, 1.bias, 1.running_mean, 1.running_var, 4.weight, 4.bias.
std::shared_ptr<Sequential> small_net(int64_t channels = 4, int64_t outputs = 2) {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Conv2d>(3, channels, 3, 1, 1, true));
  net->add(std::make_shared<BatchNorm2d>(channels));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<GlobalAvgPool>());
  net->add(std::make_shared<Linear>(channels, outputs));
  return net;
}

// Every state tensor (buffers too) filled with random values, so a round trip cannot pass by luck.
void randomize(Module& m, uint64_t seed) {
  Rng rng(seed);
  for (auto& [name, t] : m.state()) {
    Tensor x = t;
    fill_uniform(x, 0.1, 2.0, rng);
  }
}

// The raw bytes of each state tensor, to compare models bit for bit.
std::map<std::string, std::vector<uint8_t>> snapshot(const Module& m) {
  std::map<std::string, std::vector<uint8_t>> out;
  for (auto& [name, t] : m.state()) {
    auto* p = static_cast<const uint8_t*>(t.raw());
    out[name] = std::vector<uint8_t>(p, p + t.nbytes());
  }
  return out;
}

// Rewrites a safetensors file through `edit`.
template <typename Edit>
void edit_file(const std::string& path, Edit edit) {
  st::File f = st::read_file(path);
  edit(f);
  st::write_file(path, f);
}

void remove_record(st::File& f, const std::string& name) {
  std::erase_if(f.records, [&](const st::Record& r) { return r.name == name; });
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("torch layout: 4-D tensors permute OIHW <-> OHWI by index, others are copied") {
  const int64_t O = 2, I = 3, H = 4, W = 5;
  std::vector<float> values(O * I * H * W);
  for (size_t k = 0; k < values.size(); ++k) values[k] = static_cast<float>(k) + 0.25f;
  const Tensor oihw = Tensor::from_vector({O, I, H, W}, values);

  const Tensor ohwi = torch_to_hotlap_layout(oihw);
  REQUIRE(ohwi.shape() == Shape{O, H, W, I});
  const float* out = ohwi.f32();
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          CHECK(out[o * H * W * I + h * W * I + w * I + i] == values[o * I * H * W + i * H * W + h * W + w]);

  const Tensor back = hotlap_to_torch_layout(ohwi);
  REQUIRE(back.shape() == Shape{O, I, H, W});
  CHECK(std::memcmp(back.raw(), oihw.raw(), oihw.nbytes()) == 0);

  SUBCASE("bf16 permutes the same way") {
    const Tensor b = oihw.to(DType::bf16);
    const Tensor bt = torch_to_hotlap_layout(b);
    CHECK(bt.dtype() == DType::bf16);
    const std::vector<float> want = ohwi.to(DType::bf16).to_vector();
    CHECK(bt.to_vector() == want);
    CHECK(std::memcmp(hotlap_to_torch_layout(bt).raw(), b.raw(), b.nbytes()) == 0);
  }
  SUBCASE("other ranks are unchanged copies") {
    const Tensor v = Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
    const Tensor c = torch_to_hotlap_layout(v);
    CHECK(c.shape() == v.shape());
    CHECK(c.to_vector() == v.to_vector());
    CHECK(!c.same_as(v));
    CHECK(hotlap_to_torch_layout(v).to_vector() == v.to_vector());
  }
}

TEST_CASE("torch format: export then import is bit-exact, and the file is what PyTorch writes") {
  TempDir dir;
  const std::string path = dir.file("net.safetensors");
  auto a = small_net();
  randomize(*a, 1);
  export_torch_state(*a, path, {{"note", "test"}}, 7);

  const st::File f = st::read_file(path);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("note") == "test");
  const std::vector<std::string> names = {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                          "1.running_var", "1.num_batches_tracked", "4.weight", "4.bias"};
  REQUIRE(f.records.size() == names.size());
  for (size_t i = 0; i < names.size(); ++i) CHECK(f.records[i].name == names[i]);
  const st::Record& nbt = f.at("1.num_batches_tracked");
  CHECK(nbt.dtype == st::DType::I64);
  CHECK(nbt.shape.empty());
  int64_t tracked = 0;
  std::memcpy(&tracked, nbt.bytes.data(), 8);
  CHECK(tracked == 7);
  const st::Record& w = f.at("0.weight");
  CHECK(w.dtype == st::DType::F32);
  CHECK(w.shape == std::vector<int64_t>{4, 3, 3, 3});  // OIHW
  CHECK(st::to_f32(w) == hotlap_to_torch_layout(a->state()[0].second).to_vector());

  auto b = small_net();
  randomize(*b, 2);
  const ImportReport report = import_torch_state(*b, path);
  CHECK(snapshot(*b) == snapshot(*a));
  CHECK(report.loaded.size() == 8);
  CHECK(report.ignored == std::vector<std::string>{"1.num_batches_tracked"});
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  CHECK(report.mismatched.empty());
  CHECK(report.summary().find("loaded 8 tensors") != std::string::npos);
}

TEST_CASE("torch format: F16, BF16 and F64 files import as their exact f32 values") {
  TempDir dir;
  const std::string path = dir.file("half.safetensors");
  auto a = small_net();
  randomize(*a, 3);
  export_torch_state(*a, path);
  // Store every tensor in another float dtype; the expected values are that dtype's widening.
  for (st::DType dtype : {st::DType::F16, st::DType::BF16, st::DType::F64}) {
    CAPTURE(st::dtype_name(dtype));
    std::map<std::string, std::vector<float>> expected;  // PyTorch layout
    edit_file(path, [&](st::File& f) {
      for (st::Record& r : f.records) {
        if (r.dtype == st::DType::I64) continue;
        std::vector<float> v = st::to_f32(r);
        std::vector<uint8_t> bytes;
        if (dtype == st::DType::F64) {
          std::vector<double> d(v.size());
          for (size_t i = 0; i < v.size(); ++i) d[i] = static_cast<double>(v[i]) + 1e-12;  // rounds back to v[i]
          bytes.resize(d.size() * 8);
          std::memcpy(bytes.data(), d.data(), bytes.size());
          for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(d[i]);
        } else {
          std::vector<uint16_t> h(v.size());
          for (size_t i = 0; i < v.size(); ++i) {
            h[i] = dtype == st::DType::F16 ? kernels::float_to_fp16(v[i]) : kernels::float_to_bf16(v[i]).bits;
            v[i] = dtype == st::DType::F16 ? kernels::fp16_to_float(h[i]) : kernels::bf16_to_float({h[i]});
          }
          bytes.resize(h.size() * 2);
          std::memcpy(bytes.data(), h.data(), bytes.size());
        }
        r.dtype = dtype;
        r.bytes = bytes;
        expected[r.name] = v;
      }
    });
    auto b = small_net();
    import_torch_state(*b, path);
    for (auto& [name, t] : b->state()) {
      CAPTURE(name);
      CHECK(hotlap_to_torch_layout(t).to_vector() == expected.at(name));
    }
    export_torch_state(*a, path);  // back to F32 for the next dtype
  }
}

TEST_CASE("torch format: a strict import lists every problem, names the file and changes nothing") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto source = small_net();
  randomize(*source, 4);
  export_torch_state(*source, path);
  edit_file(path, [](st::File& f) {
    remove_record(f, "1.bias");                                   // missing
    const float extra[2] = {1, 2};
    f.records.push_back(st::make_f32("head.weight", {2}, extra));  // unexpected
    for (st::Record& r : f.records) {
      if (r.name == "0.weight") {  // mis-shaped: 3x3 kernel stored as 1x9 ([4,3,1,9] in OIHW)
        r.shape = {4, 3, 1, 9};
      }
      if (r.name == "1.running_var") {  // a float tensor stored as integers
        std::vector<int64_t> ints(4, 1);
        r = st::make_record("1.running_var", st::DType::I64, {4}, ints.data());
      }
    }
  });

  auto model = small_net();
  randomize(*model, 5);
  const auto before = snapshot(*model);
  const std::string msg = error_of([&] { import_torch_state(*model, path); });
  INFO(msg);
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find("missing: 1.bias [4]") != std::string::npos);
  CHECK(msg.find("unexpected: head.weight [2] F32") != std::string::npos);
  CHECK(msg.find("0.weight: file [4,3,1,9] (PyTorch layout), model [4,3,3,3]") != std::string::npos);
  CHECK(msg.find("1.running_var: file has dtype I64") != std::string::npos);
  CHECK(snapshot(*model) == before);

  SUBCASE("non-strict loads what fits and reports the rest") {
    ImportOptions options;
    options.strict = false;
    const ImportReport r = import_torch_state(*model, path, options);
    CHECK(r.missing == std::vector<std::string>{"1.bias [4]"});
    CHECK(r.unexpected == std::vector<std::string>{"head.weight [2] F32"});
    REQUIRE(r.mismatched.size() == 2);
    CHECK(r.loaded == std::vector<std::string>{"0.bias", "1.weight", "1.running_mean", "4.weight", "4.bias"});
    const auto after = snapshot(*model), src = snapshot(*source);
    for (const auto& name : r.loaded) CHECK(after.at(name) == src.at(name));
    for (const char* kept : {"0.weight", "1.bias", "1.running_var"}) CHECK(after.at(kept) == before.at(kept));
    const std::string summary = r.summary();
    INFO(summary);
    CHECK(summary.find("loaded 5 tensors") != std::string::npos);
    CHECK(summary.find("1 missing") != std::string::npos);
    CHECK(summary.find("head.weight") != std::string::npos);
  }
}

TEST_CASE("torch format: the error list is capped, with a count of the rest") {
  TempDir dir;
  const std::string path = dir.file("many.safetensors");
  st::File f;
  std::vector<float> one = {1.0f};
  for (int i = 0; i < 30; ++i) f.records.push_back(st::make_f32("junk." + std::to_string(i), {1}, one.data()));
  st::write_file(path, f);
  auto model = small_net();
  const std::string msg = error_of([&] { import_torch_state(*model, path); });
  INFO(msg);
  CHECK(msg.find("30 unexpected") != std::string::npos);
  CHECK(msg.find("... and 23 more unexpected") != std::string::npos);
  CHECK(msg.find("missing: 0.weight") != std::string::npos);
}

TEST_CASE("torch format: skip_prefixes keeps the model's head and reports the file's as skipped") {
  TempDir dir;
  const std::string path = dir.file("imagenet.safetensors");
  auto pretrained = small_net(4, 10);  // a 10-way classifier
  randomize(*pretrained, 6);
  export_torch_state(*pretrained, path);

  auto model = small_net(4, 1);  // a regression head
  randomize(*model, 7);
  const auto before = snapshot(*model);
  CHECK(error_of([&] { import_torch_state(*model, path); }).find("4.weight: file [10,4]") != std::string::npos);

  ImportOptions options;
  options.skip_prefixes = {"4."};
  const ImportReport r = import_torch_state(*model, path, options);
  CHECK(r.skipped == std::vector<std::string>{"4.weight", "4.bias"});
  CHECK(r.loaded.size() == 6);
  const auto after = snapshot(*model), src = snapshot(*pretrained);
  CHECK(after.at("4.weight") == before.at("4.weight"));
  CHECK(after.at("4.bias") == before.at("4.bias"));
  CHECK(after.at("0.weight") == src.at("0.weight"));
  CHECK(after.at("1.running_var") == src.at("1.running_var"));
  CHECK(r.summary().find("skipped") != std::string::npos);
}

TEST_CASE("torch format: optional_prefixes load a head that fits and skip one that does not") {
  TempDir dir;
  const std::string classifier = dir.file("classifier.safetensors"), regressor = dir.file("regressor.safetensors");
  auto ten_way = small_net(4, 10), one_way = small_net(4, 1);
  randomize(*ten_way, 16);
  randomize(*one_way, 17);
  export_torch_state(*ten_way, classifier);
  export_torch_state(*one_way, regressor);
  ImportOptions options;
  options.optional_prefixes = {"4."};

  auto model = small_net(4, 1);
  randomize(*model, 18);
  const auto before = snapshot(*model);
  const ImportReport skipped = import_torch_state(*model, classifier, options);
  CHECK(skipped.skipped == std::vector<std::string>{"4.weight", "4.bias"});
  CHECK(skipped.missing.empty());
  CHECK(skipped.mismatched.empty());
  CHECK(snapshot(*model).at("4.weight") == before.at("4.weight"));
  CHECK(snapshot(*model).at("0.weight") == snapshot(*ten_way).at("0.weight"));

  const ImportReport kept = import_torch_state(*model, regressor, options);
  CHECK(kept.skipped.empty());
  CHECK(kept.loaded.size() == 8);
  CHECK(snapshot(*model) == snapshot(*one_way));
}

TEST_CASE("torch format: a hotlap checkpoint imports its model part, in hotlap's layout") {
  TempDir dir;
  const std::string path = dir.file("run.safetensors");
  auto trained = small_net(4, 1);
  randomize(*trained, 19);
  CheckpointInfo info;
  info.step = 3;
  info.epoch = 1;
  info.arch = "small";
  save_checkpoint(path, *trained, nullptr, info);

  auto model = small_net(4, 1);
  randomize(*model, 20);
  const ImportReport r = import_torch_state(*model, path);
  CHECK(r.from_hotlap_checkpoint);
  CHECK(r.loaded.size() == 8);
  CHECK(r.unexpected.empty());
  CHECK(snapshot(*model) == snapshot(*trained));  // 4-D weights unconverted: already OHWI
  CHECK(r.summary().find("hotlap checkpoint") != std::string::npos);

  auto wider = small_net(6, 1);
  const std::string msg = error_of([&] { import_torch_state(*wider, path); });
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find("0.weight: file [4,3,3,3], model [6,3,3,3]") != std::string::npos);
}

TEST_CASE("torch format: file errors name the file") {
  TempDir dir;
  auto model = small_net();
  const std::string missing = dir.file("nope.safetensors");
  CHECK(error_of([&] { import_torch_state(*model, missing); }).find(missing) != std::string::npos);

  const std::string path = dir.file("net.safetensors");
  export_torch_state(*model, path);
  const std::string cut = dir.file("cut.safetensors");
  fs::copy_file(path, cut);
  fs::resize_file(cut, fs::file_size(cut) - 10);
  const auto before = snapshot(*model);
  CHECK(error_of([&] { import_torch_state(*model, cut); }).find(cut) != std::string::npos);
  CHECK(snapshot(*model) == before);

  const std::string nowhere = dir.file("no_such_dir/out.safetensors");
  CHECK(error_of([&] { export_torch_state(*model, nowhere); }).find(nowhere) != std::string::npos);
  CHECK(!fs::exists(dir.path / "no_such_dir"));
}

TEST_CASE("torch format: hotlap's provenance metadata goes out under hotlap.* keys and comes back") {
  TempDir dir;
  CheckpointInfo info;
  info.step = 2000;
  info.epoch = 12;
  info.arch = "resnet18";
  info.extra = {{"input.resize", "300"},       {"input.crop", "256"},  {"input.whole_image", "0"},
                {"pearson", "0.91234567890123"}, {"mae", "0.21"},        {"rmse", "0.28"},
                {"protocol", "5-fold, fold 1"}};
  const std::map<std::string, std::string> meta = torch_provenance_metadata(info, "/runs/r18/fold1/best.safetensors");
  const std::map<std::string, std::string> want = {{"hotlap.input.resize", "300"},
                                                   {"hotlap.input.crop", "256"},
                                                   {"hotlap.input.whole_image", "0"},
                                                   {"hotlap.step", "2000"},
                                                   {"hotlap.epoch", "12"},
                                                   {"hotlap.source", "best.safetensors"},
                                                   {"hotlap.extra.pearson", "0.91234567890123"},
                                                   {"hotlap.extra.mae", "0.21"},
                                                   {"hotlap.extra.rmse", "0.28"},
                                                   {"hotlap.extra.protocol", "5-fold, fold 1"}};
  CHECK(meta == want);

  // Through a real file, next to the other metadata.
  const std::string path = dir.file("net.safetensors");
  auto net = small_net();
  std::map<std::string, std::string> all = meta;
  all["generator"] = "test";
  export_torch_state(*net, path, all, 3);
  const st::File f = st::read_file(path);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("generator") == "test");
  CHECK(f.metadata.count("hotlap.format") == 0);
  const TorchProvenance back = read_torch_provenance(f.metadata, path);
  CHECK(back.has_step);
  CHECK(back.has_epoch);
  CHECK(back.step == 2000);
  CHECK(back.epoch == 12);
  CHECK(back.source == "best.safetensors");
  CHECK(back.extra == info.extra);

  SUBCASE("a file from elsewhere has none") {
    const TorchProvenance none = read_torch_provenance({{"format", "pt"}, {"note", "x"}}, path);
    CHECK_FALSE(none.has_step);
    CHECK_FALSE(none.has_epoch);
    CHECK(none.source.empty());
    CHECK(none.extra.empty());
  }
  SUBCASE("a malformed step or epoch names the file and the key") {
    CHECK(error_of([&] { read_torch_provenance({{"hotlap.step", "12x"}}, path); }) ==
          path + ": metadata \"hotlap.step\" is \"12x\", expected an integer");
    CHECK(error_of([&] { read_torch_provenance({{"hotlap.epoch", ""}}, path); }).find("\"hotlap.epoch\"") !=
          std::string::npos);
  }
  SUBCASE("a PyTorch-format file cannot claim to be a hotlap checkpoint") {
    const std::string bad = dir.file("bad.safetensors");
    CHECK(error_of([&] { export_torch_state(*net, bad, {{"hotlap.format", "checkpoint-v1"}}); }).find(bad) !=
          std::string::npos);
    CHECK_FALSE(fs::exists(bad));
  }
}

}  // namespace
}  // namespace hotlap
