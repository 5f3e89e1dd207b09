// libFuzzer target for topic validation and matching. The input is split at
// its first NUL byte into a filter and a name (NUL never occurs in a valid
// topic). valid_utf8, valid_topic_* and topic_matches are checked against
// simple reference implementations written here.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "mqtt/topic.hpp"

namespace {

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

// Reference UTF-8 check: decode each sequence by its length, then reject the
// code points MQTT forbids.
bool ref_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len]) return false;                // overlong
    if (cp == 0) return false;                       // U+0000
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // surrogates
    if (cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

std::vector<std::string_view> levels(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

bool ref_filter(std::string_view f) {
  if (f.empty() || f.size() > 65535 || !ref_utf8(f)) return false;
  const auto lv = levels(f);
  for (size_t i = 0; i < lv.size(); ++i) {
    const bool has_plus = lv[i].find('+') != std::string_view::npos;
    const bool has_hash = lv[i].find('#') != std::string_view::npos;
    if (has_plus && lv[i] != "+") return false;
    if (has_hash && (lv[i] != "#" || i + 1 != lv.size())) return false;
  }
  return true;
}

bool ref_name(std::string_view n) {
  return !n.empty() && n.size() <= 65535 && ref_utf8(n) &&
         n.find_first_of("+#") == std::string_view::npos;
}

bool ref_matches(std::string_view filter, std::string_view name) {
  if (!name.empty() && name[0] == '$' && !filter.empty() &&
      (filter[0] == '+' || filter[0] == '#')) {
    return false;
  }
  const auto f = levels(filter);
  const auto n = levels(name);
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= n.size()) return false;
    if (f[i] != "+" && f[i] != n[i]) return false;
  }
  return f.size() == n.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view filter = in.substr(0, nul);
  const std::string_view name = nul == std::string_view::npos ? in : in.substr(nul + 1);

  FUZZ_CHECK(mqtt::valid_utf8(in) == ref_utf8(in));
  FUZZ_CHECK(mqtt::valid_utf8(name) == ref_utf8(name));

  const bool filter_ok = mqtt::valid_topic_filter(filter);
  const bool name_ok = mqtt::valid_topic_name(name);
  FUZZ_CHECK(filter_ok == ref_filter(filter));
  FUZZ_CHECK(name_ok == ref_name(name));
  FUZZ_CHECK(mqtt::valid_topic_name(filter) == ref_name(filter));
  FUZZ_CHECK(mqtt::valid_topic_filter(name) == ref_filter(name));

  // Must not crash on any input, valid or not.
  const bool m = mqtt::topic_matches(filter, name);
  (void)mqtt::topic_matches(name, filter);
  if (filter_ok && name_ok) FUZZ_CHECK(m == ref_matches(filter, name));
  if (name_ok) {
    // A topic name is also a valid filter, and matches itself.
    FUZZ_CHECK(mqtt::valid_topic_filter(name));
    FUZZ_CHECK(mqtt::topic_matches(name, name));
  }
  return 0;
}
