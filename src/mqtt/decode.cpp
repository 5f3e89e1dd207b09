// Body decoders of every protocol level but CONNECT and the empty packets
// (codec.cpp): one per packet, taking the connection's level.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mqtt/codec.hpp"
#include "mqtt/detail.hpp"
#include "mqtt/topic.hpp"

namespace mqtt {

namespace {

using detail::Reader;

constexpr DecodeResult ok() {
  return {};
}
constexpr DecodeResult malformed(const char* why) {
  return {DecodeStatus::Malformed, why};
}
constexpr DecodeResult protocol_error(const char* why) {
  return {DecodeStatus::ProtocolError, why};
}

// Decodes the property block at the reader's position.
DecodeResult read_properties(Reader& r, PropertyContext ctx, Properties& out) {
  std::string_view in = r.remaining();
  DecodeResult res = decode_properties(in, ctx, out);
  if (res.ok()) r.skip(r.left() - in.size());
  return res;
}

// Reason String (+ the block itself) of an acknowledgement.
void fill_ack_properties(const Properties& props, AckProperties& out) {
  out = AckProperties{};
  out.properties = props;
  for (const Property& p : props) {
    if (p.id == PropertyId::ReasonString) out.reason_string = p.str;
  }
}

void fill_publish_properties(const Properties& props, PublishProperties& out) {
  out = PublishProperties{};
  out.properties = props;
  for (const Property& p : props) {
    switch (p.id) {
      case PropertyId::PayloadFormatIndicator:
        out.payload_format_indicator = static_cast<uint8_t>(p.number);
        break;
      case PropertyId::MessageExpiryInterval:
        out.message_expiry_interval = p.number;
        break;
      case PropertyId::TopicAlias:
        out.topic_alias = static_cast<uint16_t>(p.number);
        break;
      case PropertyId::ResponseTopic:
        out.response_topic = p.str;
        break;
      case PropertyId::CorrelationData:
        out.correlation_data = p.str;
        break;
      case PropertyId::ContentType:
        out.content_type = p.str;
        break;
      case PropertyId::SubscriptionIdentifier:
        if (out.subscription_identifier_count++ == 0) out.subscription_identifier = p.number;
        break;
      case PropertyId::UserProperty:
        ++out.user_property_count;
        break;
      default:
        break;
    }
  }
}

// A SUBSCRIBE/UNSUBSCRIBE filter: MQTT 5 adds shared subscriptions.
DecodeResult check_filter(std::string_view filter, std::string_view& share_name) {
  if (!valid_utf8(filter)) return malformed("topic filter not valid UTF-8");  // [MQTT-3.8.3-1]
  if (!valid_topic_filter(filter)) return protocol_error("invalid topic filter");
  share_name = {};
  if (is_shared_subscription(filter)) {
    std::string_view inner;
    if (!parse_shared_subscription(filter, share_name, inner)) {
      return protocol_error("invalid shared subscription");  // [MQTT-4.8.2-1], [MQTT-4.8.2-2]
    }
  }
  return ok();
}

// SUBACK and UNSUBACK bodies.
DecodeResult decode_sub_unsub_ack(const Frame& f, uint8_t level, PacketType type,
                                  PropertyContext ctx, Suback& out) {
  if (f.type != type) return protocol_error("not the expected acknowledgement packet");
  if (f.flags != 0) return malformed("invalid acknowledgement flags");
  out.packet_id = 0;
  out.props = AckProperties{};
  out.reason_codes.clear();
  Reader r(f.body);
  if (!r.u16(out.packet_id)) return malformed("truncated packet identifier");
  if (out.packet_id == 0) return protocol_error("packet identifier 0");  // [MQTT-2.2.1-3]
  if (level != kLevel5) {
    // 3.x: UNSUBACK is the packet id alone; SUBACK return codes are a granted
    // QoS or 0x80 Failure [MQTT-3.9.3-2].
    if (type == PacketType::Unsuback) {
      return r.done() ? ok() : malformed("UNSUBACK body is not 2 bytes");
    }
    if (r.done()) return protocol_error("SUBACK without return codes");
    while (!r.done()) {
      uint8_t code = 0;
      r.u8(code);
      if (code > 2 && code != kSubackFailure) return protocol_error("invalid SUBACK return code");
      out.reason_codes.push_back(code == kSubackFailure ? ReasonCode::UnspecifiedError
                                                        : static_cast<ReasonCode>(code));
    }
    return ok();
  }
  Properties props;
  if (DecodeResult pr = read_properties(r, ctx, props); !pr.ok()) return pr;
  fill_ack_properties(props, out.props);
  if (r.done()) return protocol_error("acknowledgement without reason codes");
  while (!r.done()) {
    uint8_t code = 0;
    r.u8(code);
    const auto rc = static_cast<ReasonCode>(code);
    if (!valid_reason_code(type, rc)) return protocol_error("reason code not allowed here");
    out.reason_codes.push_back(rc);
  }
  return ok();
}

// The SUBSCRIBE payload of 3.1 / 3.1.1: filters with a requested QoS byte.
DecodeResult decode_subscribe_3(Reader& r, Subscribe& out) {
  if (r.done()) return protocol_error("SUBSCRIBE without topic filters");  // [MQTT-3.8.3-3]
  while (!r.done()) {
    TopicRequest t;
    uint8_t opts = 0;
    if (!r.prefixed(t.filter) || !r.u8(opts)) return malformed("truncated SUBSCRIBE entry");
    if (!valid_utf8(t.filter)) return malformed("topic filter not valid UTF-8");  // [MQTT-3.8.3-1]
    if (!valid_topic_filter(t.filter)) return protocol_error("invalid topic filter");
    if ((opts & 0xFC) != 0 || (opts & 0x03) == 3) {
      return malformed("invalid requested QoS byte");  // [MQTT-3-8.3-4]
    }
    t.qos = opts;
    out.topics.push_back(t);
  }
  return ok();
}

// The UNSUBSCRIBE payload of 3.1 / 3.1.1: filters.
DecodeResult decode_unsubscribe_3(Reader& r, Unsubscribe& out) {
  if (r.done()) return protocol_error("UNSUBSCRIBE without topic filters");  // [MQTT-3.10.3-2]
  while (!r.done()) {
    std::string_view filter;
    if (!r.prefixed(filter)) return malformed("truncated UNSUBSCRIBE entry");
    if (!valid_utf8(filter)) return malformed("topic filter not valid UTF-8");  // [MQTT-3.10.3-1]
    if (!valid_topic_filter(filter)) return protocol_error("invalid topic filter");
    out.filters.push_back(filter);
  }
  return ok();
}

}  // namespace

DecodeResult detail::fill_connect_properties(const Properties& props, ConnectProperties& out) {
  out = ConnectProperties{};
  out.properties = props;
  for (const Property& p : props) {
    switch (p.id) {
      case PropertyId::SessionExpiryInterval:
        out.session_expiry_interval = p.number;
        break;
      case PropertyId::ReceiveMaximum:
        out.receive_maximum = static_cast<uint16_t>(p.number);
        break;
      case PropertyId::MaximumPacketSize:
        out.maximum_packet_size = p.number;
        break;
      case PropertyId::TopicAliasMaximum:
        out.topic_alias_maximum = static_cast<uint16_t>(p.number);
        break;
      case PropertyId::RequestResponseInformation:
        out.request_response_information = p.number == 1;
        break;
      case PropertyId::RequestProblemInformation:
        out.request_problem_information = p.number == 1;
        break;
      case PropertyId::AuthenticationMethod:
        out.authentication_method = p.str;
        break;
      case PropertyId::AuthenticationData:
        out.authentication_data = p.str;
        break;
      default:
        break;
    }
  }
  if (out.authentication_data && !out.authentication_method) {
    return protocol_error("authentication data without authentication method");  // 3.1.2.11.10
  }
  return ok();
}

DecodeResult detail::fill_will_properties(const Properties& props, WillProperties& out) {
  out = WillProperties{};
  out.properties = props;
  for (const Property& p : props) {
    switch (p.id) {
      case PropertyId::WillDelayInterval:
        out.will_delay_interval = p.number;
        break;
      case PropertyId::PayloadFormatIndicator:
        out.payload_format_indicator = static_cast<uint8_t>(p.number);
        break;
      case PropertyId::MessageExpiryInterval:
        out.message_expiry_interval = p.number;
        break;
      case PropertyId::ContentType:
        out.content_type = p.str;
        break;
      case PropertyId::ResponseTopic:
        out.response_topic = p.str;
        break;
      case PropertyId::CorrelationData:
        out.correlation_data = p.str;
        break;
      default:
        break;
    }
  }
  return ok();
}

DecodeResult decode_publish(const Frame& f, uint8_t level, Publish& out) {
  if (f.type != PacketType::Publish) return protocol_error("not a PUBLISH packet");
  const auto qos = static_cast<uint8_t>((f.flags >> 1) & 0x03);
  const bool dup = (f.flags & 0x08) != 0;
  if (qos == 3) return malformed("PUBLISH QoS 3");              // [MQTT-3.3.1-4]
  if (dup && qos == 0) return malformed("DUP set with QoS 0");  // [MQTT-3.3.1-2]

  Reader r(f.body);
  std::string_view topic;
  if (!r.prefixed(topic)) return malformed("truncated PUBLISH topic");
  if (!valid_utf8(topic)) return malformed("PUBLISH topic not valid UTF-8");  // [MQTT-3.3.2-1]
  // The rest of valid_topic_name without a second UTF-8 scan (the length
  // prefix already bounds the size). [MQTT-3.3.2-2], [MQTT-4.7.3-1]
  if (topic.find_first_of("+#") != std::string_view::npos) {
    return protocol_error("PUBLISH topic has wildcards");  // [MQTT-3.3.2-2]
  }
  const bool v5 = level == kLevel5;
  // 3.x has no Topic Alias to stand for an empty topic. [MQTT-4.7.3-1]
  if (topic.empty() && !v5) return protocol_error("PUBLISH topic empty");
  uint16_t id = 0;
  if (qos > 0) {
    if (!r.u16(id)) return malformed("truncated PUBLISH packet identifier");
    // [MQTT-2.3.1-1] (3.1.1), [MQTT-2.2.1-3] (5.0)
    if (id == 0) return protocol_error("PUBLISH packet identifier 0");
  }
  if (v5) {
    Properties props;
    if (DecodeResult pr = read_properties(r, PropertyContext::Publish, props); !pr.ok()) return pr;
    fill_publish_properties(props, out.props);
    if (topic.empty() && out.props.topic_alias == 0) {
      return protocol_error("PUBLISH topic empty without topic alias");  // 3.3.2.1
    }
  } else {
    out.props = PublishProperties{};
  }
  out.topic = topic;
  out.payload = r.rest();
  out.packet_id = id;
  out.qos = qos;
  out.retain = (f.flags & 0x01) != 0;
  out.dup = dup;
  return ok();
}

DecodeResult decode_subscribe(const Frame& f, uint8_t level, Subscribe& out) {
  if (f.type != PacketType::Subscribe) return protocol_error("not a SUBSCRIBE packet");
  if (f.flags != 0x2) return malformed("invalid SUBSCRIBE flags");  // [MQTT-3.8.1-1]
  out.packet_id = 0;
  out.subscription_identifier = 0;
  out.properties = Properties{};
  out.topics.clear();
  Reader r(f.body);
  if (!r.u16(out.packet_id)) return malformed("truncated SUBSCRIBE packet identifier");
  // [MQTT-2.3.1-1] (3.1.1), [MQTT-2.2.1-3] (5.0)
  if (out.packet_id == 0) return protocol_error("SUBSCRIBE packet identifier 0");
  if (level != kLevel5) return decode_subscribe_3(r, out);
  if (DecodeResult pr = read_properties(r, PropertyContext::Subscribe, out.properties); !pr.ok()) {
    return pr;
  }
  if (std::optional<Property> id = out.properties.find(PropertyId::SubscriptionIdentifier)) {
    out.subscription_identifier = id->number;
  }
  if (r.done()) return protocol_error("SUBSCRIBE without topic filters");  // [MQTT-3.8.3-2]
  while (!r.done()) {
    TopicRequest t;
    uint8_t opts = 0;
    if (!r.prefixed(t.filter) || !r.u8(opts)) return malformed("truncated SUBSCRIBE entry");
    if (!valid_utf8(t.filter)) return malformed("topic filter not valid UTF-8");  // [MQTT-3.8.3-1]
    if ((opts & 0xC0) != 0) {
      return malformed("subscription options reserved bits set");  // [MQTT-3.8.3-5]
    }
    if (DecodeResult fr = check_filter(t.filter, t.share_name); !fr.ok()) return fr;
    t.qos = opts & 0x03;
    t.no_local = (opts & 0x04) != 0;
    t.retain_as_published = (opts & 0x08) != 0;
    const auto rh = static_cast<uint8_t>((opts >> 4) & 0x03);
    if (t.qos == 3) return protocol_error("subscription maximum QoS 3");  // 3.8.3.1
    if (rh == 3) return protocol_error("retain handling 3");              // 3.8.3.1
    t.retain_handling = static_cast<RetainHandling>(rh);
    if (t.no_local && !t.share_name.empty()) {
      return protocol_error("no local on a shared subscription");  // [MQTT-3.8.3-4]
    }
    out.topics.push_back(t);
  }
  return ok();
}

DecodeResult decode_unsubscribe(const Frame& f, uint8_t level, Unsubscribe& out) {
  if (f.type != PacketType::Unsubscribe) return protocol_error("not an UNSUBSCRIBE packet");
  if (f.flags != 0x2) return malformed("invalid UNSUBSCRIBE flags");  // [MQTT-3.10.1-1]
  out.packet_id = 0;
  out.properties = Properties{};
  out.filters.clear();
  Reader r(f.body);
  if (!r.u16(out.packet_id)) return malformed("truncated UNSUBSCRIBE packet identifier");
  if (out.packet_id == 0) {
    // [MQTT-2.3.1-1] (3.1.1), [MQTT-2.2.1-3] (5.0)
    return protocol_error("UNSUBSCRIBE packet identifier 0");
  }
  if (level != kLevel5) return decode_unsubscribe_3(r, out);
  if (DecodeResult pr = read_properties(r, PropertyContext::Unsubscribe, out.properties);
      !pr.ok()) {
    return pr;
  }
  if (r.done()) return protocol_error("UNSUBSCRIBE without topic filters");  // [MQTT-3.10.3-2]
  while (!r.done()) {
    std::string_view filter;
    std::string_view share_name;
    if (!r.prefixed(filter)) return malformed("truncated UNSUBSCRIBE entry");
    if (DecodeResult fr = check_filter(filter, share_name); !fr.ok()) return fr;
    out.filters.push_back(filter);
  }
  return ok();
}

DecodeResult decode_ack(const Frame& f, uint8_t level, Ack& out) {
  switch (f.type) {
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubcomp:
      // [MQTT-2.2.2-2] (3.1.1), [MQTT-2.1.3-1] (5.0)
      if (f.flags != 0) return malformed("invalid acknowledgement flags");
      break;
    case PacketType::Pubrel:
      if (f.flags != 0x2) return malformed("invalid PUBREL flags");  // [MQTT-3.6.1-1]
      break;
    default:
      return protocol_error("not a PUBACK/PUBREC/PUBREL/PUBCOMP packet");
  }
  out = Ack{};
  out.type = f.type;
  if (level != kLevel5 && f.body.size() != 2) {
    return malformed("acknowledgement body is not 2 bytes");
  }
  Reader r(f.body);
  if (!r.u16(out.packet_id)) return malformed("truncated acknowledgement");
  // [MQTT-2.3.1-1] (3.1.1), [MQTT-2.2.1-3] (5.0)
  if (out.packet_id == 0) return protocol_error("acknowledgement packet identifier 0");
  if (r.done()) return ok();  // remaining length 2: Success [MQTT-3.4.2-1]
  uint8_t code = 0;
  r.u8(code);
  out.reason_code = static_cast<ReasonCode>(code);
  if (!valid_reason_code(f.type, out.reason_code)) {
    return protocol_error("reason code not allowed in this acknowledgement");
  }
  if (r.done()) return ok();  // remaining length 3: no Property Length
  Properties props;
  if (DecodeResult pr = read_properties(r, ack_context(f.type), props); !pr.ok()) return pr;
  fill_ack_properties(props, out.props);
  if (!r.done()) return malformed("trailing bytes after acknowledgement properties");
  return ok();
}

DecodeResult decode_disconnect(const Frame& f, uint8_t level, Disconnect& out) {
  if (f.type != PacketType::Disconnect) return protocol_error("not a DISCONNECT packet");
  if (f.flags != 0) return malformed("invalid DISCONNECT flags");  // [MQTT-3.14.1-1]
  out = Disconnect{};
  if (level != kLevel5) return decode_empty(f);  // 3.x: no variable header
  Reader r(f.body);
  if (r.done()) return ok();  // Normal disconnection
  uint8_t code = 0;
  r.u8(code);
  out.reason_code = static_cast<ReasonCode>(code);
  if (!valid_reason_code(PacketType::Disconnect, out.reason_code)) {
    return protocol_error("reason code not allowed in DISCONNECT");  // [MQTT-3.14.2-1]
  }
  if (r.done()) return ok();  // no Property Length (3.14.2.2.1)
  if (DecodeResult pr = read_properties(r, PropertyContext::Disconnect, out.properties); !pr.ok()) {
    return pr;
  }
  for (const Property& p : out.properties) {
    switch (p.id) {
      case PropertyId::SessionExpiryInterval:
        out.session_expiry_interval = p.number;
        break;
      case PropertyId::ReasonString:
        out.reason_string = p.str;
        break;
      case PropertyId::ServerReference:
        out.server_reference = p.str;
        break;
      default:
        break;
    }
  }
  if (!r.done()) return malformed("trailing bytes after DISCONNECT properties");
  return ok();
}

DecodeResult decode_auth(const Frame& f, uint8_t level, Auth& out) {
  if (f.type != PacketType::Auth) return protocol_error("not an AUTH packet");
  if (level != kLevel5) return malformed("packet type 15 (AUTH) not in 3.1.1");
  if (f.flags != 0) return malformed("invalid AUTH flags");  // [MQTT-3.15.1-1]
  out = Auth{};
  Reader r(f.body);
  if (r.done()) return ok();  // Success without properties (3.15.2.1)
  uint8_t code = 0;
  r.u8(code);
  out.reason_code = static_cast<ReasonCode>(code);
  if (!valid_reason_code(PacketType::Auth, out.reason_code)) {
    return protocol_error("reason code not allowed in AUTH");  // [MQTT-3.15.2-1]
  }
  if (r.done()) return malformed("AUTH without property length");
  if (DecodeResult pr = read_properties(r, PropertyContext::Auth, out.properties); !pr.ok()) {
    return pr;
  }
  for (const Property& p : out.properties) {
    switch (p.id) {
      case PropertyId::AuthenticationMethod:
        out.authentication_method = p.str;
        break;
      case PropertyId::AuthenticationData:
        out.authentication_data = p.str;
        break;
      case PropertyId::ReasonString:
        out.reason_string = p.str;
        break;
      default:
        break;
    }
  }
  if (!r.done()) return malformed("trailing bytes after AUTH properties");
  if (!out.authentication_method) {
    return protocol_error("AUTH without authentication method");  // 3.15.2.2.2
  }
  return ok();
}

DecodeResult decode_connack(const Frame& f, uint8_t level, Connack& out) {
  if (f.type != PacketType::Connack) return protocol_error("not a CONNACK packet");
  if (f.flags != 0) return malformed("invalid CONNACK flags");
  out = Connack{};
  Reader r(f.body);
  uint8_t ack_flags = 0;
  uint8_t code = 0;
  if (!r.u8(ack_flags) || !r.u8(code)) return malformed("truncated CONNACK");
  if ((ack_flags & 0xFE) != 0) {
    return malformed("CONNACK reserved flags set");  // [MQTT-3.2.2-1]
  }
  out.session_present = (ack_flags & 0x01) != 0;
  if (level != kLevel5) {
    if (!r.done()) return malformed("CONNACK body is not 2 bytes");
    if (code > static_cast<uint8_t>(ConnackCode::NotAuthorized)) {
      return protocol_error("unknown CONNACK return code");
    }
    if (out.session_present && code != 0) {
      return protocol_error("session present with a non-zero return code");  // [MQTT-3.2.2-4]
    }
    out.reason_code = to_reason_code(static_cast<ConnackCode>(code));
    return ok();
  }
  out.reason_code = static_cast<ReasonCode>(code);
  if (!valid_reason_code(PacketType::Connack, out.reason_code)) {
    return protocol_error("reason code not allowed in CONNACK");  // [MQTT-3.2.2-8]
  }
  if (out.session_present && is_failure(out.reason_code)) {
    return protocol_error("session present with a failure reason code");  // [MQTT-3.2.2-6]
  }
  ConnackProperties& c = out.props;
  if (DecodeResult pr = read_properties(r, PropertyContext::Connack, c.properties); !pr.ok()) {
    return pr;
  }
  for (const Property& p : c.properties) {
    switch (p.id) {
      case PropertyId::SessionExpiryInterval:
        c.session_expiry_interval = p.number;
        break;
      case PropertyId::ReceiveMaximum:
        c.receive_maximum = static_cast<uint16_t>(p.number);
        break;
      case PropertyId::MaximumQos:
        c.maximum_qos = static_cast<uint8_t>(p.number);
        break;
      case PropertyId::RetainAvailable:
        c.retain_available = p.number == 1;
        break;
      case PropertyId::MaximumPacketSize:
        c.maximum_packet_size = p.number;
        break;
      case PropertyId::AssignedClientIdentifier:
        c.assigned_client_identifier = p.str;
        break;
      case PropertyId::TopicAliasMaximum:
        c.topic_alias_maximum = static_cast<uint16_t>(p.number);
        break;
      case PropertyId::ReasonString:
        c.reason_string = p.str;
        break;
      case PropertyId::WildcardSubscriptionAvailable:
        c.wildcard_subscription_available = p.number == 1;
        break;
      case PropertyId::SubscriptionIdentifierAvailable:
        c.subscription_identifiers_available = p.number == 1;
        break;
      case PropertyId::SharedSubscriptionAvailable:
        c.shared_subscription_available = p.number == 1;
        break;
      case PropertyId::ServerKeepAlive:
        c.server_keep_alive = static_cast<uint16_t>(p.number);
        break;
      case PropertyId::ResponseInformation:
        c.response_information = p.str;
        break;
      case PropertyId::ServerReference:
        c.server_reference = p.str;
        break;
      case PropertyId::AuthenticationMethod:
        c.authentication_method = p.str;
        break;
      case PropertyId::AuthenticationData:
        c.authentication_data = p.str;
        break;
      default:
        break;
    }
  }
  if (!r.done()) return malformed("trailing bytes after CONNACK properties");
  return ok();
}

DecodeResult decode_suback(const Frame& f, uint8_t level, Suback& out) {
  return decode_sub_unsub_ack(f, level, PacketType::Suback, PropertyContext::Suback, out);
}

DecodeResult decode_unsuback(const Frame& f, uint8_t level, Unsuback& out) {
  return decode_sub_unsub_ack(f, level, PacketType::Unsuback, PropertyContext::Unsuback, out);
}

bool valid_payload_format(uint8_t payload_format_indicator, std::string_view payload) {
  return payload_format_indicator != 1 || valid_utf8(payload);
}

uint8_t subscription_options(const TopicRequest& t) {
  return static_cast<uint8_t>((t.qos & 0x03) | (t.no_local ? 0x04 : 0) |
                              (t.retain_as_published ? 0x08 : 0) |
                              ((static_cast<unsigned>(t.retain_handling) & 0x03) << 4));
}

}  // namespace mqtt
