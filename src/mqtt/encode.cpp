// Encoders for MQTT 3.1 / 3.1.1 packets. A packet that cannot be represented
// (a string over 65535 bytes, a remaining length over kMaxRemainingLength)
// appends nothing.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"

namespace mqtt {

namespace {

constexpr size_t kMaxString = 65535;

uint8_t first_byte(PacketType type, unsigned flags) {
  return static_cast<uint8_t>((static_cast<unsigned>(type) << 4) | (flags & 0x0F));
}

void put_u8(std::string& out, uint8_t v) {
  out.push_back(static_cast<char>(v));
}

void put_u16(std::string& out, uint16_t v) {
  put_u8(out, static_cast<uint8_t>(v >> 8));
  put_u8(out, static_cast<uint8_t>(v & 0xFF));
}

// Caller has checked s.size() <= kMaxString.
void put_string(std::string& out, std::string_view s) {
  put_u16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}

// Writes the fixed header; false (nothing written) when `remaining` is too big.
bool put_fixed_header(std::string& out, uint8_t first, size_t remaining) {
  if (remaining > kMaxRemainingLength) return false;
  uint8_t len[4];
  const size_t n = encode_remaining_length(static_cast<uint32_t>(remaining), len);
  put_u8(out, first);
  out.append(reinterpret_cast<const char*>(len), n);
  return true;
}

}  // namespace

size_t encode_remaining_length(uint32_t value, uint8_t out[4]) {
  if (value > kMaxRemainingLength) return 0;
  size_t n = 0;
  do {
    auto b = static_cast<uint8_t>(value & 0x7F);
    value >>= 7;
    if (value > 0) b |= 0x80;
    out[n++] = b;
  } while (value > 0);
  return n;
}

size_t remaining_length_size(uint32_t value) {
  if (value < 128u) return 1;
  if (value < 16'384u) return 2;
  if (value < 2'097'152u) return 3;
  if (value <= kMaxRemainingLength) return 4;
  return 0;
}

void encode_connack(std::string& out, bool session_present, ConnackCode code) {
  put_fixed_header(out, first_byte(PacketType::Connack, 0), 2);
  put_u8(out, session_present ? 1 : 0);
  put_u8(out, static_cast<uint8_t>(code));
}

void encode_suback(std::string& out, uint16_t packet_id, std::span<const uint8_t> return_codes) {
  if (!put_fixed_header(out, first_byte(PacketType::Suback, 0), 2 + return_codes.size())) return;
  put_u16(out, packet_id);
  out.append(reinterpret_cast<const char*>(return_codes.data()), return_codes.size());
}

void encode_unsuback(std::string& out, uint16_t packet_id) {
  encode_ack(out, PacketType::Unsuback, packet_id);
}

void encode_ack(std::string& out, PacketType type, uint16_t packet_id) {
  // PUBREL carries the fixed flags 0b0010. [MQTT-3.6.1-1]
  put_fixed_header(out, first_byte(type, type == PacketType::Pubrel ? 0x2 : 0), 2);
  put_u16(out, packet_id);
}

void encode_pingresp(std::string& out) {
  put_fixed_header(out, first_byte(PacketType::Pingresp, 0), 0);
}
void encode_pingreq(std::string& out) {
  put_fixed_header(out, first_byte(PacketType::Pingreq, 0), 0);
}
void encode_disconnect(std::string& out) {
  put_fixed_header(out, first_byte(PacketType::Disconnect, 0), 0);
}

size_t encode_publish_fixed_header(uint8_t out[5], uint8_t qos, bool retain, bool dup,
                                   size_t topic_len, size_t payload_len) {
  if (topic_len > kMaxString || payload_len > kMaxRemainingLength) return 0;
  const size_t remaining = 2 + topic_len + (qos > 0 ? 2 : 0) + payload_len;
  if (remaining > kMaxRemainingLength) return 0;
  out[0] =
      first_byte(PacketType::Publish, (dup ? 0x8u : 0u) | ((qos & 0x3u) << 1) | (retain ? 1u : 0u));
  return 1 + encode_remaining_length(static_cast<uint32_t>(remaining), out + 1);
}

void encode_publish(std::string& out, const Publish& p) {
  uint8_t header[5];
  const size_t n =
      encode_publish_fixed_header(header, p.qos, p.retain, p.dup, p.topic.size(), p.payload.size());
  if (n == 0) return;
  out.append(reinterpret_cast<const char*>(header), n);
  put_string(out, p.topic);
  if (p.qos > 0) put_u16(out, p.packet_id);
  out.append(p.payload);
}

void encode_connect(std::string& out, const Connect& c) {
  const bool v5 = c.protocol_level == kLevel5;
  size_t remaining = 2 + c.protocol_name.size() + 1 + 1 + 2 + (v5 ? 1 : 0);
  bool fits = c.protocol_name.size() <= kMaxString;
  auto add = [&](std::string_view s) {
    remaining += 2 + s.size();
    fits = fits && s.size() <= kMaxString;
  };
  add(c.client_id);
  uint8_t flags = c.clean_session ? 0x02 : 0x00;
  if (c.will) {
    flags |= static_cast<uint8_t>(0x04 | ((c.will->qos & 0x3) << 3) | (c.will->retain ? 0x20 : 0));
    add(c.will->topic);
    add(c.will->payload);
    if (v5) remaining += 1;  // empty will properties
  }
  if (c.username) {
    flags |= 0x80;
    add(*c.username);
  }
  if (c.password) {
    flags |= 0x40;
    add(*c.password);
  }
  if (!fits || !put_fixed_header(out, first_byte(PacketType::Connect, 0), remaining)) return;
  put_string(out, c.protocol_name);
  put_u8(out, c.protocol_level);
  put_u8(out, flags);
  put_u16(out, c.keep_alive);
  if (v5) put_u8(out, 0);  // empty CONNECT properties
  put_string(out, c.client_id);
  if (c.will) {
    if (v5) put_u8(out, 0);
    put_string(out, c.will->topic);
    put_string(out, c.will->payload);
  }
  if (c.username) put_string(out, *c.username);
  if (c.password) put_string(out, *c.password);
}

void encode_subscribe(std::string& out, const Subscribe& s) {
  size_t remaining = 2;
  for (const TopicRequest& t : s.topics) {
    if (t.filter.size() > kMaxString) return;
    remaining += 2 + t.filter.size() + 1;
  }
  if (!put_fixed_header(out, first_byte(PacketType::Subscribe, 0x2), remaining)) return;
  put_u16(out, s.packet_id);
  for (const TopicRequest& t : s.topics) {
    put_string(out, t.filter);
    put_u8(out, t.qos);
  }
}

void encode_unsubscribe(std::string& out, const Unsubscribe& u) {
  size_t remaining = 2;
  for (std::string_view f : u.filters) {
    if (f.size() > kMaxString) return;
    remaining += 2 + f.size();
  }
  if (!put_fixed_header(out, first_byte(PacketType::Unsubscribe, 0x2), remaining)) return;
  put_u16(out, u.packet_id);
  for (std::string_view f : u.filters) put_string(out, f);
}

}  // namespace mqtt
