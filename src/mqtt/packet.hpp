// MQTT control packets as plain values, one struct per packet for every
// protocol level: the MQTT 5 shape, whose v5-only fields (properties, reason
// codes) stay at their defaults for 3.1 / 3.1.1. Decoded packets hold views
// into the connection's read buffer (no copies); they are valid only until
// that buffer is consumed.
//
// Each packet with properties carries both typed fields for the properties the
// broker acts on and `properties`, the whole block as received (a view, in
// wire order; iterate it for User Properties). Encoders write the typed fields
// and then only the User Property entries of `properties` (other entries in
// it are ignored: the typed fields are authoritative). The exception is
// PUBLISH, whose encoder writes props.properties, a complete caller-built
// property block, verbatim (see codec.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "mqtt/frame.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/reason_code.hpp"

namespace mqtt {

struct Will {
  std::string_view topic;
  std::string_view payload;
  uint8_t qos = 0;
  bool retain = false;
};

// CONNECT properties (3.1.2.11), defaults applied when absent.
struct ConnectProperties {
  uint32_t session_expiry_interval = 0;  // seconds; 0xFFFFFFFF never expires
  uint16_t receive_maximum = 65535;      // never 0
  uint32_t maximum_packet_size = 0;      // 0: absent, no limit (never 0 on the wire)
  uint16_t topic_alias_maximum = 0;      // highest alias the client accepts; 0: none
  bool request_response_information = false;
  bool request_problem_information = true;
  std::optional<std::string_view> authentication_method;
  std::optional<std::string_view> authentication_data;  // only with a method
  Properties properties;
};

// Will Properties (3.1.3.2), meaningful when the CONNECT has a will.
struct WillProperties {
  uint32_t will_delay_interval = 0;      // seconds
  uint8_t payload_format_indicator = 0;  // 0 unspecified bytes, 1 UTF-8
  std::optional<uint32_t> message_expiry_interval;
  std::optional<std::string_view> content_type;
  std::optional<std::string_view> response_topic;    // a valid topic name
  std::optional<std::string_view> correlation_data;  // binary
  Properties properties;
};

// CONNECT of any level: clean_session is Clean Start in v5; the v5
// properties are left at their defaults below level 5.
struct Connect {
  std::string_view protocol_name;  // "MQTT" or "MQIsdp"
  uint8_t protocol_level = 0;
  bool clean_session = false;
  uint16_t keep_alive = 0;  // seconds
  std::string_view client_id;
  std::optional<Will> will;
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;
  ConnectProperties props;
  WillProperties will_props;
};

// CONNACK properties (3.2.2.3). Absent fields are not sent; the comment
// gives what the client assumes then.
struct ConnackProperties {
  std::optional<uint32_t> session_expiry_interval;  // the client's value
  std::optional<uint16_t> receive_maximum;          // 65535
  std::optional<uint8_t> maximum_qos;               // 2 (only 0 or 1 may be sent)
  std::optional<bool> retain_available;             // true
  std::optional<uint32_t> maximum_packet_size;      // no limit
  std::optional<std::string_view> assigned_client_identifier;
  std::optional<uint16_t> topic_alias_maximum;  // 0: the client must not use aliases
  std::optional<std::string_view> reason_string;
  std::optional<bool> wildcard_subscription_available;     // true
  std::optional<bool> subscription_identifiers_available;  // true
  std::optional<bool> shared_subscription_available;       // true
  std::optional<uint16_t> server_keep_alive;               // the client's keep-alive
  std::optional<std::string_view> response_information;
  std::optional<std::string_view> server_reference;
  std::optional<std::string_view> authentication_method;
  std::optional<std::string_view> authentication_data;
  Properties properties;
};

// CONNACK: below level 5 the reason code travels as the 3.x return code it
// maps to (to_connack_code) and the properties are not sent.
struct Connack {
  bool session_present = false;
  ReasonCode reason_code = ReasonCode::Success;
  ConnackProperties props;
};

// PUBLISH properties (3.3.2.3). decode_publish fills this without
// allocating: repeated properties (User Property, Subscription Identifier)
// are counted here and read by iterating `properties`.
struct PublishProperties {
  uint8_t payload_format_indicator = 0;  // 0 unspecified bytes, 1 UTF-8
  std::optional<uint32_t> message_expiry_interval;
  uint16_t topic_alias = 0;  // 0: none (0 is invalid on the wire)
  std::optional<std::string_view> response_topic;
  std::optional<std::string_view> correlation_data;
  std::optional<std::string_view> content_type;
  uint32_t subscription_identifier = 0;  // the first one; 0: none
  uint32_t subscription_identifier_count = 0;
  uint32_t user_property_count = 0;
  Properties properties;
};

// PUBLISH. In v5 with a topic alias the topic may be empty (the receiver
// maps it, 3.3.2.3.4).
struct Publish {
  std::string_view topic;
  std::string_view payload;
  uint16_t packet_id = 0;  // 0 when qos == 0
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  PublishProperties props;
};

enum class RetainHandling : uint8_t {
  SendOnSubscribe = 0,  // send retained messages when subscribing
  SendIfNew = 1,        // only if the subscription did not exist
  DoNotSend = 2,        // never at subscribe time
};

// One SUBSCRIBE entry with its Subscription Options (3.8.3.1). For a shared
// subscription "$share/{ShareName}/{filter}" (4.8.2) `filter` is the whole
// string and `share_name` the ShareName; empty otherwise (decode only, v5
// only). Below level 5 only `qos` is on the wire.
struct TopicRequest {
  std::string_view filter;
  uint8_t qos = 0;  // maximum QoS
  bool no_local = false;
  bool retain_as_published = false;
  RetainHandling retain_handling = RetainHandling::SendOnSubscribe;
  std::string_view share_name;
};

// The Subscription Options byte of a request (bits 0-1 QoS, 2 No Local, 3
// Retain As Published, 4-5 Retain Handling, 6-7 reserved 0).
uint8_t subscription_options(const TopicRequest& t);

struct Subscribe {
  uint16_t packet_id = 0;
  uint32_t subscription_identifier = 0;  // 0: none
  Properties properties;
  std::vector<TopicRequest> topics;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  Properties properties;
  std::vector<std::string_view> filters;
};

// The properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
struct AckProperties {
  std::optional<std::string_view> reason_string;
  Properties properties;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP: below level 5 a packet id and nothing else.
struct Ack {
  PacketType type = PacketType::Puback;
  uint16_t packet_id = 0;
  ReasonCode reason_code = ReasonCode::Success;
  AckProperties props;
};

// SUBACK and UNSUBACK: one reason code per requested filter. A 3.x SUBACK
// carries Granted QoS 0..2 or 0x80 (decoded as Unspecified error); a 3.x
// UNSUBACK has no reason codes.
struct Suback {
  uint16_t packet_id = 0;
  AckProperties props;
  std::vector<ReasonCode> reason_codes;
};
using Unsuback = Suback;

// DISCONNECT: below level 5 an empty packet (Normal disconnection).
struct Disconnect {
  ReasonCode reason_code = ReasonCode::NormalDisconnection;
  std::optional<uint32_t> session_expiry_interval;  // client only [MQTT-3.14.2-2]
  std::optional<std::string_view> reason_string;
  std::optional<std::string_view> server_reference;
  Properties properties;
};

// AUTH exists only in MQTT 5.
struct Auth {
  ReasonCode reason_code = ReasonCode::Success;
  std::optional<std::string_view> authentication_method;  // required unless the short form
  std::optional<std::string_view> authentication_data;
  std::optional<std::string_view> reason_string;
  Properties properties;
};

}  // namespace mqtt
