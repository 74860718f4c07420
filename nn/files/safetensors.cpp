// safetensors reading and writing. The only translation unit that includes nlohmann/json.
//
// Reading validates the header completely before touching the data: every tensor's dtype, shape,
// offsets and byte count are checked against each other and against the size of the file, so a
// malformed or hostile file yields an Error, never an out-of-bounds read or a huge allocation.
#include "nn/files/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "kernels/cast.h"
#include "kernels/error.h"
#include "nn/files/atomic_file.h"

namespace hotlap::safetensors {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; hotlap copies it as is");

namespace {

// A header larger than this is not a real checkpoint (ResNet-50's is ~30 KB): refuse before
// allocating it.
constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;
// The format needs depth 3 (root object -> tensor object -> shape array); anything much deeper is
// garbage, and refusing it early keeps a pathological header from costing recursion or memory.
constexpr int kMaxJsonDepth = 16;
// A ResNet-152 checkpoint with its optimizer state has ~2,000 entries, the largest public model
// files a few tens of thousands; a header of more is a malformed or hostile file.
constexpr size_t kMaxHeaderEntries = 1000000;

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

std::optional<DType> lookup_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.dtype;
  return std::nullopt;
}

std::string known_dtypes() {
  std::string s;
  for (const auto& d : kDTypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

// Keeps error messages one readable line when a hostile header holds huge names or values.
std::string clip(const std::string& s, size_t limit = 120) {
  return s.size() <= limit ? s : s.substr(0, limit) + "...(" + std::to_string(s.size()) + " bytes)";
}
std::string clip(const json& j) { return clip(j.dump()); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

// numel of a shape, or nullopt on a negative dimension or an overflow of int64.
std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  bool has_zero = false;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d == 0) has_zero = true;
  }
  if (has_zero) return 0;
  for (int64_t d : shape) {
    if (n > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

// Bytes a record of this shape and dtype must hold; throws on a bad shape. `who` prefixes messages.
uint64_t expected_bytes(const std::string& who, const std::string& name, DType dtype,
                        const std::vector<int64_t>& shape) {
  for (int64_t d : shape)
    HOTLAP_CHECK(d >= 0, who, "tensor '", clip(name), "' has a negative dimension in shape ", clip(shape_text(shape)));
  auto numel = checked_numel(shape);
  HOTLAP_CHECK(numel.has_value(), who, "tensor '", clip(name), "': shape ", clip(shape_text(shape)),
               " has more elements than fit in 64 bits");
  uint64_t n = static_cast<uint64_t>(*numel), size = dtype_size(dtype);
  HOTLAP_CHECK(n <= std::numeric_limits<uint64_t>::max() / size, who, "tensor '", clip(name), "': shape ",
               clip(shape_text(shape)), " of ", dtype_name(dtype), " is larger than 2^64 bytes");
  return n * size;
}

// One tensor's entry in the header, validated.
struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // relative to the start of the data
};

struct Header {
  std::vector<Entry> entries;  // sorted by offset
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + header length
};

// Validates the 8-byte length prefix against the file size; returns the header length.
uint64_t header_length(const uint8_t* prefix, uint64_t file_size, const std::string& origin) {
  HOTLAP_CHECK(file_size >= 8, origin, ": file is ", file_size,
               " bytes, too short for a safetensors file (the header length alone takes 8)");
  uint64_t n = 0;
  std::memcpy(&n, prefix, 8);
  HOTLAP_CHECK(n <= kMaxHeaderBytes, origin, ": header length ", n, " is absurd (limit ",
               kMaxHeaderBytes, " bytes); not a safetensors file?");
  HOTLAP_CHECK(n <= file_size - 8, origin, ": header length ", n, " runs past the end of the file (",
               file_size, " bytes); truncated or not a safetensors file?");
  HOTLAP_CHECK(n >= 2, origin, ": header length ", n, " is too short for a JSON object");
  return n;
}

// The checks the DOM parser cannot make, in one linear pass over the text with nlohmann's SAX
// interface: nesting depth, the number of top-level entries, and duplicate names (which the DOM
// would keep silently, the last winning; the format forbids them). nlohmann's own callback parser
// could check these too, but it copies what it has parsed at each event: quadratic in the number
// of entries (25,000 empty entries took 6 s, 50,000 took 37 s).
class HeaderCheck final : public nlohmann::json_sax<json> {
 public:
  explicit HeaderCheck(const std::string& origin) : origin_(origin) {}
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return enter(); }
  bool start_array(std::size_t) override { return enter(); }
  bool end_object() override { return leave(); }
  bool end_array() override { return leave(); }
  bool key(string_t& k) override {
    if (depth_ != 1) return true;
    if (++entries_ > kMaxHeaderEntries)
      throw_error(origin_, ": header has more than ", kMaxHeaderEntries, " entries; not a checkpoint hotlap reads");
    if (!top_level_keys_.insert(k).second) throw_error(origin_, ": header names '", clip(k), "' twice");
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    throw_error(origin_, ": header is not valid JSON: ", clip(e.what(), 300));
  }

 private:
  bool enter() {
    if (++depth_ > kMaxJsonDepth) throw_error(origin_, ": header JSON is nested more than ", kMaxJsonDepth, " deep");
    return true;
  }
  bool leave() {
    --depth_;
    return true;
  }
  const std::string& origin_;
  int depth_ = 0;
  size_t entries_ = 0;
  std::unordered_set<std::string> top_level_keys_;
};

json parse_json(const char* text, size_t size, const std::string& origin) {
  HeaderCheck check(origin);
  json::sax_parse(text, text + size, &check);
  try {
    return json::parse(text, text + size);
  } catch (const json::exception& e) {
    throw_error(origin, ": header is not valid JSON: ", clip(e.what(), 300));
  }
}

// A JSON integer as int64/uint64, or nullopt if it is not an integer (floats, strings, ...).
std::optional<int64_t> json_int64(const json& j) {
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (j.is_number_integer()) return j.get<int64_t>();
  return std::nullopt;
}

Entry parse_entry(const std::string& origin, const std::string& name, const json& value,
                  uint64_t data_size) {
  const std::string where = origin + ": tensor '" + clip(name) + "'";
  HOTLAP_CHECK(value.is_object(), where, ": header entry is ", value.type_name(),
               ", expected an object with dtype, shape and data_offsets");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    HOTLAP_CHECK(value.contains(key), where, ": header entry has no \"", key, "\"");

  Entry e;
  e.name = name;
  const json& dtype = value["dtype"];
  HOTLAP_CHECK(dtype.is_string(), where, ": \"dtype\" is ", dtype.type_name(), ", expected a string");
  auto dt = lookup_dtype(dtype.get<std::string>());
  HOTLAP_CHECK(dt.has_value(), where, ": unknown dtype \"", clip(dtype.get<std::string>()),
               "\" (hotlap reads ", known_dtypes(), ")");
  e.dtype = *dt;

  const json& shape = value["shape"];
  HOTLAP_CHECK(shape.is_array(), where, ": \"shape\" is ", shape.type_name(), ", expected an array of integers");
  for (const json& d : shape) {
    auto v = json_int64(d);
    HOTLAP_CHECK(v.has_value(), where, ": \"shape\" holds ", clip(d), ", expected integers");
    HOTLAP_CHECK(*v >= 0, where, ": negative dimension ", *v, " in shape ", clip(shape));
    e.shape.push_back(*v);
  }

  const json& offsets = value["data_offsets"];
  HOTLAP_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                   offsets[1].is_number_unsigned(),
               where, ": \"data_offsets\" is ", clip(offsets), ", expected [begin, end] (non-negative integers)");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  HOTLAP_CHECK(e.begin <= e.end, where, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  HOTLAP_CHECK(e.end <= data_size, where, ": data_offsets [", e.begin, ", ", e.end,
               "] run past the end of the data (", data_size, " bytes); truncated file?");

  uint64_t want = expected_bytes(origin + ": ", name, e.dtype, e.shape);
  HOTLAP_CHECK(e.end - e.begin == want, where, ": data_offsets [", e.begin, ", ", e.end, "] hold ",
               e.end - e.begin, " bytes but shape ", clip(shape_text(e.shape)), " of ", dtype_name(e.dtype),
               " needs ", want);
  return e;
}

Header parse_header(const char* text, size_t size, uint64_t data_size, const std::string& origin) {
  json root = parse_json(text, size, origin);
  HOTLAP_CHECK(root.is_object(), origin, ": header is a JSON ", root.type_name(), ", expected an object");

  Header h;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      HOTLAP_CHECK(it->is_object(), origin, ": \"__metadata__\" is ", it->type_name(),
                   ", expected an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        HOTLAP_CHECK(m->is_string(), origin, ": \"__metadata__\" entry '", clip(m.key()), "' is ", m->type_name(),
                     ", expected a string");
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(origin, it.key(), *it, data_size));
  }

  // Records come back in the order of their data, which is the order they were written in.
  std::sort(h.entries.begin(), h.entries.end(), [](const Entry& a, const Entry& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  // The format forbids overlapping tensors. Empty tensors occupy no bytes and overlap nothing.
  const Entry* prev = nullptr;
  for (const Entry& e : h.entries) {
    if (e.begin == e.end) continue;
    if (prev) {
      HOTLAP_CHECK(e.begin >= prev->end, origin, ": tensors '", clip(prev->name), "' [", prev->begin, ", ",
                   prev->end, ") and '", clip(e.name), "' [", e.begin, ", ", e.end, ") overlap");
    }
    prev = &e;
  }
  return h;
}

// with_bytes false: the record's bytes stay empty (read_header).
Record record_of(Entry&& e, bool with_bytes = true) {
  Record r;
  r.name = std::move(e.name);
  r.dtype = e.dtype;
  r.shape = std::move(e.shape);
  if (with_bytes) r.bytes.resize(e.end - e.begin);  // bounded by the file's size, checked in parse_entry
  return r;
}

std::string errno_text(int err) { return std::strerror(err); }

// pread until `size` bytes are in; throws on an error or a file that ended early.
void read_exact(int fd, uint8_t* out, size_t size, uint64_t offset, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_error(path, ": read failed: ", errno_text(errno));
    }
    HOTLAP_CHECK(n > 0, path, ": file ended early at byte ", offset, " (changed while being read?)");
    out += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  throw_error("safetensors: invalid DType value ", static_cast<int>(dtype));
}

const char* dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  throw_error("safetensors: invalid DType value ", static_cast<int>(dtype));
}

DType parse_dtype(const std::string& name) {
  auto dt = lookup_dtype(name);
  HOTLAP_CHECK(dt.has_value(), "safetensors: unknown dtype \"", name, "\" (hotlap reads ", known_dtypes(), ")");
  return *dt;
}

int64_t Record::numel() const {
  auto n = checked_numel(shape);
  HOTLAP_CHECK(n.has_value(), "safetensors: tensor '", name, "' has an invalid shape ", shape_text(shape));
  return *n;
}

const Record* File::find(const std::string& name) const {
  for (const Record& r : records)
    if (r.name == name) return &r;
  return nullptr;
}

const Record& File::at(const std::string& name) const {
  if (const Record* r = find(name)) return *r;
  std::string some;
  for (size_t i = 0; i < records.size() && i < 5; ++i) some += (i ? ", " : "") + records[i].name;
  if (records.size() > 5) some += ", ...";
  throw_error(origin.empty() ? std::string("safetensors") : origin, ": no tensor named '", name,
              "' (the file has ", records.size(), " tensors", records.empty() ? "" : ": ", some, ")");
}

File parse(const uint8_t* data, size_t size, const std::string& origin) {
  HOTLAP_CHECK(data != nullptr || size == 0, origin, ": null data");
  uint64_t n = header_length(data, size, origin);
  uint64_t data_start = 8 + n;
  Header h = parse_header(reinterpret_cast<const char*>(data + 8), n, size - data_start, origin);

  File file;
  file.origin = origin;
  file.metadata = std::move(h.metadata);
  file.records.reserve(h.entries.size());
  for (Entry& e : h.entries) {
    uint64_t begin = e.begin;
    Record r = record_of(std::move(e));
    if (!r.bytes.empty()) std::memcpy(r.bytes.data(), data + data_start + begin, r.bytes.size());
    file.records.push_back(std::move(r));
  }
  return file;
}

namespace {

// read_file and read_header: with_data false stops after the header (records without bytes).
File read_from_disk(const std::string& path, bool with_data) {
  // O_NONBLOCK: opening a FIFO (or a device) named by mistake returns at once, to be refused below,
  // instead of waiting forever for a writer. It changes nothing for a regular file's reads.
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (f.fd < 0) throw_error(path, ": cannot open: ", errno_text(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw_error(path, ": cannot stat: ", errno_text(errno));
  HOTLAP_CHECK(!S_ISDIR(st.st_mode), path, ": is a directory, expected a safetensors file");
  HOTLAP_CHECK(S_ISREG(st.st_mode), path, ": is not a regular file");
  uint64_t size = static_cast<uint64_t>(st.st_size);

  uint8_t prefix[8] = {};
  if (size >= 8) read_exact(f.fd, prefix, 8, 0, path);
  uint64_t n = header_length(prefix, size, path);
  std::string text(n, '\0');
  read_exact(f.fd, reinterpret_cast<uint8_t*>(text.data()), n, 8, path);
  uint64_t data_start = 8 + n;
  Header h = parse_header(text.data(), text.size(), size - data_start, path);

  File file;
  file.origin = path;
  file.metadata = std::move(h.metadata);
  file.records.reserve(h.entries.size());
  for (Entry& e : h.entries) {
    uint64_t begin = e.begin;
    Record r = record_of(std::move(e), with_data);
    if (with_data) read_exact(f.fd, r.bytes.data(), r.bytes.size(), data_start + begin, path);
    file.records.push_back(std::move(r));
  }
  return file;
}

}  // namespace

File read_file(const std::string& path) { return read_from_disk(path, true); }

File read_header(const std::string& path) { return read_from_disk(path, false); }

namespace {
// serialize(), with `who` (the destination or origin, then ": ") opening every error message.
std::vector<uint8_t> serialize_as(const File& file, const std::string& who) {
  // ordered_json keeps the keys in insertion order: "__metadata__" first, then the records in the
  // caller's order with dtype, shape, data_offsets in that order -- the same bytes the Python
  // library writes for the same records in the same order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) {
    auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : file.metadata) meta[k] = v;
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const Record& r : file.records) {
    HOTLAP_CHECK(r.name != "__metadata__", who, "a tensor cannot be named \"__metadata__\"");
    HOTLAP_CHECK(names.insert(r.name).second, who, "two tensors are named '", r.name, "'");
    uint64_t want = expected_bytes(who, r.name, r.dtype, r.shape);
    HOTLAP_CHECK(r.bytes.size() == want, who, "tensor '", r.name, "' holds ", r.bytes.size(),
                 " bytes but shape ", shape_text(r.shape), " of ", dtype_name(r.dtype), " needs ", want);
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(r.dtype);
    entry["shape"] = r.shape;
    entry["data_offsets"] = {offset, offset + want};
    header[r.name] = std::move(entry);
    offset += want;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw_error(who, "cannot write the header (tensor names and metadata must be UTF-8): ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // so the data starts 8-byte aligned

  std::vector<uint8_t> out(8 + text.size() + offset);
  uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* data = out.data() + 8 + text.size();
  for (const Record& r : file.records) {
    if (!r.bytes.empty()) std::memcpy(data, r.bytes.data(), r.bytes.size());
    data += r.bytes.size();
  }
  return out;
}

}  // namespace

std::vector<uint8_t> serialize(const File& file) {
  return serialize_as(file, (file.origin.empty() ? std::string("safetensors") : file.origin) + ": ");
}

void write_file(const std::string& path, const File& file) {
  std::vector<uint8_t> bytes = serialize_as(file, path + ": ");
  write_file_atomically(path, std::span<const uint8_t>(bytes));
}

std::vector<float> to_f32(const Record& record) {
  uint64_t want = expected_bytes("", record.name, record.dtype, record.shape);
  HOTLAP_CHECK(record.bytes.size() == want, "tensor '", record.name, "' holds ", record.bytes.size(),
               " bytes but shape ", shape_text(record.shape), " of ", dtype_name(record.dtype), " needs ", want);
  size_t n = static_cast<size_t>(want / dtype_size(record.dtype));
  std::vector<float> out(n);
  switch (record.dtype) {
    case DType::F32:
      if (n) std::memcpy(out.data(), record.bytes.data(), n * 4);
      return out;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, record.bytes.data() + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return out;
    case DType::F16: {
      std::vector<uint16_t> half(n);
      if (n) std::memcpy(half.data(), record.bytes.data(), n * 2);
      kernels::cpu::f16_to_f32(static_cast<int64_t>(n), half.data(), out.data());
      return out;
    }
    case DType::BF16: {
      std::vector<kernels::bfloat16> half(n);
      if (n) std::memcpy(half.data(), record.bytes.data(), n * 2);
      kernels::cpu::bf16_to_f32(static_cast<int64_t>(n), half.data(), out.data());
      return out;
    }
    default:
      throw_error("tensor '", record.name, "' has dtype ", dtype_name(record.dtype), ", expected a floating type");
  }
}

Record make_record(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const void* data) {
  uint64_t bytes = expected_bytes("safetensors: ", name, dtype, shape);
  HOTLAP_CHECK(data != nullptr || bytes == 0, "safetensors: make_record '", name, "': null data");
  Record r;
  r.name = name;
  r.dtype = dtype;
  r.shape = shape;
  r.bytes.resize(bytes);
  if (bytes) std::memcpy(r.bytes.data(), data, bytes);
  return r;
}

Record make_f32(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  return make_record(name, DType::F32, shape, data);
}

Record make_bf16(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  uint64_t bytes = expected_bytes("safetensors: ", name, DType::BF16, shape);
  size_t n = static_cast<size_t>(bytes / 2);
  HOTLAP_CHECK(data != nullptr || n == 0, "safetensors: make_bf16 '", name, "': null data");
  std::vector<kernels::bfloat16> half(n);
  if (n) kernels::cpu::f32_to_bf16(static_cast<int64_t>(n), data, half.data());
  Record r;
  r.name = name;
  r.dtype = DType::BF16;
  r.shape = shape;
  r.bytes.resize(bytes);
  if (bytes) std::memcpy(r.bytes.data(), half.data(), bytes);
  return r;
}

}  // namespace hotlap::safetensors
