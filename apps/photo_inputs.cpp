// Expanding `hotlap score`'s PHOTOS arguments: files, folders and glob patterns (see
// apps/photo_inputs.h).
#include "apps/photo_inputs.h"

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <system_error>

#include "apps/image.h"

namespace hotlap {

namespace {

namespace fs = std::filesystem;

bool is_pattern(const std::string& arg) { return arg.find_first_of("*?[") != std::string::npos; }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The key that makes two spellings of one path equal ("a.jpg", "./a.jpg", "dir/../a.jpg"). Links are
// not followed: two names of one file are two photos, as the user gave them.
std::string identity(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(path), ec);
  return (ec ? fs::path(path) : p).lexically_normal().string();
}

std::string looked_for() {
  std::string s;
  for (const auto& e : image_extensions()) s += (s.empty() ? "." : ", .") + e;
  return s;
}

// The extension of `path`, lower-case, without the dot ("" if none).
std::string bare_extension(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  return ext.size() < 2 ? std::string() : ext.substr(1);
}

bool has_extension_of(const std::string& path, const std::vector<ImageFormat>& formats) {
  const std::string ext = bare_extension(path);
  if (ext.empty()) return false;
  for (const ImageFormat& f : formats)
    if (std::find(f.extensions.begin(), f.extensions.end(), ext) != f.extensions.end()) return true;
  return false;
}

// The folder's image files, sorted by name; a problem when there are none or it cannot be read. Files
// of an image type hotlap does not read go to `skipped` (sorted by name too).
std::vector<std::string> folder_images(const std::string& dir, std::vector<PhotoProblem>& problems,
                                       std::vector<std::string>& skipped) {
  std::vector<std::string> names, unreadable;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    const bool readable = has_image_extension(name);
    if (!readable && !has_unreadable_image_extension(name)) continue;
    std::error_code status_ec;
    if (!fs::is_regular_file(it->path(), status_ec)) continue;  // follows links; skips folders named x.jpg
    (readable ? names : unreadable).push_back(name);
  }
  if (ec) {
    problems.push_back({dir, "cannot read the folder (" + ec.message() + ")"});
    return {};
  }
  std::sort(unreadable.begin(), unreadable.end());
  for (const auto& n : unreadable) skipped.push_back((fs::path(dir) / n).string());
  if (names.empty()) {
    problems.push_back({dir, "no images (looked for " + looked_for() + ")"});
    return {};
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> paths;
  for (const auto& n : names) paths.push_back((fs::path(dir) / n).string());
  return paths;
}

// One argument that is not a pattern: a file, a folder, or missing.
std::vector<std::string> expand_path(const std::string& arg, std::vector<PhotoProblem>& problems,
                                     std::vector<std::string>& skipped) {
  std::error_code ec;
  const fs::file_status status = fs::status(arg, ec);
  if (fs::is_directory(status)) return folder_images(arg, problems, skipped);
  if (fs::exists(status)) return {arg};
  problems.push_back({arg, "no such file or folder"});
  return {};
}

std::vector<std::string> expand_pattern(const std::string& pattern, std::vector<PhotoProblem>& problems,
                                        std::vector<std::string>& skipped) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::string> found;
  if (rc == 0)
    for (size_t i = 0; i < matches.gl_pathc; ++i) found.emplace_back(matches.gl_pathv[i]);
  ::globfree(&matches);
  if (rc == GLOB_NOMATCH || (rc == 0 && found.empty())) {
    problems.push_back({pattern, "no file matches"});
    return {};
  }
  if (rc != 0) {
    problems.push_back({pattern, rc == GLOB_NOSPACE ? "out of memory expanding the pattern"
                                                    : "a folder could not be read expanding the pattern"});
    return {};
  }
  std::sort(found.begin(), found.end());  // glob sorts by the locale; this is by byte, as folders are
  std::vector<std::string> paths;
  for (const auto& f : found) {
    std::vector<std::string> more = expand_path(f, problems, skipped);
    paths.insert(paths.end(), more.begin(), more.end());
  }
  return paths;
}

}  // namespace

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions = [] {
    std::vector<std::string> all;
    for (const ImageFormat& f : readable_image_formats())
      all.insert(all.end(), f.extensions.begin(), f.extensions.end());
    return all;
  }();
  return extensions;
}

bool has_image_extension(const std::string& path) { return has_extension_of(path, readable_image_formats()); }

bool has_unreadable_image_extension(const std::string& path) {
  return has_extension_of(path, unreadable_image_formats());
}

std::vector<std::string> expand_photo_arguments(const std::vector<std::string>& args,
                                                std::vector<PhotoProblem>& problems,
                                                std::vector<std::string>* skipped) {
  std::vector<std::string> files, left_out;
  std::set<std::string> seen, seen_skipped;
  for (const auto& arg : args) {
    // A file whose name holds glob characters is still that file.
    std::error_code ec;
    const bool literal = !is_pattern(arg) || fs::exists(fs::path(arg), ec);
    const std::vector<std::string> paths =
        literal ? expand_path(arg, problems, left_out) : expand_pattern(arg, problems, left_out);
    for (const auto& p : paths)
      if (seen.insert(identity(p)).second) files.push_back(p);
  }
  if (skipped)  // a skipped file also named directly is in `files` (its decode error says why): not skipped
    for (const auto& p : left_out)
      if (const std::string id = identity(p); !seen.count(id) && seen_skipped.insert(id).second) skipped->push_back(p);
  return files;
}

}  // namespace hotlap
