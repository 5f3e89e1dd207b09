#include "cluster/subject.hpp"

#include <cstdint>

namespace cluster {
namespace {

constexpr std::string_view kPlain = "m.";
constexpr std::string_view kDollar = "m$.";
constexpr char kHex[] = "0123456789ABCDEF";

// The bytes a token cannot carry as they are: NATS' token separator '.', its
// wildcards '*' and '>', the space and control bytes its protocol line cannot
// hold, and our own escape character '%' (so a "%" token stays the empty level).
bool needs_escape(unsigned char c) {
  return c < 0x20 || c == 0x7f || c == ' ' || c == '%' || c == '.' || c == '*' || c == '>';
}

void append_level(std::string_view level, std::string& out) {
  if (level.empty()) {
    out.push_back('%');
    return;
  }
  for (const char ch : level) {
    const auto c = static_cast<unsigned char>(ch);
    if (needs_escape(c)) {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
}

// Appends the levels of `s` as tokens; with `filter`, a whole-level '+' becomes
// the NATS single-token wildcard.
void append_levels(std::string_view s, bool filter, std::string& out) {
  out.append(!s.empty() && s.front() == '$' ? kDollar : kPlain);
  size_t start = 0;
  for (;;) {
    const size_t slash = s.find('/', start);
    const std::string_view level =
        s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (filter && level == "+") {
      out.push_back('*');
    } else {
      append_level(level, out);
    }
    if (slash == std::string_view::npos) return;
    out.push_back('.');
    start = slash + 1;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower case is not ours: the encoding is canonical
}

// Decodes one non-wildcard token into `out`; false when the encoder could not
// have produced it.
bool decode_token(std::string_view token, std::string& out) {
  if (token == "%") return true;  // the empty level
  for (size_t i = 0; i < token.size(); ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (c != '%') {
      if (needs_escape(c)) return false;
      out.push_back(token[i]);
      continue;
    }
    if (i + 2 >= token.size()) return false;  // "%" or "%X" cut short
    const int hi = hex_value(token[i + 1]);
    const int lo = hex_value(token[i + 2]);
    if (hi < 0 || lo < 0) return false;
    const auto byte = static_cast<unsigned char>(hi << 4 | lo);
    if (!needs_escape(byte)) return false;  // "%41" for 'A' is not canonical
    out.push_back(static_cast<char>(byte));
    i += 2;
  }
  return true;
}

}  // namespace

void topic_subject(std::string_view topic, std::string& out) {
  out.clear();
  append_levels(topic, false, out);
}

std::string topic_subject(std::string_view topic) {
  std::string out;
  out.reserve(kDollar.size() + topic.size() + 8);
  topic_subject(topic, out);
  return out;
}

std::vector<std::string> filter_subjects(std::string_view filter) {
  if (filter == "#") return {std::string(kPlain) + ">"};
  std::string base;
  base.reserve(kDollar.size() + filter.size() + 8);
  if (filter.ends_with("/#")) {
    append_levels(filter.substr(0, filter.size() - 2), true, base);
    std::string all = base + ".>";
    return {std::move(base), std::move(all)};
  }
  append_levels(filter, true, base);
  return {std::move(base)};
}

std::optional<std::string> subject_to_topic(std::string_view subject) {
  bool dollar = false;
  if (subject.starts_with(kDollar)) {
    dollar = true;
    subject.remove_prefix(kDollar.size());
  } else if (subject.starts_with(kPlain)) {
    subject.remove_prefix(kPlain.size());
  } else {
    return std::nullopt;
  }
  std::string topic;
  topic.reserve(subject.size());
  size_t start = 0;
  bool first = true;
  for (;;) {
    const size_t dot = subject.find('.', start);
    const bool last = dot == std::string_view::npos;
    const std::string_view token =
        subject.substr(start, last ? std::string_view::npos : dot - start);
    if (token.empty()) return std::nullopt;
    if (!first) topic.push_back('/');
    const size_t level_start = topic.size();
    if (token == "*") {
      topic.push_back('+');
    } else if (token == ">") {
      if (!last) return std::nullopt;  // NATS allows '>' only as the last token
      topic.push_back('#');
    } else if (!decode_token(token, topic)) {
      return std::nullopt;
    }
    if (first) {
      // The namespace is chosen by the first level's first byte, and '$' is
      // never escaped, so this is exactly what the encoder would have chosen.
      const bool starts_dollar = topic.size() > level_start && topic[level_start] == '$';
      if (starts_dollar != dollar) return std::nullopt;
      first = false;
    }
    if (last) return topic;
    start = dot + 1;
  }
}

std::string queue_name(std::string_view group, std::string_view filter) {
  // FNV-1a, 64-bit: offset basis and prime from the FNV reference.
  uint64_t h = 14695981039346656037ull;
  const auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (const char c : group) mix(static_cast<unsigned char>(c));
  mix(0);
  for (const char c : filter) mix(static_cast<unsigned char>(c));
  std::string out = "s.";
  static constexpr char kLowerHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kLowerHex[(h >> shift) & 0xf]);
  return out;
}

}  // namespace cluster
