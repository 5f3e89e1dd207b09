// Encoders for MQTT 5.0 packets. A packet that cannot be represented appends
// nothing.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/codec5.hpp"

namespace mqtt {

namespace {

constexpr size_t kMaxString = 65535;

uint8_t first_byte(PacketType type, unsigned flags) {
  return static_cast<uint8_t>((static_cast<unsigned>(type) << 4) | (flags & 0x0F));
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

}  // namespace

void encode_connack_v5(std::string& out, const ConnackV5& c) {
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

void encode_publish_v5(std::string& out, const Publish& p, const Properties& properties) {
  const std::string_view props = properties.raw();
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

void encode_ack_v5(std::string& out, const AckV5& a) {
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

void encode_ack_v5(std::string& out, PacketType type, uint16_t packet_id, ReasonCode code) {
  AckV5 a;
  a.type = type;
  a.packet_id = packet_id;
  a.reason_code = code;
  encode_ack_v5(out, a);
}

void encode_suback_v5(std::string& out, uint16_t packet_id, std::span<const ReasonCode> codes,
                      const AckProperties& props) {
  encode_sub_unsub_ack(out, PacketType::Suback, packet_id, codes, props);
}

void encode_unsuback_v5(std::string& out, uint16_t packet_id, std::span<const ReasonCode> codes,
                        const AckProperties& props) {
  encode_sub_unsub_ack(out, PacketType::Unsuback, packet_id, codes, props);
}

void encode_disconnect_v5(std::string& out, const DisconnectV5& d) {
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

void encode_auth_v5(std::string& out, const AuthV5& a) {
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

void encode_connect_v5(std::string& out, const ConnectV5& c) {
  Builder b(out, first_byte(PacketType::Connect, 0));
  b.str("MQTT");
  b.u8(kLevel5);
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

void encode_subscribe_v5(std::string& out, const SubscribeV5& s) {
  Builder b(out, first_byte(PacketType::Subscribe, 0x2));
  b.u16(s.packet_id);
  const size_t at = b.begin_properties();
  PropertyWriter w = b.writer();
  if (s.subscription_identifier != 0) {
    w.add_varint(PropertyId::SubscriptionIdentifier, s.subscription_identifier);
  }
  w.add_all(s.properties, PropertyId::UserProperty);
  b.end_properties(at, w);
  for (const TopicRequestV5& t : s.topics) {
    b.str(t.filter);
    b.u8(subscription_options(t));
  }
  b.finish();
}

void encode_unsubscribe_v5(std::string& out, const UnsubscribeV5& u) {
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
