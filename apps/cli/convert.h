// hotlap convert: between PyTorch-format ResNet checkpoints (torchvision, timm: NCHW/OIHW) and
// hotlap's own checkpoints (NHWC/OHWI, with training state). The direction comes from the input:
// a hotlap checkpoint is exported to PyTorch format, anything else is imported into a hotlap one.
// The architecture (depth, width, outputs) is read from the tensors' names and shapes.
// What the weights alone do not say goes along as metadata (nn/files/torch_format.h's "hotlap.*" keys):
// export writes the checkpoint's input transform (extra input.resize, input.crop, input.whole_image),
// step, epoch, file name and other extra entries (the metrics); import reads them back, so a model
// exported and imported again prepares photos, and scores them, exactly as before. A file from
// elsewhere has none of them, and hotlap score then needs --resize and --size.
#pragma once

#include <cstdint>
#include <string>

namespace hotlap {

struct ConvertOptions {
  std::string input, output;
  bool new_head = false;    // import: replace fc with a fresh head of `outputs` units (1: regression)
  int64_t outputs = 1;
  bool strict = true;       // import: refuse any missing, unexpected or mis-shaped tensor
  uint64_t seed = 0;        // initialises the new head
};

// Prints what it did (the import report, or what was exported) and returns the exit status.
int run_convert(const ConvertOptions& options);

}  // namespace hotlap
