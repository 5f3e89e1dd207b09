// Encoding and decoding of MQTT 3.1 / 3.1.1 packets. Pure functions over
// bytes: no I/O, no exceptions, no allocation on the PUBLISH path. MQTT 5 is
// in codec5.hpp (it shares read_frame and DecodeResult).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mqtt/packet.hpp"

namespace mqtt {

enum class DecodeStatus : uint8_t {
  Ok,
  NeedMore,            // not a full packet yet: read more bytes and try again
  Malformed,           // violates the wire format: close the connection
  TooLarge,            // remaining length beyond the configured maximum: close
  ProtocolError,       // well-formed bytes, illegal for the protocol: close
  BadProtocolVersion,  // CONNECT with unknown name/level: CONNACK 0x01, then close
};

// The outcome of a decode; `reason` is a static string for the log when not Ok.
// `reason_code` is the MQTT 5 reason code for a failure when the spec names a
// more specific one than the status gives (e.g. 0x94 for a Topic Alias of 0);
// 0 otherwise. See to_reason_code(const DecodeResult&).
struct DecodeResult {
  DecodeStatus status = DecodeStatus::Ok;
  const char* reason = "";
  uint8_t reason_code = 0;
  bool ok() const { return status == DecodeStatus::Ok; }
};

// One framed packet inside a buffer.
struct Frame {
  PacketType type = PacketType::Connect;
  uint8_t flags = 0;      // low nibble of the first byte
  std::string_view body;  // variable header + payload (remaining length bytes)
  size_t size = 0;        // total bytes of the frame, header included
};

// Finds the first complete packet in `buf`. NeedMore when incomplete (also when
// the remaining-length field itself is incomplete). Checks the remaining-length
// encoding (at most 4 bytes), the packet type (0 is reserved; 15, AUTH, is MQTT 5
// only: Malformed unless `protocol_level` is kLevel5) and the fixed-header
// flags that 3.1.1 and 5 fix per type (SUBSCRIBE/UNSUBSCRIBE/PUBREL must be
// 0b0010, others 0, PUBLISH is checked in decode_publish). `max_packet_size`
// bounds the whole frame. Before CONNECT the level is unknown: the default
// frames a CONNECT of any level.
DecodeResult read_frame(std::string_view buf, size_t max_packet_size, Frame& out,
                        uint8_t protocol_level = kLevel311);

// Body decoders. `protocol_level` selects 3.1 vs 3.1.1 rules where they differ.
// Wire-format violations (truncation, trailing bytes, bad flags, QoS 3, DUP with
// QoS 0, invalid UTF-8) are Malformed; well-formed but illegal values (packet
// id 0, empty or wildcard topic name, invalid filter, no filters, unknown
// protocol name) are ProtocolError. A decoder given a frame of the wrong type
// returns ProtocolError.
// decode_connect: "MQTT" level 4 or 5, "MQIsdp" level 3; another level with a
// known name is BadProtocolVersion. Level 5 is parsed with the MQTT 5 layout
// (CONNECT and will properties are skipped, not returned) so the broker can
// answer it. Password without user name is Malformed for level 4 only; a 3.1
// CONNECT whose password flag is set but has no password bytes decodes with
// no password.
DecodeResult decode_connect(const Frame& f, Connect& out);
DecodeResult decode_publish(const Frame& f, Publish& out);
DecodeResult decode_subscribe(const Frame& f, Subscribe& out);
DecodeResult decode_unsubscribe(const Frame& f, Unsubscribe& out);
DecodeResult decode_ack(const Frame& f, Ack& out);  // PUBACK/PUBREC/PUBREL/PUBCOMP/UNSUBACK
DecodeResult decode_empty(const Frame& f);  // PINGREQ/PINGRESP/DISCONNECT: body must be empty

// Remaining length: writes 1..4 bytes to `out`, returns the count (0, writing
// nothing, when value > kMaxRemainingLength; same for remaining_length_size).
size_t encode_remaining_length(uint32_t value, uint8_t out[4]);
// Number of bytes encode_remaining_length would write.
size_t remaining_length_size(uint32_t value);

// Encoders append to `out`. A packet that cannot be represented (a string over
// 65535 bytes, remaining length over kMaxRemainingLength) appends nothing.
// encode_ack also encodes UNSUBACK and sets PUBREL's fixed flags 0b0010.
void encode_connack(std::string& out, bool session_present, ConnackCode code);
void encode_suback(std::string& out, uint16_t packet_id, std::span<const uint8_t> return_codes);
void encode_unsuback(std::string& out, uint16_t packet_id);
void encode_ack(std::string& out, PacketType type, uint16_t packet_id);  // PUBACK..PUBCOMP
void encode_pingresp(std::string& out);
void encode_publish(std::string& out, const Publish& p);
// Client-side encoders (tests, fuzz seeds, the bench load generator).
void encode_connect(std::string& out, const Connect& c);
void encode_subscribe(std::string& out, const Subscribe& s);
void encode_unsubscribe(std::string& out, const Unsubscribe& u);
void encode_pingreq(std::string& out);
void encode_disconnect(std::string& out);

// The fixed header of a PUBLISH (first byte + remaining length) for a message
// whose topic and payload are already encoded elsewhere: used to send one
// shared buffer to many subscribers with only this header differing.
// Writes at most 5 bytes into `out`, returns the count (0 when the packet would
// exceed kMaxRemainingLength or topic_len > 65535).
size_t encode_publish_fixed_header(uint8_t out[5], uint8_t qos, bool retain, bool dup,
                                   size_t topic_len, size_t payload_len);

}  // namespace mqtt
