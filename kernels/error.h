// hotlap::Error — the one exception type every layer throws.
//
// Design rule: errors name the op, the shapes involved and a hint. The apps catch Error at the top,
// print what() on one line and exit non-zero. Nothing in hotlap aborts on bad input.
#pragma once

#include <algorithm>
#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace hotlap {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Memory ran out (a host or device allocation failed even after the caches were given back). Its own
// type, so that whoever knows what was being allocated -- a network being built, a training step at
// some batch size -- can say so and what would fit.
class OutOfMemory : public Error {
 public:
  explicit OutOfMemory(const std::string& message) : Error(message) {}
};

// Builds a message from any streamable pieces: throw_error("conv2d: C=", c, " but weight has ", wc).
template <typename... Parts>
[[noreturn]] void throw_error(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  throw Error(os.str());
}

// "1 epoch", "3 epochs": a count and its noun, made plural by an "s" unless the count is one.
inline std::string counted(long long n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// The text with every run of more than `max_word` non-blank characters (a path or name of any
// length can reach a message) cut in its middle: "first 100...(N bytes left out)...last 40".
// Messages stay readable lines whatever a file's name is.
inline std::string elide_long_words(const std::string& text, size_t max_word = 160) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t end = std::min(text.find_first_of(" \t\n", i), text.size());
    if (end - i > max_word) {
      // Cut between UTF-8 characters, never inside one (continuation bytes are 10xxxxxx).
      auto continuation = [&](size_t at) { return (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80; };
      size_t head = max_word * 5 / 8, tail_start = end - max_word / 4;
      while (head > 0 && continuation(i + head)) --head;
      while (tail_start < end && continuation(tail_start)) ++tail_start;
      out.append(text, i, head);
      out += "...(" + std::to_string(tail_start - i - head) + " bytes left out)...";
      out.append(text, tail_start, end - tail_start);
    } else {
      out.append(text, i, end - i);
    }
    if (end < text.size()) out += text[end];
    i = end + 1;
  }
  return out;
}

#define HOTLAP_CHECK(cond, ...)                    \
  do {                                             \
    if (!(cond)) ::hotlap::throw_error(__VA_ARGS__); \
  } while (0)

}  // namespace hotlap
