// What one cluster node sends another for one message (design note
// cluster-design.md section B.3): a small binary header and the message's
// bytes, as the payload of one NATS message. No JSON and no NATS headers on the
// hot path. Pure functions, no sockets.
//
// Encoding, version 1 (integers little-endian; "varint" is unsigned LEB128,
// 7 bits a byte, low bits first, at most 5 bytes, no needless trailing 0x80
// groups, so every value has exactly one encoding):
//
//   offset  size  field
//   0       1     version = 1 (anything else is refused: a newer node must not
//                 be half-understood)
//   1       1     flags: bits 0-1 QoS (3 is refused), bit 2 retain, bit 3
//                 expiry present, bit 4 source (0 device, 1 API); bits 5-7 zero
//   2       4     epoch (u32), the origin's link epoch
//   6       8     seq (u64), the origin's sequence within the epoch
//   14      8     received_ms (i64), when the origin received the message
//   22      4     expiry_s (u32), only with flag bit 3: the seconds left of the
//                 Message Expiry Interval at send time [MQTT-3.3.2-6]
//   ..      var   node length (1..kMaxNodeBytes), then the origin node id
//   ..      var   client length (0..65535), then the publishing client id
//   ..      var   topic length (0..65535), payload length, properties length
//   ..            topic, payload, properties (the MQTT 5 forwarded block,
//                 broker::Message::properties(); empty for 3.x)
//
// The buffer must end exactly after the properties. DUP is not carried: a
// receiving node sets it per delivery of its own [MQTT-3.3.1-3].
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "broker/message.hpp"
#include "util/result.hpp"

namespace cluster {

// Envelope format version written by encode_envelope().
inline constexpr uint8_t kEnvelopeVersion = 1;
// Longest origin node id an envelope carries (the link must refuse longer ids at start-up).
inline constexpr size_t kMaxNodeBytes = 255;

enum class Source : uint8_t { Device = 0, Api = 1 };  // who published: a device, or the gRPC API

struct Envelope {  // views into the decoded bytes
  uint8_t qos = 0;
  bool retain = false;
  Source source = Source::Device;
  std::string_view node;  // origin node id
  uint32_t epoch = 0;     // origin link epoch (bumped at every NATS reconnect of the origin)
  uint64_t seq = 0;       // origin sequence within the epoch
  std::string_view topic, payload;
  // MQTT 5 forwarded property block (broker::Message::properties()).
  std::string_view properties;
  // Client id of the publishing device (for No Local across nodes [MQTT-3.8.3-3]);
  // empty for the API.
  std::string_view origin_client;
  bool has_expiry = false;
  uint32_t expiry_s = 0;    // remaining Message Expiry Interval at send time
  int64_t received_ms = 0;  // when the origin received it (wall clock ms)
};

// Appends the encoding of `m` to `out` (cleared first). expiry_s is
// m.remaining_s(now_ms). One copy of the payload, no allocation when `out` has
// capacity. `node` must be 1..kMaxNodeBytes bytes (else decoding refuses it).
void encode_envelope(std::string& out, const broker::Message& m, Source source,
                     std::string_view node, uint32_t epoch, uint64_t seq, int64_t now_ms);

// Strict decoding: every length checked against the buffer; unknown version,
// unknown flag bits, QoS 3, a non-canonical varint, a length over its limit or
// trailing bytes -> error. Never reads out of bounds.
util::Result<Envelope> decode_envelope(std::string_view bytes);

// A broker::Message equal to what the origin routed: topic, payload, QoS,
// retain, origin client id, properties; the remaining expiry seconds become the
// new Message Expiry Interval counted from received_ms = now_ms.
broker::MessagePtr to_message(const Envelope& e, int64_t now_ms);

}  // namespace cluster
