// A classifier's data set from an image folder or a path,label CSV: see image_folder.h.
#include "apps/data/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "apps/data/image.h"
#include "apps/data/text_lines.h"
#include "kernels/error.h"

namespace hotlap {

namespace {

namespace fs = std::filesystem;
using namespace text_lines;

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::string looked_for() {
  std::string s;
  for (const std::string& e : image_extensions()) s += (s.empty() ? "." : ", .") + e;
  return s;
}

// The class folders of `folder`: its sub-folders (links to folders count), hidden ones left out,
// sorted by their bytes.
std::vector<std::string> class_folders(const fs::path& folder) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(folder, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code type_ec;
    if (!hidden(it->path()) && it->is_directory(type_ec)) names.push_back(it->path().filename().string());
  }
  HOTLAP_CHECK(!ec, folder.string(), ": cannot list the folder (", ec.message(), ")");
  std::sort(names.begin(), names.end());
  return names;
}

// The images beneath `folder`, as paths relative to it with '/' separators, sorted. Sub-folders are
// walked; links to folders are not followed, hidden entries are skipped; other files are `skipped`.
std::vector<std::string> folder_images(const fs::path& folder, std::vector<std::string>* skipped) {
  std::vector<std::string> images;
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code type_ec;
    if (hidden(p)) {
      if (it->is_directory(type_ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(type_ec)) continue;
    if (it->is_regular_file(type_ec) && has_image_extension(p.string()))
      images.push_back(p.lexically_relative(folder).generic_string());
    else if (skipped != nullptr)
      skipped->push_back(p.string());
  }
  HOTLAP_CHECK(!ec, folder.string(), ": cannot list the folder (", ec.message(), ")");
  std::sort(images.begin(), images.end());
  return images;
}

// The samples of one part (train/ or val/) of an image folder; a class folder of val/ that train/ lacks
// is an error, as is a class folder without an image.
std::vector<Sample> part_samples(const fs::path& part, const std::vector<std::string>& classes,
                                 std::vector<std::string>* skipped) {
  std::vector<Sample> samples;
  for (const std::string& folder : class_folders(part)) {
    const auto it = std::lower_bound(classes.begin(), classes.end(), folder);
    if (it == classes.end() || *it != folder)
      throw_error((part / folder).string(), ": the class '", folder, "' has no folder in train/ (",
                  classes.size(), " classes there); a model cannot learn a class it never sees");
    const std::vector<std::string> images = folder_images(part / folder, skipped);
    HOTLAP_CHECK(!images.empty(), (part / folder).string(), ": no images in the class folder (looked for ",
                 looked_for(), ")");
    const int64_t label = it - classes.begin();
    for (const std::string& image : images)
      samples.push_back({folder + "/" + image, (part / folder / image).string(), 0.0f, label});
  }
  return samples;
}

}  // namespace

bool is_image_folder(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(fs::path(dir) / "train", ec);
}

Split load_image_folder(const std::string& dir, std::vector<std::string>* skipped) {
  std::error_code ec;
  HOTLAP_CHECK(fs::is_directory(dir, ec), "image folder not found: ", dir);
  const fs::path train = fs::path(dir) / "train", val = fs::path(dir) / "val";
  HOTLAP_CHECK(fs::is_directory(train, ec), dir, ": no train/ folder (an image folder holds train/CLASS/IMAGE ",
               "and val/CLASS/IMAGE, as torchvision's ImageFolder reads it)");
  Split split;
  split.classes = class_folders(train);
  HOTLAP_CHECK(!split.classes.empty(), train.string(), ": no class folders (train/CLASS/IMAGE ...)");
  split.train = part_samples(train, split.classes, skipped);
  if (fs::is_directory(val, ec)) split.test = part_samples(val, split.classes, skipped);
  split.name = "image folder " + dir + ", " + std::to_string(split.classes.size()) + " classes, train/ and val/";
  count_split(split);
  return split;
}

std::vector<Sample> load_class_csv(const std::string& csv_file, std::vector<std::string>& classes,
                                   const LoadOptions& options, std::vector<Problem>* problems) {
  const std::string text = read_text(csv_file, "class CSV");
  const fs::path base = fs::path(csv_file).parent_path();
  std::vector<Problem> found;
  auto problem = [&](int64_t line, ProblemKind kind, std::string message) {
    found.push_back({csv_file, line, std::move(message), kind});
  };
  struct Row {
    std::string path, label;
    int64_t line;
  };
  std::vector<Row> rows;
  std::map<std::string, int64_t> first_line;  // path -> the line that named it first
  char delim = ',';
  int64_t path_col = -1, label_col = -1;
  bool have_header = false;
  for_each_line(text, [&](int64_t line, std::string_view content) {
    if (!have_header) {
      have_header = true;
      delim = csv_delimiter(content);
      const std::vector<std::string> header = split_csv(content, delim);
      for (size_t i = 0; i < header.size(); ++i) {
        const std::string h = lower(header[i]);
        if (h == "path" && path_col < 0) path_col = static_cast<int64_t>(i);
        if (h == "label" && label_col < 0) label_col = static_cast<int64_t>(i);
      }
      if (path_col < 0 || label_col < 0) {
        std::string cols;
        for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + shown(h);
        throw_error("class CSV ", csv_file, ":", line, ": the header needs columns path and label",
                    " (case-insensitive), found: ", cols);
      }
      return;
    }
    const std::vector<std::string> fields = split_csv(content, delim);
    const size_t needed = static_cast<size_t>(std::max(path_col, label_col)) + 1;
    if (fields.size() < needed) {
      problem(line, ProblemKind::malformed, "row has " + std::to_string(fields.size()) +
                                                " fields, the path and label columns need " + std::to_string(needed) +
                                                ": " + shown(content));
      return;
    }
    const std::string& path = fields[static_cast<size_t>(path_col)];
    const std::string& label = fields[static_cast<size_t>(label_col)];
    if (path.empty() || label.empty()) {
      problem(line, ProblemKind::malformed, std::string(path.empty() ? "empty path" : "empty label") + ": " + shown(content));
      return;
    }
    for (const std::string* s : {&path, &label})
      if (const std::string why = bad_name(*s); !why.empty()) {
        problem(line, ProblemKind::malformed, why + ": " + shown(content));
        return;
      }
    const auto [it, inserted] = first_line.emplace(path, line);
    if (!inserted) {
      problem(line, ProblemKind::duplicate, path + " is listed twice (first at line " + std::to_string(it->second) + ")");
      return;
    }
    rows.push_back({path, label, line});
  });
  if (!have_header) throw_error("class CSV is empty: ", csv_file, " (expected a header with path and label)");
  std::vector<std::pair<const Row*, std::string>> kept;  // each row that names an image, with its path
  std::set<std::string> names;
  for (const Row& r : rows) {
    const fs::path p(r.path);
    std::string path = p.is_absolute() || base.empty() ? r.path : (base / p).string();
    std::error_code ec;
    if (options.check_images_exist && !fs::is_regular_file(path, ec)) {
      problem(r.line, ProblemKind::missing_image, "image not found: " + path);
      continue;
    }
    names.insert(r.label);
    kept.emplace_back(&r, std::move(path));
  }
  classes.assign(names.begin(), names.end());
  std::vector<Sample> samples;
  for (auto& [row, path] : kept)
    samples.push_back({row->path, std::move(path), 0.0f,
                       std::lower_bound(classes.begin(), classes.end(), row->label) - classes.begin()});
  std::stable_sort(found.begin(), found.end(), [](const Problem& a, const Problem& b) { return a.line < b.line; });
  if (!found.empty()) {
    if (options.stop_on_problems) throw Error(summarize_problems(found));
    if (problems != nullptr) problems->insert(problems->end(), found.begin(), found.end());
  }
  HOTLAP_CHECK(!samples.empty(), "no usable rows in ", csv_file, rows.empty() ? ": a header and no rows" : ": every row had a problem");
  return samples;
}

std::vector<int64_t> class_counts(const std::vector<Sample>& samples, size_t classes) {
  std::vector<int64_t> counts(classes, 0);
  for (const Sample& s : samples)
    if (s.label >= 0 && static_cast<size_t>(s.label) < classes) ++counts[static_cast<size_t>(s.label)];
  return counts;
}

std::string classes_json(const std::vector<std::string>& classes) { return nlohmann::json(classes).dump(); }

std::vector<std::string> classes_from_json(const std::string& text, const std::string& path) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    HOTLAP_CHECK(j.is_array() && !j.empty(), path, ": its \"classes\" entry is not a list of class names");
    std::vector<std::string> classes;
    for (const auto& name : j) {
      HOTLAP_CHECK(name.is_string(), path, ": its \"classes\" entry holds ", name.dump().substr(0, 40),
                   ", not a class name");
      classes.push_back(name.get<std::string>());
    }
    return classes;
  } catch (const nlohmann::json::exception&) {
    throw_error(path, ": its \"classes\" entry is not JSON: ", text.substr(0, 60));
  }
}

}  // namespace hotlap
