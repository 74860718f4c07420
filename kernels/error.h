// hotlap::Error — the one exception type every layer throws.
//
// Design rule: errors name the op, the shapes involved and a hint. The apps catch Error at the top,
// print what() on one line and exit non-zero. Nothing in hotlap aborts on bad input.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace hotlap {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Builds a message from any streamable pieces: throw_error("conv2d: C=", c, " but weight has ", wc).
template <typename... Parts>
[[noreturn]] void throw_error(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  throw Error(os.str());
}

#define HOTLAP_CHECK(cond, ...)                    \
  do {                                             \
    if (!(cond)) ::hotlap::throw_error(__VA_ARGS__); \
  } while (0)

}  // namespace hotlap
