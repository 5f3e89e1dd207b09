#include "ws/frames.hpp"

#include <cstring>

namespace ws {

namespace {
bool is_control(uint8_t opcode) {
  return (opcode & 0x8) != 0;
}

// Section 7.4: codes a peer may send in a close frame.
bool valid_close_code(uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}
}  // namespace

size_t frame_header(uint8_t opcode, uint64_t payload_size, char out[kMaxFrameHeader]) {
  out[0] = static_cast<char>(0x80 | opcode);  // FIN
  if (payload_size < 126) {
    out[1] = static_cast<char>(payload_size);
    return 2;
  }
  if (payload_size <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<char>(payload_size >> 8);
    out[3] = static_cast<char>(payload_size);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<char>(payload_size >> (56 - 8 * i));
  return 10;
}

std::string close_frame(uint16_t code, std::string_view reason) {
  std::string payload;
  if (code != 0) {
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code));
    payload.append(reason.substr(0, 123));
  }
  char header[kMaxFrameHeader];
  std::string frame(header, frame_header(kClose, payload.size(), header));
  return frame + payload;
}

void FrameDecoder::fail(Output& out, uint16_t code, std::string why) {
  out.closed = true;
  out.error = std::move(why);
  out.replies += close_frame(code);
  done_ = true;
}

// The header is complete in header_: checks it and prepares the payload.
bool FrameDecoder::start_frame(Output& out) {
  fin_ = (header_[0] & 0x80) != 0;
  opcode_ = header_[0] & 0x0F;
  if (header_[0] & 0x70) {
    fail(out, kProtocolError, "reserved bits set (no extension was negotiated)");
    return false;
  }
  uint64_t len = header_[1] & 0x7F;
  size_t at = 2;
  if (len == 126) {
    len = (uint64_t{header_[2]} << 8) | header_[3];
    at = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | header_[2 + i];
    at = 10;
    if (len >> 63) {
      fail(out, kProtocolError, "frame length has its most significant bit set");
      return false;
    }
  }
  std::memcpy(mask_, header_ + at, 4);
  left_ = len;
  offset_ = 0;
  switch (opcode_) {
    case kBinary:
      if (in_message_) {
        fail(out, kProtocolError, "new data frame inside a fragmented message");
        return false;
      }
      in_message_ = !fin_;
      break;
    case kContinuation:
      if (!in_message_) {
        fail(out, kProtocolError, "continuation frame without a message to continue");
        return false;
      }
      in_message_ = !fin_;
      break;
    case kText:
      // MQTT 3.1.1 [MQTT-6.0.0-1], 5.0 [MQTT-6.0.0-1]: binary frames only.
      fail(out, kUnsupportedData, "text frame (MQTT travels in binary frames only)");
      return false;
    case kClose:
    case kPing:
    case kPong:
      if (!fin_ || len > 125) {
        fail(out, kProtocolError, "fragmented or oversized control frame");
        return false;
      }
      control_.clear();
      break;
    default:
      fail(out, kProtocolError, "unknown opcode " + std::to_string(opcode_));
      return false;
  }
  in_payload_ = true;
  header_len_ = 0;
  return true;
}

void FrameDecoder::end_control_frame(Output& out) {
  in_payload_ = false;
  if (opcode_ == kPing) {
    // Section 5.5.2: a pong with the ping's payload.
    char header[kMaxFrameHeader];
    out.replies.append(header, frame_header(kPong, control_.size(), header));
    out.replies += control_;
  } else if (opcode_ == kClose) {
    if (control_.size() == 1) {
      fail(out, kProtocolError, "close frame with a 1-byte payload");
      return;
    }
    uint16_t code = 0;
    if (control_.size() >= 2) {
      code = static_cast<uint16_t>((static_cast<uint8_t>(control_[0]) << 8) |
                                   static_cast<uint8_t>(control_[1]));
      if (!valid_close_code(code)) {
        fail(out, kProtocolError, "invalid close code " + std::to_string(code));
        return;
      }
    }
    // Section 5.5.1: answer with a close frame, echoing the code.
    out.closed = true;
    out.peer_code = code;
    out.replies += close_frame(code == 0 ? uint16_t{kNormal} : code);
    done_ = true;
  }
  // A pong is the answer to nothing we sent: ignored (section 5.5.3).
}

void FrameDecoder::decode(char* buf, size_t len, Output& out) {
  size_t in = 0;
  while (in < len && !done_) {
    if (!in_payload_) {
      // The header: 2 bytes, then 0, 2 or 8 of length, then the 4-byte mask.
      header_[header_len_++] = static_cast<uint8_t>(buf[in++]);
      if (header_len_ == 2 && !(header_[1] & 0x80)) {
        // Section 5.1: the server closes on a frame the client did not mask.
        fail(out, kProtocolError, "frame from the client is not masked");
        break;
      }
      if (header_len_ < 2) continue;
      uint8_t len7 = header_[1] & 0x7F;
      size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
      if (header_len_ < need) continue;
      if (!start_frame(out)) break;
      if (left_ == 0 && is_control(opcode_)) end_control_frame(out);
      if (left_ == 0) in_payload_ = false;
      continue;
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(left_, len - in));
    if (is_control(opcode_)) {
      for (size_t i = 0; i < take; ++i) {
        control_.push_back(static_cast<char>(buf[in + i] ^ mask_[(offset_ + i) & 3]));
      }
    } else {
      // Unmask into place at the front: out.data <= in, so nothing unread is
      // overwritten.
      char* dst = buf + out.data;
      const char* src = buf + in;
      for (size_t i = 0; i < take; ++i) {
        dst[i] = static_cast<char>(src[i] ^ mask_[(offset_ + i) & 3]);
      }
      out.data += take;
    }
    in += take;
    offset_ += take;
    left_ -= take;
    if (left_ == 0) {
      if (is_control(opcode_)) {
        end_control_frame(out);
      } else {
        in_payload_ = false;
      }
    }
  }
}

}  // namespace ws
