// Unit tests for the WebSocket handshake and framing (src/ws/), RFC 6455.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ws/frames.hpp"
#include "ws/handshake.hpp"

namespace ws {
namespace {

std::string upgrade_request(std::string_view extra = "Sec-WebSocket-Protocol: mqtt\r\n") {
  return "GET /mqtt HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: keep-alive, "
         "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         std::string(extra) + "\r\n";
}

// A client frame: masked with `mask`.
std::string client_frame(uint8_t first_byte, std::string_view payload, uint32_t mask = 0x11223344) {
  std::string f(1, static_cast<char>(first_byte));
  size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>(static_cast<uint64_t>(n) >> (8 * i));
  }
  char m[4] = {static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
               static_cast<char>(mask >> 8), static_cast<char>(mask)};
  f.append(m, 4);
  for (size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ m[i % 4]);
  return f;
}

TEST(WebSocketHandshake, AcceptKeyIsTheRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshake, AcceptsAndChoosesMqtt) {
  std::string req = upgrade_request() + "trailing frame bytes";
  Upgrade u = parse_upgrade(req, "/mqtt");
  ASSERT_EQ(u.state, Upgrade::State::Accepted) << u.reason;
  EXPECT_EQ(u.consumed, req.size() - std::string("trailing frame bytes").size());
  EXPECT_EQ(u.subprotocol, "mqtt");
  EXPECT_NE(u.response.find("HTTP/1.1 101 Switching Protocols\r\n"), std::string::npos);
  EXPECT_NE(u.response.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);
  EXPECT_NE(u.response.find("Sec-WebSocket-Protocol: mqtt\r\n"), std::string::npos);
}

TEST(WebSocketHandshake, NeedsMoreUntilTheBlankLine) {
  std::string req = upgrade_request();
  for (size_t cut = 0; cut < req.size(); ++cut) {
    EXPECT_EQ(parse_upgrade(req.substr(0, cut), "/mqtt").state, Upgrade::State::NeedMore) << cut;
  }
}

TEST(WebSocketHandshake, RefusalsCarryStatusAndReason) {
  struct Case {
    std::string request;
    int status;
  };
  const Case cases[] = {
      {upgrade_request("Sec-WebSocket-Protocol: chat\r\n"), 400},
      {"GET /other HTTP/1.1\r\nHost: x\r\n\r\n", 404},
      {"POST /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 405},
      {"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 426},
      {std::string(kMaxRequestBytes + 1, 'a'), 431},
  };
  for (const Case& c : cases) {
    Upgrade u = parse_upgrade(c.request, "/mqtt");
    ASSERT_EQ(u.state, Upgrade::State::Refused) << c.request.substr(0, 40);
    EXPECT_EQ(u.status, c.status) << u.reason;
    EXPECT_FALSE(u.reason.empty());
    EXPECT_EQ(u.response.rfind("HTTP/1.1 " + std::to_string(c.status), 0), 0u);
  }
}

TEST(WebSocketFrames, HeaderLengths) {
  char h[kMaxFrameHeader];
  EXPECT_EQ(frame_header(kBinary, 125, h), 2u);
  EXPECT_EQ(static_cast<uint8_t>(h[0]), 0x82);
  EXPECT_EQ(frame_header(kBinary, 126, h), 4u);
  EXPECT_EQ(frame_header(kBinary, 65535, h), 4u);
  EXPECT_EQ(frame_header(kBinary, 65536, h), 10u);
  EXPECT_EQ(static_cast<uint8_t>(h[1]), 127);
}

// Whatever the split of the stream into reads, the MQTT bytes come out whole
// and in order, and pings are answered.
TEST(WebSocketFrames, AnySplitGivesTheSameBytes) {
  std::mt19937 rng(7);
  std::string expected, stream, pongs;
  for (int i = 0; i < 40; ++i) {
    size_t n = i % 7 == 0 ? 70000 : (i % 3 == 0 ? 300 : rng() % 100);
    std::string payload(n, '\0');
    for (char& c : payload) c = static_cast<char>(rng());
    expected += payload;
    if (i % 5 == 4) {
      // A fragmented message with a ping in the middle.
      stream +=
          client_frame(0x02 /* no FIN */, payload.substr(0, n / 2), static_cast<uint32_t>(rng()));
      stream += client_frame(0x89, "ping!", static_cast<uint32_t>(rng()));
      pongs += std::string("\x8A\x05ping!", 7);
      stream += client_frame(0x80, payload.substr(n / 2), static_cast<uint32_t>(rng()));
    } else {
      stream += client_frame(0x82, payload, static_cast<uint32_t>(rng()));
    }
  }
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{13}, size_t{1000}, stream.size()}) {
    FrameDecoder d;
    std::string got, replies;
    std::vector<char> buf;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      buf.assign(stream.begin() + static_cast<ptrdiff_t>(at),
                 stream.begin() + static_cast<ptrdiff_t>(std::min(stream.size(), at + chunk)));
      FrameDecoder::Output out;
      d.decode(buf.data(), buf.size(), out);
      ASSERT_FALSE(out.closed) << out.error;
      got.append(buf.data(), out.data);
      replies += out.replies;
    }
    EXPECT_EQ(got, expected) << "chunk " << chunk;
    EXPECT_EQ(replies, pongs);
  }
}

TEST(WebSocketFrames, CloseIsEchoedAndEndsDecoding) {
  std::string stream = client_frame(0x82, "ab") + client_frame(0x88, std::string("\x03\xE9", 2)) +
                       client_frame(0x82, "never");
  FrameDecoder d;
  FrameDecoder::Output out;
  d.decode(stream.data(), stream.size(), out);
  EXPECT_EQ(std::string(stream.data(), out.data), "ab");
  EXPECT_TRUE(out.closed);
  EXPECT_TRUE(out.error.empty());
  EXPECT_EQ(out.peer_code, 1001);
  EXPECT_EQ(out.replies, close_frame(1001));
}

TEST(WebSocketFrames, ProtocolErrorsCloseWithACode) {
  struct Case {
    std::string stream;
    uint16_t code;
  };
  const Case cases[] = {
      {std::string("\x82\x01x", 3), kProtocolError},   // not masked
      {client_frame(0x81, "text"), kUnsupportedData},  // text frame
      {client_frame(0xC2, "x"), kProtocolError},       // RSV1
      {client_frame(0x80, "x"), kProtocolError},       // continuation of nothing
      {client_frame(0x02, "a") + client_frame(0x82, "b"), kProtocolError},  // new message mid-way
      {client_frame(0x09, "p"), kProtocolError},                            // fragmented ping
      {client_frame(0x8B, ""), kProtocolError},  // reserved control opcode
  };
  for (const Case& c : cases) {
    FrameDecoder d;
    FrameDecoder::Output out;
    std::string s = c.stream;
    d.decode(s.data(), s.size(), out);
    EXPECT_TRUE(out.closed);
    EXPECT_FALSE(out.error.empty());
    EXPECT_EQ(out.replies, close_frame(c.code)) << out.error;
  }
}

}  // namespace
}  // namespace ws
