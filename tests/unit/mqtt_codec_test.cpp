// Unit tests for the MQTT 3.1 / 3.1.1 codec (src/mqtt/codec.hpp).
#include "mqtt/codec.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/packet.hpp"

// Counts heap allocations so the tests can check that decode_publish does not
// allocate. Replacing the global operators affects the whole test binary but
// only adds a counter. (GCC flags malloc/free inside replaced operators as a
// new/delete mismatch once inlined; they are a matched pair here.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace mqtt {
namespace {

// A 3.1.1 SUBSCRIBE entry: a filter and its requested QoS.
TopicRequest req(std::string_view filter, uint8_t qos) {
  TopicRequest t;
  t.filter = filter;
  t.qos = qos;
  return t;
}

constexpr size_t kBig = 1 << 20;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

// A frame whose body is `body`, as read_frame would have produced it.
Frame make_frame(PacketType type, uint8_t flags, std::string_view body) {
  Frame f;
  f.type = type;
  f.flags = flags;
  f.body = body;
  f.size = 2 + body.size();
  return f;
}

// Frames `wire` and expects exactly one complete packet.
Frame frame_of(const std::string& wire) {
  Frame f;
  DecodeResult r = read_frame(wire, kBig, f);
  EXPECT_EQ(r.status, DecodeStatus::Ok) << r.reason;
  EXPECT_EQ(f.size, wire.size());
  return f;
}

// String helpers for hand-built bodies.
std::string u16(uint16_t v) {
  return bytes({v >> 8, v & 0xFF});
}
std::string str(std::string_view s) {
  return u16(static_cast<uint16_t>(s.size())) + std::string(s);
}

// ---------------------------------------------------------------- framing

TEST(ReadFrame, NeedMoreOnEmptyBuffer) {
  Frame f;
  EXPECT_EQ(read_frame("", kBig, f).status, DecodeStatus::NeedMore);
}

TEST(ReadFrame, NeedMoreOnPartialRemainingLength) {
  Frame f;
  EXPECT_EQ(read_frame(bytes({0x30}), kBig, f).status, DecodeStatus::NeedMore);
  EXPECT_EQ(read_frame(bytes({0x30, 0x80}), kBig, f).status, DecodeStatus::NeedMore);
  EXPECT_EQ(read_frame(bytes({0x30, 0x80, 0x80, 0x80}), kBig, f).status, DecodeStatus::NeedMore);
}

TEST(ReadFrame, NeedMoreOnPartialBody) {
  std::string wire;
  encode_ack(wire, kLevel311, PacketType::Puback, 7);
  Frame f;
  for (size_t n = 0; n < wire.size(); ++n) {
    EXPECT_EQ(read_frame(std::string_view(wire).substr(0, n), kBig, f).status,
              DecodeStatus::NeedMore)
        << n;
  }
  EXPECT_TRUE(read_frame(wire, kBig, f).ok());
}

TEST(ReadFrame, FrameSizeAndBody) {
  Frame f;
  const std::string wire = bytes({0x40, 0x02, 0x12, 0x34});
  ASSERT_TRUE(read_frame(wire, kBig, f).ok());
  EXPECT_EQ(f.type, PacketType::Puback);
  EXPECT_EQ(f.flags, 0);
  EXPECT_EQ(f.size, 4u);
  EXPECT_EQ(f.body, bytes({0x12, 0x34}));
}

TEST(ReadFrame, StopsAtFirstPacketOfAStream) {
  std::string wire;
  encode_pingreq(wire);
  encode_ack(wire, kLevel311, PacketType::Pubrel, 9);
  Publish p;
  p.topic = "a/b";
  p.payload = "xyz";
  encode_publish(wire, kLevel311, p);
  encode_disconnect(wire, kLevel311);

  std::vector<PacketType> types;
  std::string_view rest = wire;
  while (!rest.empty()) {
    Frame f;
    DecodeResult r = read_frame(rest, kBig, f);
    ASSERT_TRUE(r.ok()) << r.reason;
    types.push_back(f.type);
    rest.remove_prefix(f.size);
  }
  EXPECT_EQ(types, (std::vector<PacketType>{PacketType::Pingreq, PacketType::Pubrel,
                                            PacketType::Publish, PacketType::Disconnect}));
}

TEST(ReadFrame, ByteByByteFeedingIsNeedMoreUntilComplete) {
  Connect c;
  c.protocol_name = "MQTT";
  c.protocol_level = kLevel311;
  c.client_id = "feeder";
  c.username = "u";
  c.password = "p";
  std::string wire;
  encode_connect(wire, c.protocol_level, c);
  Frame f;
  for (size_t n = 0; n < wire.size(); ++n) {
    ASSERT_EQ(read_frame(std::string_view(wire).substr(0, n), kBig, f).status,
              DecodeStatus::NeedMore);
  }
  ASSERT_TRUE(read_frame(wire, kBig, f).ok());
  EXPECT_EQ(f.size, wire.size());
}

// [MQTT-2.2.3] remaining length is at most 4 bytes: a continuation bit on the
// fourth byte is malformed, without waiting for a fifth byte.
TEST(ReadFrame, RemainingLengthLongerThanFourBytesIsMalformed) {
  Frame f;
  EXPECT_EQ(read_frame(bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF}), kBig, f).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(read_frame(bytes({0x30, 0x80, 0x80, 0x80, 0x80, 0x01}), kBig, f).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(read_frame(bytes({0xC0, 0x80, 0x80, 0x80, 0x80, 0x00}), kBig, f).status,
            DecodeStatus::Malformed);
}

TEST(ReadFrame, MaximumRemainingLengthIsParsed) {
  Frame f;
  const std::string hdr = bytes({0x30, 0xFF, 0xFF, 0xFF, 0x7F});
  const size_t total = 5 + size_t{kMaxRemainingLength};
  EXPECT_EQ(read_frame(hdr, total, f).status, DecodeStatus::NeedMore);
  EXPECT_EQ(read_frame(hdr, total - 1, f).status, DecodeStatus::TooLarge);
}

// Non-minimal remaining length encodings are accepted (3.1.1 does not forbid them).
TEST(ReadFrame, NonMinimalRemainingLengthIsAccepted) {
  Frame f;
  const std::string wire = bytes({0xC0, 0x80, 0x00});
  ASSERT_TRUE(read_frame(wire, kBig, f).ok());
  EXPECT_EQ(f.type, PacketType::Pingreq);
  EXPECT_EQ(f.size, 3u);
  EXPECT_TRUE(f.body.empty());
}

TEST(ReadFrame, TooLargeIsReportedBeforeTheBodyArrives) {
  Frame f;
  // 2 header bytes + 100 body bytes announced; only the header is here.
  EXPECT_EQ(read_frame(bytes({0x30, 100}), 50, f).status, DecodeStatus::TooLarge);
  EXPECT_EQ(read_frame(bytes({0x30, 100}), 101, f).status, DecodeStatus::TooLarge);
  EXPECT_EQ(read_frame(bytes({0x30, 100}), 102, f).status, DecodeStatus::NeedMore);
}

TEST(ReadFrame, TooLargeBoundaryIsTheWholeFrame) {
  std::string wire;
  encode_ack(wire, kLevel311, PacketType::Puback, 1);  // 4 bytes
  Frame f;
  EXPECT_TRUE(read_frame(wire, 4, f).ok());
  EXPECT_EQ(read_frame(wire, 3, f).status, DecodeStatus::TooLarge);
}

TEST(ReadFrame, ReservedPacketTypesAreMalformed) {
  Frame f;
  EXPECT_EQ(read_frame(bytes({0x00, 0x00}), kBig, f).status, DecodeStatus::Malformed);
  EXPECT_EQ(read_frame(bytes({0x00}), kBig, f).status, DecodeStatus::Malformed);
  // AUTH (15) exists only in MQTT 5.
  EXPECT_EQ(read_frame(bytes({0xF0, 0x00}), kBig, f).status, DecodeStatus::Malformed);
}

// [MQTT-2.2.2-1], [MQTT-2.2.2-2]: flags fixed per packet type; every other value is malformed.
TEST(ReadFrame, FixedHeaderFlagsPerType_MQTT_2_2_2_1_and_2) {
  struct Case {
    int type;
    int flags;
  };
  const Case cases[] = {{1, 0}, {2, 0},  {4, 0},  {5, 0},  {6, 2},  {7, 0}, {8, 2},
                        {9, 0}, {10, 2}, {11, 0}, {12, 0}, {13, 0}, {14, 0}};
  for (const Case& c : cases) {
    for (int flags = 0; flags < 16; ++flags) {
      Frame f;
      const std::string wire = bytes({(c.type << 4) | flags, 0});
      const DecodeResult r = read_frame(wire, kBig, f);
      if (flags == c.flags) {
        EXPECT_TRUE(r.ok()) << "type " << c.type << " flags " << flags;
        EXPECT_EQ(static_cast<int>(f.type), c.type);
        EXPECT_EQ(f.flags, flags);
      } else {
        EXPECT_EQ(r.status, DecodeStatus::Malformed) << "type " << c.type << " flags " << flags;
      }
    }
  }
}

TEST(ReadFrame, PublishFlagsAreLeftToDecodePublish) {
  for (int flags = 0; flags < 16; ++flags) {
    Frame f;
    ASSERT_TRUE(read_frame(bytes({0x30 | flags, 0}), kBig, f).ok()) << flags;
    EXPECT_EQ(f.flags, flags);
  }
}

// ------------------------------------------------------- remaining length

TEST(RemainingLength, KnownEncodings) {
  struct Case {
    uint32_t value;
    std::vector<uint8_t> enc;
  };
  const Case cases[] = {
      {0, {0x00}},
      {127, {0x7F}},
      {128, {0x80, 0x01}},
      {16'383, {0xFF, 0x7F}},
      {16'384, {0x80, 0x80, 0x01}},
      {2'097'151, {0xFF, 0xFF, 0x7F}},
      {2'097'152, {0x80, 0x80, 0x80, 0x01}},
      {268'435'455, {0xFF, 0xFF, 0xFF, 0x7F}},
  };
  for (const Case& c : cases) {
    uint8_t out[4] = {};
    const size_t n = encode_remaining_length(c.value, out);
    ASSERT_EQ(n, c.enc.size()) << c.value;
    EXPECT_EQ(remaining_length_size(c.value), n);
    EXPECT_EQ(std::vector<uint8_t>(out, out + n), c.enc) << c.value;

    // read_frame parses it back: a frame of exactly that size is NeedMore
    // (body absent) with max == size and TooLarge with max == size - 1.
    std::string wire = bytes({0x30});
    wire.append(reinterpret_cast<const char*>(out), n);
    const size_t total = 1 + n + c.value;
    Frame f;
    if (c.value == 0) {
      EXPECT_TRUE(read_frame(wire, total, f).ok());
    } else {
      EXPECT_EQ(read_frame(wire, total, f).status, DecodeStatus::NeedMore) << c.value;
    }
    EXPECT_EQ(read_frame(wire, total - 1, f).status, DecodeStatus::TooLarge) << c.value;
  }
}

TEST(RemainingLength, BeyondMaximumWritesNothing) {
  uint8_t out[4] = {0xAA, 0xAA, 0xAA, 0xAA};
  EXPECT_EQ(encode_remaining_length(kMaxRemainingLength + 1, out), 0u);
  EXPECT_EQ(out[0], 0xAA);
  EXPECT_EQ(remaining_length_size(kMaxRemainingLength + 1), 0u);
}

// ---------------------------------------------------------------- CONNECT

Connect full_connect() {
  Connect c;
  c.protocol_name = "MQTT";
  c.protocol_level = kLevel311;
  c.clean_session = true;
  c.keep_alive = 0xABCD;
  c.client_id = "client-ü-1";
  Will w;
  w.topic = "last/will";
  w.payload = std::string_view("\0bye\xFF", 5);
  w.qos = 2;
  w.retain = true;
  c.will = w;
  c.username = "user";
  c.password = std::string_view("p\0ss\xFE", 5);
  return c;
}

void expect_same(const Connect& a, const Connect& b) {
  EXPECT_EQ(a.protocol_name, b.protocol_name);
  EXPECT_EQ(a.protocol_level, b.protocol_level);
  EXPECT_EQ(a.clean_session, b.clean_session);
  EXPECT_EQ(a.keep_alive, b.keep_alive);
  EXPECT_EQ(a.client_id, b.client_id);
  ASSERT_EQ(a.will.has_value(), b.will.has_value());
  if (a.will) {
    EXPECT_EQ(a.will->topic, b.will->topic);
    EXPECT_EQ(a.will->payload, b.will->payload);
    EXPECT_EQ(a.will->qos, b.will->qos);
    EXPECT_EQ(a.will->retain, b.will->retain);
  }
  EXPECT_EQ(a.username, b.username);
  EXPECT_EQ(a.password, b.password);
}

Connect round_trip(const Connect& in) {
  std::string wire;
  encode_connect(wire, in.protocol_level, in);
  Frame f = frame_of(wire);
  EXPECT_EQ(f.type, PacketType::Connect);
  Connect out;
  DecodeResult r = decode_connect(f, out);
  EXPECT_TRUE(r.ok()) << r.reason;
  expect_same(in, out);
  return out;
}

TEST(Connect, RoundTripFull311) {
  Connect c = full_connect();
  std::string wire;
  encode_connect(wire, c.protocol_level, c);
  // Flags byte: user, password, will retain, will QoS 2, will, clean session.
  EXPECT_EQ(static_cast<uint8_t>(wire[2 + 2 + 4 + 1]), 0x80 | 0x40 | 0x20 | 0x10 | 0x04 | 0x02);
  round_trip(c);
}

TEST(Connect, RoundTripMinimal311) {
  Connect c;
  c.protocol_name = "MQTT";
  c.protocol_level = kLevel311;
  c.client_id = "id";
  std::string wire;
  encode_connect(wire, c.protocol_level, c);
  EXPECT_EQ(wire, bytes({0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0, 0, 0, 0, 2, 'i', 'd'}));
  round_trip(c);
}

// [MQTT-3.1.3-6]: a zero-length client id is allowed on the wire; the broker decides.
TEST(Connect, EmptyClientIdParses) {
  Connect c;
  c.protocol_name = "MQTT";
  c.protocol_level = kLevel311;
  c.clean_session = true;
  round_trip(c);
}

TEST(Connect, RoundTripEveryWillQos) {
  for (uint8_t q = 0; q <= 2; ++q) {
    Connect c = full_connect();
    c.will->qos = q;
    c.will->retain = (q % 2) == 0;
    round_trip(c);
  }
}

TEST(Connect, RoundTripUsernameOnly) {
  Connect c = full_connect();
  c.will.reset();
  c.password.reset();
  round_trip(c);
}

TEST(Connect, RoundTripMqtt31) {
  Connect c = full_connect();
  c.protocol_name = "MQIsdp";
  c.protocol_level = kLevel31;
  round_trip(c);
}

// MQTT 3.1 did not forbid a password without a user name.
TEST(Connect, Mqtt31PasswordWithoutUsernameIsAccepted) {
  Connect c = full_connect();
  c.protocol_name = "MQIsdp";
  c.protocol_level = kLevel31;
  c.username.reset();
  round_trip(c);
}

// Some 3.1 clients set the password flag and send no password field.
TEST(Connect, Mqtt31PasswordFlagWithoutPasswordBytes) {
  const std::string body = str("MQIsdp") + bytes({3, 0xC0, 0, 10}) + str("c") + str("u");
  Connect c;
  DecodeResult r = decode_connect(make_frame(PacketType::Connect, 0, body), c);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(c.username, "u");
  EXPECT_FALSE(c.password.has_value());
}

TEST(Connect, Level5RoundTripThroughEncoder) {
  Connect c = full_connect();
  c.protocol_level = kLevel5;
  c.username.reset();  // MQTT 5 allows a password alone
  round_trip(c);
}

// A real MQTT 5 CONNECT with properties decodes (properties validated) so the
// broker can see level 5 and answer it.
TEST(Connect, Level5WithPropertiesParses) {
  const std::string props = bytes({0x11, 0, 0, 0, 60, 0x21, 0, 10});  // session expiry, receive max
  const std::string will_props = bytes({0x01, 1});                    // payload format
  const std::string body = str("MQTT") + bytes({5, 0x04 | 0x08 | 0x02, 0, 30}) +
                           bytes({static_cast<int>(props.size())}) + props + str("v5") +
                           bytes({static_cast<int>(will_props.size())}) + will_props + str("w/t") +
                           str("gone");
  Connect c;
  DecodeResult r = decode_connect(make_frame(PacketType::Connect, 0, body), c);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(c.protocol_level, kLevel5);
  EXPECT_EQ(c.client_id, "v5");
  ASSERT_TRUE(c.will.has_value());
  EXPECT_EQ(c.will->topic, "w/t");
  EXPECT_EQ(c.will->payload, "gone");
  EXPECT_EQ(c.will->qos, 1);
}

TEST(Connect, Level5TruncatedPropertiesAreMalformed) {
  const std::string body = str("MQTT") + bytes({5, 0x02, 0, 30, 10, 0x11}) + str("v5");
  Connect c;
  EXPECT_EQ(decode_connect(make_frame(PacketType::Connect, 0, body), c).status,
            DecodeStatus::Malformed);
}

std::string connect_body(std::string_view name, int level, int flags, const std::string& payload) {
  return str(name) + bytes({level, flags, 0, 60}) + std::string(payload);
}

DecodeStatus connect_status(const std::string& body) {
  Connect c;
  return decode_connect(make_frame(PacketType::Connect, 0, body), c).status;
}

// [MQTT-3.1.2-2]: a known protocol name with an unsupported level gets CONNACK 0x01.
TEST(Connect, UnsupportedLevelIsBadProtocolVersion_MQTT_3_1_2_2) {
  const std::string payload = str("x");
  EXPECT_EQ(connect_status(connect_body("MQTT", 3, 0, payload)), DecodeStatus::BadProtocolVersion);
  EXPECT_EQ(connect_status(connect_body("MQTT", 6, 0, payload)), DecodeStatus::BadProtocolVersion);
  EXPECT_EQ(connect_status(connect_body("MQTT", 0, 0, payload)), DecodeStatus::BadProtocolVersion);
  EXPECT_EQ(connect_status(connect_body("MQIsdp", 4, 0, payload)),
            DecodeStatus::BadProtocolVersion);
  EXPECT_EQ(connect_status(connect_body("MQIsdp", 5, 0, payload)),
            DecodeStatus::BadProtocolVersion);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0, payload)), DecodeStatus::Ok);
  EXPECT_EQ(connect_status(connect_body("MQIsdp", 3, 0, payload)), DecodeStatus::Ok);
}

// [MQTT-3.1.2-1]: an unknown protocol name is a protocol violation (close, no CONNACK).
TEST(Connect, UnknownProtocolNameIsProtocolError_MQTT_3_1_2_1) {
  const std::string payload = str("x");
  EXPECT_EQ(connect_status(connect_body("MQTX", 4, 0, payload)), DecodeStatus::ProtocolError);
  EXPECT_EQ(connect_status(connect_body("mqtt", 4, 0, payload)), DecodeStatus::ProtocolError);
  EXPECT_EQ(connect_status(connect_body("MQIsd", 3, 0, payload)), DecodeStatus::ProtocolError);
  EXPECT_EQ(connect_status(connect_body("", 4, 0, payload)), DecodeStatus::ProtocolError);
}

// [MQTT-3.1.2-3]: the reserved connect flag must be 0.
TEST(Connect, ReservedFlagIsMalformed_MQTT_3_1_2_3) {
  const std::string payload = str("x");
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x01, payload)), DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x03, payload)), DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQIsdp", 3, 0x01, payload)), DecodeStatus::Malformed);
}

// [MQTT-3.1.2-11], [MQTT-3.1.2-13]: without the will flag, will QoS and retain are 0.
TEST(Connect, WillQosOrRetainWithoutWillFlagIsMalformed_MQTT_3_1_2_11_and_13) {
  const std::string payload = str("x");
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x08, payload)), DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x10, payload)), DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x20, payload)), DecodeStatus::Malformed);
}

// [MQTT-3.1.2-12]: will QoS 3 is not allowed.
TEST(Connect, WillQos3IsMalformed_MQTT_3_1_2_12) {
  const std::string payload = str("c") + str("t") + str("m");
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x04 | 0x18, payload)), DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x04 | 0x10, payload)), DecodeStatus::Ok);
}

// [MQTT-3.1.2-22]: in 3.1.1 a password requires a user name.
TEST(Connect, PasswordWithoutUsernameIsMalformedIn311_MQTT_3_1_2_22) {
  const std::string payload = str("c") + str("pw");
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x40, payload)), DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0xC0, str("c") + str("u") + str("pw"))),
            DecodeStatus::Ok);
}

// [MQTT-1.5.3-1], [MQTT-1.5.3-2], [MQTT-3.1.3-4], [MQTT-3.1.3-10], [MQTT-3.1.3-11]
TEST(Connect, InvalidUtf8StringsAreMalformed) {
  const std::string bad = std::string("a\xC0\x80", 3);  // overlong NUL
  const std::string nul = std::string("a\0b", 3);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0, str(bad))), DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0, str(nul))), DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x04, str("c") + str(bad) + str("m"))),
            DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x80, str("c") + str("\xED\xA0\x80"))),
            DecodeStatus::Malformed);
  // The password is binary data: any bytes are fine.
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0xC0, str("c") + str("u") + str(bad))),
            DecodeStatus::Ok);
  // The will payload too.
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x04, str("c") + str("t") + str(bad))),
            DecodeStatus::Ok);
}

// [MQTT-3.1.3-10]: the will topic is a topic name: not empty, no wildcards.
TEST(Connect, InvalidWillTopicIsProtocolError) {
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x04, str("c") + str("a/+") + str("m"))),
            DecodeStatus::ProtocolError);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x04, str("c") + str("#") + str("m"))),
            DecodeStatus::ProtocolError);
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0x04, str("c") + str("") + str("m"))),
            DecodeStatus::ProtocolError);
}

TEST(Connect, TrailingBytesAreMalformed) {
  std::string body = connect_body("MQTT", 4, 0, str("c"));
  EXPECT_EQ(connect_status(body), DecodeStatus::Ok);
  EXPECT_EQ(connect_status(body + "x"), DecodeStatus::Malformed);
  // A user name present without its flag is trailing garbage [MQTT-3.1.2-16].
  EXPECT_EQ(connect_status(body + str("u")), DecodeStatus::Malformed);
}

TEST(Connect, EveryTruncationIsMalformed) {
  const Connect c = full_connect();
  std::string wire;
  encode_connect(wire, c.protocol_level, c);
  const Frame full = frame_of(wire);
  for (size_t n = 0; n < full.body.size(); ++n) {
    Connect out;
    const DecodeResult r =
        decode_connect(make_frame(PacketType::Connect, 0, full.body.substr(0, n)), out);
    EXPECT_EQ(r.status, DecodeStatus::Malformed) << "body cut at " << n << ": " << r.reason;
  }
}

TEST(Connect, LengthBeyondBodyIsMalformed) {
  EXPECT_EQ(connect_status(connect_body("MQTT", 4, 0, bytes({0xFF, 0xFF, 'x'}))),
            DecodeStatus::Malformed);
  EXPECT_EQ(connect_status(bytes({0, 10, 'M', 'Q', 'T', 'T'})), DecodeStatus::Malformed);
}

TEST(Connect, WrongFrameTypeOrFlagsRejected) {
  const std::string body = connect_body("MQTT", 4, 0, str("c"));
  Connect c;
  EXPECT_EQ(decode_connect(make_frame(PacketType::Publish, 0, body), c).status,
            DecodeStatus::ProtocolError);
  EXPECT_EQ(decode_connect(make_frame(PacketType::Connect, 2, body), c).status,
            DecodeStatus::Malformed);
}

TEST(Connect, DecodedStringsPointIntoTheBuffer) {
  std::string wire;
  const Connect full = full_connect();
  encode_connect(wire, full.protocol_level, full);
  Frame f = frame_of(wire);
  Connect c;
  ASSERT_TRUE(decode_connect(f, c).ok());
  const char* begin = wire.data();
  const char* end = wire.data() + wire.size();
  EXPECT_GE(c.client_id.data(), begin);
  EXPECT_LE(c.client_id.data() + c.client_id.size(), end);
  EXPECT_GE(c.password->data(), begin);
  EXPECT_LE(c.password->data() + c.password->size(), end);
}

// ---------------------------------------------------------------- PUBLISH

Publish round_trip(const Publish& in) {
  std::string wire;
  encode_publish(wire, kLevel311, in);
  Frame f = frame_of(wire);
  EXPECT_EQ(f.type, PacketType::Publish);
  Publish out;
  DecodeResult r = decode_publish(f, kLevel311, out);
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(out.topic, in.topic);
  EXPECT_EQ(out.payload, in.payload);
  EXPECT_EQ(out.packet_id, in.packet_id);
  EXPECT_EQ(out.qos, in.qos);
  EXPECT_EQ(out.retain, in.retain);
  EXPECT_EQ(out.dup, in.dup);
  return out;
}

TEST(Publish, RoundTripAllQosRetainDup) {
  const std::string payload("bin\0ary\xFF", 8);
  for (uint8_t qos = 0; qos <= 2; ++qos) {
    for (int retain = 0; retain <= 1; ++retain) {
      for (int dup = 0; dup <= (qos > 0 ? 1 : 0); ++dup) {
        Publish p;
        p.topic = "sensors/β/temp";
        p.payload = payload;
        p.qos = qos;
        p.packet_id = qos > 0 ? 0xBEEF : 0;
        p.retain = retain != 0;
        p.dup = dup != 0;
        round_trip(p);
      }
    }
  }
}

TEST(Publish, ExactBytes) {
  Publish p;
  p.topic = "a/b";
  p.payload = "hi";
  p.qos = 1;
  p.packet_id = 10;
  p.retain = true;
  std::string wire;
  encode_publish(wire, kLevel311, p);
  EXPECT_EQ(wire, bytes({0x33, 9, 0, 3, 'a', '/', 'b', 0, 10, 'h', 'i'}));
}

TEST(Publish, EmptyAndLargePayloads) {
  Publish p;
  p.topic = "t";
  round_trip(p);                        // empty payload
  const std::string big(200'000, 'z');  // 3-byte remaining length
  p.payload = big;
  p.qos = 2;
  p.packet_id = 1;
  round_trip(p);
}

TEST(Publish, DecodeDoesNotAllocate) {
  Publish p;
  p.topic = "a/long/enough/topic/name/to/defeat/any/small/buffer/optimisation";
  p.payload = std::string_view("payload bytes", 13);
  p.qos = 1;
  p.packet_id = 3;
  std::string wire;
  encode_publish(wire, kLevel311, p);
  Frame f;
  Publish out;
  const long before = g_allocations.load();
  const DecodeResult fr = read_frame(wire, kBig, f);
  const DecodeResult pr = decode_publish(f, kLevel311, out);
  const long after = g_allocations.load();
  ASSERT_TRUE(fr.ok());
  ASSERT_TRUE(pr.ok());
  EXPECT_EQ(after, before);

  // The counter is live: decoding a SUBSCRIBE fills a vector and is counted.
  Subscribe s;
  s.packet_id = 1;
  s.topics = {req("a", 0)};
  std::string sub_wire;
  encode_subscribe(sub_wire, kLevel311, s);
  Subscribe sub_out;
  const long before_sub = g_allocations.load();
  ASSERT_TRUE(decode_subscribe(frame_of(sub_wire), kLevel311, sub_out).ok());
  EXPECT_GT(g_allocations.load(), before_sub);
}

DecodeStatus publish_status(uint8_t flags, const std::string& body) {
  Publish p;
  return decode_publish(make_frame(PacketType::Publish, flags, body), kLevel311, p).status;
}

// [MQTT-3.3.1-4]
TEST(Publish, Qos3IsMalformed_MQTT_3_3_1_4) {
  EXPECT_EQ(publish_status(0x06, str("t") + u16(1)), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0x07, str("t") + u16(1)), DecodeStatus::Malformed);
  Frame f;
  const std::string wire = bytes({0x36, 5, 0, 1, 't', 0, 1});
  ASSERT_TRUE(read_frame(wire, kBig, f).ok());
  Publish p;
  EXPECT_EQ(decode_publish(f, kLevel311, p).status, DecodeStatus::Malformed);
}

// [MQTT-3.3.1-2]
TEST(Publish, DupWithQos0IsMalformed_MQTT_3_3_1_2) {
  EXPECT_EQ(publish_status(0x08, str("t")), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0x09, str("t")), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0x0A, str("t") + u16(1)), DecodeStatus::Ok);
}

// [MQTT-2.3.1-1]
TEST(Publish, ZeroPacketIdIsProtocolError_MQTT_2_3_1_1) {
  EXPECT_EQ(publish_status(0x02, str("t") + u16(0)), DecodeStatus::ProtocolError);
  EXPECT_EQ(publish_status(0x04, str("t") + u16(0)), DecodeStatus::ProtocolError);
  // QoS 0 has no packet id: the two bytes are payload.
  Publish p;
  const std::string body = str("t") + u16(0);
  ASSERT_TRUE(decode_publish(make_frame(PacketType::Publish, 0, body), kLevel311, p).ok());
  EXPECT_EQ(p.packet_id, 0);
  EXPECT_EQ(p.payload, u16(0));
}

// [MQTT-3.3.2-2], [MQTT-4.7.3-1]
TEST(Publish, InvalidTopicNameIsProtocolError_MQTT_3_3_2_2) {
  EXPECT_EQ(publish_status(0, str("a/+")), DecodeStatus::ProtocolError);
  EXPECT_EQ(publish_status(0, str("a/#")), DecodeStatus::ProtocolError);
  EXPECT_EQ(publish_status(0, str("#")), DecodeStatus::ProtocolError);
  EXPECT_EQ(publish_status(0, str("")), DecodeStatus::ProtocolError);
  EXPECT_EQ(publish_status(0, str("a/b")), DecodeStatus::Ok);
}

// [MQTT-3.3.2-1], [MQTT-1.5.3-1], [MQTT-1.5.3-2]
TEST(Publish, BadUtf8TopicIsMalformed_MQTT_3_3_2_1) {
  EXPECT_EQ(publish_status(0, str(std::string("a\0b", 3))), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0, str("\xC3")), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0, str("\xED\xBF\xBF")), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0, str("\xF4\x90\x80\x80")), DecodeStatus::Malformed);
}

TEST(Publish, TruncatedIsMalformed) {
  EXPECT_EQ(publish_status(0, ""), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0, bytes({0})), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0, bytes({0, 5, 'a', 'b'})), DecodeStatus::Malformed);
  EXPECT_EQ(publish_status(0x02, str("t")), DecodeStatus::Malformed);               // no packet id
  EXPECT_EQ(publish_status(0x02, str("t") + bytes({1})), DecodeStatus::Malformed);  // half an id
}

TEST(Publish, WrongFrameTypeIsProtocolError) {
  Publish p;
  EXPECT_EQ(decode_publish(make_frame(PacketType::Puback, 0, str("t")), kLevel311, p).status,
            DecodeStatus::ProtocolError);
}

TEST(Publish, FixedHeaderMatchesEncodePublish) {
  const size_t topic_lens[] = {1, 3, 100, 65535};
  const size_t payload_lens[] = {0, 1, 100, 120, 16'380, 70'000};
  for (size_t tl : topic_lens) {
    for (size_t pl : payload_lens) {
      for (uint8_t qos = 0; qos <= 2; ++qos) {
        const std::string topic(tl, 't');
        const std::string payload(pl, 'p');
        Publish p;
        p.topic = topic;
        p.payload = payload;
        p.qos = qos;
        p.packet_id = qos ? 5 : 0;
        p.retain = true;
        p.dup = qos > 0;
        std::string wire;
        encode_publish(wire, kLevel311, p);
        uint8_t hdr[5];
        const size_t n = encode_publish_fixed_header(hdr, qos, true, qos > 0, tl, pl);
        ASSERT_GT(n, 1u);
        const size_t remaining = 2 + tl + (qos > 0 ? 2 : 0) + pl;
        EXPECT_EQ(n, 1 + remaining_length_size(static_cast<uint32_t>(remaining)));
        EXPECT_EQ(wire.size(), n + remaining);
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(hdr), n), wire.substr(0, n))
            << tl << " " << pl << " " << int{qos};
      }
    }
  }
}

TEST(Publish, FixedHeaderTooLargeReturnsZero) {
  uint8_t hdr[5];
  EXPECT_EQ(encode_publish_fixed_header(hdr, 0, false, false, 1, kMaxRemainingLength), 0u);
  EXPECT_EQ(encode_publish_fixed_header(hdr, 1, false, false, 65536, 0), 0u);
  EXPECT_EQ(encode_publish_fixed_header(hdr, 0, false, false, 1, kMaxRemainingLength - 3), 5u);
  EXPECT_EQ(encode_publish_fixed_header(hdr, 1, false, false, 1, kMaxRemainingLength - 3), 0u);
}

TEST(Publish, UnrepresentableTopicAppendsNothing) {
  const std::string topic(65536, 't');
  Publish p;
  p.topic = topic;
  std::string wire = "keep";
  encode_publish(wire, kLevel311, p);
  EXPECT_EQ(wire, "keep");
}

// -------------------------------------------------------------- SUBSCRIBE

TEST(Subscribe, RoundTrip) {
  Subscribe s;
  s.packet_id = 0x1234;
  s.topics = {req("a/b", 0), req("sport/+/player1", 1), req("#", 2), req("$SYS/#", 1),
              req("ü/+", 0)};
  std::string wire;
  encode_subscribe(wire, kLevel311, s);
  EXPECT_EQ(static_cast<uint8_t>(wire[0]), 0x82);  // [MQTT-3.8.1-1]
  Frame f = frame_of(wire);
  Subscribe out;
  out.topics = {req("stale", 1)};  // must be replaced, not appended to
  DecodeResult r = decode_subscribe(f, kLevel311, out);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(out.packet_id, 0x1234);
  ASSERT_EQ(out.topics.size(), s.topics.size());
  for (size_t i = 0; i < s.topics.size(); ++i) {
    EXPECT_EQ(out.topics[i].filter, s.topics[i].filter);
    EXPECT_EQ(out.topics[i].qos, s.topics[i].qos);
  }
}

DecodeStatus subscribe_status(const std::string& body, uint8_t flags = 2) {
  Subscribe s;
  return decode_subscribe(make_frame(PacketType::Subscribe, flags, body), kLevel311, s).status;
}

// [MQTT-2.3.1-1]
TEST(Subscribe, ZeroPacketIdIsProtocolError_MQTT_2_3_1_1) {
  EXPECT_EQ(subscribe_status(u16(0) + str("a") + bytes({0})), DecodeStatus::ProtocolError);
}

// [MQTT-3.8.3-3]
TEST(Subscribe, NoTopicsIsProtocolError_MQTT_3_8_3_3) {
  EXPECT_EQ(subscribe_status(u16(1)), DecodeStatus::ProtocolError);
}

// [MQTT-3-8.3-4]: reserved bits of the requested QoS byte must be 0, QoS <= 2.
TEST(Subscribe, BadRequestedQosIsMalformed_MQTT_3_8_3_4) {
  for (int q = 0; q < 256; ++q) {
    const DecodeStatus st = subscribe_status(u16(1) + str("a") + bytes({q}));
    if (q <= 2) {
      EXPECT_EQ(st, DecodeStatus::Ok) << q;
    } else {
      EXPECT_EQ(st, DecodeStatus::Malformed) << q;
    }
  }
}

// [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1]
TEST(Subscribe, InvalidFilterIsProtocolError) {
  EXPECT_EQ(subscribe_status(u16(1) + str("a/#/b") + bytes({0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe_status(u16(1) + str("a+") + bytes({0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe_status(u16(1) + str("") + bytes({0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe_status(u16(1) + str("ok") + bytes({0}) + str("a#") + bytes({0})),
            DecodeStatus::ProtocolError);
}

// [MQTT-3.8.3-1]
TEST(Subscribe, BadUtf8FilterIsMalformed_MQTT_3_8_3_1) {
  EXPECT_EQ(subscribe_status(u16(1) + str("\xFF") + bytes({0})), DecodeStatus::Malformed);
  EXPECT_EQ(subscribe_status(u16(1) + str(std::string("a\0", 2)) + bytes({0})),
            DecodeStatus::Malformed);
}

TEST(Subscribe, TruncatedIsMalformed) {
  EXPECT_EQ(subscribe_status(""), DecodeStatus::Malformed);
  EXPECT_EQ(subscribe_status(bytes({0})), DecodeStatus::Malformed);
  EXPECT_EQ(subscribe_status(u16(1) + str("a")), DecodeStatus::Malformed);  // no QoS byte
  EXPECT_EQ(subscribe_status(u16(1) + bytes({0, 3, 'a'})), DecodeStatus::Malformed);
  EXPECT_EQ(subscribe_status(u16(1) + str("a") + bytes({0, 0})), DecodeStatus::Malformed);
}

// [MQTT-3.8.1-1]
TEST(Subscribe, BadFlagsAreMalformed_MQTT_3_8_1_1) {
  EXPECT_EQ(subscribe_status(u16(1) + str("a") + bytes({0}), 0), DecodeStatus::Malformed);
  Frame f;
  EXPECT_EQ(read_frame(bytes({0x80, 4, 0, 1, 0, 0}), kBig, f).status, DecodeStatus::Malformed);
}

// ------------------------------------------------------------ UNSUBSCRIBE

TEST(Unsubscribe, RoundTrip) {
  Unsubscribe u;
  u.packet_id = 77;
  u.filters = {"a/b", "+/+", "#", "/#"};
  std::string wire;
  encode_unsubscribe(wire, kLevel311, u);
  EXPECT_EQ(static_cast<uint8_t>(wire[0]), 0xA2);  // [MQTT-3.10.1-1]
  Frame f = frame_of(wire);
  Unsubscribe out;
  out.filters = {"stale"};
  DecodeResult r = decode_unsubscribe(f, kLevel311, out);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(out.packet_id, 77);
  EXPECT_EQ(out.filters, u.filters);
}

DecodeStatus unsubscribe_status(const std::string& body, uint8_t flags = 2) {
  Unsubscribe u;
  return decode_unsubscribe(make_frame(PacketType::Unsubscribe, flags, body), kLevel311, u).status;
}

TEST(Unsubscribe, ZeroPacketIdIsProtocolError_MQTT_2_3_1_1) {
  EXPECT_EQ(unsubscribe_status(u16(0) + str("a")), DecodeStatus::ProtocolError);
}

// [MQTT-3.10.3-2]
TEST(Unsubscribe, NoFiltersIsProtocolError_MQTT_3_10_3_2) {
  EXPECT_EQ(unsubscribe_status(u16(1)), DecodeStatus::ProtocolError);
}

TEST(Unsubscribe, InvalidFiltersRejected) {
  EXPECT_EQ(unsubscribe_status(u16(1) + str("a/#/b")), DecodeStatus::ProtocolError);
  EXPECT_EQ(unsubscribe_status(u16(1) + str("")), DecodeStatus::ProtocolError);
  EXPECT_EQ(unsubscribe_status(u16(1) + str("\xC0\xAF")),
            DecodeStatus::Malformed);  // [MQTT-3.10.3-1]
}

TEST(Unsubscribe, TruncatedOrBadFlagsIsMalformed) {
  EXPECT_EQ(unsubscribe_status(bytes({0})), DecodeStatus::Malformed);
  EXPECT_EQ(unsubscribe_status(u16(1) + bytes({0, 2, 'a'})), DecodeStatus::Malformed);
  EXPECT_EQ(unsubscribe_status(u16(1) + str("a") + bytes({0})), DecodeStatus::Malformed);
  EXPECT_EQ(unsubscribe_status(u16(1) + str("a"), 0), DecodeStatus::Malformed);  // [MQTT-3.10.1-1]
}

// ------------------------------------------------------------------- acks

TEST(Ack, RoundTripEveryAckType) {
  const PacketType types[] = {PacketType::Puback, PacketType::Pubrec, PacketType::Pubrel,
                              PacketType::Pubcomp, PacketType::Unsuback};
  for (PacketType t : types) {
    std::string wire;
    // UNSUBACK has the same 3.1.1 shape but its own codec.
    const bool unsuback = t == PacketType::Unsuback;
    if (unsuback) {
      encode_unsuback(wire, kLevel311, 0xA55A, {});
    } else {
      encode_ack(wire, kLevel311, t, 0xA55A);
    }
    ASSERT_EQ(wire.size(), 4u);
    // PUBREL has fixed flags 0b0010 [MQTT-3.6.1-1].
    EXPECT_EQ(static_cast<uint8_t>(wire[0]),
              (static_cast<int>(t) << 4) | (t == PacketType::Pubrel ? 2 : 0));
    Frame f = frame_of(wire);
    if (unsuback) {
      Unsuback u;
      DecodeResult r = decode_unsuback(f, kLevel311, u);
      ASSERT_TRUE(r.ok()) << r.reason;
      EXPECT_EQ(u.packet_id, 0xA55A);
      EXPECT_TRUE(u.reason_codes.empty());
      continue;
    }
    Ack a;
    DecodeResult r = decode_ack(f, kLevel311, a);
    ASSERT_TRUE(r.ok()) << r.reason;
    EXPECT_EQ(a.type, t);
    EXPECT_EQ(a.packet_id, 0xA55A);
  }
}

TEST(Ack, UnsubackEncoder) {
  std::string wire;
  encode_unsuback(wire, kLevel311, 258, {});
  EXPECT_EQ(wire, bytes({0xB0, 2, 1, 2}));
}

TEST(Ack, BodyMustBeExactlyTwoBytes) {
  Ack a;
  EXPECT_EQ(decode_ack(make_frame(PacketType::Puback, 0, bytes({1})), kLevel311, a).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(decode_ack(make_frame(PacketType::Puback, 0, bytes({0, 1, 0})), kLevel311, a).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(decode_ack(make_frame(PacketType::Pubcomp, 0, ""), kLevel311, a).status,
            DecodeStatus::Malformed);
}

TEST(Ack, ZeroPacketIdIsProtocolError_MQTT_2_3_1_1) {
  Ack a;
  EXPECT_EQ(decode_ack(make_frame(PacketType::Pubrec, 0, u16(0)), kLevel311, a).status,
            DecodeStatus::ProtocolError);
}

TEST(Ack, WrongTypeOrFlags) {
  Ack a;
  EXPECT_EQ(decode_ack(make_frame(PacketType::Publish, 0, u16(1)), kLevel311, a).status,
            DecodeStatus::ProtocolError);
  EXPECT_EQ(decode_ack(make_frame(PacketType::Pubrel, 0, u16(1)), kLevel311, a).status,
            DecodeStatus::Malformed);  // [MQTT-3.6.1-1]
  EXPECT_EQ(decode_ack(make_frame(PacketType::Puback, 2, u16(1)), kLevel311, a).status,
            DecodeStatus::Malformed);
}

// ------------------------------------------- empty-body and server packets

TEST(Empty, PingAndDisconnectRoundTrip) {
  std::string wire;
  encode_pingreq(wire);
  encode_pingresp(wire);
  encode_disconnect(wire, kLevel311);
  EXPECT_EQ(wire, bytes({0xC0, 0, 0xD0, 0, 0xE0, 0}));
  std::string_view rest = wire;
  const PacketType expected[] = {PacketType::Pingreq, PacketType::Pingresp, PacketType::Disconnect};
  for (PacketType t : expected) {
    Frame f;
    ASSERT_TRUE(read_frame(rest, kBig, f).ok());
    EXPECT_EQ(f.type, t);
    EXPECT_TRUE(decode_empty(f).ok());
    rest.remove_prefix(f.size);
  }
}

TEST(Empty, NonEmptyBodyIsMalformed) {
  EXPECT_EQ(decode_empty(make_frame(PacketType::Pingreq, 0, "x")).status, DecodeStatus::Malformed);
  EXPECT_EQ(decode_empty(make_frame(PacketType::Disconnect, 0, "xy")).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(decode_empty(make_frame(PacketType::Puback, 0, "")).status,
            DecodeStatus::ProtocolError);
}

TEST(Connack, ExactBytes) {
  std::string wire;
  // 3.1.1 writes the return code the reason code maps to.
  encode_connack(wire, kLevel311, {true, ReasonCode::Success, {}});
  encode_connack(wire, kLevel311, {false, ReasonCode::UnsupportedProtocolVersion, {}});
  encode_connack(wire, kLevel311, {false, ReasonCode::NotAuthorized, {}});
  EXPECT_EQ(wire, bytes({0x20, 2, 1, 0, 0x20, 2, 0, 1, 0x20, 2, 0, 5}));
  const std::string first = wire.substr(0, 4);
  Frame f = frame_of(first);
  EXPECT_EQ(f.type, PacketType::Connack);
}

TEST(Suback, ExactBytes) {
  std::string wire;
  // Any failure reason is 3.1.1's one failure code 0x80.
  const std::array<ReasonCode, 4> codes = {ReasonCode::GrantedQos0, ReasonCode::GrantedQos1,
                                           ReasonCode::GrantedQos2, ReasonCode::NotAuthorized};
  encode_suback(wire, kLevel311, 10, codes);
  EXPECT_EQ(wire, bytes({0x90, 6, 0, 10, 0, 1, 2, 0x80}));
  Frame f = frame_of(wire);
  EXPECT_EQ(f.type, PacketType::Suback);
}

}  // namespace
}  // namespace mqtt
