// libFuzzer target for the WebSocket handshake parser and frame decoder
// (src/ws/). The input is an upgrade request followed by frames; the first
// byte picks how the frame bytes are cut into reads. Besides crashes and
// sanitizer reports it checks that the decoder's output does not depend on
// that cut (one read or many) and never claims more bytes than it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ws/frames.hpp"
#include "ws/handshake.hpp"

namespace {

struct Decoded {
  std::string data, replies, error;
  bool closed = false;
};

Decoded decode_in_chunks(std::string_view frames, size_t chunk) {
  ws::FrameDecoder d;
  Decoded r;
  std::vector<char> buf;
  for (size_t at = 0; at < frames.size() && !r.closed; at += chunk) {
    std::string_view piece = frames.substr(at, chunk);
    buf.assign(piece.begin(), piece.end());
    ws::FrameDecoder::Output out;
    d.decode(buf.data(), buf.size(), out);
    if (out.data > buf.size()) std::abort();
    r.data.append(buf.data(), out.data);
    r.replies += out.replies;
    if (out.closed) {
      r.closed = true;
      r.error = out.error;
    }
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 17;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  ws::Upgrade u = ws::parse_upgrade(input, "/mqtt");
  std::string_view frames = input;
  if (u.state == ws::Upgrade::State::Accepted) {
    if (u.consumed > input.size() || u.response.rfind("HTTP/1.1 101 ", 0) != 0) std::abort();
    frames = input.substr(u.consumed);
  } else if (u.state == ws::Upgrade::State::Refused) {
    if (u.reason.empty() || u.status < 400) std::abort();
  }

  Decoded whole = decode_in_chunks(frames, frames.size() + 1);
  Decoded cut = decode_in_chunks(frames, chunk);
  if (whole.data != cut.data || whole.replies != cut.replies || whole.closed != cut.closed ||
      whole.error != cut.error) {
    std::abort();
  }
  return 0;
}
