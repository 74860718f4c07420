// SCUT-FBP5500 label files: layout discovery, "NAME SCORE" and rater-CSV parsing, validation.
// Everything is collected as Problems first and thrown (or returned) once, so a user fixing a broken
// download sees every bad line in one go rather than one per run.
#include "apps/data/scut.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "kernels/error.h"
#include "apps/data/synth.h"
#include "apps/data/text_lines.h"

namespace hotlap {
namespace {

using namespace text_lines;

namespace fs = std::filesystem;

constexpr float kMinScore = 1.0f, kMaxScore = 5.0f;
const char* const kFiveFoldDir = "5_folders_cross_validations_files";
const char* const kSixtyFortyDirs[] = {"split_of_60%training and 40%testing", "split_of_60%training_40%testing"};

enum class ScoreParse { ok, not_a_number, out_of_range };

// A decimal in [1, 5]; a leading '+' is allowed, nan/inf are not numbers here.
ScoreParse parse_score(std::string_view token, double& value) {
  std::string_view t = token;
  if (!t.empty() && t.front() == '+') t.remove_prefix(1);
  if (t.empty()) return ScoreParse::not_a_number;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (ec == std::errc::result_out_of_range && ptr == t.data() + t.size()) return ScoreParse::out_of_range;
  if (ec != std::errc() || ptr != t.data() + t.size() || !std::isfinite(value)) return ScoreParse::not_a_number;
  if (value < kMinScore || value > kMaxScore) return ScoreParse::out_of_range;
  return ScoreParse::ok;
}

struct Entry {
  std::string name;
  float score;
  int64_t line;
};

std::vector<std::string_view> split_whitespace(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

// Parses a NAME SCORE file: malformed lines, out-of-range scores and duplicate names become problems
// and are left out of the result (the first occurrence of a duplicate is kept).
std::vector<Entry> parse_name_score_file(const std::string& path, std::vector<Problem>& problems) {
  const std::string text = read_text(path, "label file");
  std::vector<Entry> entries;
  std::unordered_map<std::string, int64_t> first_line;
  auto problem = [&](int64_t line, ProblemKind kind, std::string message) {
    problems.push_back({path, line, std::move(message), kind});
  };
  int64_t nonblank = for_each_line(text, [&](int64_t line, std::string_view content) {
    std::vector<std::string_view> fields = split_whitespace(content);
    if (fields.size() == 1) {
      problem(line, ProblemKind::malformed, "missing score: " + shown(content) + " (expected \"NAME SCORE\")");
      return;
    }
    if (fields.size() > 2) {
      problem(line, ProblemKind::malformed,
              "expected \"NAME SCORE\", got " + std::to_string(fields.size()) + " fields: " + shown(content));
      return;
    }
    double value = 0.0;
    switch (parse_score(fields[1], value)) {
      case ScoreParse::not_a_number:
        problem(line, ProblemKind::malformed, "score " + shown(fields[1]) + " is not a number");
        return;
      case ScoreParse::out_of_range:
        problem(line, ProblemKind::score_out_of_range,
                "score " + std::string(fields[1]) + " of " + std::string(fields[0]) + " is outside [1, 5]");
        return;
      case ScoreParse::ok:
        break;
    }
    std::string name(fields[0]);
    if (const std::string why = bad_name(name); !why.empty()) {
      problem(line, ProblemKind::malformed, why + ": " + shown(content));
      return;
    }
    auto [it, inserted] = first_line.emplace(name, line);
    if (!inserted) {
      problem(line, ProblemKind::duplicate,
              name + " is listed twice (first at line " + std::to_string(it->second) + ")");
      return;
    }
    entries.push_back({std::move(name), static_cast<float>(value), line});
  });
  if (nonblank == 0) throw_error("label file is empty: ", path, " (expected one \"NAME SCORE\" line per image)");
  return entries;
}

void require_images_dir(const std::string& images_dir, const std::string& hint) {
  std::error_code ec;
  if (!fs::is_directory(images_dir, ec))
    throw_error("images folder not found: ", images_dir, hint);
}

std::string image_path(const std::string& images_dir, const std::string& name) {
  return images_dir.empty() ? name : (fs::path(images_dir) / name).string();
}

// Turns entries into samples; with check_images_exist, a missing image is a problem and the entry dropped.
std::vector<Sample> to_samples(const std::vector<Entry>& entries, const std::string& label_file,
                               const std::string& images_dir, const LoadOptions& options,
                               std::vector<Problem>& problems) {
  std::vector<Sample> samples;
  samples.reserve(entries.size());
  for (const Entry& e : entries) {
    std::string path = image_path(images_dir, e.name);
    if (options.check_images_exist) {
      std::error_code ec;
      if (!fs::is_regular_file(path, ec)) {
        problems.push_back({label_file, e.line, "image not found: " + path, ProblemKind::missing_image});
        continue;
      }
    }
    samples.push_back({e.name, std::move(path), e.score});
  }
  return samples;
}

void finish(std::vector<Problem>& found, const LoadOptions& options, std::vector<Problem>* out) {
  if (found.empty()) return;
  if (options.stop_on_problems) throw Error(summarize_problems(found));
  if (out) out->insert(out->end(), found.begin(), found.end());
}

}  // namespace

Protocol parse_protocol(const std::string& text) {
  std::string t = lower(text);
  if (t == "5fold" || t == "5-fold" || t == "five_fold" || t == "5") return Protocol::five_fold;
  if (t == "60-40" || t == "60/40" || t == "sixty_forty" || t == "6040") return Protocol::sixty_forty;
  throw_error("unknown protocol \"", text, "\": expected 5fold or 60-40");
}

const char* protocol_name(Protocol protocol) { return protocol == Protocol::five_fold ? "5fold" : "60-40"; }

std::string summarize_problems(const std::vector<Problem>& problems, size_t max_listed) {
  // Counts in a fixed order, with a plural that reads right.
  struct KindLabel {
    ProblemKind kind;
    const char *one, *many;
  };
  const KindLabel kinds[] = {
      {ProblemKind::malformed, "malformed line", "malformed lines"},
      {ProblemKind::score_out_of_range, "score outside [1, 5]", "scores outside [1, 5]"},
      {ProblemKind::duplicate, "duplicate name", "duplicate names"},
      {ProblemKind::missing_image, "missing image", "missing images"},
      {ProblemKind::overlap, "train/test overlap", "train/test overlaps"},
  };
  std::ostringstream os;
  os << problems.size() << (problems.size() == 1 ? " problem" : " problems") << " in the labels (";
  bool first = true;
  for (const KindLabel& k : kinds) {
    size_t n = static_cast<size_t>(
        std::count_if(problems.begin(), problems.end(), [&](const Problem& p) { return p.kind == k.kind; }));
    if (n == 0) continue;
    os << (first ? "" : ", ") << n << " " << (n == 1 ? k.one : k.many);
    first = false;
  }
  os << "):";
  for (size_t i = 0; i < problems.size() && i < max_listed; ++i)
    os << "\n  " << problems[i].file << ":" << problems[i].line << ": " << problems[i].message;
  if (problems.size() > max_listed) os << "\n  ... and " << problems.size() - max_listed << " more";
  return os.str();
}

std::vector<Sample> load_labels(const std::string& labels_file, const std::string& images_dir,
                                const LoadOptions& options, std::vector<Problem>* problems) {
  if (options.check_images_exist && !images_dir.empty()) require_images_dir(images_dir, "");
  std::vector<Problem> found;
  std::vector<Entry> entries = parse_name_score_file(labels_file, found);
  std::vector<Sample> samples = to_samples(entries, labels_file, images_dir, options, found);
  finish(found, options, problems);
  if (samples.empty()) throw_error("no usable samples in ", labels_file, ": every line had a problem");
  return samples;
}

std::vector<float> read_score_list(const std::string& path) {
  std::vector<Problem> found;
  std::vector<Entry> entries = parse_name_score_file(path, found);
  if (!found.empty()) throw Error(summarize_problems(found));
  std::vector<float> scores;
  scores.reserve(entries.size());
  for (const Entry& e : entries) scores.push_back(e.score);
  return scores;
}

std::vector<Sample> load_rater_csv(const std::string& csv_file, const std::string& images_dir,
                                   const LoadOptions& options, std::vector<Problem>* problems) {
  if (options.check_images_exist && !images_dir.empty()) require_images_dir(images_dir, "");
  const std::string text = read_text(csv_file, "ratings CSV");
  std::vector<Problem> found;
  auto problem = [&](int64_t line, ProblemKind kind, std::string message) {
    found.push_back({csv_file, line, std::move(message), kind});
  };

  struct Acc {
    double sum = 0.0;
    int count = 0;
    int64_t first_line = 0;
  };
  std::vector<std::string> order;  // names in order of first appearance
  std::unordered_map<std::string, Acc> acc;
  char delim = ',';
  int64_t name_col = -1, rating_col = -1, rows = 0;
  bool have_header = false;

  for_each_line(text, [&](int64_t line, std::string_view content) {
    if (!have_header) {
      have_header = true;
      delim = csv_delimiter(content);
      std::vector<std::string> header = split_csv(content, delim);
      for (size_t i = 0; i < header.size(); ++i) {
        std::string h = lower(header[i]);
        if (h == "filename" && name_col < 0) name_col = static_cast<int64_t>(i);
        if (h == "rating" && rating_col < 0) rating_col = static_cast<int64_t>(i);
      }
      if (name_col < 0 || rating_col < 0) {
        std::string cols;
        for (const auto& h : header) cols += (cols.empty() ? "" : ", ") + shown(h);
        throw_error("ratings CSV ", csv_file, ":", line, ": the header needs columns Filename and Rating",
                    " (case-insensitive), found: ", cols);
      }
      return;
    }
    ++rows;
    std::vector<std::string> fields = split_csv(content, delim);
    size_t needed = static_cast<size_t>(std::max(name_col, rating_col)) + 1;
    if (fields.size() < needed) {
      problem(line, ProblemKind::malformed,
              "row has " + std::to_string(fields.size()) + " fields, the Filename and Rating columns need " +
                  std::to_string(needed) + ": " + shown(content));
      return;
    }
    const std::string& name = fields[static_cast<size_t>(name_col)];
    const std::string& rating = fields[static_cast<size_t>(rating_col)];
    if (name.empty()) {
      problem(line, ProblemKind::malformed, "empty Filename: " + shown(content));
      return;
    }
    if (const std::string why = bad_name(name); !why.empty()) {
      problem(line, ProblemKind::malformed, why + ": " + shown(content));
      return;
    }
    double value = 0.0;
    switch (parse_score(trim(rating), value)) {
      case ScoreParse::not_a_number:
        problem(line, ProblemKind::malformed, "rating " + shown(rating) + " is not a number");
        return;
      case ScoreParse::out_of_range:
        problem(line, ProblemKind::score_out_of_range, "rating " + rating + " of " + name + " is outside [1, 5]");
        return;
      case ScoreParse::ok:
        break;
    }
    auto [it, inserted] = acc.try_emplace(name);
    if (inserted) {
      it->second.first_line = line;
      order.push_back(name);
    }
    it->second.sum += value;
    it->second.count += 1;
  });
  if (!have_header) throw_error("ratings CSV is empty: ", csv_file, " (expected a header with Filename and Rating)");
  if (rows == 0) throw_error("ratings CSV has a header but no rows: ", csv_file);

  std::vector<Entry> entries;
  entries.reserve(order.size());
  for (const std::string& name : order) {
    const Acc& a = acc.at(name);
    entries.push_back({name, static_cast<float>(a.sum / a.count), a.first_line});
  }
  std::vector<Sample> samples = to_samples(entries, csv_file, images_dir, options, found);
  std::stable_sort(found.begin(), found.end(), [](const Problem& a, const Problem& b) { return a.line < b.line; });
  finish(found, options, problems);
  if (samples.empty()) throw_error("no usable ratings in ", csv_file, ": every row had a problem");
  return samples;
}

Split load_scut_split(const std::string& data_dir, Protocol protocol, int fold, const LoadOptions& options) {
  const char* layout =
      "expected the SCUT-FBP5500_v2 layout: DIR/Images/*.jpg and DIR/train_test_files/"
      "{5_folders_cross_validations_files/cross_validation_K/{train,test}_K.txt, "
      "split_of_60%training and 40%testing/{train,test}.txt}";
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) throw_error("data folder not found: ", data_dir, " (", layout, ")");
  const fs::path root(data_dir), files = root / "train_test_files";
  // The zip unpacks into SCUT-FBP5500_v2/: point at it when the user gave its parent.
  std::string hint;
  if (!fs::is_directory(files, ec) && fs::is_directory(root / "SCUT-FBP5500_v2" / "train_test_files", ec))
    hint = "; did you mean " + (root / "SCUT-FBP5500_v2").string() + "?";

  fs::path train_file, test_file;
  // hotlap synth writes the same layout: its drawn faces are not called SCUT-FBP5500.
  const std::string data_name = is_synthetic_scut(data_dir) ? "hotlap synth's faces," : "SCUT-FBP5500";
  std::string description;
  if (protocol == Protocol::five_fold) {
    if (fold < 1 || fold > 5) throw_error("5-fold protocol: fold ", fold, " is not in 1..5");
    const std::string k = std::to_string(fold);
    const fs::path dir = files / kFiveFoldDir / ("cross_validation_" + k);
    train_file = dir / ("train_" + k + ".txt");
    test_file = dir / ("test_" + k + ".txt");
    for (const fs::path& p : {train_file, test_file})
      if (!fs::is_regular_file(p, ec))
        throw_error("label file not found: ", p.string(), " (", layout, ")", hint);
    description = data_name + " 5-fold cross-validation, fold " + k;
  } else {
    std::string tried;
    for (const char* name : kSixtyFortyDirs) {
      const fs::path dir = files / name;
      tried += "\n  " + (dir / "train.txt").string() + "\n  " + (dir / "test.txt").string();
      if (fs::is_regular_file(dir / "train.txt", ec) && fs::is_regular_file(dir / "test.txt", ec)) {
        train_file = dir / "train.txt";
        test_file = dir / "test.txt";
        break;
      }
    }
    if (train_file.empty())
      throw_error("60/40 split files not found in ", data_dir, " (", layout, "; also accepted: ",
                  kSixtyFortyDirs[1], "); tried:", tried, hint.empty() ? "" : "\n", hint);
    description = data_name + " 60/40 split";
  }

  const std::string images_dir = (root / "Images").string();
  if (options.check_images_exist) require_images_dir(images_dir, " (" + std::string(layout) + ")");

  std::vector<Problem> found;
  const std::string train_path = train_file.string(), test_path = test_file.string();
  std::vector<Entry> train_entries = parse_name_score_file(train_path, found);
  std::vector<Entry> test_entries = parse_name_score_file(test_path, found);

  // A name in both files is a leak of test images into training: reported at the test file's line.
  std::unordered_map<std::string, int64_t> train_lines;
  for (const Entry& e : train_entries) train_lines.emplace(e.name, e.line);
  std::vector<Entry> test_kept;
  test_kept.reserve(test_entries.size());
  const std::string train_base = train_file.filename().string();
  for (Entry& e : test_entries) {
    auto it = train_lines.find(e.name);
    if (it != train_lines.end()) {
      found.push_back({test_path, e.line,
                       e.name + " is in both train and test (also " + train_base + ":" + std::to_string(it->second) + ")",
                       ProblemKind::overlap});
      continue;
    }
    test_kept.push_back(std::move(e));
  }

  Split split;
  split.train = to_samples(train_entries, train_path, images_dir, options, found);
  split.test = to_samples(test_kept, test_path, images_dir, options, found);
  // Report in file order: train first, then test, each by line.
  std::stable_sort(found.begin(), found.end(), [&](const Problem& a, const Problem& b) {
    bool at = a.file == train_path, bt = b.file == train_path;
    if (at != bt) return at;
    return a.line < b.line;
  });
  finish(found, options, &split.problems);
  if (split.train.empty() || split.test.empty())
    throw_error(description, ": no usable ", split.train.empty() ? "training" : "test", " samples in ",
                split.train.empty() ? train_path : test_path);
  split.name = description;  // the folder is in the run's config.json: this line fits 80 columns
  count_split(split);
  return split;
}

void count_split(Split& split) {
  split.description = split.name + ": " + std::to_string(split.train.size()) + " train, " +
                      std::to_string(split.test.size()) + " test";
}

}  // namespace hotlap
