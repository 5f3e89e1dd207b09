#include "ops/json_log.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

namespace ops {

namespace {

// Length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0.
size_t utf8_sequence(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

void append_json_string(std::string_view s, std::string& out) {
  out += '"';
  while (!s.empty()) {
    const auto c = static_cast<unsigned char>(s[0]);
    size_t used = 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else if (c < 0x80) {
          out += static_cast<char>(c);
        } else if (size_t n = utf8_sequence(s); n > 0) {
          out.append(s.substr(0, n));
          used = n;
        } else {
          out += "\\ufffd";  // one replacement per bad byte
        }
    }
    s.remove_prefix(used);
  }
  out += '"';
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  const auto since_epoch = msg.time.time_since_epoch();
  const std::time_t secs = duration_cast<seconds>(since_epoch).count();
  const auto ms = duration_cast<milliseconds>(since_epoch).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  std::string line;
  line.reserve(msg.payload.size() + 80);
  fmt::format_to(
      std::back_inserter(line),
      "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"level\":", utc.tm_year + 1900,
      utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
  const auto level = spdlog::level::to_string_view(msg.level);
  append_json_string(std::string_view(level.data(), level.size()), line);
  line += ",\"message\":";
  append_json_string(std::string_view(msg.payload.data(), msg.payload.size()), line);
  line += "}\n";
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

}  // namespace ops
