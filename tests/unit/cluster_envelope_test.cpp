// Unit tests for the envelope between cluster nodes (src/cluster/envelope.hpp,
// design note cluster-design.md section B.3).
#include "cluster/envelope.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "broker/message.hpp"

namespace cluster {
namespace {

using namespace std::string_literals;

constexpr int64_t kT0 = 1'700'000'000'000;  // origin receive time, ms

// A v5 property block as the broker forwards it: Content Type "text/plain"
// (0x03) and a User Property ("k", "v") (0x26). Contains a NUL on purpose.
const std::string kProps = "\x03\x00\x0atext/plain\x26\x00\x01k\x00\x01v"s;

std::string encode(const broker::Message& m, Source src = Source::Device,
                   std::string_view node = "node-a", uint32_t epoch = 7, uint64_t seq = 42,
                   int64_t now = kT0) {
  std::string out;
  encode_envelope(out, m, src, node, epoch, seq, now);
  return out;
}

TEST(ClusterEnvelope, RoundTripWithoutPropertiesOrExpiry) {
  const broker::Message m("a/b", "hello\0world"s, 1, true, "dev-1", kT0);
  const std::string bytes = encode(m);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), kEnvelopeVersion);
  auto d = decode_envelope(bytes);
  ASSERT_TRUE(d) << d.error().message;
  const Envelope& e = *d;
  EXPECT_EQ(e.qos, 1);
  EXPECT_TRUE(e.retain);
  EXPECT_EQ(e.source, Source::Device);
  EXPECT_EQ(e.node, "node-a");
  EXPECT_EQ(e.epoch, 7u);
  EXPECT_EQ(e.seq, 42u);
  EXPECT_EQ(e.topic, "a/b");
  EXPECT_EQ(e.payload, "hello\0world"s);
  EXPECT_EQ(e.properties, "");
  EXPECT_EQ(e.origin_client, "dev-1");
  EXPECT_FALSE(e.has_expiry);
  EXPECT_EQ(e.received_ms, kT0);

  const int64_t now = kT0 + 5;
  const broker::MessagePtr back = to_message(e, now);
  EXPECT_EQ(back->topic(), m.topic());
  EXPECT_EQ(back->payload(), m.payload());
  EXPECT_EQ(back->qos(), m.qos());
  EXPECT_EQ(back->retain(), m.retain());
  EXPECT_EQ(back->origin(), m.origin());
  EXPECT_EQ(back->properties(), "");
  EXPECT_FALSE(back->has_expiry());
  EXPECT_EQ(back->received_ms(), now);
}

TEST(ClusterEnvelope, RoundTripWithPropertiesAndExpiry_MQTT_3_3_2_6) {
  const broker::MessageMeta meta{kProps, true, 60};
  const broker::Message m("$SYS/x", "", 2, false, "", kT0, meta);
  // Sent 10.5 s after the origin received it: 49.5 s left, rounded up to 50.
  const std::string bytes = encode(m, Source::Api, "n", UINT32_MAX, UINT64_MAX, kT0 + 10'500);
  auto d = decode_envelope(bytes);
  ASSERT_TRUE(d) << d.error().message;
  const Envelope& e = *d;
  EXPECT_EQ(e.qos, 2);
  EXPECT_FALSE(e.retain);
  EXPECT_EQ(e.source, Source::Api);
  EXPECT_EQ(e.node, "n");
  EXPECT_EQ(e.epoch, UINT32_MAX);
  EXPECT_EQ(e.seq, UINT64_MAX);
  EXPECT_EQ(e.topic, "$SYS/x");
  EXPECT_EQ(e.payload, "");
  EXPECT_EQ(e.properties, kProps);
  EXPECT_EQ(e.origin_client, "");
  EXPECT_TRUE(e.has_expiry);
  EXPECT_EQ(e.expiry_s, 50u);
  EXPECT_EQ(e.received_ms, kT0);

  // The receiver counts the remaining seconds from its own receive time.
  const int64_t now = kT0 + 20'000;
  const broker::MessagePtr back = to_message(e, now);
  EXPECT_EQ(back->properties(), kProps);
  EXPECT_TRUE(back->has_expiry());
  EXPECT_EQ(back->expiry_interval_s(), 50u);
  EXPECT_EQ(back->received_ms(), now);
  EXPECT_FALSE(back->expired(now + 49'999));
  EXPECT_TRUE(back->expired(now + 50'000));
}

TEST(ClusterEnvelope, LargeLengthsUseLongerVarints) {
  const std::string topic(300, 't');
  const std::string payload(70'000, 'p');
  const std::string client(200, 'c');
  const std::string node(kMaxNodeBytes, 'n');
  const broker::Message m(topic, payload, 0, false, client, kT0, {kProps, false, 0});
  const std::string bytes = encode(m, Source::Device, node);  // the Envelope views into it
  auto d = decode_envelope(bytes);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->topic, topic);
  EXPECT_EQ(d->payload, payload);
  EXPECT_EQ(d->origin_client, client);
  EXPECT_EQ(d->node, node);
  EXPECT_EQ(d->properties, kProps);
}

TEST(ClusterEnvelope, ReusesTheBufferAndClearsIt) {
  const broker::Message m("a", "x", 0, false, "c", kT0);
  std::string out = "stale bytes";
  out.reserve(512);
  const char* data = out.data();
  encode_envelope(out, m, Source::Device, "node", 1, 1, kT0);
  EXPECT_EQ(out, encode(m, Source::Device, "node", 1, 1));
  EXPECT_EQ(out.data(), data) << "no reallocation while capacity suffices";
  EXPECT_TRUE(decode_envelope(out));
}

TEST(ClusterEnvelope, EveryTruncationIsRejected) {
  const broker::Message plain("a/b", "payload", 1, false, "dev", kT0);
  const broker::Message full("t", "p", 2, true, "dev", kT0, {kProps, true, 30});
  for (const broker::Message* m : {&plain, &full}) {
    const std::string bytes = encode(*m);
    ASSERT_TRUE(decode_envelope(bytes));
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(decode_envelope(std::string_view(bytes).substr(0, n))) << "length " << n;
    }
    EXPECT_FALSE(decode_envelope(bytes + "x")) << "a trailing byte";
  }
}

TEST(ClusterEnvelope, BadVersionFlagsAndLengthsAreRejected) {
  const broker::Message m("a/b", "payload", 1, false, "dev", kT0);
  const std::string good = encode(m);
  ASSERT_TRUE(decode_envelope(good));
  auto with = [&good](size_t at, uint8_t byte) {
    std::string b = good;
    b[at] = static_cast<char>(byte);
    return b;
  };
  for (const uint8_t v : {0, 2, 0xff}) {
    auto d = decode_envelope(with(0, v));
    ASSERT_FALSE(d) << "version " << int{v};
    EXPECT_NE(d.error().message.find("version"), std::string::npos) << d.error().message;
  }
  EXPECT_FALSE(decode_envelope(with(1, 0x03))) << "QoS 3";
  EXPECT_FALSE(decode_envelope(with(1, 0x21))) << "unknown flag bit";
  EXPECT_FALSE(decode_envelope(with(1, 0x80 | 0x01))) << "unknown flag bit";
  // Node length is the byte after the 22-byte fixed header (no expiry here).
  EXPECT_FALSE(decode_envelope(with(22, 0))) << "empty node id";
  EXPECT_FALSE(decode_envelope(with(22, 0x7f))) << "node length past the end";
  // A non-canonical varint: node length 6 written as 0x86 0x00.
  std::string padded = good.substr(0, 22) + "\x86\x00"s + good.substr(23);
  EXPECT_FALSE(decode_envelope(padded));
  // A node length over kMaxNodeBytes (256 = 0x80 0x02), with the bytes present.
  const broker::Message m2("a", "", 0, false, "", kT0);
  std::string big = encode(m2, Source::Device, std::string(256, 'n'));
  EXPECT_FALSE(decode_envelope(big)) << "node id over kMaxNodeBytes";
  EXPECT_FALSE(decode_envelope(""));
  EXPECT_FALSE(decode_envelope(std::string(64, '\xff')));
}

TEST(ClusterEnvelope, TopicLongerThanAnMqttStringIsRejected) {
  // A hand-made envelope whose topic length is 65536 (0x80 0x80 0x04), with the
  // bytes present: broker::Message keeps the topic length in 16 bits.
  std::string b;
  b.push_back(static_cast<char>(kEnvelopeVersion));
  b.append(21, '\0');         // flags, epoch, seq, received_ms
  b.append("\x01n\x00"s);     // node "n", empty client
  b.append("\x80\x80\x04"s);  // topic length 65536
  b.append("\x00\x00"s);      // payload, properties
  b.append(65536, 't');
  EXPECT_FALSE(decode_envelope(b));
  // The same with 65535 is fine.
  std::string ok;
  ok.push_back(static_cast<char>(kEnvelopeVersion));
  ok.append(21, '\0');
  ok.append("\x01n\x00"s);
  ok.append("\xff\xff\x03"s);
  ok.append("\x00\x00"s);
  ok.append(65535, 't');
  auto d = decode_envelope(ok);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->topic.size(), 65535u);
}

}  // namespace
}  // namespace cluster
