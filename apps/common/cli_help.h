// How every hotlap command's --help looks: two columns that fit the terminal, each option with its
// value's type, choices or range, its default, and what it cannot be combined with; each command ends
// with examples. CLI11's own formatter prints none of the defaults, one line per option however long,
// and a stray "{false}" after negated flags (--no-face-crop).
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace hotlap {

class HelpFormatter : public CLI::Formatter {
 public:
  explicit HelpFormatter(size_t width);

  std::string make_option(const CLI::Option* opt, bool is_positional) const override;
  std::string make_option_name(const CLI::Option* opt, bool is_positional) const override;
  std::string make_option_opts(const CLI::Option* opt) const override;
  std::string make_option_desc(const CLI::Option* opt) const override;
  std::string make_description(const CLI::App* app) const override;
  std::string make_subcommand(const CLI::App* sub) const override;
  std::string make_footer(const CLI::App* app) const override;

 private:
  std::string two_columns(const std::string& left, const std::string& right) const;
  size_t width_;
};

// The columns help is laid out in: the terminal's width when stdout is one, else $COLUMNS, else 80;
// never under 40 (nothing fits) or over 100 (lines that long are hard to read).
size_t help_width();

// `text` broken at spaces into lines of at most `width` characters (a word longer than that gets a line
// of its own), every line after the first indented by `indent` spaces, which count towards the width.
// Line breaks in `text` are kept.
std::string wrap_words(const std::string& text, size_t width, size_t indent);
// Each line of wrap_words(text, width - margin, hang) after `margin` spaces, ending in a newline: a
// list item that fits `width` columns (width 0: one line, unwrapped).
std::string wrapped_item(const std::string& text, size_t width, size_t margin, size_t hang);

// The candidate closest to `word` by edit distance (a swap of neighbouring letters is one edit), or "" when none is close enough to be a likely typo
// (at most a third of its letters wrong, and at least one letter right).
std::string closest_word(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace hotlap
