// Reading the small text files users hand hotlap -- label lists, ratings and class CSVs: the whole file
// (refusing what is not a regular file), its non-blank lines with their numbers, CSV fields, and
// excerpts of a bad line short and clean enough for a one-line error. The parsers of those files
// (apps/data/scut.cpp, apps/data/image_folder.cpp) are built from these.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hotlap::text_lines {

// The file's bytes, without a UTF-8 byte-order mark (as Excel writes CSVs). `what` names the file in
// errors ("ratings CSV not found: PATH"); a folder, a pipe or a device is refused by name.
std::string read_text(const std::string& path, const char* what);

bool is_space(char c);
std::string_view trim(std::string_view s);
std::string lower(std::string s);

// Calls fn(line_number, trimmed_line) for every non-blank line; \n and \r\n endings, last line with or
// without newline. Returns the number of non-blank lines.
template <typename Fn>
int64_t for_each_line(const std::string& text, Fn&& fn) {
  int64_t number = 0, nonblank = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++number;
    std::string_view line = trim(std::string_view(text).substr(pos, end - pos));
    if (!line.empty()) {
      ++nonblank;
      fn(number, line);
    }
    pos = end + 1;
  }
  return nonblank;
}

// A quoted excerpt of a line for a message: at most 60 bytes, control characters shown as '?' so
// that the message stays one clean line.
std::string shown(std::string_view s);

// Why an image name cannot be a file name, or "" when it can: a control character (a NUL byte ends
// the name the file system sees, so "AF1.jpg\0x" would name AF1.jpg and slip past the duplicate check).
std::string bad_name(std::string_view name);

// A CSV header's delimiter: a comma unless the line clearly uses semicolons (European Excel) or tabs.
char csv_delimiter(std::string_view header);

// One field of a CSV line to write, RFC 4180: quoted when it holds a comma, a quote or a line break,
// its quotes doubled (split_csv reads it back).
std::string csv_field(const std::string& s);

// Splits one CSV line: fields may be quoted ("a,b" keeps its comma, "" inside quotes is one quote);
// unquoted fields are trimmed.
std::vector<std::string> split_csv(std::string_view line, char delim);

}  // namespace hotlap::text_lines
