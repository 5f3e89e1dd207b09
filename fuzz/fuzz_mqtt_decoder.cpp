// libFuzzer target: frames the input with read_frame, decodes each frame with
// the matching decoder and, for every successful decode, re-encodes the value
// and decodes it again: the result must equal the first decode.
//
// A first byte 0x00..0x0F (packet type 0, which read_frame always rejects)
// selects the protocol level instead and is dropped: 0x05 decodes the rest
// as MQTT 5, 0x03 as 3.1, any other value as 3.1.1. Otherwise the whole input
// is 3.1.1, as before that byte existed. Every packet type is decoded, and
// re-encoded, at the selected level with the same decoder and encoder.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mqtt/codec.hpp"
#include "mqtt/packet.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/reason_code.hpp"
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
Frame reframe(const std::string& wire, PacketType type, uint8_t level = kLevel311) {
  Frame f;
  const DecodeResult r = read_frame(wire, wire.size(), f, level);
  FUZZ_CHECK(r.ok());
  FUZZ_CHECK(f.size == wire.size());
  FUZZ_CHECK(f.type == type);
  return f;
}

using UserProps = std::vector<std::pair<std::string_view, std::string_view>>;

UserProps user_props(const Properties& p) {
  UserProps v;
  for (const Property& prop : p) {
    if (prop.id == PropertyId::UserProperty) v.emplace_back(prop.str, prop.value);
  }
  return v;
}

// A block decode_properties accepted for `ctx`: every property parses, is
// allowed there, and re-encoding each one gives the same bytes (values use
// minimal encodings).
void check_properties(const Properties& p, PropertyContext ctx) {
  PropertyWriter w;
  size_t n = 0;
  for (const Property& prop : p) {
    FUZZ_CHECK(property_allowed(prop.id, ctx));
    FUZZ_CHECK(property_type(static_cast<uint8_t>(prop.id)) == prop.type);
    FUZZ_CHECK(to_string(prop.id) != nullptr);
    w.add(prop);
    ++n;
  }
  FUZZ_CHECK(w.ok());
  FUZZ_CHECK(w.bytes() == p.raw());
  FUZZ_CHECK(n == 0 || !p.empty());
}

bool same(const AckProperties& a, const AckProperties& b) {
  return a.reason_string == b.reason_string && user_props(a.properties) == user_props(b.properties);
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
  if (a.packet_id != b.packet_id || a.subscription_identifier != b.subscription_identifier ||
      user_props(a.properties) != user_props(b.properties) || a.topics.size() != b.topics.size()) {
    return false;
  }
  for (size_t i = 0; i < a.topics.size(); ++i) {
    const TopicRequest& x = a.topics[i];
    const TopicRequest& y = b.topics[i];
    if (x.filter != y.filter || x.qos != y.qos || x.no_local != y.no_local ||
        x.retain_as_published != y.retain_as_published || x.retain_handling != y.retain_handling ||
        x.share_name != y.share_name) {
      return false;
    }
  }
  return true;
}

// CONNECT: the level is the packet's own.
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
  if (c.protocol_level != kLevel5) {
    FUZZ_CHECK(c.props.properties.empty() && c.will_props.properties.empty());
  } else {
    check_properties(c.props.properties, PropertyContext::Connect);
    check_properties(c.will_props.properties, PropertyContext::Will);
    FUZZ_CHECK(c.props.receive_maximum != 0);
    FUZZ_CHECK(!c.props.authentication_data || c.props.authentication_method);
  }
  std::string wire;
  encode_connect(wire, c.protocol_level, c);
  Connect again;
  FUZZ_CHECK(decode_connect(reframe(wire, PacketType::Connect, c.protocol_level), again).ok());
  FUZZ_CHECK(same(c, again));
  const ConnectProperties& a = c.props;
  const ConnectProperties& b = again.props;
  FUZZ_CHECK(a.session_expiry_interval == b.session_expiry_interval &&
             a.receive_maximum == b.receive_maximum &&
             a.maximum_packet_size == b.maximum_packet_size &&
             a.topic_alias_maximum == b.topic_alias_maximum &&
             a.request_response_information == b.request_response_information &&
             a.request_problem_information == b.request_problem_information &&
             a.authentication_method == b.authentication_method &&
             a.authentication_data == b.authentication_data &&
             user_props(a.properties) == user_props(b.properties));
  const WillProperties& wa = c.will_props;
  const WillProperties& wb = again.will_props;
  FUZZ_CHECK(wa.will_delay_interval == wb.will_delay_interval &&
             wa.payload_format_indicator == wb.payload_format_indicator &&
             wa.message_expiry_interval == wb.message_expiry_interval &&
             wa.content_type == wb.content_type && wa.response_topic == wb.response_topic &&
             wa.correlation_data == wb.correlation_data &&
             user_props(wa.properties) == user_props(wb.properties));
}

void check_publish(const Frame& f, uint8_t level) {
  const bool v5 = level == kLevel5;
  Publish p;
  const DecodeResult r = decode_publish(f, level, p);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(p.qos <= 2);
  FUZZ_CHECK(!(p.dup && p.qos == 0));
  FUZZ_CHECK((p.qos == 0) == (p.packet_id == 0));
  FUZZ_CHECK(p.topic.empty() && v5 ? p.props.topic_alias != 0 : valid_topic_name(p.topic));
  // Decoded views lie inside the frame body.
  FUZZ_CHECK(p.topic.data() >= f.body.data() &&
             p.payload.data() + p.payload.size() == f.body.data() + f.body.size());
  if (v5) {
    FUZZ_CHECK(p.props.payload_format_indicator <= 1);
    FUZZ_CHECK(p.props.subscription_identifier_count ==
               p.props.properties.count(PropertyId::SubscriptionIdentifier));
    FUZZ_CHECK(p.props.user_property_count == p.props.properties.count(PropertyId::UserProperty));
    check_properties(p.props.properties, PropertyContext::Publish);
  } else {
    FUZZ_CHECK(p.props.properties.empty() && p.props.topic_alias == 0);
  }

  std::string wire;
  encode_publish(wire, level, p);
  const size_t props_len = p.props.properties.raw().size();
  uint8_t hdr[5];
  const size_t n = v5 ? encode_publish_fixed_header_v5(hdr, p.qos, p.retain, p.dup, p.topic.size(),
                                                       props_len, p.payload.size())
                      : encode_publish_fixed_header(hdr, p.qos, p.retain, p.dup, p.topic.size(),
                                                    p.payload.size());
  FUZZ_CHECK(n >= 2 && n <= 5 && n <= wire.size());
  FUZZ_CHECK(std::string_view(reinterpret_cast<const char*>(hdr), n) ==
             std::string_view(wire).substr(0, n));
  if (v5) {
    FUZZ_CHECK(publish_packet_size_v5(p.qos, p.topic.size(), props_len, p.payload.size()) ==
               wire.size());
  }
  Publish again;
  FUZZ_CHECK(decode_publish(reframe(wire, PacketType::Publish, level), level, again).ok());
  FUZZ_CHECK(same(p, again));
  FUZZ_CHECK(p.props.properties.raw() == again.props.properties.raw());
  FUZZ_CHECK(p.props.topic_alias == again.props.topic_alias &&
             p.props.message_expiry_interval == again.props.message_expiry_interval &&
             p.props.content_type == again.props.content_type &&
             p.props.response_topic == again.props.response_topic &&
             p.props.correlation_data == again.props.correlation_data &&
             p.props.subscription_identifier == again.props.subscription_identifier);
}

void check_subscribe(const Frame& f, uint8_t level) {
  Subscribe s;
  const DecodeResult r = decode_subscribe(f, level, s);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(s.packet_id != 0 && !s.topics.empty());
  check_properties(s.properties, PropertyContext::Subscribe);
  for (const TopicRequest& t : s.topics) {
    FUZZ_CHECK(t.qos <= 2 && static_cast<uint8_t>(t.retain_handling) <= 2);
    FUZZ_CHECK(valid_topic_filter(t.filter));
    FUZZ_CHECK((subscription_options(t) & 0xC0) == 0);
    if (level != kLevel5) {
      // 3.x has only the requested QoS, and no shared subscriptions.
      FUZZ_CHECK(subscription_options(t) == t.qos && t.share_name.empty());
      continue;
    }
    std::string_view name;
    std::string_view inner;
    FUZZ_CHECK(is_shared_subscription(t.filter) == !t.share_name.empty());
    if (!t.share_name.empty()) {
      FUZZ_CHECK(parse_shared_subscription(t.filter, name, inner) && name == t.share_name);
      FUZZ_CHECK(!t.no_local);
    }
  }
  if (level != kLevel5) FUZZ_CHECK(s.properties.empty() && s.subscription_identifier == 0);
  std::string wire;
  encode_subscribe(wire, level, s);
  Subscribe again;
  FUZZ_CHECK(decode_subscribe(reframe(wire, PacketType::Subscribe, level), level, again).ok());
  FUZZ_CHECK(same(s, again));
}

void check_unsubscribe(const Frame& f, uint8_t level) {
  Unsubscribe u;
  const DecodeResult r = decode_unsubscribe(f, level, u);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(u.packet_id != 0 && !u.filters.empty());
  for (std::string_view filter : u.filters) FUZZ_CHECK(valid_topic_filter(filter));
  check_properties(u.properties, PropertyContext::Unsubscribe);
  if (level != kLevel5) FUZZ_CHECK(u.properties.empty());
  std::string wire;
  encode_unsubscribe(wire, level, u);
  Unsubscribe again;
  FUZZ_CHECK(decode_unsubscribe(reframe(wire, PacketType::Unsubscribe, level), level, again).ok());
  FUZZ_CHECK(again.packet_id == u.packet_id && again.filters == u.filters &&
             user_props(again.properties) == user_props(u.properties));
}

void check_ack(const Frame& f, uint8_t level) {
  Ack a;
  const DecodeResult r = decode_ack(f, level, a);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(a.type == f.type && a.packet_id != 0);
  FUZZ_CHECK(valid_reason_code(a.type, a.reason_code));
  FUZZ_CHECK(to_string(a.reason_code) != nullptr);
  check_properties(a.props.properties, ack_context(a.type));
  if (level != kLevel5) FUZZ_CHECK(a.reason_code == ReasonCode::Success && f.body.size() == 2);
  std::string wire;
  encode_ack(wire, level, a);
  FUZZ_CHECK(wire.size() <= f.size);  // the encoder picks the shortest form
  Ack again;
  FUZZ_CHECK(decode_ack(reframe(wire, a.type, level), level, again).ok());
  FUZZ_CHECK(again.type == a.type && again.packet_id == a.packet_id &&
             again.reason_code == a.reason_code && same(a.props, again.props));
}

void check_sub_unsub_ack(const Frame& f, uint8_t level) {
  const bool sub = f.type == PacketType::Suback;
  Suback a;
  const DecodeResult r = sub ? decode_suback(f, level, a) : decode_unsuback(f, level, a);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(a.packet_id != 0);
  // A 3.x UNSUBACK is the only one without reason codes.
  FUZZ_CHECK(a.reason_codes.empty() == (!sub && level != kLevel5));
  check_properties(a.props.properties, sub ? PropertyContext::Suback : PropertyContext::Unsuback);
  std::string wire;
  if (sub) {
    encode_suback(wire, level, a.packet_id, a.reason_codes, a.props);
  } else {
    encode_unsuback(wire, level, a.packet_id, a.reason_codes, a.props);
  }
  Suback again;
  const Frame g = reframe(wire, f.type, level);
  FUZZ_CHECK((sub ? decode_suback(g, level, again) : decode_unsuback(g, level, again)).ok());
  FUZZ_CHECK(again.packet_id == a.packet_id && again.reason_codes == a.reason_codes &&
             same(a.props, again.props));
}

void check_connack(const Frame& f, uint8_t level) {
  Connack c;
  const DecodeResult r = decode_connack(f, level, c);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(!(c.session_present && is_failure(c.reason_code)));
  check_properties(c.props.properties, PropertyContext::Connack);
  std::string wire;
  encode_connack(wire, level, c);
  // 3.x: the same two body bytes (the frame's remaining length may have been
  // encoded in more bytes than needed; ours is always the shortest form).
  if (level != kLevel5) FUZZ_CHECK(wire.size() == 4 && std::string_view(wire).substr(2) == f.body);
  Connack again;
  FUZZ_CHECK(decode_connack(reframe(wire, PacketType::Connack, level), level, again).ok());
  const ConnackProperties& a = c.props;
  const ConnackProperties& b = again.props;
  FUZZ_CHECK(again.session_present == c.session_present && again.reason_code == c.reason_code);
  FUZZ_CHECK(a.session_expiry_interval == b.session_expiry_interval &&
             a.receive_maximum == b.receive_maximum && a.maximum_qos == b.maximum_qos &&
             a.retain_available == b.retain_available &&
             a.maximum_packet_size == b.maximum_packet_size &&
             a.assigned_client_identifier == b.assigned_client_identifier &&
             a.topic_alias_maximum == b.topic_alias_maximum && a.reason_string == b.reason_string &&
             a.wildcard_subscription_available == b.wildcard_subscription_available &&
             a.subscription_identifiers_available == b.subscription_identifiers_available &&
             a.shared_subscription_available == b.shared_subscription_available &&
             a.server_keep_alive == b.server_keep_alive &&
             a.response_information == b.response_information &&
             a.server_reference == b.server_reference &&
             a.authentication_method == b.authentication_method &&
             a.authentication_data == b.authentication_data &&
             user_props(a.properties) == user_props(b.properties));
}

void check_disconnect(const Frame& f, uint8_t level) {
  Disconnect d;
  const DecodeResult r = decode_disconnect(f, level, d);
  // Below level 5 DISCONNECT is an empty packet like PINGREQ.
  if (level != kLevel5) FUZZ_CHECK(decode_empty(f).status == r.status);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(valid_reason_code(PacketType::Disconnect, d.reason_code));
  check_properties(d.properties, PropertyContext::Disconnect);
  std::string wire;
  encode_disconnect(wire, level, d);
  FUZZ_CHECK(wire.size() <= f.size);
  Disconnect again;
  FUZZ_CHECK(decode_disconnect(reframe(wire, PacketType::Disconnect, level), level, again).ok());
  FUZZ_CHECK(again.reason_code == d.reason_code &&
             again.session_expiry_interval == d.session_expiry_interval &&
             again.reason_string == d.reason_string &&
             again.server_reference == d.server_reference &&
             user_props(again.properties) == user_props(d.properties));
}

void check_auth(const Frame& f, uint8_t level) {
  Auth a;
  const DecodeResult r = decode_auth(f, level, a);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status));
    return;
  }
  FUZZ_CHECK(level == kLevel5);  // AUTH is MQTT 5 only
  FUZZ_CHECK(valid_reason_code(PacketType::Auth, a.reason_code));
  FUZZ_CHECK(f.body.empty() || a.authentication_method.has_value());
  check_properties(a.properties, PropertyContext::Auth);
  std::string wire;
  encode_auth(wire, level, a);
  Auth again;
  FUZZ_CHECK(decode_auth(reframe(wire, PacketType::Auth, level), level, again).ok());
  FUZZ_CHECK(again.reason_code == a.reason_code &&
             again.authentication_method == a.authentication_method &&
             again.authentication_data == a.authentication_data &&
             again.reason_string == a.reason_string &&
             user_props(again.properties) == user_props(a.properties));
}

void check_empty(const Frame& f) {
  const DecodeResult r = decode_empty(f);
  if (!r.ok()) {
    FUZZ_CHECK(is_error(r.status) && !f.body.empty());
    return;
  }
  std::string wire;
  if (f.type == PacketType::Pingreq) {
    encode_pingreq(wire);
  } else {
    encode_pingresp(wire);
  }
  FUZZ_CHECK(decode_empty(reframe(wire, f.type)).ok());
}

void check_frame(const Frame& f, uint8_t level) {
  switch (f.type) {
    case PacketType::Connect:
      check_connect(f);
      break;
    case PacketType::Publish:
      check_publish(f, level);
      break;
    case PacketType::Subscribe:
      check_subscribe(f, level);
      break;
    case PacketType::Unsubscribe:
      check_unsubscribe(f, level);
      break;
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp:
      check_ack(f, level);
      break;
    case PacketType::Suback:
    case PacketType::Unsuback:
      check_sub_unsub_ack(f, level);
      break;
    case PacketType::Connack:
      check_connack(f, level);
      break;
    case PacketType::Disconnect:
      check_disconnect(f, level);
      break;
    case PacketType::Auth:
      // read_frame rejects type 15 below level 5.
      FUZZ_CHECK(level == kLevel5);
      check_auth(f, level);
      break;
    case PacketType::Pingreq:
    case PacketType::Pingresp:
      check_empty(f);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view buf(reinterpret_cast<const char*>(data), size);
  uint8_t level = kLevel311;
  if (!buf.empty() && static_cast<uint8_t>(buf[0]) < 0x10) {
    const auto sel = static_cast<uint8_t>(buf[0]);
    level = sel == kLevel5 ? kLevel5 : sel == kLevel31 ? kLevel31 : kLevel311;
    buf.remove_prefix(1);
  }
  while (!buf.empty()) {
    Frame f;
    const DecodeResult r = read_frame(buf, kMaxPacket, f, level);
    FUZZ_CHECK(r.reason != nullptr);
    if (!r.ok()) {
      FUZZ_CHECK(r.status == DecodeStatus::NeedMore || r.status == DecodeStatus::Malformed ||
                 r.status == DecodeStatus::TooLarge);
      if (r.status == DecodeStatus::NeedMore) {
        // A larger limit never turns NeedMore into something else.
        Frame g;
        FUZZ_CHECK(read_frame(buf, SIZE_MAX, g, level).status == DecodeStatus::NeedMore);
      }
      break;
    }
    // Frame invariants: the body is the tail of the frame, inside the buffer.
    FUZZ_CHECK(f.size >= 2 && f.size <= buf.size() && f.size <= kMaxPacket);
    FUZZ_CHECK(f.body.data() + f.body.size() == buf.data() + f.size);
    FUZZ_CHECK(f.size - f.body.size() <= 5);
    Frame g;
    FUZZ_CHECK(read_frame(buf.substr(0, f.size - 1), kMaxPacket, g, level).status ==
               DecodeStatus::NeedMore);
    FUZZ_CHECK(read_frame(buf, f.size - 1, g, level).status == DecodeStatus::TooLarge);

    check_frame(f, level);
    buf.remove_prefix(f.size);
  }
  return 0;
}
