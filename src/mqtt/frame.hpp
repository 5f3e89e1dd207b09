// The framing layer of MQTT, common to every protocol level: packet types,
// protocol levels, the outcome of a decode and the fixed header (first byte
// and remaining length). The packets themselves are in packet.hpp, their
// codecs in codec.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mqtt {

enum class PacketType : uint8_t {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Pubrec = 5,
  Pubrel = 6,
  Pubcomp = 7,
  Subscribe = 8,
  Suback = 9,
  Unsubscribe = 10,
  Unsuback = 11,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
  Auth = 15,
};

// Protocol levels carried in CONNECT.
inline constexpr uint8_t kLevel31 = 3;   // protocol name "MQIsdp"
inline constexpr uint8_t kLevel311 = 4;  // protocol name "MQTT"
inline constexpr uint8_t kLevel5 = 5;    // protocol name "MQTT"

// Largest value the 4-byte variable-length "remaining length" can carry.
inline constexpr uint32_t kMaxRemainingLength = 268'435'455;

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

// Remaining length: writes 1..4 bytes to `out`, returns the count (0, writing
// nothing, when value > kMaxRemainingLength; same for remaining_length_size).
size_t encode_remaining_length(uint32_t value, uint8_t out[4]);
// Number of bytes encode_remaining_length would write.
size_t remaining_length_size(uint32_t value);

}  // namespace mqtt
