// Framing, and the decoders of CONNECT and of the empty packets, for every
// protocol level (the other packets are in decode.cpp).
#include "mqtt/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mqtt/detail.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/topic.hpp"

namespace mqtt {

namespace {

constexpr DecodeResult ok() {
  return {};
}
constexpr DecodeResult need_more(const char* why) {
  return {DecodeStatus::NeedMore, why};
}
constexpr DecodeResult malformed(const char* why) {
  return {DecodeStatus::Malformed, why};
}
constexpr DecodeResult protocol_error(const char* why) {
  return {DecodeStatus::ProtocolError, why};
}
constexpr DecodeResult bad_version(const char* why) {
  return {DecodeStatus::BadProtocolVersion, why};
}

using detail::Reader;

// The fixed-header flags 3.1.1 prescribes per type; -1 for PUBLISH (checked
// in decode_publish). [MQTT-2.2.2-1], [MQTT-2.2.2-2]
constexpr int kFixedFlags[16] = {
    -2,   // 0 reserved
    0,    // CONNECT
    0,    // CONNACK
    -1,   // PUBLISH
    0,    // PUBACK
    0,    // PUBREC
    0x2,  // PUBREL [MQTT-3.6.1-1]
    0,    // PUBCOMP
    0x2,  // SUBSCRIBE [MQTT-3.8.1-1]
    0,    // SUBACK
    0x2,  // UNSUBSCRIBE [MQTT-3.10.1-1]
    0,    // UNSUBACK
    0,    // PINGREQ
    0,    // PINGRESP
    0,    // DISCONNECT [MQTT-3.14.1-1]
    -2,   // 15: AUTH exists only in MQTT 5 (flags 0 there) [MQTT-3.15.1-1]
};

}  // namespace

DecodeResult read_frame(std::string_view buf, size_t max_packet_size, Frame& out,
                        uint8_t protocol_level) {
  if (buf.empty()) return need_more("empty buffer");
  const auto first = static_cast<uint8_t>(buf[0]);
  const unsigned type = first >> 4;
  const unsigned flags = first & 0x0F;
  const bool auth_v5 = type == static_cast<unsigned>(PacketType::Auth) && protocol_level == kLevel5;
  const int want = auth_v5 ? 0 : kFixedFlags[type];
  if (want == -2) {
    return malformed(type == 0 ? "reserved packet type 0" : "packet type 15 (AUTH) not in 3.1.1");
  }
  if (want >= 0 && static_cast<unsigned>(want) != flags) {
    return malformed("invalid fixed header flags for packet type");
  }

  // Remaining length: 1..4 bytes, 7 bits each, least significant first.
  uint32_t remaining = 0;
  size_t pos = 1;
  for (int i = 0;; ++i) {
    if (pos >= buf.size()) return need_more("incomplete remaining length");
    const auto b = static_cast<uint8_t>(buf[pos++]);
    remaining |= static_cast<uint32_t>(b & 0x7F) << (7 * i);
    if ((b & 0x80) == 0) break;
    if (i == 3) return malformed("remaining length longer than 4 bytes");
  }

  const size_t total = pos + remaining;
  if (total > max_packet_size) return {DecodeStatus::TooLarge, "packet exceeds maximum size"};
  if (buf.size() < total) return need_more("incomplete packet body");

  out.type = static_cast<PacketType>(type);
  out.flags = static_cast<uint8_t>(flags);
  out.body = buf.substr(pos, remaining);
  out.size = total;
  return ok();
}

DecodeResult decode_connect(const Frame& f, Connect& out) {
  if (f.type != PacketType::Connect) return protocol_error("not a CONNECT packet");
  if (f.flags != 0) return malformed("invalid CONNECT flags");  // [MQTT-2.2.2-2]
  out = Connect{};
  Reader r(f.body);

  std::string_view name;
  uint8_t level = 0;
  if (!r.prefixed(name) || !r.u8(level)) return malformed("truncated CONNECT protocol header");
  if (name == "MQTT") {
    // 3.1.1 and 5 use this name. [MQTT-3.1.2-2]
    if (level != kLevel311 && level != kLevel5) {
      return bad_version("unsupported MQTT protocol level");
    }
  } else if (name == "MQIsdp") {
    if (level != kLevel31) return bad_version("unsupported MQIsdp protocol level");
  } else {
    return protocol_error("unknown protocol name");  // [MQTT-3.1.2-1]
  }
  out.protocol_name = name;
  out.protocol_level = level;

  uint8_t flags = 0;
  if (!r.u8(flags) || !r.u16(out.keep_alive)) return malformed("truncated CONNECT variable header");
  if (flags & 0x01) return malformed("CONNECT reserved flag set");  // [MQTT-3.1.2-3]
  out.clean_session = (flags & 0x02) != 0;
  const bool will_flag = (flags & 0x04) != 0;
  const auto will_qos = static_cast<uint8_t>((flags >> 3) & 0x03);
  const bool will_retain = (flags & 0x20) != 0;
  const bool password_flag = (flags & 0x40) != 0;
  const bool username_flag = (flags & 0x80) != 0;
  if (!will_flag && (will_qos != 0 || will_retain)) {
    return malformed("will QoS/retain set without will flag");  // [MQTT-3.1.2-11], [MQTT-3.1.2-13]
  }
  if (will_qos == 3) return malformed("will QoS 3");  // [MQTT-3.1.2-12]
  if (level == kLevel311 && password_flag && !username_flag) {
    return malformed("password flag without user name flag");  // [MQTT-3.1.2-22]
  }

  if (level == kLevel5) {
    std::string_view in = r.remaining();
    Properties props;
    if (DecodeResult pr = decode_properties(in, PropertyContext::Connect, props); !pr.ok()) {
      return pr;
    }
    r.skip(r.left() - in.size());
    if (DecodeResult fr = detail::fill_connect_properties(props, out.props); !fr.ok()) return fr;
  }

  // Payload, in this order: client id, will topic, will message, user name,
  // password. [MQTT-3.1.3-1]
  if (!r.prefixed(out.client_id)) return malformed("truncated client identifier");
  if (!valid_utf8(out.client_id)) {
    return malformed("client identifier not valid UTF-8");  // [MQTT-3.1.3-4]
  }

  if (will_flag) {
    if (level == kLevel5) {
      std::string_view in = r.remaining();
      Properties props;
      if (DecodeResult pr = decode_properties(in, PropertyContext::Will, props); !pr.ok()) {
        return pr;
      }
      r.skip(r.left() - in.size());
      if (DecodeResult fr = detail::fill_will_properties(props, out.will_props); !fr.ok()) {
        return fr;
      }
    }
    Will w;
    if (!r.prefixed(w.topic) || !r.prefixed(w.payload)) return malformed("truncated will");
    if (!valid_utf8(w.topic)) return malformed("will topic not valid UTF-8");  // [MQTT-3.1.3-10]
    if (!valid_topic_name(w.topic)) return protocol_error("invalid will topic");
    w.qos = will_qos;
    w.retain = will_retain;
    out.will = w;
  }
  if (username_flag) {
    std::string_view user;
    if (!r.prefixed(user)) return malformed("truncated user name");
    if (!valid_utf8(user)) return malformed("user name not valid UTF-8");  // [MQTT-3.1.3-11]
    out.username = user;
  }
  if (password_flag) {
    std::string_view pass;
    if (r.done() && level == kLevel31) {
      // Some 3.1 clients set the flag but send no password: tolerated as absent.
    } else {
      if (!r.prefixed(pass)) return malformed("truncated password");
      out.password = pass;  // binary data, no UTF-8 requirement in 3.1.1
    }
  }
  if (!r.done()) return malformed("trailing bytes after CONNECT payload");
  return ok();
}

DecodeResult decode_empty(const Frame& f) {
  switch (f.type) {
    case PacketType::Pingreq:
    case PacketType::Pingresp:
    case PacketType::Disconnect:
      break;
    default:
      return protocol_error("not a PINGREQ/PINGRESP/DISCONNECT packet");
  }
  if (f.flags != 0) return malformed("invalid fixed header flags");  // [MQTT-2.2.2-2]
  if (!f.body.empty()) return malformed("non-empty body");
  return ok();
}

}  // namespace mqtt
