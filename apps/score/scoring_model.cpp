// Loading the score regressor for `hotlap score` (see apps/score/scoring_model.h).
#include "apps/score/scoring_model.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <vector>

#include "apps/data/image_folder.h"
#include "apps/data/loader.h"
#include "kernels/error.h"
#include "nn/files/checkpoint.h"
#include "nn/files/safetensors.h"
#include "nn/files/torch_format.h"

namespace hotlap {

namespace {

constexpr int64_t kMinInputSize = 32, kMaxInputSize = 4096;

// What the file says about itself: every tensor's shape, and the metadata.
struct Header {
  std::map<std::string, Shape> shapes;
  std::map<std::string, std::string> metadata;
};

// Every malformation (short file, bad header, data past the end) is an Error naming the file. Only
// the header is read here: the checkpoint loaders read the weights, once.
Header read_header(const std::string& path) {
  const safetensors::File file = safetensors::read_header(path);
  Header h;
  for (const auto& r : file.records) h.shapes[r.name] = r.shape;
  h.metadata = file.metadata;
  return h;
}

// Where the transform's entries are: a hotlap checkpoint's "extra.input.*" (named "input.*", as
// CheckpointInfo::extra holds them), a PyTorch file's "hotlap.input.*" (nn/files/torch_format.h).
struct Keys {
  bool hotlap_checkpoint;
  std::string key(const std::string& name) const { return hotlap_checkpoint ? name : "hotlap." + name; }
  std::string stored(const std::string& name) const { return hotlap_checkpoint ? "extra." + name : key(name); }
  std::string where() const { return hotlap_checkpoint ? "checkpoint metadata" : "metadata"; }
};

// The entry for `name` ("input.crop"), or nullptr.
const std::string* input_entry(const Header& h, const Keys& k, const std::string& name) {
  auto it = h.metadata.find(k.stored(name));
  return it == h.metadata.end() ? nullptr : &it->second;
}

// A size in pixels, or 0 when absent.
int64_t input_size(const Header& h, const Keys& k, const std::string& path, const std::string& name) {
  const std::string* s = input_entry(h, k, name);
  if (!s) return 0;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  HOTLAP_CHECK(!s->empty() && ec == std::errc() && end == s->data() + s->size() && v >= kMinInputSize &&
                   v <= kMaxInputSize,
               path, ": ", k.where(), " \"", k.key(name), "\" is \"", *s, "\", expected a whole number of pixels from ",
               kMinInputSize, " to ", kMaxInputSize);
  return v;
}

bool input_flag(const Header& h, const Keys& k, const std::string& path, const std::string& name) {
  const std::string* s = input_entry(h, k, name);
  if (!s) return false;
  HOTLAP_CHECK(*s == "0" || *s == "1", path, ": ", k.where(), " \"", k.key(name), "\" is \"", *s,
               "\", expected \"0\" or \"1\"");
  return *s == "1";
}

struct Transform {
  bool present = false;
  int64_t resize = 0, crop = 0;
  bool whole_image = false;
};

// The file's transform, checked; absent (present = false) when the file has no input entries at all.
Transform file_transform(const Header& h, const Keys& k, const std::string& path) {
  Transform t;
  t.resize = input_size(h, k, path, "input.resize");
  t.crop = input_size(h, k, path, "input.crop");
  t.whole_image = input_flag(h, k, path, "input.whole_image");
  if (t.resize == 0 && t.crop == 0) {
    HOTLAP_CHECK(!t.whole_image, path, ": ", k.where(), " has ", k.key("input.whole_image"), " = 1 but no ",
                 k.key("input.crop"), ": the size of the network input is missing");
    return t;
  }
  HOTLAP_CHECK(t.crop != 0, path, ": ", k.where(), " has ", k.key("input.resize"), " but no ", k.key("input.crop"),
               ": the size of the network input is missing");
  if (t.whole_image) {
    if (t.resize == 0) t.resize = t.crop;  // unused: the whole image goes to crop x crop
  } else {
    HOTLAP_CHECK(t.resize != 0, path, ": ", k.where(), " has ", k.key("input.crop"), " but no ",
                 k.key("input.resize"), ": the size the shorter side is resized to before the centre crop is missing");
    HOTLAP_CHECK(t.crop <= t.resize, path, ": ", k.where(), " says ", k.key("input.crop"), " ", t.crop, " but ",
                 k.key("input.resize"), " ", t.resize, ": the centre crop cannot be larger than the resized image");
  }
  t.present = true;
  return t;
}

// The caller's transform: both or neither, in range, crop <= resize.
void check_override(const InputOverride& o) {
  if (o.resize == 0 && o.crop == 0) return;
  HOTLAP_CHECK(o.resize != 0 && o.crop != 0, "--resize and --size go together: give both (only ",
               o.resize != 0 ? "--resize" : "--size", " was given)");
  for (const auto& [option, v] : {std::pair<const char*, int64_t>{"--resize", o.resize}, {"--size", o.crop}})
    HOTLAP_CHECK(v >= kMinInputSize && v <= kMaxInputSize, option, " ", v, " is out of range: a whole number of pixels from ",
                 kMinInputSize, " to ", kMaxInputSize);
  HOTLAP_CHECK(o.crop <= o.resize, "--size ", o.crop, " is larger than --resize ", o.resize,
               ": the centre crop cannot be larger than the resized image");
}

// A PyTorch file's "hotlap.step" (nn/files/torch_format.h), or -1: it only annotates the description, so a
// malformed one is passed over rather than refused.
int64_t torch_step(const Header& h) {
  auto it = h.metadata.find("hotlap.step");
  if (it == h.metadata.end()) return -1;
  const std::string& s = it->second;
  int64_t v = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size() && v >= 0 ? v : -1;
}

std::string resnet_name(const resnet::ResNetConfig& c) { return "ResNet-" + std::to_string(c.depth); }

// A recorded metric in [0, 1] (or [-1, 1] for a correlation): NaN when absent or malformed, since it
// only annotates what is printed.
double recorded(const Header& h, bool hotlap_checkpoint, const std::string& name, double lo) {
  const auto it = h.metadata.find(hotlap_checkpoint ? "extra." + name : "hotlap.extra." + name);
  if (it == h.metadata.end()) return NAN;
  char* end = nullptr;
  const double r = std::strtod(it->second.c_str(), &end);
  return end != it->second.c_str() && *end == '\0' && r >= lo && r <= 1 ? r : NAN;
}

enum class Kind { regressor, classifier };


ScoringModel load_model(const std::string& path, const InputOverride& input, Kind kind) {
  check_override(input);
  const Header header = read_header(path);
  ScoringModel m;
  const bool hotlap_checkpoint = header.metadata.count("hotlap.format") > 0;
  m.source_kind = hotlap_checkpoint ? "hotlap checkpoint" : "PyTorch state_dict";

  std::map<std::string, Shape> shapes;
  if (hotlap_checkpoint) {
    const std::string prefix = "model.";
    for (const auto& [name, shape] : header.shapes)
      if (name.rfind(prefix, 0) == 0) shapes[name.substr(prefix.size())] = shape;
  } else {
    shapes = header.shapes;
  }
  m.config = resnet::config_from_state(shapes, path);  // "PATH: not a ResNet state ..."
  const int64_t outputs = m.config.num_outputs;
  if (kind == Kind::regressor)
    HOTLAP_CHECK(outputs == 1, path, ": a ", resnet_name(m.config), (outputs > 1 ? " classifier" : ""), " with ",
                 outputs, " outputs, not a score regressor (train one with hotlap train, or convert with "
                 "--new-head and fine-tune; hotlap predict runs a classifier)");
  else
    HOTLAP_CHECK(outputs >= 2, path, ": a ", resnet_name(m.config), " with one output, a score regressor, not a "
                 "classifier (hotlap score runs it; train a classifier with hotlap train --task classify)");
  if (kind == Kind::classifier) {
    const auto it = header.metadata.find(hotlap_checkpoint ? "extra.classes" : "hotlap.extra.classes");
    if (it != header.metadata.end()) {
      m.classes = classes_from_json(it->second, path);
      HOTLAP_CHECK(static_cast<int64_t>(m.classes.size()) == outputs, path, ": its metadata names ",
                   m.classes.size(), " classes, but the network has ", outputs, " outputs");
      m.class_names_known = true;
    } else {
      for (int64_t k = 0; k < outputs; ++k) m.classes.push_back(std::to_string(k));
    }
  }

  const Transform file = file_transform(header, Keys{hotlap_checkpoint}, path);
  if (input.resize != 0) {
    m.resize = input.resize;
    m.crop = input.crop;
    m.whole_image = false;
    m.input_overridden = true;
  } else {
    HOTLAP_CHECK(file.present, path, " does not say how photos must be prepared for it (no ",
                 hotlap_checkpoint ? "input.resize and input.crop in its checkpoint metadata"
                                   : "hotlap.input.resize and hotlap.input.crop in its metadata",
                 "): give --resize and --size (e.g. --resize 256 --size 224 for a torchvision-style model)");
    m.resize = file.resize;
    m.crop = file.crop;
    m.whole_image = file.whole_image;
  }

  {
    const SkipParameterInit loaded_next;  // every parameter comes from the file just below
    m.net = resnet::make_resnet(m.config);
  }
  int64_t step = -1;
  try {
    if (hotlap_checkpoint) {
      step = load_checkpoint(path, *m.net, nullptr).step;
    } else {
      import_torch_state(*m.net, path);  // strict: every tensor present and of the right shape
    }
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.find(path) == std::string::npos) throw_error(path, ": ", message);
    throw;
  }
  m.net->eval();
  m.net->fold_batch_norm();  // inference only: each convolution's output written once (resnet.h)

  if (!hotlap_checkpoint) step = torch_step(header);
  m.pearson = recorded(header, hotlap_checkpoint, "pearson", -1);
  m.top1 = recorded(header, hotlap_checkpoint, "top1", 0);
  m.description = resnet_name(m.config) + " (width " + std::to_string(m.config.width) + ")" +
                  (kind == Kind::classifier ? " classifier of " + std::to_string(outputs) + " classes" : "") + ", " +
                  m.source_kind;
  if (step >= 0) m.description += ", step " + std::to_string(step);
  m.description += ", input " + input_transform_text(std::to_string(m.resize), std::to_string(m.crop), m.whole_image);
  if (!m.input_overridden) {
    m.description += " (from the file)";
  } else if (file.present) {
    m.description += " (from --resize/--size; the file says " +
                     input_transform_text(std::to_string(file.resize), std::to_string(file.crop), file.whole_image) + ")";
  } else {
    m.description += " (from --resize/--size)";
  }
  return m;
}

}  // namespace

ScoringModel load_scoring_model(const std::string& path, const InputOverride& input) {
  return load_model(path, input, Kind::regressor);
}

ScoringModel load_classifier(const std::string& path, const InputOverride& input) {
  return load_model(path, input, Kind::classifier);
}

Image model_view(const ScoringModel& model, const Image& photo) {
  AugmentConfig view;
  view.resize = model.resize;
  view.crop = model.crop;
  view.train = false;
  view.whole_image = model.whole_image;
  return evaluation_view(photo, view);
}

Tensor network_input(const ScoringModel& model, const Image& view) {
  Tensor x = Tensor::empty({1, view.height, view.width, 3});
  to_normalized_nhwc(view, kImageNetMean, kImageNetStd, x.f32());
  return x.to(model.net->parameters().front().device());
}

std::string input_transform_text(const std::string& resize, const std::string& crop, bool whole_image) {
  return whole_image ? "whole image at " + crop : resize + "->" + crop;
}

}  // namespace hotlap
