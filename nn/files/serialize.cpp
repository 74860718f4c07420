#include "nn/files/serialize.h"

#include <cstring>

namespace hotlap {

Tensor record_to_tensor(const safetensors::Record& record, const std::string& origin) {
  using safetensors::DType;
  if (record.dtype == DType::BF16) {
    Tensor t = Tensor::empty(record.shape.empty() ? Shape{1} : Shape(record.shape), hotlap::DType::bf16);
    std::memcpy(t.raw(), record.bytes.data(), record.bytes.size());
    return t;
  }
  std::vector<float> values = safetensors::to_f32(record);  // throws for integer dtypes
  return Tensor::from_vector(record.shape.empty() ? Shape{1} : Shape(record.shape), values);
}

std::map<std::string, Tensor> read_tensors(const std::string& path) {
  safetensors::File file = safetensors::read_file(path);
  std::map<std::string, Tensor> out;
  for (const auto& r : file.records) {
    using safetensors::DType;
    if (r.dtype != DType::F32 && r.dtype != DType::F16 && r.dtype != DType::BF16 && r.dtype != DType::F64)
      continue;
    out.emplace(r.name, record_to_tensor(r, path));
  }
  return out;
}

void write_tensors(const std::string& path, const NamedTensors& tensors,
                   const std::map<std::string, std::string>& metadata) {
  safetensors::File file;
  file.origin = path;
  file.metadata = metadata;
  for (const auto& [name, t] : tensors) {
    const Tensor host = t.to(Device::cpu);  // a GPU tensor is copied back first
    auto dtype = host.dtype() == DType::f32 ? safetensors::DType::F32 : safetensors::DType::BF16;
    file.records.push_back(safetensors::make_record(name, dtype, host.shape(), host.raw()));
  }
  safetensors::write_file(path, file);
}

}  // namespace hotlap
