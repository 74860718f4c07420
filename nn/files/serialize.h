// Tensors to and from safetensors files: the bridge between nn::Tensor and the file format
// (nn/files/safetensors.h), used for checkpoints, imported weights and the golden files of the tests.
#pragma once

#include <map>
#include <string>

#include "nn/layers/module.h"
#include "nn/files/safetensors.h"

namespace hotlap {

// A record as a tensor: F32 and BF16 keep their dtype; F16 and F64 become f32. Integer records throw.
Tensor record_to_tensor(const safetensors::Record& record, const std::string& origin);

// Every floating-point tensor of a file, by name (integer ones, such as num_batches_tracked, are
// skipped). Errors name the file.
std::map<std::string, Tensor> read_tensors(const std::string& path);

// Writes tensors (f32 or bf16, as they are) and metadata atomically.
void write_tensors(const std::string& path, const NamedTensors& tensors,
                   const std::map<std::string, std::string>& metadata = {});

}  // namespace hotlap
