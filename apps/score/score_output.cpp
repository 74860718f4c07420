// Ranking and the four output formats of `hotlap score` (see apps/score/score_output.h).
#include "apps/score/score_output.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/common/cli_help.h"
#include "apps/data/text_lines.h"
#include "kernels/error.h"

namespace hotlap {

namespace {

using text_lines::csv_field;

constexpr const char* kScale = "SCUT-FBP5500 1-5";
constexpr const char* kPercentileMeaning = "share of the 5500 SCUT-FBP5500 scores below, ties half";

// `value` with `decimals` digits after the point; "" when it is not a finite number.
std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "";
  const int n = std::snprintf(nullptr, 0, "%.*f", decimals, value);
  std::string out(static_cast<size_t>(std::max(n, 0)) + 1, '\0');
  std::snprintf(out.data(), out.size(), "%.*f", decimals, value);
  out.pop_back();
  return out;
}

bool box_is_finite(const PixelBox& b) {
  return std::isfinite(b.x) && std::isfinite(b.y) && std::isfinite(b.width) && std::isfinite(b.height);
}

bool shows_box(const ScoredPhoto& p) { return p.has_box && box_is_finite(p.face_box); }

// "x,y,w,h" rounded to whole pixels, or "" without a box.
std::string box_pixels(const ScoredPhoto& p) {
  if (!shows_box(p)) return "";
  const PixelBox& b = p.face_box;
  char buf[128];
  std::snprintf(buf, sizeof buf, "%lld,%lld,%lld,%lld", static_cast<long long>(std::llround(b.x)),
                static_cast<long long>(std::llround(b.y)), static_cast<long long>(std::llround(b.width)),
                static_cast<long long>(std::llround(b.height)));
  return buf;
}

std::string faces_text(const ScoredPhoto& p) { return p.faces_found < 0 ? "" : std::to_string(p.faces_found); }

// The faces column of the table and Markdown: "3", or with --all-faces "2/3" (this row's face of 3).
std::string face_of_faces(const ScoredPhoto& p) {
  if (p.face_number <= 0) return faces_text(p);
  return std::to_string(p.face_number) + "/" + faces_text(p);
}

// A score outside the scale is marked "!" in the table and Markdown (its warning says why).
std::string score_cell(const ScoredPhoto& p) {
  if (!p.ok()) return "";
  return score_digits(p.score, 2) + (outside_score_scale(p.score) ? "!" : "");
}

// Text on one line: control characters (newlines, tabs, ...) become spaces, so a cell cannot break
// the table's rows, and a name of any length is cut to a readable one (elide_long_words).
std::string one_line(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  return elide_long_words(out);
}

// Columns a string takes in a terminal: one per UTF-8 character (continuation bytes take none).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string pad(const std::string& s, size_t width, bool right_align) {
  const size_t w = display_width(s);
  if (w >= width) return s;
  const std::string fill(width - w, ' ');
  return right_align ? fill + s : s + fill;
}

// The rank column: 1, 2, ... over the scored photos in order, "" for failures.
std::vector<std::string> rank_texts(const std::vector<ScoredPhoto>& ranked) {
  std::vector<std::string> ranks;
  int next = 1;
  for (const auto& p : ranked) ranks.push_back(p.ok() ? std::to_string(next++) : "");
  return ranks;
}

// ---- table and Markdown: the same cells, laid out two ways -------------------------------------

struct Column {
  std::string header;
  bool right_align;
};

struct Grid {
  std::vector<Column> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;   // one line per warning: "#3 name: text"
  std::vector<std::string> errors;  // one line per photo that failed: "name: error"
  std::vector<size_t> widths;      // per column, the widest of header and cells
};

Grid make_grid(const std::vector<ScoredPhoto>& ranked, bool markdown) {
  auto cell = [&](const std::string& s) {
    std::string t = one_line(s);
    if (!markdown) return t;
    std::string escaped;
    for (char c : t) {
      if (c == '|') escaped += '\\';
      escaped += c;
    }
    return escaped;
  };
  // A photo that failed is a row with a blank rank and "failed" for its framing; its error, which may
  // be long, is listed under the table rather than widening every line with a column of its own.
  Grid g;
  g.columns = {{"rank", true},  {"name", false},  {"score", true}, {"percentile", true},
               {"framing", false}, {"faces", true}, {"box x,y,w,h", false}};  // the face's, in the photo's pixels
  const std::vector<std::string> ranks = rank_texts(ranked);
  for (size_t i = 0; i < ranked.size(); ++i) {
    const ScoredPhoto& p = ranked[i];
    g.rows.push_back({ranks[i],
                      cell(p.name),
                      score_cell(p),
                      p.ok() ? fixed(p.percentile, 1) : "",
                      p.ok() ? cell(p.framing) : "failed",
                      face_of_faces(p),
                      box_pixels(p)});
    const std::string who = (ranks[i].empty() ? "" : "#" + ranks[i] + " ") + cell(p.name);
    for (const auto& w : p.warnings) g.notes.push_back(who + ": " + cell(w));
    if (!p.ok()) g.errors.push_back(cell(p.name) + ": " + cell(p.error));
  }
  for (const auto& c : g.columns) g.widths.push_back(std::max<size_t>(display_width(c.header), markdown ? 3 : 1));
  for (const auto& row : g.rows)
    for (size_t c = 0; c < row.size(); ++c) g.widths[c] = std::max(g.widths[c], display_width(row[c]));
  return g;
}

// Columns two spaces apart, every cell padded to its column's width, a line of dashes under the
// header; no line ends in spaces (a short last cell, or blank ones, leave none behind).
std::string format_table(const std::vector<ScoredPhoto>& ranked, size_t width) {
  Grid g = make_grid(ranked, false);
  // Too wide for the terminal: the columns least needed to read a ranking go first, from the right.
  std::vector<std::string> left_out;
  auto table_width = [&] {
    size_t w = 0;
    for (size_t c = 0; c < g.widths.size(); ++c) w += g.widths[c] + (c ? 2 : 0);
    return w;
  };
  while (width > 0 && table_width() > width && g.columns.size() > 4) {
    left_out.insert(left_out.begin(), g.columns.back().header);
    g.columns.pop_back();
    g.widths.pop_back();
    for (auto& row : g.rows) row.pop_back();
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c) out += "  ";
      out += pad(cells[c], g.widths[c], g.columns[c].right_align);
    }
    out.erase(out.find_last_not_of(' ') + 1);
    return out + "\n";
  };
  std::vector<std::string> headers, rules;
  for (size_t c = 0; c < g.columns.size(); ++c) {
    headers.push_back(g.columns[c].header);
    rules.push_back(std::string(g.widths[c], '-'));
  }
  std::string out = line(headers) + line(rules);
  for (const auto& row : g.rows) out += line(row);
  if (!left_out.empty()) {
    std::string names;
    for (const auto& n : left_out) names += (names.empty() ? "" : ", ") + n;
    out += "(left out for the terminal's width: " + names + ")\n";
  }
  // Each warning and error wrapped to the width, its later lines indented under its text.
  if (!g.notes.empty()) {
    out += "\nwarnings:\n";
    for (const auto& n : g.notes) out += wrapped_item(n, width, 2, 2);
  }
  if (!g.errors.empty()) {
    out += "\nerrors:\n";
    for (const auto& e : g.errors) out += wrapped_item(e, width, 2, 2);
  }
  return out;
}

// A GitHub pipe table ("|" in cells escaped as "\|"), numbers right-aligned, warnings and errors as
// lists below.
std::string format_markdown(const std::vector<ScoredPhoto>& ranked) {
  const Grid g = make_grid(ranked, true);
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (size_t c = 0; c < cells.size(); ++c) {
      out += ' ';
      out += pad(cells[c], g.widths[c], g.columns[c].right_align);
      out += " |";
    }
    return out + "\n";
  };
  std::vector<std::string> headers, rules;
  for (size_t c = 0; c < g.columns.size(); ++c) {
    headers.push_back(g.columns[c].header);
    const std::string dashes(g.widths[c] - 1, '-');
    rules.push_back(g.columns[c].right_align ? dashes + ":" : ":" + dashes);
  }
  std::string out = line(headers) + line(rules);
  for (const auto& row : g.rows) out += line(row);
  if (!g.notes.empty()) {
    out += "\nWarnings:\n\n";
    for (const auto& n : g.notes) out += "- " + n + "\n";
  }
  if (!g.errors.empty()) {
    out += "\nErrors:\n\n";
    for (const auto& e : g.errors) out += "- " + e + "\n";
  }
  return out;
}

// ---- CSV -----------------------------------------------------------------------------------------

std::string format_csv(const std::vector<ScoredPhoto>& ranked) {
  std::string out =
      "rank,name,path,score,percentile,outside_scale,framing,faces,face,box_x,box_y,box_w,box_h,error,warnings\n";
  const std::vector<std::string> ranks = rank_texts(ranked);
  for (size_t i = 0; i < ranked.size(); ++i) {
    const ScoredPhoto& p = ranked[i];
    const bool box = shows_box(p);
    std::string warnings;
    for (size_t w = 0; w < p.warnings.size(); ++w) warnings += (w ? "; " : "") + p.warnings[w];
    const std::vector<std::string> fields = {ranks[i],
                                             p.name,
                                             p.path,
                                             p.ok() ? score_digits(p.score, 4) : "",
                                             p.ok() ? fixed(p.percentile, 2) : "",
                                             p.ok() && outside_score_scale(p.score) ? "1" : "",
                                             p.framing,
                                             faces_text(p),
                                             p.face_number > 0 ? std::to_string(p.face_number) : "",
                                             box ? fixed(p.face_box.x, 1) : "",
                                             box ? fixed(p.face_box.y, 1) : "",
                                             box ? fixed(p.face_box.width, 1) : "",
                                             box ? fixed(p.face_box.height, 1) : "",
                                             p.error,
                                             warnings};
    for (size_t f = 0; f < fields.size(); ++f) {
      if (f) out += ',';
      out += csv_field(fields[f]);
    }
    out += "\n";
  }
  return out;
}

// ---- JSON ----------------------------------------------------------------------------------------

using Json = nlohmann::ordered_json;

// A number rounded to `decimals` places, or null when it is not finite (JSON has no NaN).
Json rounded(double value, int decimals) {
  if (!std::isfinite(value)) return nullptr;
  const double scale = std::pow(10.0, decimals);
  const double r = std::round(value * scale) / scale;
  return std::isfinite(r) ? Json(r) : Json(value);
}

// A score as score_digits writes it: 4 decimals, more where fewer would round it into the scale.
Json score_json(double score) {
  const std::string text = score_digits(score, 4);
  return text.empty() ? Json(nullptr) : Json(std::strtod(text.c_str(), nullptr));
}

Json text_or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

std::string format_json(const std::vector<ScoredPhoto>& ranked, const std::map<std::string, std::string>& meta) {
  Json doc = Json::object();
  doc["scale"] = kScale;
  doc["percentile"] = kPercentileMeaning;
  for (const auto& [key, value] : meta) {
    HOTLAP_CHECK(!doc.contains(key) && key != "photos", "score output: the JSON entry \"", key,
                 "\" is reserved and cannot be set from the caller's metadata");
    doc[key] = value;
  }
  Json photos = Json::array();
  int next_rank = 1;
  for (const auto& p : ranked) {
    Json j = Json::object();
    j["rank"] = p.ok() ? Json(next_rank++) : Json(nullptr);
    j["name"] = p.name;
    j["path"] = p.path;
    j["score"] = p.ok() ? score_json(p.score) : Json(nullptr);
    j["percentile"] = p.ok() ? rounded(p.percentile, 2) : Json(nullptr);
    j["framing"] = text_or_null(p.framing);
    j["outside_scale"] = p.ok() ? Json(outside_score_scale(p.score)) : Json(nullptr);
    j["faces"] = p.faces_found < 0 ? Json(nullptr) : Json(p.faces_found);
    j["face"] = p.face_number > 0 ? Json(p.face_number) : Json(nullptr);
    j["turned"] = p.turned_degrees;  // degrees clockwise the photo was turned to find its face; boxes in it
    if (shows_box(p)) {
      j["box"] = {{"x", rounded(p.face_box.x, 1)},
                  {"y", rounded(p.face_box.y, 1)},
                  {"width", rounded(p.face_box.width, 1)},
                  {"height", rounded(p.face_box.height, 1)}};
    } else {
      j["box"] = nullptr;
    }
    Json candidates = Json::array();
    for (const FaceCandidate& c : p.candidates)
      candidates.push_back({{"x", rounded(c.box.x, 1)},
                            {"y", rounded(c.box.y, 1)},
                            {"width", rounded(c.box.width, 1)},
                            {"height", rounded(c.box.height, 1)},
                            {"probability", rounded(c.probability, 4)},
                            {"implausible", text_or_null(c.implausible)},
                            {"scored", c.scored}});
    j["candidates"] = std::move(candidates);
    j["warnings"] = p.warnings;
    j["error"] = text_or_null(p.error);
    photos.push_back(std::move(j));
  }
  doc["photos"] = std::move(photos);
  // File names need not be UTF-8: invalid bytes become U+FFFD rather than an exception.
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// The components of `path` between its '/'s, without empty ones and ".".
std::vector<std::string> path_parts(const std::string& path) {
  std::vector<std::string> parts;
  for (size_t from = 0; from <= path.size();) {
    const size_t slash = std::min(path.find('/', from), path.size());
    std::string part = path.substr(from, slash - from);
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    from = slash + 1;
  }
  return parts;
}

// The last `count` components of `path` joined by '/' ("a/face.png" for 2 of "dup/a/face.png"); the
// path as given when it has no more components than that.
std::string path_tail(const std::string& path, size_t count) {
  const std::vector<std::string> parts = path_parts(path);
  if (count >= parts.size()) return path;
  std::string out;
  for (size_t i = parts.size() - count; i < parts.size(); ++i) out += (out.empty() ? "" : "/") + parts[i];
  return out;
}

std::string format_of_extension(const std::string& out) {
  const std::string ext = text_lines::lower(std::filesystem::path(out).extension().string());
  if (ext == ".csv") return "csv";
  if (ext == ".json") return "json";
  if (ext == ".md" || ext == ".markdown") return "md";
  return "";
}

}  // namespace

std::string score_digits(double score, int decimals) {
  std::string text = fixed(score, decimals);
  if (!outside_score_scale(score)) return text;
  // The double nearest a number just past the scale's end is told apart by its 17th significant digit
  // at most, so this ends long before 20 decimals.
  for (int d = decimals + 1; d <= 20 && !outside_score_scale(std::strtod(text.c_str(), nullptr)); ++d)
    text = fixed(score, d);
  return text;
}

void disambiguate_names(std::vector<ScoredPhoto>& photos) {
  // Per path, how far its name goes: 0 the name its rows were given (the stem), 1 the file name,
  // k the last k components, and at `top` (as many as it has) the path as given, which no other path
  // shares.
  struct Naming {
    std::string given;
    size_t level = 0, top = 0;
    std::string name(const std::string& path) const { return level == 0 ? given : path_tail(path, level); }
  };
  std::map<std::string, Naming> paths;
  for (const ScoredPhoto& p : photos)
    if (!paths.count(p.path)) paths[p.path] = {p.name, 0, std::max<size_t>(1, path_parts(p.path).size())};
  // Every path of a name that more than one path has goes one level further, until none is shared.
  for (bool changed = true; changed;) {
    changed = false;
    std::map<std::string, std::vector<std::string>> by_name;
    for (const auto& [path, naming] : paths) by_name[naming.name(path)].push_back(path);
    for (const auto& [name, sharing] : by_name) {
      if (sharing.size() < 2) continue;
      for (const std::string& path : sharing) {
        Naming& n = paths[path];
        if (n.level < n.top) {
          ++n.level;
          changed = true;
        }
      }
    }
  }
  for (ScoredPhoto& p : photos) {
    const Naming& n = paths[p.path];
    if (n.level > 0) p.name = n.name(p.path);
  }
}

std::string format_for_output(const std::string& format, const std::string& out) {
  if (!format.empty()) return format;
  const std::string by_extension = format_of_extension(out);
  return by_extension.empty() ? "table" : by_extension;
}

std::string format_note(const std::string& format, const std::string& out) {
  const std::string by_extension = format_of_extension(out);
  if (format.empty() || by_extension.empty() || by_extension == format) return "";
  return "note: --format " + format + " into " + out + " (its extension names " + by_extension + ")";
}

void rank_photos(std::vector<ScoredPhoto>& photos) {
  auto failed = std::stable_partition(photos.begin(), photos.end(), [](const ScoredPhoto& p) { return p.ok(); });
  std::stable_sort(photos.begin(), failed, [](const ScoredPhoto& a, const ScoredPhoto& b) {
    const bool a_nan = std::isnan(a.score), b_nan = std::isnan(b.score);
    if (a_nan != b_nan) return b_nan;  // a score before no score
    if (!a_nan && a.score != b.score) return a.score > b.score;
    if (a.name != b.name) return a.name < b.name;
    return a.path < b.path;
  });
}

const std::vector<std::string>& score_formats() {
  static const std::vector<std::string> formats = {"table", "csv", "json", "md"};
  return formats;
}

std::string format_scores(const std::vector<ScoredPhoto>& ranked, const std::string& format,
                          const std::map<std::string, std::string>& meta, size_t width) {
  if (format == "table") return format_table(ranked, width);
  if (format == "csv") return format_csv(ranked);
  if (format == "json") return format_json(ranked, meta);
  if (format == "md") return format_markdown(ranked);
  std::string valid;
  for (const auto& f : score_formats()) valid += (valid.empty() ? "" : ", ") + f;
  throw_error("score output: unknown format \"", format, "\" (valid: ", valid, ")");
}

}  // namespace hotlap

