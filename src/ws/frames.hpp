// WebSocket framing (RFC 6455 section 5) as MQTT uses it: MQTT bytes travel in
// binary frames, and a packet may span frames or share one with others (MQTT
// 3.1.1 section 6), so frames are a byte stream here, never reassembled into
// messages. The decoder unmasks in place and moves the payload to the front
// of the caller's buffer: no copy, no buffer of its own beyond a frame
// header and a control frame's 125 bytes. No sockets here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ws {

enum Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes (section 7.4.1).
enum CloseCode : uint16_t {
  kNormal = 1000,
  kGoingAway = 1001,
  kProtocolError = 1002,
  kUnsupportedData = 1003,
};

inline constexpr size_t kMaxFrameHeader = 10;  // server frames are not masked

// Writes the header of one final, unmasked frame of `payload_size` bytes to
// `out`; returns its length (2, 4 or 10).
size_t frame_header(uint8_t opcode, uint64_t payload_size, char out[kMaxFrameHeader]);

// A close frame: the code (none when 0) and a reason of at most 123 bytes.
std::string close_frame(uint16_t code, std::string_view reason = {});

class FrameDecoder {
 public:
  struct Output {
    size_t data = 0;         // MQTT bytes now at the start of the buffer
    std::string replies;     // frames to send back, in order: pongs, a close
    bool closed = false;     // the peer sent close, or broke the protocol (see error)
    uint16_t peer_code = 0;  // the code of the peer's close frame (0: none given)
    std::string error;       // non-empty: a protocol error; `replies` ends with our close
  };

  // Decodes buf[0, len): binary payload is unmasked and moved to the front of
  // buf. Stops at a close frame or a protocol error (closed is then set and
  // the rest is ignored, as is everything after it).
  void decode(char* buf, size_t len, Output& out);

 private:
  bool start_frame(Output& out);
  void end_control_frame(Output& out);
  void fail(Output& out, uint16_t code, std::string why);

  uint8_t header_[14] = {};
  uint8_t header_len_ = 0;
  uint8_t opcode_ = 0;  // of the frame being read
  bool fin_ = false;
  bool in_payload_ = false;
  bool in_message_ = false;  // a fragmented binary message awaits continuation frames
  bool done_ = false;        // closed: nothing more is decoded
  uint8_t mask_[4] = {};
  uint64_t left_ = 0;    // payload bytes of the current frame still to come
  uint64_t offset_ = 0;  // payload bytes of the current frame seen (mask phase)
  std::string control_;  // payload of the control frame being read
};

}  // namespace ws
