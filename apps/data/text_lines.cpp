#include "apps/data/text_lines.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernels/error.h"

namespace hotlap::text_lines {

namespace fs = std::filesystem;

std::string read_text(const std::string& path, const char* what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_error(what, " not found: ", path);
  if (fs::is_directory(path, ec)) throw_error(what, " is a folder, expected a file: ", path);
  // A pipe would block the read forever, a device (/dev/zero) never ends.
  if (!fs::is_regular_file(path, ec))
    throw_error(what, " is not a regular file (a pipe, a device or a socket): ", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("cannot open ", what, " ", path);
  std::ostringstream os;
  os << in.rdbuf();
  std::string text = os.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // UTF-8 BOM, as Excel writes CSVs
  return text;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string shown(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string out = "\"";
  out += s.size() > kMax ? std::string(s.substr(0, kMax)) + "..." : std::string(s);
  for (size_t i = 1; i < out.size(); ++i)
    if (static_cast<unsigned char>(out[i]) < 0x20 || out[i] == 0x7f) out[i] = '?';
  return out + "\"";
}

std::string bad_name(std::string_view name) {
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char code[8];
      std::snprintf(code, sizeof code, "0x%02x", u);
      return "image name holds a control character (byte " + std::string(code) + ")";
    }
  }
  return "";
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

char csv_delimiter(std::string_view header) {
  const auto commas = std::count(header.begin(), header.end(), ','),
             semis = std::count(header.begin(), header.end(), ';'),
             tabs = std::count(header.begin(), header.end(), '\t');
  if (semis > commas && semis >= tabs) return ';';
  if (tabs > commas && tabs > semis) return '\t';
  return ',';
}

std::vector<std::string> split_csv(std::string_view line, char delim) {
  std::vector<std::string> fields;
  std::string field;
  bool in_quotes = false, was_quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        field += c;
      }
    } else if (c == '"' && trim(field).empty()) {
      in_quotes = was_quoted = true;
      field.clear();
    } else if (c == delim) {
      fields.push_back(was_quoted ? field : std::string(trim(field)));
      field.clear();
      was_quoted = false;
    } else if (!(was_quoted && is_space(c))) {
      field += c;
    }
  }
  fields.push_back(was_quoted ? field : std::string(trim(field)));
  return fields;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace hotlap::text_lines
