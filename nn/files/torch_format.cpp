#include "nn/files/torch_format.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>
#include <sstream>

#include "nn/files/safetensors.h"

namespace hotlap {

namespace {

namespace st = safetensors;

// ---- layout ---------------------------------------------------------------------------------------
// Element (o, i, h, w) of an OIHW tensor lives at ((o*I + i)*H + h)*W + w; in OHWI it lives at
// ((o*H + h)*W + w)*I + i. The loops walk the destination in order, so writes are contiguous.

template <typename T>
void oihw_to_ohwi(const T* src, T* dst, int64_t O, int64_t I, int64_t H, int64_t W) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t i = 0; i < I; ++i) *dst++ = src[((o * I + i) * H + h) * W + w];
}

template <typename T>
void ohwi_to_oihw(const T* src, T* dst, int64_t O, int64_t H, int64_t W, int64_t I) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) *dst++ = src[((o * H + h) * W + w) * I + i];
}

// [O,I,H,W] <-> [O,H,W,I] shapes.
Shape torch_shape_to_hotlap(const Shape& s) { return s.size() == 4 ? Shape{s[0], s[2], s[3], s[1]} : s; }
Shape hotlap_shape_to_torch(const Shape& s) { return s.size() == 4 ? Shape{s[0], s[3], s[1], s[2]} : s; }

// "[64,64,1,1]": compact, as the report's lines read.
std::string dims(const std::vector<int64_t>& shape) { return shape_str(shape, ","); }

bool is_float(st::DType d) {
  return d == st::DType::F32 || d == st::DType::F16 || d == st::DType::BF16 || d == st::DType::F64;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool under_any(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (starts_with(name, p)) return true;
  return false;
}

// A file shape fits a model tensor when it is the model's shape in PyTorch layout. A 0-d scalar
// also fits a one-element 1-d tensor (hotlap has no 0-d tensors).
bool shape_fits(const std::vector<int64_t>& file_shape, const Shape& model_shape) {
  if (file_shape == hotlap_shape_to_torch(model_shape)) return true;
  return file_shape.empty() && model_shape == Shape{1};
}

std::string mismatch_line(const std::string& name, const std::vector<int64_t>& file_shape, const Shape& model) {
  std::string line = name + ": file " + dims(file_shape) + (file_shape.size() == 4 ? " (PyTorch layout)" : "") +
                     ", model " + dims(model);
  if (model.size() == 4) line += " (hotlap layout; " + dims(hotlap_shape_to_torch(model)) + " in PyTorch layout)";
  return line;
}

// Up to `limit` entries of a list, then "... and N more <what>".
void list_lines(std::ostringstream& os, const char* label, const std::vector<std::string>& items, size_t limit,
                const char* what) {
  const size_t shown = std::min(items.size(), limit);
  for (size_t i = 0; i < shown; ++i) os << "\n  " << label << items[i];
  if (items.size() > shown) os << "\n  ... and " << items.size() - shown << " more " << what;
}

// "a, b, c, ... and N more" on one line.
std::string inline_list(const std::vector<std::string>& items, size_t limit = 6) {
  std::string s;
  const size_t shown = std::min(items.size(), limit);
  for (size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > shown) s += ", ... and " + std::to_string(items.size() - shown) + " more";
  return s;
}

}  // namespace

// ---- layout helpers -------------------------------------------------------------------------------

Tensor torch_to_hotlap_layout(const Tensor& t) {
  if (t.ndim() != 4) return t.clone();
  HOTLAP_CHECK(t.device() == Device::cpu, "torch_to_hotlap_layout: ", t.describe(), " is not on the cpu");
  const Shape& s = t.shape();
  Tensor out = Tensor::empty(torch_shape_to_hotlap(s), t.dtype());
  if (t.dtype() == DType::f32)
    oihw_to_ohwi(t.f32(), out.f32(), s[0], s[1], s[2], s[3]);
  else
    oihw_to_ohwi(t.bf16(), out.bf16(), s[0], s[1], s[2], s[3]);
  return out;
}

Tensor hotlap_to_torch_layout(const Tensor& t) {
  if (t.ndim() != 4) return t.clone();
  HOTLAP_CHECK(t.device() == Device::cpu, "hotlap_to_torch_layout: ", t.describe(), " is not on the cpu");
  const Shape& s = t.shape();
  Tensor out = Tensor::empty(hotlap_shape_to_torch(s), t.dtype());
  if (t.dtype() == DType::f32)
    ohwi_to_oihw(t.f32(), out.f32(), s[0], s[1], s[2], s[3]);
  else
    ohwi_to_oihw(t.bf16(), out.bf16(), s[0], s[1], s[2], s[3]);
  return out;
}

// ---- report ---------------------------------------------------------------------------------------

std::string ImportReport::summary() const {
  std::ostringstream os;
  os << "loaded " << loaded.size() << " tensor" << (loaded.size() == 1 ? "" : "s");
  if (from_hotlap_checkpoint) os << " of a hotlap checkpoint's model (not its optimizer state)";
  if (!skipped.empty()) os << ", skipped " << skipped.size();
  if (!missing.empty()) os << ", " << missing.size() << " missing";
  if (!unexpected.empty()) os << ", " << unexpected.size() << " unexpected";
  if (!mismatched.empty()) os << ", " << mismatched.size() << " mismatched";
  if (!ignored.empty()) os << "; ignored " << ignored.size() << " integer entries (num_batches_tracked and the like)";
  if (!skipped.empty()) os << "\n  skipped (the model keeps its own values): " << inline_list(skipped);
  if (!missing.empty()) os << "\n  missing from the file (the model keeps its own values): " << inline_list(missing);
  if (!unexpected.empty()) os << "\n  in the file but not in the model (not loaded): " << inline_list(unexpected);
  list_lines(os, "mismatched (not loaded): ", mismatched, 6, "mismatched");
  return os.str();
}

// ---- import ---------------------------------------------------------------------------------------

ImportReport import_torch_state(Module& model, const std::string& path, const ImportOptions& options) {
  st::File file = st::read_file(path);  // every parse error names the path
  const NamedTensors state = model.state();
  ImportReport report;
  // A hotlap checkpoint (nn/files/checkpoint.h) holds the model as "model.<name>", already in hotlap's
  // layout, beside the optimizer's state: its model part imports like a PyTorch state, unconverted.
  report.from_hotlap_checkpoint = file.metadata.count("hotlap.format") > 0;
  if (report.from_hotlap_checkpoint) {
    std::vector<st::Record> model_records;
    for (st::Record& r : file.records) {
      if (starts_with(r.name, "model.")) {
        r.name.erase(0, std::string("model.").size());
        model_records.push_back(std::move(r));
      } else if (!starts_with(r.name, "optim.")) {
        report.unexpected.push_back(r.name + " " + dims(r.shape) + " " + st::dtype_name(r.dtype));
      }
    }
    file.records = std::move(model_records);
  }
  const bool hotlap_layout = report.from_hotlap_checkpoint;

  std::map<std::string, size_t> index;
  for (size_t i = 0; i < state.size(); ++i) {
    const auto& [name, t] = state[i];
    HOTLAP_CHECK(t.device() == Device::cpu, path, ": cannot import into ", name, ", which is on ",
                 device_name(t.device()), " (import before moving the model to the GPU)");
    index.emplace(name, i);
  }

  std::vector<std::pair<size_t, Tensor>> pending;  // model index, value in hotlap layout (f32)
  std::set<std::string> in_file;
  for (const st::Record& r : file.records) {
    if (under_any(r.name, options.skip_prefixes)) {
      report.skipped.push_back(r.name);
      continue;
    }
    auto it = index.find(r.name);
    if (!is_float(r.dtype)) {
      if (it == index.end()) {
        report.ignored.push_back(r.name);
      } else {
        in_file.insert(r.name);
        report.mismatched.push_back(r.name + ": file has dtype " + st::dtype_name(r.dtype) +
                                    ", the model expects floating-point values");
      }
      continue;
    }
    if (it == index.end()) {
      report.unexpected.push_back(r.name + " " + dims(r.shape) + " " + st::dtype_name(r.dtype));
      continue;
    }
    const Tensor& target = state[it->second].second;
    if (!(hotlap_layout ? r.shape == target.shape() : shape_fits(r.shape, target.shape()))) {
      if (under_any(r.name, options.optional_prefixes)) {
        report.skipped.push_back(r.name);
        continue;
      }
      in_file.insert(r.name);
      report.mismatched.push_back(hotlap_layout ? r.name + ": file " + dims(r.shape) + ", model " + dims(target.shape())
                                                : mismatch_line(r.name, r.shape, target.shape()));
      continue;
    }
    in_file.insert(r.name);
    // F32 is copied, F16 and BF16 widen exactly, F64 rounds to nearest.
    if (hotlap_layout) {
      pending.emplace_back(it->second, Tensor::from_vector(target.shape(), st::to_f32(r)));
    } else {
      Tensor value = Tensor::from_vector(hotlap_shape_to_torch(target.shape()), st::to_f32(r));
      pending.emplace_back(it->second, target.ndim() == 4 ? torch_to_hotlap_layout(value) : value);
    }
  }
  const auto skipped = [&](const std::string& name) {
    return std::find(report.skipped.begin(), report.skipped.end(), name) != report.skipped.end();
  };
  for (const auto& [name, t] : state)
    if (!in_file.count(name) && !under_any(name, options.skip_prefixes) && !skipped(name))
      report.missing.push_back(name + " " + dims(t.shape()));

  const size_t problems = report.missing.size() + report.unexpected.size() + report.mismatched.size();
  if (options.strict && problems > 0) {
    std::ostringstream os;
    os << path << ": the checkpoint does not fit the model (" << report.mismatched.size() << " mismatched, "
       << report.missing.size() << " missing, " << report.unexpected.size()
       << " unexpected); strict import, nothing was loaded:";
    list_lines(os, "mismatched: ", report.mismatched, 7, "mismatched");
    list_lines(os, "missing: ", report.missing, 7, "missing");
    list_lines(os, "unexpected: ", report.unexpected, 7, "unexpected");
    os << "\n  (another architecture or width? skip_prefixes keeps parts of the model, a non-strict import "
          "loads what fits)";
    throw Error(os.str());
  }

  // Everything is checked and converted: only now does the model change.
  std::sort(pending.begin(), pending.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [i, value] : pending) {
    Tensor target = state[i].second;
    target.copy_from(value);
    report.loaded.push_back(state[i].first);
  }
  return report;
}

// ---- export ---------------------------------------------------------------------------------------

void export_torch_state(const Module& model, const std::string& path,
                        const std::map<std::string, std::string>& metadata, int64_t num_batches_tracked) {
  HOTLAP_CHECK(num_batches_tracked >= 0, path, ": num_batches_tracked must be >= 0, got ", num_batches_tracked);
  const NamedTensors state = model.state();
  std::set<std::string> names;
  for (const auto& [name, t] : state) names.insert(name);

  // Each batch norm ("<prefix>running_mean") gets "<prefix>num_batches_tracked", written after its
  // running_var as in PyTorch's state_dict (after running_mean when there is no running_var).
  std::map<std::string, std::string> tracked_after;  // anchor name -> num_batches_tracked name
  for (const auto& name : names) {
    static const std::string kMean = "running_mean";
    if (name != kMean && !ends_with(name, "." + kMean)) continue;
    const std::string prefix = name.substr(0, name.size() - kMean.size());
    const std::string tracked = prefix + "num_batches_tracked";
    if (names.count(tracked)) continue;
    tracked_after[names.count(prefix + "running_var") ? prefix + "running_var" : name] = tracked;
  }

  HOTLAP_CHECK(!metadata.count("hotlap.format"), path,
               ": a PyTorch-format file cannot carry \"hotlap.format\" (it marks a hotlap checkpoint)");
  st::File file;
  file.origin = path;
  file.metadata = metadata;
  file.metadata.emplace("format", "pt");
  for (const auto& [name, t] : state) {
    Tensor torch = hotlap_to_torch_layout(t.to(Device::cpu).to(DType::f32));
    file.records.push_back(st::make_f32(name, torch.shape(), torch.f32()));
    auto it = tracked_after.find(name);
    if (it != tracked_after.end())
      file.records.push_back(st::make_record(it->second, st::DType::I64, {}, &num_batches_tracked));
  }
  st::write_file(path, file);  // atomic; errors name the path
}

// ---- provenance -----------------------------------------------------------------------------------

namespace {

const std::string kInput = "input.", kTorchInput = "hotlap.input.", kTorchExtra = "hotlap.extra.";
const std::string kTorchStep = "hotlap.step", kTorchEpoch = "hotlap.epoch", kTorchSource = "hotlap.source";

// A decimal integer entry, when present; anything else under the key is an Error naming the file.
bool read_integer(const std::map<std::string, std::string>& metadata, const std::string& key, const std::string& path,
                  int64_t& value) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return false;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  HOTLAP_CHECK(!s.empty() && ec == std::errc() && end == s.data() + s.size(), path, ": metadata \"", key, "\" is \"",
               s, "\", expected an integer");
  return true;
}

}  // namespace

std::map<std::string, std::string> torch_provenance_metadata(const CheckpointInfo& info, const std::string& source) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : info.extra) {
    if (starts_with(key, kInput))
      out["hotlap." + key] = value;  // "input.crop" -> "hotlap.input.crop"
    else
      out[kTorchExtra + key] = value;
  }
  out[kTorchStep] = std::to_string(info.step);
  out[kTorchEpoch] = std::to_string(info.epoch);
  if (!source.empty()) out[kTorchSource] = std::filesystem::path(source).filename().string();
  return out;
}

TorchProvenance read_torch_provenance(const std::map<std::string, std::string>& metadata, const std::string& path) {
  TorchProvenance p;
  p.has_step = read_integer(metadata, kTorchStep, path, p.step);
  p.has_epoch = read_integer(metadata, kTorchEpoch, path, p.epoch);
  auto source = metadata.find(kTorchSource);
  if (source != metadata.end()) p.source = source->second;
  for (const auto& [key, value] : metadata) {
    if (starts_with(key, kTorchInput))
      p.extra[key.substr(std::string("hotlap.").size())] = value;  // "hotlap.input.crop" -> "input.crop"
    else if (starts_with(key, kTorchExtra) && key.size() > kTorchExtra.size())
      p.extra[key.substr(kTorchExtra.size())] = value;
  }
  return p;
}

}  // namespace hotlap
