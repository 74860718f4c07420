// Expanding `hotlap score`'s PHOTOS arguments: files, folders and glob patterns (see
// apps/score/photo_inputs.h).
#include "apps/score/photo_inputs.h"

#include <glob.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <filesystem>
#include <set>
#include <system_error>

#include "apps/data/image.h"

namespace hotlap {

namespace {

namespace fs = std::filesystem;

const char* const kUnreadableFormat = "not a format hotlap reads";

bool is_pattern(const std::string& arg) { return arg.find_first_of("*?[") != std::string::npos; }

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

// Why `path`, which fs::status could not follow (`ec`), gives no file: a link to nothing (naming its
// target when `target`), a link loop, no permission, or nothing at all.
std::string why_absent(const std::string& path, const std::error_code& ec, bool target) {
  std::error_code link_ec;
  if (ec.value() == ELOOP) return "a link loop";
  if (ec.value() == EACCES) return "cannot be reached (permission denied)";
  if (fs::is_symlink(fs::symlink_status(path, link_ec)))
    return target ? "a link to nothing (" + fs::read_symlink(path, link_ec).string() + ")" : "a link to nothing";
  return "no such file or folder";
}

// Why an entry with an image's name is not a photo to read, or "" when it is one (a regular file, or
// a link to one).
std::string not_a_photo(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec) return why_absent(path.string(), ec, false);  // one line per reason: no target
  if (fs::is_regular_file(status)) return "";
  if (fs::is_directory(status)) return "a folder, whose contents are not searched";
  return "not a regular file (a pipe, a device or a socket)";
}

// The folder's image files, sorted by name; a problem when there are none or it cannot be read. Files
// of an image type hotlap does not read, and entries named like images that are not files to read
// (a link to nothing, a pipe, ...), go to `skipped` with the reason (sorted by name too).
std::vector<std::string> folder_images(const std::string& dir, std::vector<PhotoProblem>& problems,
                                       std::vector<PhotoProblem>& skipped) {
  std::vector<std::string> names;
  std::vector<PhotoProblem> left_out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    const bool readable = has_image_extension(name);
    if (!readable && !has_unreadable_image_extension(name)) continue;
    const std::string path = (fs::path(dir) / name).string();
    if (const std::string why = not_a_photo(it->path()); !why.empty())
      left_out.push_back({path, why});
    else if (readable)
      names.push_back(name);
    else
      left_out.push_back({path, kUnreadableFormat});
  }
  if (ec) {
    problems.push_back({dir, "cannot read the folder (" + ec.message() + ")"});
    return {};
  }
  std::sort(left_out.begin(), left_out.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  skipped.insert(skipped.end(), left_out.begin(), left_out.end());
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
                                     std::vector<PhotoProblem>& skipped) {
  std::error_code ec;
  const fs::file_status status = fs::status(arg, ec);
  if (fs::is_directory(status)) return folder_images(arg, problems, skipped);
  if (fs::exists(status)) return {arg};
  problems.push_back({arg, why_absent(arg, ec, true)});
  return {};
}

std::vector<std::string> expand_pattern(const std::string& pattern, std::vector<PhotoProblem>& problems,
                                        std::vector<PhotoProblem>& skipped) {
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

std::vector<std::string> expand_photo_arguments(const std::vector<std::string>& args,
                                                std::vector<PhotoProblem>& problems,
                                                std::vector<PhotoProblem>* skipped) {
  std::vector<std::string> files;
  std::vector<PhotoProblem> left_out;
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
      if (const std::string id = identity(p.path); !seen.count(id) && seen_skipped.insert(id).second)
        skipped->push_back(p);
  return files;
}

}  // namespace hotlap
