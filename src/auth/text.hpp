// Small text helpers shared by the password and ACL file parsers (internal).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "util/text.hpp"

namespace auth::detail {

inline bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

using util::trim;

// Calls f(line_number, line) for each line of `text` (1-based, without the
// '\n' and a trailing '\r'). A final line without '\n' is included.
template <class F>
void for_each_line(std::string_view text, F&& f) {
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    f(number, line);
  }
}

// Whether a line carries nothing: blank, or a comment ('#' first after blanks).
inline bool is_ignorable(std::string_view line) {
  line = trim(line);
  return line.empty() || line.front() == '#';
}

// "<source>:<line>: <reason>" appended to `errors`, one per line.
inline void add_error(std::string& errors, std::string_view source, size_t line,
                      std::string_view reason) {
  if (!errors.empty()) errors += '\n';
  errors += source;
  errors += ':';
  errors += std::to_string(line);
  errors += ": ";
  errors += reason;
}

// A value quoted for error messages, cut to a readable length.
inline std::string quoted(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  out += s.substr(0, kMax);
  if (s.size() > kMax) out += "...";
  out += '\'';
  return out;
}

}  // namespace auth::detail
