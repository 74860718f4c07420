// PyTorch-format checkpoints: the safetensors files that torchvision and timm ResNets come as.
//
// Such a file is a state_dict: tensors named as the model's parameters and buffers (conv1.weight,
// layer1.0.bn1.running_mean, fc.bias, ...), in PyTorch's layout (convolution weights OIHW), as F32,
// F16, BF16 or F64, plus an I64 scalar "<bn>.num_batches_tracked" per batch norm, which hotlap has
// no use for. Import converts at the edge (design rule 1): every 4-D tensor goes from [O,I,H,W] to
// hotlap's [O,H,W,I], every float dtype to f32 exactly (F64 is rounded to nearest). Export does the
// reverse and writes what torch.nn.Module.load_state_dict(strict=True) accepts.
//
// Import is all or nothing: every tensor is checked and converted before the first one is copied
// into the model, so a failed import leaves the model as it was.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/files/checkpoint.h"
#include "nn/layers/module.h"

namespace hotlap {

// [O,I,H,W] -> [O,H,W,I] for a 4-D tensor; any other tensor is returned as a copy. Keeps the dtype.
Tensor torch_to_hotlap_layout(const Tensor& t);
// [O,H,W,I] -> [O,I,H,W] for a 4-D tensor; any other tensor is returned as a copy. Keeps the dtype.
Tensor hotlap_to_torch_layout(const Tensor& t);

struct ImportOptions {
  // Strict: any missing, unexpected or mis-shaped tensor is an Error and nothing is loaded.
  // Otherwise what fits is loaded and the rest is only reported.
  bool strict = true;
  // Names starting with one of these (plain string prefixes: "fc." covers fc.weight and fc.bias):
  // the model's tensors keep their values, the file's are reported as skipped. This is how a new
  // head replaces the ImageNet classifier.
  std::vector<std::string> skip_prefixes;
  // Names starting with one of these are loaded when their shape fits the model, and skipped like
  // skip_prefixes when it does not: a head that a pretrained classifier replaces and a regressor keeps.
  std::vector<std::string> optional_prefixes;
};

struct ImportReport {
  std::vector<std::string> loaded;      // model tensor names given the file's values
  std::vector<std::string> missing;     // in the model, not in the file ("name [shape]")
  std::vector<std::string> unexpected;  // in the file, not in the model ("name [shape] DTYPE")
  std::vector<std::string> mismatched;  // "name: file [..] (PyTorch layout), model [..] ..." or a
                                        // floating model tensor stored with an integer dtype
  std::vector<std::string> skipped;     // file tensors under options.skip_prefixes
  std::vector<std::string> ignored;     // num_batches_tracked and other integer bookkeeping
  bool from_hotlap_checkpoint = false;  // the file was a hotlap checkpoint: its "model." part was read
  std::string summary() const;          // a few lines for a person
};

// Loads a PyTorch-layout safetensors file into `model` by name (or the model part of a hotlap
// checkpoint, which is in hotlap's layout already). Errors name the file; strict
// errors list every problem (the first 20, then "... and N more"). Model tensors must be on the cpu.
ImportReport import_torch_state(Module& model, const std::string& path, const ImportOptions& options = {});

// Writes the model's state as F32 in PyTorch layout, with an I64 scalar "<bn>.num_batches_tracked"
// (= num_batches_tracked) for every batch norm (each state entry ending in ".running_mean" marks
// one), atomically. metadata gains "format": "pt" (unless it sets "format" itself), which
// transformers and the hub's tooling look for.
void export_torch_state(const Module& model, const std::string& path,
                        const std::map<std::string, std::string>& metadata = {},
                        int64_t num_batches_tracked = 0);

// ---- hotlap's entries in a PyTorch-format file's metadata ---------------------------------------
// A PyTorch file has no place for what a hotlap checkpoint records besides its weights, except the
// safetensors metadata (string to string; PyTorch ignores it). hotlap convert keeps there what a
// model needs to be used the same way after a round trip, under keys that start with "hotlap.":
//   "hotlap.input.<key>"  each of the checkpoint's extra "input.<key>" entries, as it is: how photos
//                         are prepared for the model ("hotlap.input.resize", "hotlap.input.crop",
//                         "hotlap.input.whole_image"; apps/score/scoring_model.h reads them)
//   "hotlap.step", "hotlap.epoch"   the checkpoint's step and epoch, decimal integers
//   "hotlap.source"       the name of the checkpoint file it was exported from (no folder)
//   "hotlap.extra.<key>"  every other extra entry (pearson, mae, rmse, protocol, ...), as it is
// "hotlap.format" is never among them: that key marks a hotlap checkpoint (nn/files/checkpoint.h).
// A file from elsewhere has none of these, and reads back as an empty provenance.

// The metadata entries above for a checkpoint's info, exported from the file named `source`.
std::map<std::string, std::string> torch_provenance_metadata(const CheckpointInfo& info, const std::string& source);

struct TorchProvenance {
  bool has_step = false, has_epoch = false;
  int64_t step = 0, epoch = 0;
  std::string source;                        // "hotlap.source", or ""
  std::map<std::string, std::string> extra;  // "input.<key>" and the "hotlap.extra.<key>" entries, as
                                             // CheckpointInfo::extra holds them
};

// Reads the entries above back. A malformed "hotlap.step" or "hotlap.epoch" is an Error naming
// `path` and the key; other "hotlap." keys (and every other key) are left alone.
TorchProvenance read_torch_provenance(const std::map<std::string, std::string>& metadata, const std::string& path);

}  // namespace hotlap
