// Writes the Prometheus text exposition format 0.0.4: per metric family a
// HELP and a TYPE line, then its samples. Escaping follows the format's rules
// (label values: backslash, double quote, newline; HELP: backslash, newline).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ops {

inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

class Exposition {
 public:
  using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

  // Starts a family; `type` is "counter", "gauge", "untyped", ...
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, double value, const Labels& labels = {});
  void sample(std::string_view name, uint64_t value, const Labels& labels = {});
  // A family with one unlabelled sample, the common case.
  void counter(std::string_view name, std::string_view help, uint64_t value);
  void gauge(std::string_view name, std::string_view help, uint64_t value);

  const std::string& text() const { return out_; }

  static std::string escape_label_value(std::string_view v);
  static std::string escape_help(std::string_view v);
  // Go's float formatting as Prometheus clients do: shortest round trip,
  // "NaN", "+Inf", "-Inf".
  static std::string format_value(double v);

 private:
  void name_and_labels(std::string_view name, const Labels& labels);
  std::string out_;
};

}  // namespace ops
