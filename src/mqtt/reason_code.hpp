// MQTT 5 reason codes (section 2.4, Table 2-6), which packet may carry
// which (Tables 3-1, 3-4 .. 3-11), and the CONNACK return codes of 3.1 /
// 3.1.1 they map to and from.
#pragma once

#include <cstdint>

#include "mqtt/frame.hpp"

namespace mqtt {

// CONNACK return codes of MQTT 3.1 / 3.1.1.
enum class ConnackCode : uint8_t {
  Accepted = 0,
  UnacceptableProtocolVersion = 1,
  IdentifierRejected = 2,
  ServerUnavailable = 3,
  BadUsernameOrPassword = 4,
  NotAuthorized = 5,
};

// The SUBACK return code of 3.1 / 3.1.1 for any refused filter.
inline constexpr uint8_t kSubackFailure = 0x80;

// Every reason code of MQTT 5.0. Values below 0x80 are successes, 0x80 and
// above failures. 0x00 has three names depending on the packet.
enum class ReasonCode : uint8_t {
  Success = 0x00,              // CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, AUTH
  NormalDisconnection = 0x00,  // DISCONNECT
  GrantedQos0 = 0x00,          // SUBACK
  GrantedQos1 = 0x01,
  GrantedQos2 = 0x02,
  DisconnectWithWillMessage = 0x04,
  NoMatchingSubscribers = 0x10,
  NoSubscriptionExisted = 0x11,
  ContinueAuthentication = 0x18,
  ReAuthenticate = 0x19,
  UnspecifiedError = 0x80,
  MalformedPacket = 0x81,
  ProtocolError = 0x82,
  ImplementationSpecificError = 0x83,
  UnsupportedProtocolVersion = 0x84,
  ClientIdentifierNotValid = 0x85,
  BadUserNameOrPassword = 0x86,
  NotAuthorized = 0x87,
  ServerUnavailable = 0x88,
  ServerBusy = 0x89,
  Banned = 0x8A,
  ServerShuttingDown = 0x8B,
  BadAuthenticationMethod = 0x8C,
  KeepAliveTimeout = 0x8D,
  SessionTakenOver = 0x8E,
  TopicFilterInvalid = 0x8F,
  TopicNameInvalid = 0x90,
  PacketIdentifierInUse = 0x91,
  PacketIdentifierNotFound = 0x92,
  ReceiveMaximumExceeded = 0x93,
  TopicAliasInvalid = 0x94,
  PacketTooLarge = 0x95,
  MessageRateTooHigh = 0x96,
  QuotaExceeded = 0x97,
  AdministrativeAction = 0x98,
  PayloadFormatInvalid = 0x99,
  RetainNotSupported = 0x9A,
  QosNotSupported = 0x9B,
  UseAnotherServer = 0x9C,
  ServerMoved = 0x9D,
  SharedSubscriptionsNotSupported = 0x9E,
  ConnectionRateExceeded = 0x9F,
  MaximumConnectTime = 0xA0,
  SubscriptionIdentifiersNotSupported = 0xA1,
  WildcardSubscriptionsNotSupported = 0xA2,
};

// A short English name for logs ("Success", "Topic Alias invalid", ...), the
// spec's own wording; "unknown reason code" for a value not in Table 2-6.
// 0x00 is "Success" (it is also Normal disconnection and Granted QoS 0).
const char* to_string(ReasonCode code);

// Whether `code` appears in Table 2-6 at all.
bool known_reason_code(uint8_t code);

// Whether a packet of `type` may carry `code` [MQTT-3.2.2-8], [MQTT-3.4.2-1],
// [MQTT-3.5.2-1], [MQTT-3.6.2-1], [MQTT-3.7.2-1], [MQTT-3.11.3-2],
// [MQTT-3.14.2-1], [MQTT-3.15.2-1] and Table 3-8 for SUBACK. Both directions are
// allowed (e.g. DISCONNECT 0x8B Server shutting down is valid even though
// only a server sends it). Packets without reason codes: false.
bool valid_reason_code(PacketType type, ReasonCode code);

inline bool is_failure(ReasonCode code) {
  return static_cast<uint8_t>(code) >= 0x80;
}

// The reason code a v5 server puts in its CONNACK or DISCONNECT when a decode
// fails with `status`: Malformed 0x81, ProtocolError 0x82, TooLarge 0x95,
// BadProtocolVersion 0x84; Ok and NeedMore give Success.
ReasonCode to_reason_code(DecodeStatus status);
// The reason code for a failed decode: its own one if it names one, else by status.
inline ReasonCode to_reason_code(const DecodeResult& r) {
  return r.reason_code != 0 ? static_cast<ReasonCode>(r.reason_code) : to_reason_code(r.status);
}

// The 3.x CONNACK return code for a v5 CONNACK reason code: Success is
// Accepted; a refusal 3.x has no code for is Server unavailable.
ConnackCode to_connack_code(ReasonCode code);
// The v5 reason code for a 3.x CONNACK return code (the inverse where one exists).
ReasonCode to_reason_code(ConnackCode code);

}  // namespace mqtt
