// safetensors reading/writing and atomic file replacement: round trips, byte-exact compatibility
// with the Python library (tests/data/safetensors_reference.safetensors, made by
// tools/make_safetensors_fixture.py), one test per kind of malformed file, and the guarantees of
// write_file_atomically.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "nn/files/atomic_file.h"
#include "nn/files/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;
namespace st = hotlap::safetensors;

namespace {

using hotlap::test::TempDir;
using hotlap::test::read_bytes;

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a header text (not padded) and `data_size` bytes of data.
std::vector<uint8_t> file_bytes(const std::string& header, size_t data_size) {
  std::vector<uint8_t> out(8 + header.size() + data_size, 0xAB);
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const hotlap::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a hotlap::Error> ") + e.what();
  }
  return "<no exception>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Parses `bytes` from memory and from a file; both must throw a hotlap::Error that starts with the
// origin and contains every one of `words`.
void expect_malformed(const std::vector<uint8_t>& bytes, std::initializer_list<const char*> words) {
  const std::string origin = "bad.safetensors";
  std::string msg = error_message([&] { st::parse(bytes.data(), bytes.size(), origin); });
  INFO("parse message: ", msg);
  CHECK(msg.rfind(origin + ": ", 0) == 0);
  for (const char* w : words) CHECK_MESSAGE(contains(msg, w), "expected '", w, "'");

  TempDir dir;
  std::string path = dir.file("bad.safetensors");
  write_bytes(path, bytes);
  std::string file_msg = error_message([&] { st::read_file(path); });
  INFO("read_file message: ", file_msg);
  CHECK(file_msg.rfind(path + ": ", 0) == 0);
  for (const char* w : words) CHECK_MESSAGE(contains(file_msg, w), "expected '", w, "'");
}

void expect_malformed(const std::string& header, size_t data_size, std::initializer_list<const char*> words) {
  expect_malformed(file_bytes(header, data_size), words);
}

template <typename T>
std::vector<T> values_of(const st::Record& r) {
  REQUIRE(r.bytes.size() % sizeof(T) == 0);
  std::vector<T> v(r.bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), r.bytes.data(), r.bytes.size());
  return v;
}

void check_same_records(const st::File& a, const st::File& b) {
  REQUIRE(a.records.size() == b.records.size());
  for (size_t i = 0; i < a.records.size(); ++i) {
    CAPTURE(a.records[i].name);
    CHECK(a.records[i].name == b.records[i].name);
    CHECK(a.records[i].dtype == b.records[i].dtype);
    CHECK(a.records[i].shape == b.records[i].shape);
    CHECK(a.records[i].bytes == b.records[i].bytes);
  }
  CHECK(a.metadata == b.metadata);
}

}  // namespace

TEST_CASE("safetensors dtype names and sizes") {
  using st::DType;
  for (auto [dt, name, size] : std::vector<std::tuple<DType, std::string, size_t>>{
           {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
           {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
           {DType::U8, "U8", 1}, {DType::BOOL, "BOOL", 1}}) {
    CHECK(st::dtype_name(dt) == name);
    CHECK(st::dtype_size(dt) == size);
    CHECK(st::parse_dtype(name) == dt);
  }
  CHECK_THROWS_AS(st::parse_dtype("F8_E4M3"), hotlap::Error);
  CHECK(contains(error_message([] { st::parse_dtype("f32"); }), "unknown dtype \"f32\""));
}

TEST_CASE("safetensors round trip: every dtype, metadata, scalar and empty tensors") {
  TempDir dir;
  std::vector<float> f = hotlap::test::random_floats(2 * 3 * 5, 1);
  std::vector<double> f64 = {1.0, -2.5, 0.1, -0.0};
  std::vector<int64_t> i64 = {INT64_MIN, -1, 0, INT64_MAX};
  std::vector<int32_t> i32 = {INT32_MIN, 7, INT32_MAX};
  std::vector<int16_t> i16 = {-3, 30000};
  std::vector<int8_t> i8 = {-128, 0, 127};
  std::vector<uint8_t> u8 = {0, 255, 9};
  std::vector<uint8_t> boolean = {1, 0, 1, 1};
  std::vector<uint16_t> f16 = {0x3C00, 0x0001, 0xFBFF};  // 1, 2^-24, -65504
  float scalar = 42.25f;

  st::File file;
  file.records.push_back(st::make_f32("conv.weight", {2, 3, 5}, f.data()));
  file.records.push_back(st::make_bf16("conv.weight_bf16", {2, 3, 5}, f.data()));
  file.records.push_back(st::make_record("f64", st::DType::F64, {4}, f64.data()));
  file.records.push_back(st::make_record("f16", st::DType::F16, {3}, f16.data()));
  file.records.push_back(st::make_record("step", st::DType::I64, {2, 2}, i64.data()));
  file.records.push_back(st::make_record("i32", st::DType::I32, {3}, i32.data()));
  file.records.push_back(st::make_record("i16", st::DType::I16, {2, 1}, i16.data()));
  file.records.push_back(st::make_record("i8", st::DType::I8, {3}, i8.data()));
  file.records.push_back(st::make_record("u8", st::DType::U8, {1, 3}, u8.data()));
  file.records.push_back(st::make_record("mask", st::DType::BOOL, {4}, boolean.data()));
  file.records.push_back(st::make_f32("scalar", {}, &scalar));
  file.records.push_back(st::make_f32("empty", {0, 3}, nullptr));
  file.records.push_back(st::make_record("empty_i64", st::DType::I64, {5, 0}, nullptr));
  file.records.push_back(st::make_f32("after_empty", {1}, &scalar));
  file.metadata = {{"format", "pt"}, {"hotlap.step", "1234"}, {"note", "ünïcode ✓"}};

  CHECK(file.records[10].numel() == 1);
  CHECK(file.records[11].numel() == 0);

  std::string path = dir.file("model.safetensors");
  st::write_file(path, file);
  st::File back = st::read_file(path);
  CHECK(back.origin == path);
  check_same_records(file, back);

  // The in-memory path gives the same answer, and the header is padded so the data is aligned.
  std::vector<uint8_t> bytes = st::serialize(file);
  CHECK(bytes == read_bytes(path));
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  CHECK(header_len % 8 == 0);
  check_same_records(file, st::parse(bytes.data(), bytes.size(), "memory"));

  CHECK(st::to_f32(back.at("conv.weight")) == f);
  CHECK(st::to_f32(back.at("scalar")) == std::vector<float>{42.25f});
  CHECK(st::to_f32(back.at("empty")).empty());
  CHECK(st::to_f32(back.at("f64")) == std::vector<float>{1.0f, -2.5f, 0.1f, -0.0f});
  CHECK(st::to_f32(back.at("f16")) == std::vector<float>{1.0f, std::ldexp(1.0f, -24), -65504.0f});
  std::vector<float> bf = st::to_f32(back.at("conv.weight_bf16"));
  CHECK(hotlap::test::max_rel_error(bf, f) < 1.0 / 128);
  CHECK(values_of<int64_t>(back.at("step")) == i64);

  // No metadata: no "__metadata__" key at all.
  st::File plain;
  plain.records.push_back(st::make_f32("x", {1}, &scalar));
  std::vector<uint8_t> plain_bytes = st::serialize(plain);
  std::string header(plain_bytes.begin() + 8, plain_bytes.end() - 4);
  CHECK(header.find("__metadata__") == std::string::npos);
  CHECK(header.rfind("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0) == 0);

  // An empty file is valid too.
  st::File none;
  std::vector<uint8_t> none_bytes = st::serialize(none);
  st::File none_back = st::parse(none_bytes.data(), none_bytes.size(), "none");
  CHECK(none_back.records.empty());
  CHECK(none_back.metadata.empty());
}

TEST_CASE("safetensors make_bf16 rounds to nearest even") {
  // 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties go to the even mantissa, 1.0.
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6.
  // 1 + 2^-8 + 2^-20 is just above halfway: up to 1 + 2^-7.
  std::vector<float> x = {1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -8),
                          1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20), -3.0f};
  st::Record r = st::make_bf16("x", {4}, x.data());
  CHECK(values_of<uint16_t>(r) == std::vector<uint16_t>{0x3F80, 0x3F82, 0x3F81, 0xC040});
  CHECK(st::to_f32(r) == std::vector<float>{1.0f, 1.0f + std::ldexp(1.0f, -6), 1.0f + std::ldexp(1.0f, -7), -3.0f});
}

TEST_CASE("safetensors to_f32 rejects integer dtypes and inconsistent records") {
  std::vector<int64_t> v = {1, 2};
  st::Record r = st::make_record("step", st::DType::I64, {2}, v.data());
  CHECK(error_message([&] { st::to_f32(r); }) == "tensor 'step' has dtype I64, expected a floating type");
  st::Record bad = st::make_f32("w", {2}, std::vector<float>{1, 2}.data());
  bad.bytes.pop_back();
  CHECK(contains(error_message([&] { st::to_f32(bad); }), "tensor 'w' holds 7 bytes"));
  CHECK_THROWS_AS(st::make_f32("neg", {-1, 2}, nullptr), hotlap::Error);
}

TEST_CASE("safetensors reads the Python library's file exactly and writes the same bytes") {
  const std::string path = std::string(HOTLAP_TEST_DATA_DIR) + "/safetensors_reference.safetensors";
  st::File file = st::read_file(path);
  CHECK(file.metadata == std::map<std::string, std::string>{{"format", "pt"}});

  const st::Record& f32 = file.at("f32");
  CHECK(f32.dtype == st::DType::F32);
  CHECK(f32.shape == std::vector<int64_t>{2, 3});
  std::vector<float> want_f32;
  for (int i = 0; i < 6; ++i) want_f32.push_back(i * 0.25f - 1.0f);
  CHECK(values_of<float>(f32) == want_f32);
  CHECK(st::to_f32(f32) == want_f32);

  const st::Record& f16 = file.at("f16");
  CHECK(f16.dtype == st::DType::F16);
  CHECK(f16.shape == std::vector<int64_t>{6});
  CHECK(values_of<uint16_t>(f16) == std::vector<uint16_t>{0x7BFF, 0x0001, 0xB800, 0x3555, 0x0000, 0xC000});
  CHECK(st::to_f32(f16) ==
        std::vector<float>{65504.0f, std::ldexp(1.0f, -24), -0.5f, 0.333251953125f, 0.0f, -2.0f});

  const st::Record& bf16 = file.at("bf16");
  CHECK(bf16.dtype == st::DType::BF16);
  CHECK(bf16.shape == std::vector<int64_t>{2, 2, 2});
  std::vector<float> want_bf16;
  for (int i = 0; i < 8; ++i) want_bf16.push_back(i * 1.5f - 4.0f);
  CHECK(st::to_f32(bf16) == want_bf16);
  CHECK(st::make_bf16("bf16", {2, 2, 2}, want_bf16.data()).bytes == bf16.bytes);

  const st::Record& i64 = file.at("i64");
  CHECK(i64.dtype == st::DType::I64);
  CHECK(values_of<int64_t>(i64) == std::vector<int64_t>{0, -1, (int64_t{1} << 40) + 7, -(int64_t{1} << 62)});

  const st::Record& scalar = file.at("scalar");
  CHECK(scalar.shape.empty());
  CHECK(st::to_f32(scalar) == std::vector<float>{3.5f});
  const st::Record& empty = file.at("empty");
  CHECK(empty.shape == std::vector<int64_t>{0, 3});
  CHECK(empty.bytes.empty());

  // Records come back in file order, so writing them again reproduces the Python bytes exactly.
  std::vector<uint8_t> original = read_bytes(path);
  CHECK(st::serialize(file) == original);
  check_same_records(file, st::parse(original.data(), original.size(), "memory"));

  CHECK(file.find("nope") == nullptr);
  std::string msg = error_message([&] { file.at("fc.weight"); });
  CHECK(msg.rfind(path + ": ", 0) == 0);
  CHECK(contains(msg, "no tensor named 'fc.weight'"));
}

TEST_CASE("safetensors: every truncation or corruption of a valid file is a clean Error") {
  const std::string path = std::string(HOTLAP_TEST_DATA_DIR) + "/safetensors_reference.safetensors";
  std::vector<uint8_t> good = read_bytes(path);
  REQUIRE(good.size() > 100);
  for (size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(st::parse(good.data(), n, "cut"), hotlap::Error);
  }
  // Flip bits everywhere in the header: each result parses or throws hotlap::Error, nothing else.
  uint64_t header_len = 0;
  std::memcpy(&header_len, good.data(), 8);
  for (size_t i = 0; i < 8 + header_len; ++i) {
    for (uint8_t mask : {0x01, 0x10, 0x80}) {
      std::vector<uint8_t> bad = good;
      bad[i] ^= mask;
      CAPTURE(i);
      try {
        st::parse(bad.data(), bad.size(), "flip");
      } catch (const hotlap::Error&) {
      }
    }
  }
}

TEST_CASE("safetensors malformed: file too short or header length wrong") {
  expect_malformed(std::vector<uint8_t>{}, {"0 bytes", "too short"});
  expect_malformed(std::vector<uint8_t>{1, 2, 3, 4, 5}, {"5 bytes", "too short"});
  std::vector<uint8_t> past = file_bytes("{}", 0);
  past[0] = 200;  // claims a 200-byte header in a 10-byte file
  expect_malformed(past, {"header length 200", "past the end of the file"});
  std::vector<uint8_t> absurd = file_bytes("{}", 0);
  absurd[7] = 0x7F;  // ~9e18
  expect_malformed(absurd, {"absurd"});
}

TEST_CASE("safetensors malformed: header not JSON, not an object, too deep") {
  expect_malformed("{\"a\": {", 0, {"not valid JSON"});
  expect_malformed("hello!!!", 0, {"not valid JSON"});
  expect_malformed(std::string("{\"\xff\xfe\": 1}"), 0, {"not valid JSON"});
  expect_malformed("[1, 2, 3]", 0, {"header is a JSON array", "expected an object"});
  expect_malformed(std::string(100000, '[') + std::string(100000, ']'), 0, {"nested"});
  // Trailing spaces (the format's padding) are fine.
  std::vector<uint8_t> padded = file_bytes("{}      ", 0);
  CHECK(st::parse(padded.data(), padded.size(), "padded").records.empty());
}

TEST_CASE("safetensors malformed: tensor entries with missing keys or wrong types") {
  expect_malformed(R"({"w": 5})", 0, {"tensor 'w'", "expected an object"});
  expect_malformed(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4, {"tensor 'w'", "no \"dtype\""});
  expect_malformed(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, {"tensor 'w'", "no \"shape\""});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [1]}})", 4, {"tensor 'w'", "no \"data_offsets\""});
  expect_malformed(R"({"w": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", 4, {"\"dtype\" is number"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4, {"\"shape\" is number"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}})", 4,
                   {"\"shape\" holds 1.0", "expected integers"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", 4, {"expected integers"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}})", 4, {"data_offsets", "[begin, end]"});
}

TEST_CASE("safetensors malformed: unknown dtype") {
  expect_malformed(R"({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", 1,
                   {"tensor 'w'", "unknown dtype \"F8_E4M3\""});
}

TEST_CASE("safetensors malformed: a huge name stays out of the message") {
  std::string name(1 << 20, 'n');
  std::string header = "{\"" + name + "\": {\"dtype\": \"Q\", \"shape\": [1], \"data_offsets\": [0, 1]}}";
  std::vector<uint8_t> bytes = file_bytes(header, 1);
  std::string msg = error_message([&] { st::parse(bytes.data(), bytes.size(), "big"); });
  CHECK(msg.size() < 1000);
  CHECK(contains(msg, "unknown dtype \"Q\""));
}

TEST_CASE("safetensors malformed: negative dimension and shape overflow") {
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 4]}})", 4,
                   {"tensor 'w'", "negative dimension -3"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", 4,
                   {"tensor 'w'", "64 bits"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [2305843009213693952, 2], "data_offsets": [0, 4]}})", 4,
                   {"tensor 'w'", "2^64 bytes"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 4]}})", 4,
                   {"tensor 'w'", "expected integers"});
}

TEST_CASE("safetensors malformed: data_offsets") {
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4]}})", 4, {"data_offsets", "[begin, end]"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 8, {"[begin, end]"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4, {"[begin, end]"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4.0]}})", 4, {"[begin, end]"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}})", 4, {"end before they begin"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 12,
                   {"tensor 'w'", "past the end of the data (12 bytes)"});
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}})", 4,
                   {"past the end of the data"});
}

TEST_CASE("safetensors malformed: byte count does not match the shape") {
  expect_malformed(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16,
                   {"tensor 'w'", "hold 12 bytes", "[2, 2] of F32 needs 16"});
  expect_malformed(R"({"w": {"dtype": "BF16", "shape": [], "data_offsets": [0, 4]}})", 4, {"needs 2"});
}

namespace {
// A header of n empty F32 tensors "t0", "t1", ...: valid, and as many entries as asked.
std::string many_empty_entries(size_t n) {
  std::string h = "{";
  for (size_t i = 0; i < n; ++i) {
    if (i) h += ',';
    h += "\"t";
    h += std::to_string(i);
    h += R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
  }
  return h + "}";
}
}  // namespace

TEST_CASE("safetensors: a header of 200,000 entries parses in one pass, and more than a million is refused") {
  // The header is checked in linear time: with a parser that copied what it had parsed at each entry,
  // 200,000 entries took minutes (25,000 took 6 s), far past the test's time limit.
  const std::vector<uint8_t> big = file_bytes(many_empty_entries(200000), 0);
  const st::File f = st::parse(big.data(), big.size(), "big.safetensors");
  CHECK(f.records.size() == 200000);
  expect_malformed(many_empty_entries(1000001), 0, {"more than 1000000 entries"});
  // A duplicate among many is still found.
  std::string dup = many_empty_entries(50000);
  dup.insert(dup.size() - 1, R"(,"t123":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})");
  expect_malformed(dup, 0, {"names 't123' twice"});
}

TEST_CASE("safetensors malformed: duplicate names and overlapping tensors") {
  expect_malformed(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},)"
                   R"( "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                   2, {"names 'w' twice"});
  expect_malformed(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                   R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                   12, {"'a' [0, 8)", "'b' [4, 12)", "overlap"});
  expect_malformed(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                   R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                   8, {"overlap"});
  // Touching ranges, gaps and empty tensors anywhere are fine.
  std::vector<uint8_t> ok = file_bytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                                       R"( "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},)"
                                       R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}})",
                                       16);
  st::File f = st::parse(ok.data(), ok.size(), "ok");
  REQUIRE(f.records.size() == 3);
  CHECK(f.records[0].name == "a");
  CHECK(f.records[1].name == "e");
  CHECK(f.records[2].name == "b");
}

TEST_CASE("safetensors malformed: __metadata__ not an object of strings") {
  expect_malformed(R"({"__metadata__": ["format", "pt"]})", 0, {"\"__metadata__\" is array"});
  expect_malformed(R"({"__metadata__": {"step": 12}})", 0, {"\"__metadata__\" entry 'step' is number"});
}

TEST_CASE("safetensors read_header: the records and metadata without the data, checked the same way") {
  TempDir dir;
  std::vector<float> f = hotlap::test::random_floats(4 * 3, 2);
  st::File file;
  file.records.push_back(st::make_f32("a", {4, 3}, f.data()));
  file.records.push_back(st::make_bf16("b", {3}, f.data()));
  file.records.push_back(st::make_f32("empty", {0, 2}, nullptr));
  file.metadata = {{"hotlap.format", "1"}};
  const std::string path = dir.file("m.safetensors");
  st::write_file(path, file);

  const st::File header = st::read_header(path);
  CHECK(header.origin == path);
  CHECK(header.metadata == file.metadata);
  REQUIRE(header.records.size() == 3);
  for (const st::Record& r : file.records) {
    const st::Record& h = header.at(r.name);
    CHECK(h.dtype == r.dtype);
    CHECK(h.shape == r.shape);
    CHECK(h.bytes.empty());  // nothing of the data is read
  }

  // A file cut inside its data: read_file and read_header both refuse it, naming the file, since
  // the header's offsets go past the end.
  std::vector<uint8_t> bytes = read_bytes(path);
  const std::string cut = dir.file("cut.safetensors");
  {
    std::ofstream out(cut, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size() - 5));
  }
  for (auto read : {st::read_file, st::read_header}) {
    const std::string msg = error_message([&] { read(cut); });
    CHECK(msg.rfind(cut + ": ", 0) == 0);
  }
  const std::string msg = error_message([&] { st::read_header(dir.path.string()); });
  CHECK(contains(msg, "directory"));
}

TEST_CASE("safetensors: missing file or a directory") {
  TempDir dir;
  std::string missing = dir.file("missing.safetensors");
  std::string msg = error_message([&] { st::read_file(missing); });
  CHECK(msg.rfind(missing + ": ", 0) == 0);
  CHECK(contains(msg, "No such file"));
  msg = error_message([&] { st::read_file(dir.path.string()); });
  CHECK(msg.rfind(dir.path.string() + ": ", 0) == 0);
  CHECK(contains(msg, "directory"));
}

TEST_CASE("safetensors write rejects inconsistent records and names the destination") {
  TempDir dir;
  std::string path = dir.file("out.safetensors");
  float x[2] = {1, 2};
  auto message_for = [&](const st::File& f) { return error_message([&] { st::write_file(path, f); }); };

  st::File dup;
  dup.records = {st::make_f32("w", {2}, x), st::make_f32("w", {1}, x)};
  std::string msg = message_for(dup);
  CHECK(msg.rfind(path + ": ", 0) == 0);
  CHECK(contains(msg, "two tensors are named 'w'"));

  st::File short_bytes;
  short_bytes.records = {st::make_f32("w", {2}, x)};
  short_bytes.records[0].shape = {3};
  CHECK(contains(message_for(short_bytes), "tensor 'w' holds 8 bytes but shape [3] of F32 needs 12"));

  st::File reserved;
  reserved.records = {st::make_f32("__metadata__", {2}, x)};
  CHECK(contains(message_for(reserved), "__metadata__"));

  st::File negative;
  negative.records = {st::make_f32("w", {2}, x)};
  negative.records[0].shape = {-2, -1};
  CHECK(contains(message_for(negative), "negative dimension"));

  st::File bad_utf8;
  bad_utf8.records = {st::make_f32("w\xff", {2}, x)};
  CHECK(contains(message_for(bad_utf8), "UTF-8"));

  CHECK(dir.listing().empty());  // nothing was written by any of them
}

TEST_CASE("write_file_atomically replaces, and leaves the old file untouched on failure") {
  TempDir dir;
  std::string path = dir.file("state.bin");
  hotlap::write_file_atomically(path, [](std::ostream& os) { os << "first version"; });
  CHECK(read_bytes(path) == std::vector<uint8_t>{'f', 'i', 'r', 's', 't', ' ', 'v', 'e', 'r', 's', 'i', 'o', 'n'});

  // Larger than the stream's buffer, written both in small pieces and one big block.
  std::vector<uint8_t> big(300000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7 + i / 251);
  hotlap::write_file_atomically(path, [&](std::ostream& os) {
    for (size_t i = 0; i < 1000; ++i) os.put(static_cast<char>(big[i]));
    os.write(reinterpret_cast<const char*>(big.data()) + 1000, static_cast<std::streamsize>(big.size() - 1000));
  });
  CHECK(read_bytes(path) == big);
  CHECK(dir.listing() == std::vector<std::string>{"state.bin"});

  std::vector<uint8_t> small = {1, 2, 3};
  hotlap::write_file_atomically(path, std::span<const uint8_t>(small));
  CHECK(read_bytes(path) == small);

  // A writer that throws halfway: old bytes intact, no temporary file left, Error names the path.
  std::string msg = error_message([&] {
    hotlap::write_file_atomically(path, [&](std::ostream& os) {
      os.write(reinterpret_cast<const char*>(big.data()), static_cast<std::streamsize>(big.size()));
      throw std::runtime_error("disk quota imagined");
    });
  });
  CHECK(msg.rfind(path + ": ", 0) == 0);
  CHECK(contains(msg, "disk quota imagined"));
  CHECK(read_bytes(path) == small);
  CHECK(dir.listing() == std::vector<std::string>{"state.bin"});

  // The same through write_file: a failing serialize never touches the old file.
  st::File bad;
  float x = 1;
  bad.records = {st::make_f32("w", {1}, &x)};
  bad.records[0].bytes.push_back(0);
  CHECK_THROWS_AS(st::write_file(path, bad), hotlap::Error);
  CHECK(read_bytes(path) == small);
}

TEST_CASE("write_file_atomically into a missing directory or over a directory throws naming the path") {
  TempDir dir;
  std::string path = dir.file("no/such/dir/file.bin");
  std::string msg = error_message([&] { hotlap::write_file_atomically(path, [](std::ostream& os) { os << "x"; }); });
  CHECK(msg.rfind(path + ": ", 0) == 0);
  CHECK(contains(msg, "No such file or directory"));

  fs::create_directories(dir.path / "sub" / "inner");
  std::string over_dir = dir.file("sub");
  msg = error_message([&] { hotlap::write_file_atomically(over_dir, [](std::ostream& os) { os << "x"; }); });
  CHECK(msg.rfind(over_dir + ": ", 0) == 0);
  CHECK(dir.listing() == std::vector<std::string>{"sub"});
  CHECK(fs::is_directory(dir.path / "sub" / "inner"));
}

TEST_CASE("remove_stale_temporaries removes a killed writer's temporary files, and nothing else") {
  TempDir dir;
  // A child process that exits at once: its PID is then free (no process has it until reused).
  const pid_t dead = fork();
  REQUIRE(dead >= 0);
  if (dead == 0) _exit(0);
  REQUIRE(waitpid(dead, nullptr, 0) == dead);
  const std::string dead_tmp = dir.file("last.safetensors.tmp." + std::to_string(dead) + ".3");
  const std::string live_tmp = dir.file("last.safetensors.tmp." + std::to_string(::getpid()) + ".0");
  const std::vector<std::string> kept = {live_tmp, dir.file("last.safetensors"), dir.file("notes.tmp.txt"),
                                         dir.file("a.tmp.x.1"), dir.file("tmp.123.4")};
  for (const std::string& p : kept) std::ofstream(p) << "keep";
  std::ofstream(dead_tmp) << "half a checkpoint";
  CHECK(hotlap::remove_stale_temporaries(dir.path.string()) == 1);
  CHECK_FALSE(std::filesystem::exists(dead_tmp));
  for (const std::string& p : kept) CHECK(std::filesystem::exists(p));
  CHECK(hotlap::remove_stale_temporaries(dir.file("no_such_folder")) == 0);
}
