#include "ops/exposition.hpp"

#include <fmt/format.h>

#include <cmath>

namespace ops {

std::string Exposition::escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Exposition::escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Exposition::format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help),
                 name, type);
}

void Exposition::name_and_labels(std::string_view name, const Labels& labels) {
  out_ += name;
  if (labels.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_ += ',';
    first = false;
    fmt::format_to(std::back_inserter(out_), "{}=\"{}\"", k, escape_label_value(v));
  }
  out_ += '}';
}

void Exposition::sample(std::string_view name, double value, const Labels& labels) {
  name_and_labels(name, labels);
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void Exposition::sample(std::string_view name, uint64_t value, const Labels& labels) {
  // Integers exactly, not through a double (counters pass 2^53 eventually).
  name_and_labels(name, labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void Exposition::counter(std::string_view name, std::string_view help, uint64_t value) {
  family(name, "counter", help);
  sample(name, value);
}

void Exposition::gauge(std::string_view name, std::string_view help, uint64_t value) {
  family(name, "gauge", help);
  sample(name, value);
}

}  // namespace ops
