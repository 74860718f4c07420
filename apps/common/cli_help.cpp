// The help layout of apps/common/cli_help.h.
#include "apps/common/cli_help.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "apps/common/progress.h"

namespace hotlap {
namespace {

constexpr size_t kNameColumn = 24;  // where the descriptions start

// CLI11's type name with its validator's text: "INT:INT in [1 - 1024]" -> "INT[1-1024]",
// "TEXT:{paper,seed}" -> "{paper,seed}", "UINT:UINT64" -> "UINT64".
std::string compact_type(const std::string& type) {
  const size_t colon = type.find(':');
  if (colon == std::string::npos) return type;
  const std::string base = type.substr(0, colon), rest = type.substr(colon + 1);
  if (rest.empty()) return base;
  if (rest.front() == '{') return rest;
  const size_t open = rest.find(" in ["), dash = rest.find(" - "), close = rest.rfind(']');
  if (open != std::string::npos && dash != std::string::npos && close != std::string::npos && dash > open)
    return base + "[" + rest.substr(open + 5, dash - open - 5) + "-" + rest.substr(dash + 3, close - dash - 3) + "]";
  return rest;
}

template <class Options>
std::string names_of(const Options& options) {
  std::string out;
  for (const CLI::Option* o : options) out += (out.empty() ? "" : ", ") + o->get_name();
  return out;
}

}  // namespace

HelpFormatter::HelpFormatter(size_t width) : width_(width) { column_width(kNameColumn); }

std::string HelpFormatter::two_columns(const std::string& left, const std::string& right) const {
  std::string out = "  " + left;
  if (right.empty()) return out + "\n";
  if (out.size() + 1 > kNameColumn)
    out += "\n" + std::string(kNameColumn, ' ');
  else
    out.resize(kNameColumn, ' ');
  return out + wrap_words(right, width_, kNameColumn) + "\n";
}

std::string HelpFormatter::make_option(const CLI::Option* opt, bool is_positional) const {
  return two_columns(make_option_name(opt, is_positional) + make_option_opts(opt), make_option_desc(opt));
}

std::string HelpFormatter::make_option_name(const CLI::Option* opt, bool is_positional) const {
  if (is_positional) return opt->get_name(true, false);
  // A negated flag (!--no-face-crop) is listed with the value it sets, "--no-face-crop{false}".
  std::string names = opt->get_name(false, true), out;
  bool in_braces = false;
  for (char c : names) {
    in_braces = (in_braces || c == '{') && c != '}';
    if (!in_braces && c != '}') out += c;
  }
  return out;
}

std::string HelpFormatter::make_option_opts(const CLI::Option* opt) const {
  if (!opt->get_option_text().empty()) return " " + opt->get_option_text();
  std::string out;
  if (opt->get_type_size() != 0) {
    if (!opt->get_type_name().empty()) out += " " + compact_type(opt->get_type_name());
    if (opt->get_expected_max() == CLI::detail::expected_max_vector_size) out += " ...";
    if (opt->get_required()) out += " REQUIRED";
  }
  return out;
}

std::string HelpFormatter::make_option_desc(const CLI::Option* opt) const {
  std::string desc = opt->get_description();
  if (!opt->get_needs().empty()) desc += "; with " + names_of(opt->get_needs());
  if (!opt->get_excludes().empty()) desc += "; not with " + names_of(opt->get_excludes());
  // Flags have no value to default; an option whose text already says its default keeps its words.
  if (opt->get_type_size() != 0 && !opt->get_default_str().empty() && desc.find("(default") == std::string::npos)
    desc += " (default: " + opt->get_default_str() + ")";
  return desc;
}

std::string HelpFormatter::make_description(const CLI::App* app) const {
  const std::string desc = app->get_description();
  return desc.empty() ? "" : wrap_words(desc, width_, 0) + "\n";
}

std::string HelpFormatter::make_subcommand(const CLI::App* sub) const {
  return two_columns(sub->get_display_name(), sub->get_description());
}

// Prose lines are wrapped; indented lines (the examples, command lines to copy) are kept as written.
std::string HelpFormatter::make_footer(const CLI::App* app) const {
  std::istringstream lines(app->get_footer());
  std::string out, line;
  while (std::getline(lines, line))
    out += (line.empty() || line.front() == ' ' ? line : wrap_words(line, width_, 0)) + "\n";
  return out;
}

size_t help_width() {
  size_t columns = static_cast<size_t>(terminal_columns());
  if (columns == 0)
    if (const char* env = std::getenv("COLUMNS"); env != nullptr) columns = std::strtoul(env, nullptr, 10);
  if (columns == 0) columns = 80;
  return std::clamp<size_t>(columns, 40, 100);
}

std::string wrap_words(const std::string& text, size_t width, size_t indent) {
  const size_t room = width > indent + 10 ? width - indent : 10;
  std::string out, line;
  auto flush = [&] {
    out += (out.empty() ? "" : "\n" + std::string(indent, ' ')) + line;
    line.clear();
  };
  std::istringstream paragraphs(text);
  std::string paragraph;
  bool first = true;
  while (std::getline(paragraphs, paragraph)) {
    if (!first) flush();
    first = false;
    std::istringstream words(paragraph);
    std::string word;
    bool any = false;
    while (words >> word) {
      if (any && line.size() + 1 + word.size() > room) flush();
      line += (line.empty() ? "" : " ") + word;
      any = true;
    }
  }
  if (!line.empty() || out.empty()) flush();
  return out;
}

std::string wrapped_item(const std::string& text, size_t width, size_t margin, size_t hang) {
  const std::string pad(margin, ' ');
  if (width == 0) return pad + text + "\n";
  std::istringstream lines(wrap_words(text, width > margin ? width - margin : 0, hang));
  std::string out, line;
  while (std::getline(lines, line)) out += pad + line + "\n";
  return out;
}

std::string closest_word(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = word.size();
  for (const std::string& c : candidates) {
    // Edit distance counting a swap of neighbours as one edit ("trian"), the commonest typo.
    std::vector<std::vector<size_t>> d(word.size() + 1, std::vector<size_t>(c.size() + 1));
    for (size_t i = 0; i <= word.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= c.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= word.size(); ++i)
      for (size_t j = 1; j <= c.size(); ++j) {
        d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (word[i - 1] == c[j - 1] ? 0 : 1)});
        if (i > 1 && j > 1 && word[i - 1] == c[j - 2] && word[i - 2] == c[j - 1])
          d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    if (d[word.size()][c.size()] < best_distance) best_distance = d[word.size()][c.size()], best = c;
  }
  return best_distance <= std::max<size_t>(1, word.size() / 3) ? best : "";
}

}  // namespace hotlap
