// Encoding and decoding of MQTT 5.0 packets. Pure functions over bytes like
// codec.hpp, whose framing (read_frame with protocol_level kLevel5), Frame,
// DecodeResult and 3.1.1 functions they complement. No I/O, no exceptions,
// no allocation when decoding PUBLISH.
//
// Error classes follow the spec: a violation of the wire format (truncation,
// trailing bytes, bad flags or reserved bits, invalid UTF-8, a property not
// allowed in the packet, a non-minimal variable byte integer) is Malformed
// (reason code 0x81); well-formed bytes with a value the protocol forbids
// (packet id 0, a duplicated property, Topic Alias 0, Receive Maximum 0,
// Retain Handling 3, an unknown reason code for the packet...) are
// ProtocolError (0x82). to_reason_code(status) gives the reason code for the
// CONNACK or DISCONNECT a server sends before closing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"
#include "mqtt/packet5.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/reason_code.hpp"

namespace mqtt {

// ---------------------------------------------------------------- decoders
// What a server receives. A decoder given a frame of the wrong type returns
// ProtocolError. Views point into the frame.

// CONNECT of any level: levels 3 and 4 decode exactly as decode_connect
// (props left at their defaults); level 5 also validates and returns the
// CONNECT and Will properties. Password without user name is allowed in v5.
// Authentication Data without Authentication Method is ProtocolError.
DecodeResult decode_connect_v5(const Frame& f, ConnectV5& out);

// PUBLISH with properties. The topic may be empty only with a Topic Alias
// (ProtocolError otherwise, 3.3.2.1). Subscription Identifiers are accepted
// (a client receives them); a server must reject a PUBLISH from a client
// with props.subscription_identifier_count > 0 as a Protocol Error
// [MQTT-3.3.4-6]. Does not allocate.
DecodeResult decode_publish_v5(const Frame& f, PublishV5& out);

// SUBSCRIBE: Subscription Identifier (once, not 0), User Properties, and per
// filter the Subscription Options. Reserved option bits set are Malformed
// [MQTT-3.8.3-5]; QoS 3 and Retain Handling 3 are ProtocolError; a
// "$share/..." filter must be a valid shared subscription [MQTT-4.8.2-1],
// [MQTT-4.8.2-2] and must not set No Local [MQTT-3.8.3-4] (ProtocolError).
DecodeResult decode_subscribe_v5(const Frame& f, SubscribeV5& out);
// UNSUBSCRIBE: User Properties and filters (shared ones checked as above).
DecodeResult decode_unsubscribe_v5(const Frame& f, UnsubscribeV5& out);

// PUBACK, PUBREC, PUBREL, PUBCOMP: remaining length 2 means reason Success
// and no properties; 3 a reason code without properties (3.4.2.1). The
// reason code must be one the packet type allows (ProtocolError).
DecodeResult decode_ack_v5(const Frame& f, AckV5& out);

// DISCONNECT: remaining length 0 is Normal disconnection, 1 a reason code
// without properties (3.14.2.1). A server must also refuse a non-zero Session
// Expiry Interval when the CONNECT's was 0 (not checked here).
DecodeResult decode_disconnect_v5(const Frame& f, DisconnectV5& out);

// AUTH: remaining length 0 is Success without properties; otherwise the
// reason code and properties, which must include the Authentication Method
// (3.15.2.2.2, ProtocolError).
DecodeResult decode_auth_v5(const Frame& f, AuthV5& out);

// What a client receives (tests, fuzzing, the bench load generator).
// CONNACK: reserved flag bits are Malformed [MQTT-3.2.2-1]; Session Present
// with a failure reason code is ProtocolError [MQTT-3.2.2-6].
DecodeResult decode_connack_v5(const Frame& f, ConnackV5& out);
DecodeResult decode_suback_v5(const Frame& f, SubackV5& out);
DecodeResult decode_unsuback_v5(const Frame& f, UnsubackV5& out);

// Whether a payload matches its Payload Format Indicator: with indicator 1 it
// must be valid UTF-8 (3.3.2.3.2). A receiver MAY check this and answer
// 0x99 Payload format invalid.
bool valid_payload_format(uint8_t payload_format_indicator, std::string_view payload);

// ---------------------------------------------------------------- encoders
// Encoders append to `out`; a packet that cannot be represented (a string
// over 65535 bytes, a remaining length over kMaxRemainingLength, a typed
// property value that cannot be written) appends nothing. None checks the
// receiver's Maximum Packet Size: encode, compare the size and, for a reason
// string or user properties, encode again without them [MQTT-3.1.2-24],
// [MQTT-3.2.2-19], [MQTT-3.4.2-2]...

// CONNACK: flags, reason code, the present ConnackProperties fields, then the
// User Properties of props.properties.
void encode_connack_v5(std::string& out, const ConnackV5& c);

// PUBLISH with `properties` written verbatim as its property block (build it
// with a PropertyWriter: forwarded properties, the subscriber's Topic Alias,
// Subscription Identifiers and remaining Message Expiry Interval).
void encode_publish_v5(std::string& out, const Publish& p, const Properties& properties);

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

// PUBACK, PUBREC, PUBREL (fixed flags 0b0010), PUBCOMP. Success without
// properties is the 2-byte short form; another reason code without
// properties omits the Property Length (remaining length 3).
void encode_ack_v5(std::string& out, const AckV5& a);
void encode_ack_v5(std::string& out, PacketType type, uint16_t packet_id,
                   ReasonCode code = ReasonCode::Success);

// SUBACK / UNSUBACK with one reason code per filter of the request.
void encode_suback_v5(std::string& out, uint16_t packet_id, std::span<const ReasonCode> codes,
                      const AckProperties& props = {});
void encode_unsuback_v5(std::string& out, uint16_t packet_id, std::span<const ReasonCode> codes,
                        const AckProperties& props = {});

// DISCONNECT: Normal disconnection without properties is the empty form;
// another reason code without properties is 1 byte. A server must not send
// a Session Expiry Interval [MQTT-3.14.2-2] (written if set: clients use
// this encoder too).
void encode_disconnect_v5(std::string& out, const DisconnectV5& d);

// AUTH: Success without any property is the empty form.
void encode_auth_v5(std::string& out, const AuthV5& a);

// Client-side encoders (tests, fuzz seeds, the bench load generator).
// CONNECT is written as "MQTT" level 5 whatever c.protocol_name/level say;
// properties equal to their defaults are left out.
void encode_connect_v5(std::string& out, const ConnectV5& c);
void encode_subscribe_v5(std::string& out, const SubscribeV5& s);
void encode_unsubscribe_v5(std::string& out, const UnsubscribeV5& u);

}  // namespace mqtt
