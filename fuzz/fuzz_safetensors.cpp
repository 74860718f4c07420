// Fuzz target: the safetensors reader (nn/files/safetensors.h), the first step of loading every checkpoint,
// PyTorch import and golden file.
//
// The input is a whole file. A malformed one must be refused with a hotlap::Error, without reading
// outside the bytes or allocating more than they hold (the header promises both). What is accepted
// must also
//   - convert with to_f32 when its dtype is a floating one, and be refused by it cleanly otherwise;
//   - read back the same from disk: read_file has its own bounds arithmetic (pread at offsets), and
//     every loader goes through it rather than through parse();
//   - give the same names, dtypes, shapes and metadata from read_header (no data read), which accepts
//     and refuses exactly what read_file does;
//   - come back unchanged through serialize() and parse() (names, dtypes, shapes, bytes, metadata).
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "nn/files/safetensors.h"

namespace st = hotlap::safetensors;
namespace fz = hotlap::fuzz;

namespace {

// The records by name (parse returns them in the order of their offsets, which serialize renumbers)
// and the metadata.
using Content =
    std::tuple<std::map<std::string, std::tuple<st::DType, std::vector<int64_t>, std::vector<uint8_t>>>,
               std::map<std::string, std::string>>;

Content content(const st::File& file) {
  Content c;
  for (const st::Record& r : file.records) std::get<0>(c)[r.name] = {r.dtype, r.shape, r.bytes};
  std::get<1>(c) = file.metadata;
  return c;
}

bool is_floating(st::DType d) {
  return d == st::DType::F32 || d == st::DType::F64 || d == st::DType::F16 || d == st::DType::BF16;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fz::single_threaded();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fz::ScratchDir scratch("safetensors");
  const std::string path = scratch / "input.safetensors";

  st::File file;
  const bool parsed = fz::refuses_cleanly("safetensors::parse", [&] { file = st::parse(data, size, path); });

  fz::write_bytes(path, data, size);
  st::File from_disk;
  const bool read = fz::refuses_cleanly("safetensors::read_file", [&] { from_disk = st::read_file(path); });
  HOTLAP_FUZZ_REQUIRE(parsed == read, "safetensors::read_file",
                      std::string("parse() ") + (parsed ? "accepted" : "refused") +
                          " the bytes and read_file() " + (read ? "accepted" : "refused") +
                          " the same bytes as a file");
  st::File header;
  const bool header_read = fz::refuses_cleanly("safetensors::read_header", [&] { header = st::read_header(path); });
  HOTLAP_FUZZ_REQUIRE(header_read == read, "safetensors::read_header",
                      std::string("read_file() ") + (read ? "accepted" : "refused") + " the file and read_header() " +
                          (header_read ? "accepted" : "refused") + " it");
  if (!parsed) return 0;
  HOTLAP_FUZZ_REQUIRE(content(file) == content(from_disk), "safetensors::read_file",
                      "read a different content than parse()");
  HOTLAP_FUZZ_REQUIRE(header.metadata == file.metadata && header.records.size() == file.records.size(),
                      "safetensors::read_header", "read other metadata or another number of records than parse()");
  for (size_t i = 0; i < header.records.size(); ++i)
    HOTLAP_FUZZ_REQUIRE(header.records[i].name == file.records[i].name &&
                            header.records[i].dtype == file.records[i].dtype &&
                            header.records[i].shape == file.records[i].shape && header.records[i].bytes.empty(),
                        "safetensors::read_header", "record " + file.records[i].name + " differs from parse()'s");

  for (const st::Record& r : file.records) {
    HOTLAP_FUZZ_REQUIRE(file.find(r.name) == &r, "File::find", "does not find record " + r.name);
    int64_t numel = 0;
    fz::refuses_cleanly("Record::numel", [&] { numel = r.numel(); });
    HOTLAP_FUZZ_REQUIRE(static_cast<uint64_t>(numel) * st::dtype_size(r.dtype) == r.bytes.size(),
                        "safetensors::parse",
                        "record " + r.name + " holds " + std::to_string(r.bytes.size()) + " bytes for " +
                            std::to_string(numel) + " elements of " + st::dtype_name(r.dtype));
    std::vector<float> values;
    const bool converted = fz::refuses_cleanly("safetensors::to_f32", [&] { values = st::to_f32(r); });
    HOTLAP_FUZZ_REQUIRE(
        converted == is_floating(r.dtype), "safetensors::to_f32",
        std::string(converted ? "converted" : "refused") + " dtype " + st::dtype_name(r.dtype));
    if (converted)
      HOTLAP_FUZZ_REQUIRE(values.size() == static_cast<size_t>(numel), "safetensors::to_f32",
                          "wrong number of values");
  }

  std::vector<uint8_t> bytes;
  HOTLAP_FUZZ_REQUIRE(fz::refuses_cleanly("safetensors::serialize", [&] { bytes = st::serialize(file); }),
                      "safetensors::serialize", "refused a file that parse() accepted");
  st::File again;
  HOTLAP_FUZZ_REQUIRE(fz::refuses_cleanly("safetensors::parse",
                                          [&] { again = st::parse(bytes.data(), bytes.size(), "again"); }),
                      "safetensors::parse", "refused what serialize() wrote from an accepted file");
  HOTLAP_FUZZ_REQUIRE(content(file) == content(again), "safetensors::serialize",
                      "serialize -> parse changed the content");
  return 0;
}
