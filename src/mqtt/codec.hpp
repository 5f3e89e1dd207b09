// Encoding and decoding of MQTT packets of every protocol level (3.1, 3.1.1,
// 5.0). Pure functions over bytes: no I/O, no exceptions, no allocation when
// decoding PUBLISH. Each decoder and encoder takes the protocol level and
// reads or writes the 3.x or the 5.0 wire form of one struct of packet.hpp.
// Framing (read_frame) is in frame.hpp.
//
// Error classes follow the spec: a violation of the wire format (truncation,
// trailing bytes, bad flags or reserved bits, QoS 3, DUP with QoS 0, invalid
// UTF-8, a property not allowed in the packet, a non-minimal variable byte
// integer) is Malformed (reason code 0x81); well-formed bytes with a value the
// protocol forbids (packet id 0, empty or wildcard topic name, invalid filter,
// no filters, unknown protocol name, a duplicated property, Topic Alias 0,
// Receive Maximum 0, Retain Handling 3, an unknown reason code for the
// packet...) are ProtocolError (0x82). to_reason_code(status) gives the reason
// code for the CONNACK or DISCONNECT a v5 server sends before closing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/frame.hpp"
#include "mqtt/packet.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/reason_code.hpp"

namespace mqtt {

// ---------------------------------------------------------------- decoders
// What a server receives. A decoder given a frame of the wrong type returns
// ProtocolError. Views point into the frame. `level` is the connection's
// protocol level (kLevel31, kLevel311 or kLevel5); 3.1 and 3.1.1 decode alike
// except where noted.

// CONNECT: the level comes from the packet. "MQTT" level 4 or 5, "MQIsdp"
// level 3; another level with a known name is BadProtocolVersion. Password
// without user name is Malformed for level 4 only; a 3.1 CONNECT whose
// password flag is set but has no password bytes decodes with no password.
// Level 5 also validates and returns the CONNECT and Will properties (left at
// their defaults below); Authentication Data without Authentication Method is
// ProtocolError.
DecodeResult decode_connect(const Frame& f, Connect& out);

// PUBLISH. Below level 5 the topic must not be empty and there are no
// properties. In v5 the topic may be empty only with a Topic Alias
// (ProtocolError otherwise, 3.3.2.1); Subscription Identifiers are accepted
// (a client receives them); a server must reject a PUBLISH from a client with
// props.subscription_identifier_count > 0 as a Protocol Error [MQTT-3.3.4-6].
// Does not allocate.
DecodeResult decode_publish(const Frame& f, uint8_t level, Publish& out);

// SUBSCRIBE. Below level 5 the options byte is the requested QoS 0..2
// (anything else Malformed). In v5: Subscription Identifier (once, not 0),
// User Properties, and per filter the Subscription Options. Reserved option
// bits set are Malformed [MQTT-3.8.3-5]; QoS 3 and Retain Handling 3 are
// ProtocolError; a "$share/..." filter must be a valid shared subscription
// [MQTT-4.8.2-1], [MQTT-4.8.2-2] and must not set No Local [MQTT-3.8.3-4]
// (ProtocolError).
DecodeResult decode_subscribe(const Frame& f, uint8_t level, Subscribe& out);
// UNSUBSCRIBE: filters, and in v5 User Properties (shared filters checked as
// above).
DecodeResult decode_unsubscribe(const Frame& f, uint8_t level, Unsubscribe& out);

// PUBACK, PUBREC, PUBREL, PUBCOMP. Below level 5 the body is exactly the
// packet id. In v5 remaining length 2 means reason Success and no
// properties; 3 a reason code without properties (3.4.2.1). The reason code
// must be one the packet type allows (ProtocolError).
DecodeResult decode_ack(const Frame& f, uint8_t level, Ack& out);

// PINGREQ/PINGRESP/DISCONNECT: the body must be empty.
DecodeResult decode_empty(const Frame& f);

// DISCONNECT. Below level 5 the body must be empty (Normal disconnection). In
// v5 remaining length 0 is Normal disconnection, 1 a reason code without
// properties (3.14.2.1). A server must also refuse a non-zero Session Expiry
// Interval when the CONNECT's was 0 (not checked here).
DecodeResult decode_disconnect(const Frame& f, uint8_t level, Disconnect& out);

// AUTH (MQTT 5 only: Malformed below level 5, as read_frame says): remaining
// length 0 is Success without properties; otherwise the reason code and
// properties, which must include the Authentication Method (3.15.2.2.2,
// ProtocolError).
DecodeResult decode_auth(const Frame& f, uint8_t level, Auth& out);

// What a client receives (tests, fuzzing, the bench load generator).
// CONNACK: reserved flag bits are Malformed [MQTT-3.2.2-1]; Session Present
// with a failure (v5) or a non-zero return code (3.x) is ProtocolError
// [MQTT-3.2.2-6], [MQTT-3.2.2-4]. A 3.x return code is given as the reason
// code it maps to (to_reason_code(ConnackCode)); one above 5 is ProtocolError.
DecodeResult decode_connack(const Frame& f, uint8_t level, Connack& out);
// SUBACK: below level 5 each return code is 0, 1, 2 or 0x80 (Unspecified
// error).
DecodeResult decode_suback(const Frame& f, uint8_t level, Suback& out);
// UNSUBACK: below level 5 only the packet id (no reason codes).
DecodeResult decode_unsuback(const Frame& f, uint8_t level, Unsuback& out);

// Whether a payload matches its Payload Format Indicator: with indicator 1 it
// must be valid UTF-8 (3.3.2.3.2). A receiver MAY check this and answer
// 0x99 Payload format invalid.
bool valid_payload_format(uint8_t payload_format_indicator, std::string_view payload);

// ---------------------------------------------------------------- encoders
// Encoders append to `out` the wire form for `level`: below level 5 no
// properties and no reason codes in acknowledgements (v5-only fields are
// ignored). A packet that cannot be represented (a string over 65535 bytes, a
// remaining length over kMaxRemainingLength, a typed property value that
// cannot be written, a v5-only packet below level 5) appends nothing. None
// checks the receiver's Maximum Packet Size: encode, compare the size and,
// for a reason string or user properties, encode again without them
// [MQTT-3.1.2-24], [MQTT-3.2.2-19], [MQTT-3.4.2-2]...

// CONNACK. 3.x: flags and the return code to_connack_code(reason_code). v5:
// flags, reason code, the present ConnackProperties fields, then the User
// Properties of props.properties.
void encode_connack(std::string& out, uint8_t level, const Connack& c);

// PUBLISH. In v5 p.props.properties is written verbatim as its property block
// (build it with a PropertyWriter: forwarded properties, the subscriber's
// Topic Alias, Subscription Identifiers and remaining Message Expiry
// Interval); the other fields of p.props are ignored.
void encode_publish(std::string& out, uint8_t level, const Publish& p);

// The fixed header of a 3.x PUBLISH (first byte + remaining length) for a
// message whose topic and payload are already encoded elsewhere: used to send
// one shared buffer to many subscribers with only this header differing.
// Writes at most 5 bytes into `out`, returns the count (0 when the packet
// would exceed kMaxRemainingLength or topic_len > 65535).
size_t encode_publish_fixed_header(uint8_t out[5], uint8_t qos, bool retain, bool dup,
                                   size_t topic_len, size_t payload_len);

// The fixed header of a v5 PUBLISH whose topic, property block and payload
// are written separately: first byte + remaining length for a packet made of
// the 2-byte-prefixed topic (topic_len bytes), the packet id when qos > 0,
// the Property Length (a variable byte integer for properties_len) and
// properties_len bytes of properties, then payload_len bytes. Writes at most
// 5 bytes, returns the count (0 when the packet cannot be represented). On the
// wire: header, topic, [packet id], encode_varint(properties_len),
// properties, payload.
size_t encode_publish_fixed_header_v5(uint8_t out[5], uint8_t qos, bool retain, bool dup,
                                      size_t topic_len, size_t properties_len, size_t payload_len);
// The total size (fixed header included) of that PUBLISH, 0 when it cannot be
// represented: compare with the subscriber's Maximum Packet Size.
size_t publish_packet_size_v5(uint8_t qos, size_t topic_len, size_t properties_len,
                              size_t payload_len);

// PUBACK, PUBREC, PUBREL (fixed flags 0b0010), PUBCOMP. 3.x: the packet id
// only. v5: Success without properties is the 2-byte short form; another
// reason code without properties omits the Property Length (remaining
// length 3).
void encode_ack(std::string& out, uint8_t level, const Ack& a);
void encode_ack(std::string& out, uint8_t level, PacketType type, uint16_t packet_id,
                ReasonCode code = ReasonCode::Success);

// SUBACK with one reason code per filter of the request; 3.x writes a
// failure (any code from 0x80) as 0x80.
void encode_suback(std::string& out, uint8_t level, uint16_t packet_id,
                   std::span<const ReasonCode> codes, const AckProperties& props = {});
// UNSUBACK; 3.x writes the packet id only.
void encode_unsuback(std::string& out, uint8_t level, uint16_t packet_id,
                     std::span<const ReasonCode> codes, const AckProperties& props = {});

// DISCONNECT. 3.x: always the empty packet. v5: Normal disconnection without
// properties is the empty form; another reason code without properties is 1
// byte. A server must not send a Session Expiry Interval [MQTT-3.14.2-2]
// (written if set: clients use this encoder too).
void encode_disconnect(std::string& out, uint8_t level, const Disconnect& d = {});

// AUTH (v5 only): Success without any property is the empty form.
void encode_auth(std::string& out, uint8_t level, const Auth& a);

void encode_pingresp(std::string& out);

// Client-side encoders (tests, fuzz seeds, the bench load generator).
// CONNECT is written with c.protocol_name, or the level's own name ("MQIsdp"
// for 3, "MQTT" otherwise) when that is empty, and `level` as its protocol
// level; v5 properties equal to their defaults are left out.
void encode_connect(std::string& out, uint8_t level, const Connect& c);
// SUBSCRIBE: 3.x writes each request's qos as its options byte, unchecked.
void encode_subscribe(std::string& out, uint8_t level, const Subscribe& s);
void encode_unsubscribe(std::string& out, uint8_t level, const Unsubscribe& u);
void encode_pingreq(std::string& out);

}  // namespace mqtt
