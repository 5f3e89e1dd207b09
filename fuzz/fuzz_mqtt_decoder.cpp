// libFuzzer target: frames the input with read_frame, decodes each frame with
// the matching decoder and, for every successful decode, re-encodes the value
// and decodes it again: the result must equal the first decode.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"
#include "mqtt/packet.hpp"
#include "mqtt/topic.hpp"

namespace {

using namespace mqtt;

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

constexpr size_t kMaxPacket = 1 << 16;

bool is_error(DecodeStatus s) {
  return s != DecodeStatus::Ok && s != DecodeStatus::NeedMore;
}

// Frames `wire`, which must hold exactly one valid packet of type `type`.
Frame reframe(const std::string& wire, PacketType type) {
  Frame f;
  const DecodeResult r = read_frame(wire, wire.size(), f);
  FUZZ_CHECK(r.ok());
  FUZZ_CHECK(f.size == wire.size());
  FUZZ_CHECK(f.type == type);
  return f;
}

bool same(const Connect& a, const Connect& b) {
  if (a.protocol_name != b.protocol_name || a.protocol_level != b.protocol_level ||
      a.clean_session != b.clean_session || a.keep_alive != b.keep_alive ||
      a.client_id != b.client_id || a.username != b.username || a.password != b.password ||
      a.will.has_value() != b.will.has_value()) {
    return false;
  }
  if (!a.will) return true;
  return a.will->topic == b.will->topic && a.will->payload == b.will->payload &&
         a.will->qos == b.will->qos && a.will->retain == b.will->retain;
}

bool same(const Publish& a, const Publish& b) {
  return a.topic == b.topic && a.payload == b.payload && a.packet_id == b.packet_id &&
         a.qos == b.qos && a.retain == b.retain && a.dup == b.dup;
}

bool same(const Subscribe& a, const Subscribe& b) {
  if (a.packet_id != b.packet_id || a.topics.size() != b.topics.size()) return false;
  for (size_t i = 0; i < a.topics.size(); ++i) {
    if (a.topics[i].filter != b.topics[i].filter || a.topics[i].qos != b.topics[i].qos) {
      return false;
    }
  }
  return true;
}

bool same(const Unsubscribe& a, const Unsubscribe& b) {
  return a.packet_id == b.packet_id && a.filters == b.filters;
}

void check_connect(const Frame& f) {
  Connect c;
  const DecodeResult r = decode_connect(f, c);
  FUZZ_CHECK(r.reason != nullptr);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(c.protocol_name == "MQTT" || c.protocol_name == "MQIsdp");
  FUZZ_CHECK(valid_utf8(c.client_id));
  if (c.will) {
    FUZZ_CHECK(c.will->qos <= 2);
    FUZZ_CHECK(valid_topic_name(c.will->topic));
  }
  if (c.protocol_level == kLevel311) FUZZ_CHECK(!c.password || c.username);
  std::string wire;
  encode_connect(wire, c);
  Connect again;
  FUZZ_CHECK(decode_connect(reframe(wire, PacketType::Connect), again).ok());
  FUZZ_CHECK(same(c, again));
}

void check_publish(const Frame& f) {
  Publish p;
  const DecodeResult r = decode_publish(f, p);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(p.qos <= 2);
  FUZZ_CHECK(!(p.dup && p.qos == 0));
  FUZZ_CHECK((p.qos == 0) == (p.packet_id == 0));
  FUZZ_CHECK(valid_topic_name(p.topic));
  // Decoded views lie inside the frame body.
  FUZZ_CHECK(p.topic.data() >= f.body.data() &&
             p.payload.data() + p.payload.size() == f.body.data() + f.body.size());

  std::string wire;
  encode_publish(wire, p);
  uint8_t hdr[5];
  const size_t n =
      encode_publish_fixed_header(hdr, p.qos, p.retain, p.dup, p.topic.size(), p.payload.size());
  FUZZ_CHECK(n >= 2 && n <= 5 && n <= wire.size());
  FUZZ_CHECK(std::string_view(reinterpret_cast<const char*>(hdr), n) ==
             std::string_view(wire).substr(0, n));
  Publish again;
  FUZZ_CHECK(decode_publish(reframe(wire, PacketType::Publish), again).ok());
  FUZZ_CHECK(same(p, again));
}

void check_subscribe(const Frame& f) {
  Subscribe s;
  const DecodeResult r = decode_subscribe(f, s);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(s.packet_id != 0 && !s.topics.empty());
  for (const TopicRequest& t : s.topics) {
    FUZZ_CHECK(t.qos <= 2);
    FUZZ_CHECK(valid_topic_filter(t.filter));
  }
  std::string wire;
  encode_subscribe(wire, s);
  Subscribe again;
  FUZZ_CHECK(decode_subscribe(reframe(wire, PacketType::Subscribe), again).ok());
  FUZZ_CHECK(same(s, again));
}

void check_unsubscribe(const Frame& f) {
  Unsubscribe u;
  const DecodeResult r = decode_unsubscribe(f, u);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(u.packet_id != 0 && !u.filters.empty());
  for (std::string_view filter : u.filters) FUZZ_CHECK(valid_topic_filter(filter));
  std::string wire;
  encode_unsubscribe(wire, u);
  Unsubscribe again;
  FUZZ_CHECK(decode_unsubscribe(reframe(wire, PacketType::Unsubscribe), again).ok());
  FUZZ_CHECK(same(u, again));
}

void check_ack(const Frame& f) {
  Ack a;
  const DecodeResult r = decode_ack(f, a);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(a.type == f.type && a.packet_id != 0);
  std::string wire;
  encode_ack(wire, a.type, a.packet_id);
  FUZZ_CHECK(wire.size() == 4);
  Ack again;
  FUZZ_CHECK(decode_ack(reframe(wire, a.type), again).ok());
  FUZZ_CHECK(again.type == a.type && again.packet_id == a.packet_id);
}

void check_empty(const Frame& f) {
  const DecodeResult r = decode_empty(f);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status) && !f.body.empty());
    return;
  }
  std::string wire;
  switch (f.type) {
    case PacketType::Pingreq:
      encode_pingreq(wire);
      break;
    case PacketType::Pingresp:
      encode_pingresp(wire);
      break;
    default:
      encode_disconnect(wire);
      break;
  }
  FUZZ_CHECK(decode_empty(reframe(wire, f.type)).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view buf(reinterpret_cast<const char*>(data), size);
  while (!buf.empty()) {
    Frame f;
    const DecodeResult r = read_frame(buf, kMaxPacket, f);
    FUZZ_CHECK(r.reason != nullptr);
    if (!r.ok()) {
      FUZZ_CHECK(r.status == DecodeStatus::NeedMore || r.status == DecodeStatus::Malformed ||
                 r.status == DecodeStatus::TooLarge);
      if (r.status == DecodeStatus::NeedMore) {
        // A larger limit never turns NeedMore into something else.
        Frame g;
        FUZZ_CHECK(read_frame(buf, SIZE_MAX, g).status == DecodeStatus::NeedMore);
      }
      break;
    }
    // Frame invariants: the body is the tail of the frame, inside the buffer.
    FUZZ_CHECK(f.size >= 2 && f.size <= buf.size() && f.size <= kMaxPacket);
    FUZZ_CHECK(f.body.data() + f.body.size() == buf.data() + f.size);
    FUZZ_CHECK(f.size - f.body.size() <= 5);
    Frame g;
    FUZZ_CHECK(read_frame(buf.substr(0, f.size - 1), kMaxPacket, g).status ==
               DecodeStatus::NeedMore);
    FUZZ_CHECK(read_frame(buf, f.size - 1, g).status == DecodeStatus::TooLarge);

    switch (f.type) {
      case PacketType::Connect:
        check_connect(f);
        break;
      case PacketType::Publish:
        check_publish(f);
        break;
      case PacketType::Subscribe:
        check_subscribe(f);
        break;
      case PacketType::Unsubscribe:
        check_unsubscribe(f);
        break;
      case PacketType::Puback:
      case PacketType::Pubrec:
      case PacketType::Pubrel:
      case PacketType::Pubcomp:
      case PacketType::Unsuback:
        check_ack(f);
        break;
      case PacketType::Pingreq:
      case PacketType::Pingresp:
      case PacketType::Disconnect:
        check_empty(f);
        break;
      case PacketType::Connack:
      case PacketType::Suback:
        break;  // client-side packets: no decoder
      case PacketType::Auth:
        FUZZ_CHECK(false);  // read_frame rejects type 15
        break;
    }
    buf.remove_prefix(f.size);
  }
  return 0;
}
