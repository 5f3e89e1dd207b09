// Encoders of every protocol level: each writes the 3.1 / 3.1.1 or the 5.0
// wire form of one packet struct by the level it is given. A packet that
// cannot be represented appends nothing.
#include <cstddef>
#include <cstdint>
#include <cstring>
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

// Writes one packet straight into `out`: room for the largest fixed header is
// reserved first and the unused part removed by finish(), so the body is
// written once and nothing else is allocated. Any failure (a value that
// cannot be represented) makes finish() remove everything written.
class Builder {
 public:
  Builder(std::string& out, uint8_t first) : out_(out), start_(out.size()) {
    out_.append(5, '\0');
    out_[start_] = static_cast<char>(first);
  }

  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v & 0xFF));
  }
  void str(std::string_view s) {  // UTF-8 string or binary data
    if (s.size() > kMaxString) {
      ok_ = false;
      return;
    }
    u16(static_cast<uint16_t>(s.size()));
    out_.append(s);
  }
  void raw(std::string_view s) { out_.append(s); }

  // A property block: begin_properties() reserves the Property Length, the
  // caller appends properties through writer(), end_properties() fills the
  // length in.
  size_t begin_properties() {
    const size_t at = out_.size();
    out_.append(4, '\0');
    return at;
  }
  PropertyWriter writer() { return PropertyWriter(out_); }
  void end_properties(size_t at, const PropertyWriter& w) {
    if (!w.ok()) ok_ = false;
    const size_t len = out_.size() - at - 4;
    uint8_t b[4];
    const size_t n = len <= kMaxRemainingLength ? encode_varint(static_cast<uint32_t>(len), b) : 0;
    if (n == 0) {
      ok_ = false;
      return;
    }
    std::memcpy(&out_[at], b, n);
    out_.erase(at + n, 4 - n);
  }

  // Fills in the fixed header; on failure removes the whole packet.
  void finish() {
    const size_t remaining = out_.size() - start_ - 5;
    if (!ok_ || remaining > kMaxRemainingLength) {
      out_.resize(start_);
      return;
    }
    uint8_t b[4];
    const size_t n = encode_remaining_length(static_cast<uint32_t>(remaining), b);
    std::memcpy(&out_[start_ + 5 - n], b, n);
    out_[start_ + 4 - n] = out_[start_];
    out_.erase(start_, 4 - n);
  }

 private:
  std::string& out_;
  size_t start_;
  bool ok_ = true;
};

template <typename T, typename F>
void put_if(const std::optional<T>& v, F&& f) {
  if (v) f(*v);
}

bool has_user_properties(const Properties& p) {
  return !p.empty() && p.find(PropertyId::UserProperty).has_value();
}

void write_ack_properties(PropertyWriter& w, const AckProperties& p) {
  if (p.reason_string) w.add_string(PropertyId::ReasonString, *p.reason_string);
  w.add_all(p.properties, PropertyId::UserProperty);
}

void encode_sub_unsub_ack(std::string& out, PacketType type, uint16_t packet_id,
                          std::span<const ReasonCode> codes, const AckProperties& props) {
  Builder b(out, first_byte(type, 0));
  b.u16(packet_id);
  const size_t at = b.begin_properties();
  PropertyWriter w = b.writer();
  write_ack_properties(w, props);
  b.end_properties(at, w);
  for (ReasonCode c : codes) b.u8(static_cast<uint8_t>(c));
  b.finish();
}

// CONNECT of 3.1 / 3.1.1 (or of another level, for tests): no properties.
void encode_connect_3(std::string& out, uint8_t level, std::string_view name, const Connect& c) {
  size_t remaining = 2 + name.size() + 1 + 1 + 2;
  bool fits = name.size() <= kMaxString;
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
  put_string(out, name);
  put_u8(out, level);
  put_u8(out, flags);
  put_u16(out, c.keep_alive);
  put_string(out, c.client_id);
  if (c.will) {
    put_string(out, c.will->topic);
    put_string(out, c.will->payload);
  }
  if (c.username) put_string(out, *c.username);
  if (c.password) put_string(out, *c.password);
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

void encode_connack(std::string& out, uint8_t level, const Connack& c) {
  if (level != kLevel5) {
    // 3.x: Connect Acknowledge Flags and the return code, nothing else.
    put_fixed_header(out, first_byte(PacketType::Connack, 0), 2);
    put_u8(out, c.session_present ? 1 : 0);
    put_u8(out, static_cast<uint8_t>(to_connack_code(c.reason_code)));
    return;
  }
  Builder b(out, first_byte(PacketType::Connack, 0));
  b.u8(c.session_present ? 1 : 0);
  b.u8(static_cast<uint8_t>(c.reason_code));
  const size_t at = b.begin_properties();
  PropertyWriter w = b.writer();
  const ConnackProperties& p = c.props;
  using P = PropertyId;
  put_if(p.session_expiry_interval, [&](uint32_t v) { w.add_u32(P::SessionExpiryInterval, v); });
  put_if(p.receive_maximum, [&](uint16_t v) { w.add_u16(P::ReceiveMaximum, v); });
  put_if(p.maximum_qos, [&](uint8_t v) { w.add_byte(P::MaximumQos, v); });
  put_if(p.retain_available, [&](bool v) { w.add_byte(P::RetainAvailable, v ? 1 : 0); });
  put_if(p.maximum_packet_size, [&](uint32_t v) { w.add_u32(P::MaximumPacketSize, v); });
  put_if(p.assigned_client_identifier,
         [&](std::string_view v) { w.add_string(P::AssignedClientIdentifier, v); });
  put_if(p.topic_alias_maximum, [&](uint16_t v) { w.add_u16(P::TopicAliasMaximum, v); });
  put_if(p.reason_string, [&](std::string_view v) { w.add_string(P::ReasonString, v); });
  put_if(p.wildcard_subscription_available,
         [&](bool v) { w.add_byte(P::WildcardSubscriptionAvailable, v ? 1 : 0); });
  put_if(p.subscription_identifiers_available,
         [&](bool v) { w.add_byte(P::SubscriptionIdentifierAvailable, v ? 1 : 0); });
  put_if(p.shared_subscription_available,
         [&](bool v) { w.add_byte(P::SharedSubscriptionAvailable, v ? 1 : 0); });
  put_if(p.server_keep_alive, [&](uint16_t v) { w.add_u16(P::ServerKeepAlive, v); });
  put_if(p.response_information,
         [&](std::string_view v) { w.add_string(P::ResponseInformation, v); });
  put_if(p.server_reference, [&](std::string_view v) { w.add_string(P::ServerReference, v); });
  put_if(p.authentication_method,
         [&](std::string_view v) { w.add_string(P::AuthenticationMethod, v); });
  put_if(p.authentication_data,
         [&](std::string_view v) { w.add_string(P::AuthenticationData, v); });
  w.add_all(p.properties, P::UserProperty);
  b.end_properties(at, w);
  b.finish();
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

size_t encode_publish_fixed_header_v5(uint8_t out[5], uint8_t qos, bool retain, bool dup,
                                      size_t topic_len, size_t properties_len, size_t payload_len) {
  if (topic_len > kMaxString || properties_len > kMaxRemainingLength ||
      payload_len > kMaxRemainingLength) {
    return 0;
  }
  const size_t remaining = 2 + topic_len + (qos > 0 ? 2 : 0) +
                           varint_size(static_cast<uint32_t>(properties_len)) + properties_len +
                           payload_len;
  if (remaining > kMaxRemainingLength) return 0;
  out[0] =
      first_byte(PacketType::Publish, (dup ? 0x8u : 0u) | ((qos & 0x3u) << 1) | (retain ? 1u : 0u));
  return 1 + encode_remaining_length(static_cast<uint32_t>(remaining), out + 1);
}

size_t publish_packet_size_v5(uint8_t qos, size_t topic_len, size_t properties_len,
                              size_t payload_len) {
  uint8_t header[5];
  const size_t n = encode_publish_fixed_header_v5(header, qos, false, false, topic_len,
                                                  properties_len, payload_len);
  if (n == 0) return 0;
  return n + 2 + topic_len + (qos > 0 ? 2 : 0) +
         varint_size(static_cast<uint32_t>(properties_len)) + properties_len + payload_len;
}

void encode_publish(std::string& out, uint8_t level, const Publish& p) {
  if (level != kLevel5) {
    uint8_t header[5];
    const size_t n = encode_publish_fixed_header(header, p.qos, p.retain, p.dup, p.topic.size(),
                                                 p.payload.size());
    if (n == 0) return;
    out.append(reinterpret_cast<const char*>(header), n);
    put_string(out, p.topic);
    if (p.qos > 0) put_u16(out, p.packet_id);
    out.append(p.payload);
    return;
  }
  const std::string_view props = p.props.properties.raw();
  uint8_t header[5];
  const size_t n = encode_publish_fixed_header_v5(header, p.qos, p.retain, p.dup, p.topic.size(),
                                                  props.size(), p.payload.size());
  if (n == 0) return;
  out.append(reinterpret_cast<const char*>(header), n);
  out.push_back(static_cast<char>(p.topic.size() >> 8));
  out.push_back(static_cast<char>(p.topic.size() & 0xFF));
  out.append(p.topic);
  if (p.qos > 0) {
    out.push_back(static_cast<char>(p.packet_id >> 8));
    out.push_back(static_cast<char>(p.packet_id & 0xFF));
  }
  uint8_t len[4];
  const size_t ln = encode_varint(static_cast<uint32_t>(props.size()), len);
  out.append(reinterpret_cast<const char*>(len), ln);
  out.append(props);
  out.append(p.payload);
}

void encode_ack(std::string& out, uint8_t level, const Ack& a) {
  if (level != kLevel5) return encode_ack(out, level, a.type, a.packet_id);
  // PUBREL carries the fixed flags 0b0010. [MQTT-3.6.1-1]
  Builder b(out, first_byte(a.type, a.type == PacketType::Pubrel ? 0x2 : 0));
  b.u16(a.packet_id);
  const bool props = a.props.reason_string.has_value() || has_user_properties(a.props.properties);
  if (a.reason_code != ReasonCode::Success || props) {
    b.u8(static_cast<uint8_t>(a.reason_code));
    if (props) {
      const size_t at = b.begin_properties();
      PropertyWriter w = b.writer();
      write_ack_properties(w, a.props);
      b.end_properties(at, w);
    }
  }
  b.finish();
}

void encode_ack(std::string& out, uint8_t level, PacketType type, uint16_t packet_id,
                ReasonCode code) {
  if (level != kLevel5 || code == ReasonCode::Success) {
    // 3.x, and v5's short form for Success without properties [MQTT-3.4.2-1].
    // PUBREL carries the fixed flags 0b0010. [MQTT-3.6.1-1]
    put_fixed_header(out, first_byte(type, type == PacketType::Pubrel ? 0x2 : 0), 2);
    put_u16(out, packet_id);
    return;
  }
  Ack a;
  a.type = type;
  a.packet_id = packet_id;
  a.reason_code = code;
  encode_ack(out, level, a);
}

void encode_suback(std::string& out, uint8_t level, uint16_t packet_id,
                   std::span<const ReasonCode> codes, const AckProperties& props) {
  if (level != kLevel5) {
    // 3.x knows one failure code. [MQTT-3.9.3-2]
    if (!put_fixed_header(out, first_byte(PacketType::Suback, 0), 2 + codes.size())) return;
    put_u16(out, packet_id);
    for (ReasonCode c : codes) {
      put_u8(out, is_failure(c) ? kSubackFailure : static_cast<uint8_t>(c));
    }
    return;
  }
  encode_sub_unsub_ack(out, PacketType::Suback, packet_id, codes, props);
}

void encode_unsuback(std::string& out, uint8_t level, uint16_t packet_id,
                     std::span<const ReasonCode> codes, const AckProperties& props) {
  if (level != kLevel5) {
    // 3.x: the packet id alone.
    put_fixed_header(out, first_byte(PacketType::Unsuback, 0), 2);
    put_u16(out, packet_id);
    return;
  }
  encode_sub_unsub_ack(out, PacketType::Unsuback, packet_id, codes, props);
}

void encode_disconnect(std::string& out, uint8_t level, const Disconnect& d) {
  if (level != kLevel5) {
    put_fixed_header(out, first_byte(PacketType::Disconnect, 0), 0);
    return;
  }
  Builder b(out, first_byte(PacketType::Disconnect, 0));
  const bool props = d.session_expiry_interval || d.reason_string || d.server_reference ||
                     has_user_properties(d.properties);
  if (d.reason_code != ReasonCode::NormalDisconnection || props) {
    b.u8(static_cast<uint8_t>(d.reason_code));
    if (props) {
      const size_t at = b.begin_properties();
      PropertyWriter w = b.writer();
      if (d.session_expiry_interval) {
        w.add_u32(PropertyId::SessionExpiryInterval, *d.session_expiry_interval);
      }
      if (d.reason_string) w.add_string(PropertyId::ReasonString, *d.reason_string);
      if (d.server_reference) w.add_string(PropertyId::ServerReference, *d.server_reference);
      w.add_all(d.properties, PropertyId::UserProperty);
      b.end_properties(at, w);
    }
  }
  b.finish();
}

void encode_auth(std::string& out, uint8_t level, const Auth& a) {
  if (level != kLevel5) return;  // AUTH is MQTT 5 only
  Builder b(out, first_byte(PacketType::Auth, 0));
  const bool props = a.authentication_method || a.authentication_data || a.reason_string ||
                     has_user_properties(a.properties);
  if (a.reason_code != ReasonCode::Success || props) {
    b.u8(static_cast<uint8_t>(a.reason_code));
    const size_t at = b.begin_properties();
    PropertyWriter w = b.writer();
    if (a.authentication_method) {
      w.add_string(PropertyId::AuthenticationMethod, *a.authentication_method);
    }
    if (a.authentication_data) w.add_string(PropertyId::AuthenticationData, *a.authentication_data);
    if (a.reason_string) w.add_string(PropertyId::ReasonString, *a.reason_string);
    w.add_all(a.properties, PropertyId::UserProperty);
    b.end_properties(at, w);
  }
  b.finish();
}

void encode_pingresp(std::string& out) {
  put_fixed_header(out, first_byte(PacketType::Pingresp, 0), 0);
}
void encode_pingreq(std::string& out) {
  put_fixed_header(out, first_byte(PacketType::Pingreq, 0), 0);
}

void encode_connect(std::string& out, uint8_t level, const Connect& c) {
  const std::string_view name = !c.protocol_name.empty() ? c.protocol_name
                                : level == kLevel31      ? "MQIsdp"
                                                         : "MQTT";
  if (level != kLevel5) return encode_connect_3(out, level, name, c);
  Builder b(out, first_byte(PacketType::Connect, 0));
  b.str(name);
  b.u8(level);
  uint8_t flags = c.clean_session ? 0x02 : 0x00;
  if (c.will) {
    flags |= static_cast<uint8_t>(0x04 | ((c.will->qos & 0x3) << 3) | (c.will->retain ? 0x20 : 0));
  }
  if (c.username) flags |= 0x80;
  if (c.password) flags |= 0x40;
  b.u8(flags);
  b.u16(c.keep_alive);

  const ConnectProperties& p = c.props;
  size_t at = b.begin_properties();
  PropertyWriter w = b.writer();
  if (p.session_expiry_interval != 0) {
    w.add_u32(PropertyId::SessionExpiryInterval, p.session_expiry_interval);
  }
  if (p.receive_maximum != 65535) w.add_u16(PropertyId::ReceiveMaximum, p.receive_maximum);
  if (p.maximum_packet_size != 0) w.add_u32(PropertyId::MaximumPacketSize, p.maximum_packet_size);
  if (p.topic_alias_maximum != 0) w.add_u16(PropertyId::TopicAliasMaximum, p.topic_alias_maximum);
  if (p.request_response_information) w.add_byte(PropertyId::RequestResponseInformation, 1);
  if (!p.request_problem_information) w.add_byte(PropertyId::RequestProblemInformation, 0);
  if (p.authentication_method) {
    w.add_string(PropertyId::AuthenticationMethod, *p.authentication_method);
  }
  if (p.authentication_data) w.add_string(PropertyId::AuthenticationData, *p.authentication_data);
  w.add_all(p.properties, PropertyId::UserProperty);
  b.end_properties(at, w);

  b.str(c.client_id);
  if (c.will) {
    const WillProperties& wp = c.will_props;
    at = b.begin_properties();
    PropertyWriter ww = b.writer();
    if (wp.will_delay_interval != 0) {
      ww.add_u32(PropertyId::WillDelayInterval, wp.will_delay_interval);
    }
    if (wp.payload_format_indicator != 0) {
      ww.add_byte(PropertyId::PayloadFormatIndicator, wp.payload_format_indicator);
    }
    if (wp.message_expiry_interval) {
      ww.add_u32(PropertyId::MessageExpiryInterval, *wp.message_expiry_interval);
    }
    if (wp.content_type) ww.add_string(PropertyId::ContentType, *wp.content_type);
    if (wp.response_topic) ww.add_string(PropertyId::ResponseTopic, *wp.response_topic);
    if (wp.correlation_data) ww.add_string(PropertyId::CorrelationData, *wp.correlation_data);
    ww.add_all(wp.properties, PropertyId::UserProperty);
    b.end_properties(at, ww);
    b.str(c.will->topic);
    b.str(c.will->payload);
  }
  if (c.username) b.str(*c.username);
  if (c.password) b.str(*c.password);
  b.finish();
}

void encode_subscribe(std::string& out, uint8_t level, const Subscribe& s) {
  if (level != kLevel5) {
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
    return;
  }
  Builder b(out, first_byte(PacketType::Subscribe, 0x2));
  b.u16(s.packet_id);
  const size_t at = b.begin_properties();
  PropertyWriter w = b.writer();
  if (s.subscription_identifier != 0) {
    w.add_varint(PropertyId::SubscriptionIdentifier, s.subscription_identifier);
  }
  w.add_all(s.properties, PropertyId::UserProperty);
  b.end_properties(at, w);
  for (const TopicRequest& t : s.topics) {
    b.str(t.filter);
    b.u8(subscription_options(t));
  }
  b.finish();
}

void encode_unsubscribe(std::string& out, uint8_t level, const Unsubscribe& u) {
  if (level != kLevel5) {
    size_t remaining = 2;
    for (std::string_view f : u.filters) {
      if (f.size() > kMaxString) return;
      remaining += 2 + f.size();
    }
    if (!put_fixed_header(out, first_byte(PacketType::Unsubscribe, 0x2), remaining)) return;
    put_u16(out, u.packet_id);
    for (std::string_view f : u.filters) put_string(out, f);
    return;
  }
  Builder b(out, first_byte(PacketType::Unsubscribe, 0x2));
  b.u16(u.packet_id);
  const size_t at = b.begin_properties();
  PropertyWriter w = b.writer();
  w.add_all(u.properties, PropertyId::UserProperty);
  b.end_properties(at, w);
  for (std::string_view f : u.filters) b.str(f);
  b.finish();
}

}  // namespace mqtt
