// --log-format json: one JSON object per log line,
//   {"time":"2026-12-07T05:53:25.123Z","level":"info","message":"..."}
// for log shippers that parse JSON rather than our text lines.
#pragma once

#include <spdlog/formatter.h>

#include <string>
#include <string_view>

namespace ops {

// Appends `s` as a JSON string, quotes included: quote, backslash and control
// characters escaped; bytes that are not UTF-8 become U+FFFD, so that every
// line is valid JSON whatever a client sent.
void append_json_string(std::string_view s, std::string& out);

class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace ops
