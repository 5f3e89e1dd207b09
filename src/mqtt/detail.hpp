// Internal to src/mqtt, not part of the codec's API: a bounds-checked cursor
// over a packet body and the property helpers the CONNECT decoder shares
// with the other decoders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mqtt/codec.hpp"

namespace mqtt {
class Properties;
struct ConnectProperties;
struct WillProperties;
}  // namespace mqtt

namespace mqtt::detail {

// Every read fails (returns false) instead of running past the end; a failed
// read leaves the position unchanged except for varint (see there).
class Reader {
 public:
  explicit Reader(std::string_view buf) : buf_(buf) {}

  size_t left() const { return buf_.size() - pos_; }
  bool done() const { return pos_ == buf_.size(); }
  size_t pos() const { return pos_; }

  bool u8(uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<uint8_t>(buf_[pos_]);
    pos_ += 1;
    return true;
  }

  bool u16(uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<uint16_t>((static_cast<uint8_t>(buf_[pos_]) << 8) |
                              static_cast<uint8_t>(buf_[pos_ + 1]));
    pos_ += 2;
    return true;
  }

  bool u32(uint32_t& v) {
    if (left() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(buf_[pos_ + i]);
    pos_ += 4;
    return true;
  }

  bool bytes(size_t n, std::string_view& v) {
    if (left() < n) return false;
    v = buf_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  // A 2-byte length followed by that many bytes (UTF-8 string or binary data).
  bool prefixed(std::string_view& v) {
    if (left() < 2) return false;
    const size_t n = (static_cast<size_t>(static_cast<uint8_t>(buf_[pos_])) << 8) |
                     static_cast<uint8_t>(buf_[pos_ + 1]);
    if (left() < 2 + n) return false;
    v = buf_.substr(pos_ + 2, n);
    pos_ += 2 + n;
    return true;
  }

  // MQTT 5 variable byte integer, at most 4 bytes (lenient: a non-minimal
  // encoding is accepted; see varint_strict).
  bool varint(uint32_t& v) {
    v = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b = 0;
      if (!u8(b)) return false;
      v |= static_cast<uint32_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // Result of varint_strict.
  enum class Varint : uint8_t { Ok, Truncated, Invalid };

  // A variable byte integer in its minimal encoding [MQTT-1.5.5-1]: Truncated
  // when the buffer ends inside it, Invalid when longer than 4 bytes or not
  // minimal (a last byte of 0 after a continuation byte).
  Varint varint_strict(uint32_t& v) {
    v = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b = 0;
      if (!u8(b)) return Varint::Truncated;
      v |= static_cast<uint32_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) return (i > 0 && b == 0) ? Varint::Invalid : Varint::Ok;
    }
    return Varint::Invalid;
  }

  // The unread bytes, without consuming them.
  std::string_view remaining() const { return buf_.substr(pos_); }
  void skip(size_t n) { pos_ += n < left() ? n : left(); }

  std::string_view rest() {
    std::string_view v = buf_.substr(pos_);
    pos_ = buf_.size();
    return v;
  }

 private:
  std::string_view buf_;
  size_t pos_ = 0;
};

// Typed fields from a validated CONNECT / Will property block (decode5.cpp);
// ProtocolError for combinations decode_properties does not check
// (Authentication Data without Authentication Method).
DecodeResult fill_connect_properties(const Properties& p, ConnectProperties& out);
DecodeResult fill_will_properties(const Properties& p, WillProperties& out);

}  // namespace mqtt::detail
