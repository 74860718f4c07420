#include "nn/files/checkpoint.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>
#include <sstream>

#include "nn/files/safetensors.h"
#include "nn/files/serialize.h"

namespace hotlap {

namespace {

namespace st = safetensors;

constexpr const char* kFormatKey = "hotlap.format";
constexpr const char* kFormat = "checkpoint-v1";
const std::string kModel = "model.", kOptim = "optim.", kExtra = "extra.";

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// "[64,64,1,1]": compact, as the report's lines read.
std::string dims(const std::vector<int64_t>& shape) { return shape_str(shape, ","); }

st::Record record_of(const std::string& name, const Tensor& t, const std::string& path) {
  HOTLAP_CHECK(t.defined(), path, ": cannot save ", name, ": undefined tensor");
  const Tensor host = t.to(Device::cpu);  // a GPU tensor is copied back first
  const auto dtype = host.dtype() == DType::f32 ? st::DType::F32 : st::DType::BF16;
  return st::make_record(name, dtype, host.shape(), host.raw());
}

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string format_rng(const std::array<uint64_t, 4>& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(s[i]));
    if (i) out += ',';
    out += buf;
  }
  return out;
}

// Metadata readers: a missing or malformed entry is an Error naming the file and the key.
struct Meta {
  const st::File& file;
  const std::string& get(const std::string& key) const {
    auto it = file.metadata.find(key);
    HOTLAP_CHECK(it != file.metadata.end(), file.origin, ": checkpoint metadata has no \"", key, "\"");
    return it->second;
  }
  int64_t integer(const std::string& key) const {
    const std::string& s = get(key);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    HOTLAP_CHECK(ec == std::errc() && end == s.data() + s.size() && !s.empty(), file.origin, ": checkpoint metadata \"",
                 key, "\" is \"", s, "\", expected an integer");
    return v;
  }
  double real(const std::string& key) const {
    const std::string& s = get(key);
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    HOTLAP_CHECK(ec == std::errc() && end == s.data() + s.size() && !s.empty(), file.origin, ": checkpoint metadata \"",
                 key, "\" is \"", s, "\", expected a number");
    return v;
  }
  std::array<uint64_t, 4> rng(const std::string& key) const {
    const std::string& s = get(key);
    std::array<uint64_t, 4> out{};
    const char* p = s.data();
    const char* end = s.data() + s.size();
    bool ok = true;
    for (size_t i = 0; i < 4 && ok; ++i) {
      if (i > 0) ok = p < end && *p++ == ',';
      const char* start = p;
      if (ok) {
        auto r = std::from_chars(p, end, out[i], 16);
        ok = r.ec == std::errc() && r.ptr - start == 16;
        p = r.ptr;
      }
    }
    HOTLAP_CHECK(ok && p == end, file.origin, ": checkpoint metadata \"", key, "\" is \"", s,
                 "\", expected four 16-digit hex words separated by commas");
    return out;
  }
};

// Appends up to `limit` lines, then "... and N more".
void list_lines(std::ostringstream& os, const std::vector<std::string>& items, size_t limit) {
  const size_t shown = std::min(items.size(), limit);
  for (size_t i = 0; i < shown; ++i) os << "\n  " << items[i];
  if (items.size() > shown) os << "\n  ... and " << items.size() - shown << " more";
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const CheckpointInfo& info) {
  st::File file;
  file.origin = path;
  const std::string kind = optimizer ? optimizer->kind() : "none";
  HOTLAP_CHECK(info.optimizer.empty() || info.optimizer == kind, path, ": cannot save checkpoint: info says optimizer \"",
               info.optimizer, "\" but the optimizer given is \"", kind, "\"");
  file.metadata[kFormatKey] = kFormat;
  file.metadata["step"] = std::to_string(info.step);
  file.metadata["epoch"] = std::to_string(info.epoch);
  file.metadata["arch"] = info.arch;
  file.metadata["optimizer"] = kind;
  file.metadata["rng_state"] = format_rng(info.rng_state);
  if (optimizer) {
    file.metadata["optimizer.lr"] = format_double(optimizer->lr());
    file.metadata["optimizer.steps"] = std::to_string(optimizer->steps_taken());
  }
  for (const auto& [key, value] : info.extra) file.metadata[kExtra + key] = value;

  for (const auto& [name, t] : model.state()) file.records.push_back(record_of(kModel + name, t, path));
  if (optimizer) {
    NamedTensors state;
    try {
      state = optimizer->state();
    } catch (const Error& e) {
      throw_error(path, ": cannot save checkpoint: ", e.what());
    }
    for (const auto& [name, t] : state) file.records.push_back(record_of(kOptim + name, t, path));
  }
  st::write_file(path, file);  // atomic; errors name the path
}

CheckpointInfo load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer) {
  st::File file;
  try {
    file = st::read_file(path);
  } catch (const Error& e) {
    throw_error("cannot load checkpoint ", e.what());  // the message starts with the path
  }

  // 1. Is it a hotlap checkpoint at all?
  auto tag = file.metadata.find(kFormatKey);
  if (tag == file.metadata.end()) {
    bool hotlap_names = false;
    for (const auto& r : file.records) hotlap_names |= starts_with(r.name, kModel);
    auto fmt = file.metadata.find("format");
    std::string hint = hotlap_names ? "" : " It looks like a PyTorch state dict";
    if (!hotlap_names && fmt != file.metadata.end()) hint += " (metadata format=\"" + fmt->second + "\")";
    if (!hotlap_names) hint += ": import weights like these with import_torch_state (hotlap train --init FILE).";
    throw_error(path, ": not a hotlap checkpoint (no \"", kFormatKey, "\" in its metadata).", hint);
  }
  HOTLAP_CHECK(tag->second == kFormat, path, ": checkpoint format \"", tag->second, "\" is not supported (this build reads \"",
               kFormat, "\")");

  Meta meta{file};
  CheckpointInfo info;
  info.step = meta.integer("step");
  info.epoch = meta.integer("epoch");
  info.arch = meta.get("arch");
  const std::string kind = meta.get("optimizer");
  info.optimizer = kind == "none" ? "" : kind;
  info.rng_state = meta.rng("rng_state");
  for (const auto& [key, value] : file.metadata)
    if (starts_with(key, kExtra)) info.extra[key.substr(kExtra.size())] = value;

  // 2. The model: every state entry present with its dtype and shape, nothing left over.
  std::map<std::string, const st::Record*> model_records;
  std::map<std::string, Tensor> optim_values;
  std::vector<std::string> problems, others;
  for (const auto& r : file.records) {
    if (starts_with(r.name, kModel)) {
      model_records.emplace(r.name.substr(kModel.size()), &r);
    } else if (starts_with(r.name, kOptim)) {
      if (!optimizer) continue;
      if (r.dtype != st::DType::F32 && r.dtype != st::DType::BF16)
        throw_error(path, ": optimizer state ", r.name, " has dtype ", st::dtype_name(r.dtype), ", expected F32 or BF16");
      optim_values.emplace(r.name.substr(kOptim.size()), record_to_tensor(r, path));
    } else {
      others.push_back(r.name);
    }
  }
  const NamedTensors state = model.state();
  std::vector<std::pair<Tensor, Tensor>> copies;  // model tensor, value
  std::set<std::string> used;
  for (const auto& [name, t] : state) {
    HOTLAP_CHECK(t.device() == Device::cpu, path, ": cannot load into ", name, ", which is on ", device_name(t.device()));
    auto it = model_records.find(name);
    if (it == model_records.end()) {
      problems.push_back("missing: " + kModel + name + " " + dims(t.shape()));
      continue;
    }
    used.insert(name);
    const st::Record& r = *it->second;
    if (r.dtype != st::DType::F32 && r.dtype != st::DType::BF16) {
      problems.push_back("wrong dtype: " + r.name + " is " + st::dtype_name(r.dtype) + ", expected F32 or BF16");
    } else if (r.shape != t.shape()) {
      problems.push_back("wrong shape: " + r.name + " is " + dims(r.shape) + ", the model has " + dims(t.shape()));
    } else {
      copies.emplace_back(t, record_to_tensor(r, path));
    }
  }
  for (const auto& [name, r] : model_records)
    if (!used.count(name)) problems.push_back("unexpected: " + r->name + " " + dims(r->shape));
  for (const auto& name : others) problems.push_back("unexpected: " + name + " (neither model. nor optim.)");
  if (!problems.empty()) {
    std::ostringstream os;
    os << path << ": the checkpoint does not match the model (wrong architecture? it was saved from \""
       << info.arch << "\"); " << problems.size() << " problem" << (problems.size() == 1 ? "" : "s")
       << ", nothing was loaded:";
    list_lines(os, problems, 20);
    throw Error(os.str());
  }

  // 3. The optimizer: same kind; its load_state checks names and shapes and changes nothing on error.
  if (optimizer) {
    HOTLAP_CHECK(kind != "none", path, ": the checkpoint holds no optimizer state (saved without an optimizer); "
                 "load it without one to restore only the model");
    HOTLAP_CHECK(kind == optimizer->kind(), path, ": the checkpoint holds ", kind, " optimizer state, but the optimizer is ",
                 optimizer->kind());
    const double lr = meta.real("optimizer.lr");
    const int64_t steps = meta.integer("optimizer.steps");
    try {
      optimizer->load_state(optim_values);
    } catch (const Error& e) {
      throw_error(path, ": ", e.what());
    }
    optimizer->set_lr(lr);
    optimizer->set_steps_taken(steps);
  }

  // 4. Everything fits: copy (shapes and dtypes were checked, nothing below can fail).
  for (auto& [target, value] : copies) target.copy_from(value);
  return info;
}

}  // namespace hotlap
