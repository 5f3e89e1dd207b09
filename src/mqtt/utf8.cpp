// UTF-8 validation as MQTT requires it (section 1.5.3).
#include <cstdint>
#include <cstring>
#include <string_view>

#include "mqtt/topic.hpp"

namespace mqtt {

namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// True when all 8 bytes are ASCII in 0x01..0x7F.
inline bool plain_ascii8(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  const uint64_t has_zero = (v - kOnes) & ~v & kHighs;
  return ((v & kHighs) | has_zero) == 0;
}

inline bool is_cont(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (n - i >= 8 && plain_ascii8(p + i)) {
      i += 8;
      continue;
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c == 0) return false;  // U+0000 [MQTT-1.5.3-2]
      ++i;
      continue;
    }
    // Well-formed sequences per Unicode table 3-7: the second byte's range
    // depends on the lead byte, which excludes overlong forms, surrogates
    // (ED A0..BF) and code points above U+10FFFF. [MQTT-1.5.3-1]
    size_t len;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;  // 80..C1 (continuation or overlong lead), F5..FF
    }
    if (n - i < len) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      if (!is_cont(p[i + k])) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace mqtt
