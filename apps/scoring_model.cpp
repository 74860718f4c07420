// Loading the score regressor for `hotlap score` (see apps/scoring_model.h).
#include "apps/scoring_model.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <map>
#include <vector>

#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "nn/torch_format.h"

namespace hotlap {

namespace {

constexpr int64_t kMinInputSize = 32, kMaxInputSize = 4096;

// What the file says about itself: every tensor's shape, and the metadata.
struct Header {
  std::map<std::string, Shape> shapes;
  std::map<std::string, std::string> metadata;
};

// Every malformation (short file, bad header, truncated data) is an Error naming the file.
// The checkpoint loaders read the file again for the weights: simple, at the cost of a second read.
Header read_header(const std::string& path) {
  const safetensors::File file = safetensors::read_file(path);
  Header h;
  for (const auto& r : file.records) h.shapes[r.name] = r.shape;
  h.metadata = file.metadata;
  return h;
}

// A checkpoint's "extra.<key>" entry, or nullptr.
const std::string* extra_entry(const Header& h, const std::string& key) {
  auto it = h.metadata.find("extra." + key);
  return it == h.metadata.end() ? nullptr : &it->second;
}

int64_t input_size(const Header& h, const std::string& path, const std::string& key, int64_t fallback) {
  const std::string* s = extra_entry(h, key);
  if (!s) return fallback;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  HOTLAP_CHECK(!s->empty() && ec == std::errc() && end == s->data() + s->size() && v >= kMinInputSize &&
                   v <= kMaxInputSize,
               path, ": checkpoint metadata \"", key, "\" is \"", *s, "\", expected a whole number of pixels from ",
               kMinInputSize, " to ", kMaxInputSize);
  return v;
}

bool input_flag(const Header& h, const std::string& path, const std::string& key) {
  const std::string* s = extra_entry(h, key);
  if (!s) return false;
  HOTLAP_CHECK(*s == "0" || *s == "1", path, ": checkpoint metadata \"", key, "\" is \"", *s,
               "\", expected \"0\" or \"1\"");
  return *s == "1";
}

std::string resnet_name(const resnet::ResNetConfig& c) { return "ResNet-" + std::to_string(c.depth); }

}  // namespace

ScoringModel load_scoring_model(const std::string& path) {
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
  HOTLAP_CHECK(outputs == 1, path, ": a ", resnet_name(m.config), (outputs > 1 ? " classifier" : ""), " with ",
               outputs, " outputs, not a score regressor (train one with hotlap train, or convert with "
               "--new-head and fine-tune)");

  if (hotlap_checkpoint) {
    m.resize = input_size(header, path, "input.resize", m.resize);
    m.crop = input_size(header, path, "input.crop", m.crop);
    m.whole_image = input_flag(header, path, "input.whole_image");
    HOTLAP_CHECK(m.whole_image || m.crop <= m.resize, path, ": checkpoint metadata says input.crop ", m.crop,
                 " but input.resize ", m.resize, ": the centre crop cannot be larger than the resized image");
  }

  m.net = resnet::make_resnet(m.config);
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

  m.description = resnet_name(m.config) + " (width " + std::to_string(m.config.width) + "), " + m.source_kind;
  if (step >= 0) m.description += ", step " + std::to_string(step);
  if (m.whole_image) {
    m.description += ", input whole image at ";
  } else {
    m.description += ", input ";
    m.description += std::to_string(m.resize);
    m.description += "->";
  }
  m.description += std::to_string(m.crop);
  return m;
}

}  // namespace hotlap
