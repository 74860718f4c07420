// safetensors: the tensor file format of PyTorch checkpoints on the Hugging Face hub, and hotlap's own
// checkpoint and golden-file format.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON, then the data. The JSON is an
// object mapping each tensor name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
// (offsets into the data that follows the header), plus an optional "__metadata__" object of
// string -> string. The header is padded with spaces to a multiple of 8 bytes so the data is aligned.
// Tensors are row-major and little-endian; they must not overlap.
//
// Everything here works on raw bytes: a Record is a name, a dtype, a shape and the tensor's bytes.
// Turning records into Tensors (and NCHW <-> NHWC) is the caller's business. Reading is defensive:
// any malformed file is a hotlap::Error whose message starts with the file's path and says what is
// wrong; a lying header can neither make us read out of bounds nor allocate more than the file holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hotlap::safetensors {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType dtype);        // bytes per element: 8, 4, 2, 2, 8, 4, 2, 1, 1, 1
const char* dtype_name(DType dtype);   // the format's spelling: "F64", "F32", "F16", "BF16", ...
DType parse_dtype(const std::string& name);  // inverse of dtype_name; unknown names throw Error

struct Record {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // [] is a scalar (one element); a 0 anywhere makes it empty
  std::vector<uint8_t> bytes;  // numel() * dtype_size(dtype) bytes, little-endian, row-major

  int64_t numel() const;
};

struct File {
  std::vector<Record> records;  // written in this order; read back in the order of their offsets
  std::map<std::string, std::string> metadata;  // the "__metadata__" object
  std::string origin;  // where it came from (the path), used in every error message

  const Record* find(const std::string& name) const;  // nullptr if absent
  const Record& at(const std::string& name) const;    // throws Error naming origin and name
};

// Parses a whole safetensors file held in memory. `origin` names it in error messages.
File parse(const uint8_t* data, size_t size, const std::string& origin);

// Reads a file from disk (origin = path). Tensor bytes are read straight into their records.
File read_file(const std::string& path);
// The header alone: the records' names, dtypes and shapes (bytes left empty) and the metadata, checked
// as read_file checks them (the offsets inside the file, no overlaps), without reading the data: what
// a loader needs to decide what to build before it reads the weights once.
File read_header(const std::string& path);

// The file's bytes: header (records in the given order, contiguous offsets, "__metadata__" first
// when non-empty, padded with spaces to a multiple of 8) then the data. Throws Error on an invalid
// record (byte count not matching the shape, negative dimension, duplicate or reserved name).
std::vector<uint8_t> serialize(const File& file);

// serialize() written to `path` atomically (see nn/files/atomic_file.h).
void write_file(const std::string& path, const File& file);

// The tensor's values as floats, from F32, F16, BF16 or F64 (F64 is rounded). Other dtypes throw
// "tensor X has dtype I64, expected a floating type".
std::vector<float> to_f32(const Record& record);

// Builds records from float data of numel(shape) elements; make_bf16 rounds to nearest even.
Record make_f32(const std::string& name, const std::vector<int64_t>& shape, const float* data);
Record make_bf16(const std::string& name, const std::vector<int64_t>& shape, const float* data);
// Any dtype, copying numel(shape) * dtype_size(dtype) bytes from `data` (e.g. an int64 step count).
Record make_record(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                   const void* data);

}  // namespace hotlap::safetensors
