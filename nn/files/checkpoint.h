// hotlap's own training checkpoints: everything needed to stop a run and resume it exactly.
//
// One safetensors file (hotlap layout: NHWC/OHWI, tensors in the dtype they have in memory):
//   tensors   "model.<name>"   each entry of model.state() (parameters and batch-norm buffers)
//             "optim.<name>"   each entry of optimizer->state() (see nn/layers/optim.h for the names)
//   metadata  "hotlap.format"  "checkpoint-v1"
//             "step", "epoch"  decimal integers
//             "arch"           free text, e.g. "resnet50"
//             "optimizer"      the optimizer's kind() ("sgd", "adamw"), or "none"
//             "optimizer.lr", "optimizer.steps"   its learning rate (%.17g, exact) and step count
//             "rng_state"      the four 64-bit words of an Rng, 16 hex digits each, comma-separated
//             "extra.<key>"    the caller's own entries
// Files are written atomically (nn/files/atomic_file.h): a failed save leaves the previous checkpoint as
// it was. Loading checks everything -- format tag, every tensor's name, dtype and shape, the
// optimizer's kind and state -- before it changes anything, and every error names the file.
// PyTorch-format files (torchvision, timm) are a different thing: see nn/files/torch_format.h.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "nn/layers/module.h"
#include "nn/layers/optim.h"

namespace hotlap {

struct CheckpointInfo {
  int64_t step = 0, epoch = 0;
  std::string arch;       // recorded as given; load returns it (and quotes it when the model differs)
  std::string optimizer;  // kind() of the saved optimizer; "" when saved without one. On save it
                          // may be left empty; if set, it must agree with the optimizer.
  std::array<uint64_t, 4> rng_state{};  // e.g. global_rng().state, to resume data order and noise
  std::map<std::string, std::string> extra;
};

// Writes model (and optimizer, when not null) state and info to `path`, atomically.
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const CheckpointInfo& info);

// Restores model (and optimizer, when not null: its state, learning rate and step count) from a file
// written by save_checkpoint and returns its info. All or nothing: on any Error the model and the
// optimizer are unchanged. Loading into an optimizer needs a checkpoint saved with one of the same
// kind; pass nullptr to restore only the model.
CheckpointInfo load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer);

}  // namespace hotlap
