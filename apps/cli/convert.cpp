#include "apps/cli/convert.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include "apps/score/scoring_model.h"
#include "nn/files/checkpoint.h"
#include "nn/runtime/random.h"
#include "nn/files/safetensors.h"
#include "nn/files/torch_format.h"
#include "resnet/resnet.h"

namespace hotlap {

namespace {

std::string arch_name(const resnet::ResNetConfig& c) {
  std::string name = "resnet" + std::to_string(c.depth);
  if (c.width != 64) name += "-w" + std::to_string(c.width);
  return name;
}

// "input 256->224", "input whole image at 350", or "no input transform recorded".
std::string transform_text(const std::map<std::string, std::string>& extra) {
  auto crop = extra.find("input.crop"), resize = extra.find("input.resize"), whole = extra.find("input.whole_image");
  if (crop == extra.end()) return "no input transform recorded";
  return "input " + input_transform_text(resize == extra.end() ? std::string("?") : resize->second, crop->second,
                                         whole != extra.end() && whole->second == "1");
}

int export_to_torch(const ConvertOptions& o, const safetensors::File& file) {
  std::map<std::string, Shape> shapes;
  for (const auto& r : file.records)
    if (r.name.rfind("model.", 0) == 0) shapes[r.name.substr(6)] = Shape(r.shape);
  resnet::ResNetConfig config = resnet::config_from_state(shapes, o.input);
  auto model = resnet::make_resnet(config);
  CheckpointInfo info = load_checkpoint(o.input, *model, nullptr);
  // The evaluation transform, step, epoch and metrics go along as "hotlap.*" metadata
  // (nn/files/torch_format.h), so that hotlap score and an import back read them.
  std::map<std::string, std::string> metadata = torch_provenance_metadata(info, o.input);
  metadata["generator"] = "hotlap convert";
  metadata["arch"] = arch_name(config);
  export_torch_state(*model, o.output, metadata, info.step);
  std::printf("exported %s (%s, %zu tensors, step %lld, %s) to %s in PyTorch format\n", o.input.c_str(),
              arch_name(config).c_str(), model->state().size(), static_cast<long long>(info.step),
              transform_text(info.extra).c_str(), o.output.c_str());
  if (!info.extra.count("input.crop") && config.num_outputs == 1)
    std::printf("note: %s does not say how photos are prepared for it (no input.resize/input.crop), so neither "
                "does %s: hotlap score needs --resize and --size with it\n",
                o.input.c_str(), o.output.c_str());
  return 0;
}

int import_from_torch(const ConvertOptions& o, const safetensors::File& file) {
  std::map<std::string, Shape> shapes;
  for (const auto& r : file.records) shapes[r.name] = Shape(r.shape);
  resnet::ResNetConfig config = resnet::config_from_state(shapes, o.input);
  if (o.new_head) config.num_outputs = o.outputs;
  manual_seed(o.seed);
  auto model = resnet::make_resnet(config);
  ImportOptions options;
  options.strict = o.strict;
  if (o.new_head) options.skip_prefixes = {"fc."};
  ImportReport report = import_torch_state(*model, o.input, options);
  std::printf("%s\n", report.summary().c_str());
  // What hotlap convert exported along with the weights comes back (nn/files/torch_format.h): the input
  // transform, step, epoch and the other extra entries. A new head makes the old head's metrics
  // meaningless, so they are left behind; the transform and the step stay.
  const TorchProvenance provenance = read_torch_provenance(file.metadata, o.input);
  CheckpointInfo info;
  info.arch = arch_name(config);
  info.step = provenance.step;
  info.epoch = provenance.epoch;
  for (const auto& [key, value] : provenance.extra)
    if (!o.new_head || key.rfind("input.", 0) == 0) info.extra[key] = value;
  if (!provenance.source.empty()) info.extra["exported_from"] = provenance.source;
  info.extra["source"] = o.input;
  if (o.new_head) info.extra["head"] = "new, " + std::to_string(o.outputs) + " outputs";
  save_checkpoint(o.output, *model, nullptr, info);
  std::printf("wrote %s (%s, %lld outputs, step %lld, %s)\n", o.output.c_str(), info.arch.c_str(),
              static_cast<long long>(config.num_outputs), static_cast<long long>(info.step),
              transform_text(info.extra).c_str());
  return 0;
}

}  // namespace

int run_convert(const ConvertOptions& o) {
  {  // compared after resolving links and relative parts: ./a and a are one file
    std::error_code ec1, ec2;
    const auto in = std::filesystem::weakly_canonical(o.input, ec1), out = std::filesystem::weakly_canonical(o.output, ec2);
    HOTLAP_CHECK(o.input != o.output && (ec1 || ec2 || in != out), "convert: the output ", o.output,
                 " would overwrite the input ", o.input);
  }
  HOTLAP_CHECK(o.outputs >= 1, "convert: --outputs must be at least 1");
  const safetensors::File file = safetensors::read_file(o.input);
  if (file.metadata.count("hotlap.format")) {
    HOTLAP_CHECK(!o.new_head, "convert: --new-head applies when importing, and ", o.input,
                 " is already a hotlap checkpoint");
    return export_to_torch(o, file);
  }
  return import_from_torch(o, file);
}

}  // namespace hotlap
