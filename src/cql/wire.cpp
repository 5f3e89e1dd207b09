#include "cql/wire.hpp"

#include <limits>

namespace cql {

namespace {

constexpr size_t kMaxShort = std::numeric_limits<uint16_t>::max();
constexpr size_t kMaxInt = static_cast<size_t>(std::numeric_limits<int32_t>::max());

}  // namespace

// ---- Writer -------------------------------------------------------------------------------

void Writer::u16(uint16_t v) {
  out_.push_back(static_cast<uint8_t>(v >> 8));
  out_.push_back(static_cast<uint8_t>(v));
}

void Writer::i32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<uint8_t>(u >> shift));
}

void Writer::i64(int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<uint8_t>(u >> shift));
}

void Writer::raw(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  out_.insert(out_.end(), p, p + bytes.size());
}

void Writer::string(std::string_view s) {
  if (s.size() > kMaxShort) {
    fail();
    return;
  }
  u16(static_cast<uint16_t>(s.size()));
  raw(s);
}

void Writer::long_string(std::string_view s) {
  if (s.size() > kMaxInt) {
    fail();
    return;
  }
  i32(static_cast<int32_t>(s.size()));
  raw(s);
}

void Writer::bytes(std::string_view b) {
  long_string(b);
}

void Writer::value(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Bytes:
      bytes(v.bytes);
      return;
    case Value::Kind::Null:
      i32(-1);
      return;
    case Value::Kind::Unset:
      i32(-2);
      return;
  }
}

void Writer::short_bytes(std::string_view b) {
  string(b);
}

void Writer::string_list(std::span<const std::string_view> items) {
  if (items.size() > kMaxShort) {
    fail();
    return;
  }
  u16(static_cast<uint16_t>(items.size()));
  for (auto s : items) string(s);
}

void Writer::string_map(std::span<const std::pair<std::string_view, std::string_view>> items) {
  if (items.size() > kMaxShort) {
    fail();
    return;
  }
  u16(static_cast<uint16_t>(items.size()));
  for (const auto& [k, v] : items) {
    string(k);
    string(v);
  }
}

void Writer::patch_i32(size_t pos, int32_t v) {
  if (pos + 4 > out_.size()) {
    fail();
    return;
  }
  const auto u = static_cast<uint32_t>(v);
  out_[pos] = static_cast<uint8_t>(u >> 24);
  out_[pos + 1] = static_cast<uint8_t>(u >> 16);
  out_[pos + 2] = static_cast<uint8_t>(u >> 8);
  out_[pos + 3] = static_cast<uint8_t>(u);
}

// ---- Reader -------------------------------------------------------------------------------

bool Reader::need(size_t n) {
  if (!ok_) return false;
  if (in_.size() - pos_ < n) {
    ok_ = false;
    return false;
  }
  return true;
}

uint8_t Reader::u8() {
  if (!need(1)) return 0;
  return in_[pos_++];
}

uint16_t Reader::u16() {
  if (!need(2)) return 0;
  const auto v = static_cast<uint16_t>((in_[pos_] << 8) | in_[pos_ + 1]);
  pos_ += 2;
  return v;
}

int32_t Reader::i32() {
  if (!need(4)) return 0;
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u = (u << 8) | in_[pos_ + static_cast<size_t>(i)];
  pos_ += 4;
  return static_cast<int32_t>(u);
}

int64_t Reader::i64() {
  if (!need(8)) return 0;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | in_[pos_ + static_cast<size_t>(i)];
  pos_ += 8;
  return static_cast<int64_t>(u);
}

std::string_view Reader::raw(size_t n) {
  if (!need(n)) return {};
  std::string_view out(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  return out;
}

std::string Reader::string() {
  const uint16_t n = u16();
  return std::string(raw(n));
}

std::string Reader::long_string() {
  const int32_t n = i32();
  if (n < 0) {
    fail();
    return {};
  }
  return std::string(raw(static_cast<size_t>(n)));
}

std::optional<std::string> Reader::bytes() {
  const int32_t n = i32();
  if (!ok_ || n < 0) return std::nullopt;
  return std::string(raw(static_cast<size_t>(n)));
}

std::string Reader::short_bytes() {
  return string();
}

std::vector<std::string> Reader::string_list() {
  const uint16_t n = u16();
  std::vector<std::string> out;
  // Each [string] takes at least 2 bytes: do not trust n further than that.
  if (!need(size_t{n} * 2)) return out;
  out.reserve(n);
  for (uint16_t i = 0; i < n && ok_; ++i) out.push_back(string());
  if (!ok_) out.clear();
  return out;
}

std::vector<std::pair<std::string, std::string>> Reader::string_map() {
  const uint16_t n = u16();
  std::vector<std::pair<std::string, std::string>> out;
  if (!need(size_t{n} * 4)) return out;
  out.reserve(n);
  for (uint16_t i = 0; i < n && ok_; ++i) {
    auto k = string();
    auto v = string();
    out.emplace_back(std::move(k), std::move(v));
  }
  if (!ok_) out.clear();
  return out;
}

std::vector<std::pair<std::string, std::vector<std::string>>> Reader::string_multimap() {
  const uint16_t n = u16();
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  if (!need(size_t{n} * 4)) return out;
  out.reserve(n);
  for (uint16_t i = 0; i < n && ok_; ++i) {
    auto k = string();
    auto v = string_list();
    out.emplace_back(std::move(k), std::move(v));
  }
  if (!ok_) out.clear();
  return out;
}

void Reader::skip_bytes_map() {
  const uint16_t n = u16();
  for (uint16_t i = 0; i < n && ok_; ++i) {
    skip(u16());
    const int32_t len = i32();
    if (len > 0) skip(static_cast<size_t>(len));
  }
}

// ---- typed values -------------------------------------------------------------------------

std::string encode_bigint(int64_t v) {
  std::string out(8, '\0');
  const auto u = static_cast<uint64_t>(v);
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<char>(u >> (56 - 8 * i));
  return out;
}

std::optional<int64_t> decode_bigint(std::string_view b) {
  if (b.size() != 8) return std::nullopt;
  uint64_t u = 0;
  for (char c : b) u = (u << 8) | static_cast<uint8_t>(c);
  return static_cast<int64_t>(u);
}

std::string encode_int(int32_t v) {
  std::string out(4, '\0');
  const auto u = static_cast<uint32_t>(v);
  for (size_t i = 0; i < 4; ++i) out[i] = static_cast<char>(u >> (24 - 8 * i));
  return out;
}

std::optional<int32_t> decode_int(std::string_view b) {
  if (b.size() != 4) return std::nullopt;
  uint32_t u = 0;
  for (char c : b) u = (u << 8) | static_cast<uint8_t>(c);
  return static_cast<int32_t>(u);
}

}  // namespace cql
