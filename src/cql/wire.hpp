// The body notations of protocol v4 section 3 ([int], [long], [short], [string],
// [long string], [bytes], [value], [short bytes], [string list], [string map],
// [string multimap], [consistency]) as a Writer that appends to a buffer and a
// Reader that walks a byte span. Big-endian throughout.
//
// Both are sticky: the first failure (a length that does not fit, a read past
// the end) sets a flag, later calls do nothing and return zero/empty values, and
// the caller checks ok() once per logical step. Counts read from the wire are
// never trusted for allocation before enough bytes are known to be present.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cql {

enum class Consistency : uint16_t {
  Any = 0x0000,
  One = 0x0001,
  Two = 0x0002,
  Three = 0x0003,
  Quorum = 0x0004,
  All = 0x0005,
  LocalQuorum = 0x0006,
  EachQuorum = 0x0007,
  Serial = 0x0008,
  LocalSerial = 0x0009,
  LocalOne = 0x000A,
};

// A bound value for QUERY/EXECUTE/BATCH ([value]): bytes, null, or "not set".
// Non-owning: `bytes` must stay valid until the encoder that takes it returns.
struct Value {
  enum class Kind : uint8_t { Bytes, Null, Unset };
  Kind kind = Kind::Bytes;
  std::string_view bytes;

  static Value of(std::string_view b) { return Value{Kind::Bytes, b}; }
  static Value null() { return Value{Kind::Null, {}}; }
  static Value unset() { return Value{Kind::Unset, {}}; }
};

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) {}

  bool ok() const { return ok_; }
  size_t size() const { return out_.size(); }
  std::vector<uint8_t>& buffer() { return out_; }

  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v);
  void i32(int32_t v);
  void i64(int64_t v);
  void consistency(Consistency c) { u16(static_cast<uint16_t>(c)); }
  void raw(std::string_view bytes);
  void string(std::string_view s);       // [string]: fails beyond 65535 bytes
  void long_string(std::string_view s);  // [long string]
  void bytes(std::string_view b);        // [bytes], non-null
  void null_bytes() { i32(-1); }
  void value(const Value& v);            // [value]: bytes, null (-1) or unset (-2)
  void short_bytes(std::string_view b);  // [short bytes]
  void string_list(std::span<const std::string_view> items);
  void string_map(std::span<const std::pair<std::string_view, std::string_view>> items);
  // Writes a big-endian int32 at `pos` (for lengths known only at the end).
  void patch_i32(size_t pos, int32_t v);
  void fail() { ok_ = false; }

 private:
  std::vector<uint8_t>& out_;
  bool ok_ = true;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  size_t position() const { return pos_; }
  // True (and nothing consumed) when n more bytes are present; else fails.
  bool need(size_t n);
  void fail() { ok_ = false; }

  uint8_t u8();
  uint16_t u16();
  int32_t i32();
  int64_t i64();
  std::string_view raw(size_t n);
  void skip(size_t n) { (void)raw(n); }

  std::string string();                // [string]
  std::string long_string();           // [long string]; negative length fails
  std::optional<std::string> bytes();  // [bytes]; negative length is null
  std::string short_bytes();           // [short bytes]
  std::vector<std::string> string_list();
  std::vector<std::pair<std::string, std::string>> string_map();
  std::vector<std::pair<std::string, std::vector<std::string>>> string_multimap();
  void skip_bytes_map();  // [bytes map], e.g. a response's custom payload

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Typed value helpers for the column types the project uses.
std::string encode_bigint(int64_t v);  // bigint, timestamp (ms since epoch), counter
std::optional<int64_t> decode_bigint(std::string_view b);
std::string encode_int(int32_t v);
std::optional<int32_t> decode_int(std::string_view b);

}  // namespace cql
