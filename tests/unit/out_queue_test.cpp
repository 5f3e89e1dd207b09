// broker::OutQueue (src/broker/out_queue.hpp): the bytes waiting to be written
// to one connection. What it gathers must be the exact byte sequence appended,
// in order, as MQTT packets the project's own decoders accept; small writes are
// joined into shared runs and large payloads are referenced from the Message,
// not copied.
#include "broker/out_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/message.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/properties.hpp"

namespace {

using broker::Message;
using broker::MessagePtr;
using broker::OutQueue;

MessagePtr message(std::string_view topic, std::string_view payload,
                   const broker::MessageMeta& meta = {}) {
  return std::make_shared<const Message>(topic, payload, 1, false, "origin", 0, meta);
}

std::vector<std::string_view> views(const OutQueue& q) {
  std::vector<std::string_view> v(256);
  v.resize(q.gather(v.data(), v.size()));
  return v;
}

std::string contents(const OutQueue& q) {
  std::string all;
  for (std::string_view v : views(q)) all.append(v);
  return all;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

// The one PUBLISH frame in `wire`, decoded.
mqtt::Publish decode311(std::string_view wire, mqtt::Frame& f) {
  mqtt::Publish p;
  auto r = mqtt::read_frame(wire, 1u << 28, f);
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(f.size, wire.size());
  EXPECT_EQ(f.type, mqtt::PacketType::Publish);
  EXPECT_TRUE(mqtt::decode_publish(f, mqtt::kLevel311, p).ok());
  return p;
}

mqtt::Publish decode5(std::string_view wire, mqtt::Frame& f) {
  mqtt::Publish p;
  auto r = mqtt::read_frame(wire, 1u << 28, f, mqtt::kLevel5);
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(f.size, wire.size());
  EXPECT_EQ(f.type, mqtt::PacketType::Publish);
  auto d = mqtt::decode_publish(f, mqtt::kLevel5, p);
  EXPECT_TRUE(d.ok()) << d.reason;
  return p;
}

TEST(OutQueue, StartsEmpty) {
  OutQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_TRUE(views(q).empty());
}

TEST(OutQueue, SmallAppendsAreJoinedIntoOneView) {
  OutQueue q;
  q.append("ab");
  q.append("");  // nothing to queue
  q.append("cd");
  q.append("efg");
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.bytes(), 7u);
  auto v = views(q);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], "abcdefg");
}

TEST(OutQueue, AppendingNothingLeavesItEmpty) {
  OutQueue q;
  q.append("");
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(views(q).empty());
}

// MQTT 3.1.1 section 3.3: fixed header 0x30 | DUP << 3 | QoS << 1 | RETAIN,
// remaining length, topic (2-byte length + bytes), packet id for QoS > 0,
// then the payload.
TEST(OutQueue, PublishQos0IsTheSpecifiedBytes) {
  OutQueue q;
  auto m = message("a/b", "hello");
  q.append_publish(m, 0, 0, false, false);
  const std::string expected = bytes({0x30, 10, 0, 3}) + "a/b" + "hello";
  EXPECT_EQ(contents(q), expected);
  EXPECT_EQ(q.bytes(), expected.size());
  mqtt::Frame f;
  mqtt::Publish p = decode311(expected, f);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.payload, "hello");
  EXPECT_EQ(p.qos, 0);
  EXPECT_FALSE(p.retain);
  EXPECT_FALSE(p.dup);
}

TEST(OutQueue, PublishFlagsAndPacketId) {
  struct Case {
    uint8_t qos;
    bool retain;
    bool dup;
    uint8_t first_byte;
  };
  for (const Case& c :
       {Case{1, false, false, 0x32}, Case{2, false, false, 0x34}, Case{1, true, false, 0x33},
        Case{1, false, true, 0x3a}, Case{2, true, true, 0x3d}, Case{0, true, false, 0x31}}) {
    SCOPED_TRACE(testing::Message()
                 << "qos " << int{c.qos} << " retain " << c.retain << " dup " << c.dup);
    OutQueue q;
    auto m = message("t", "xy");
    q.append_publish(m, c.qos, 0x1234, c.retain, c.dup);
    std::string expected = bytes({c.first_byte, c.qos ? 7 : 5, 0, 1}) + "t";
    if (c.qos) expected += bytes({0x12, 0x34});
    expected += "xy";
    const std::string wire = contents(q);
    EXPECT_EQ(wire, expected);
    EXPECT_EQ(q.bytes(), wire.size());
    mqtt::Frame f;
    mqtt::Publish p = decode311(wire, f);
    EXPECT_EQ(p.qos, c.qos);
    EXPECT_EQ(p.retain, c.retain);
    EXPECT_EQ(p.dup, c.dup);
    EXPECT_EQ(p.packet_id, c.qos ? 0x1234 : 0);
    EXPECT_EQ(p.topic, "t");
    EXPECT_EQ(p.payload, "xy");
  }
}

// Remaining length 2 + 3 + 2 + 500 = 507 = 0x1fb: two bytes, 0xfb 0x03.
TEST(OutQueue, PublishWithAMultiByteRemainingLength) {
  OutQueue q;
  const std::string payload(500, 'p');
  auto m = message("a/b", payload);
  q.append_publish(m, 1, 7, false, false);
  const std::string wire = contents(q);
  EXPECT_EQ(wire.substr(0, 3), bytes({0x32, 0xfb, 0x03}));
  EXPECT_EQ(wire.size(), 3u + 507u);
  mqtt::Frame f;
  mqtt::Publish p = decode311(wire, f);
  EXPECT_EQ(p.packet_id, 7);
  EXPECT_TRUE(p.payload == payload) << "payload of " << p.payload.size() << " bytes differs";
}

TEST(OutQueue, SmallPublishesShareOneViewAndDecodeInOrder) {
  OutQueue q;
  std::vector<MessagePtr> msgs;
  for (int i = 0; i < 50; ++i) {
    msgs.push_back(message("dev/" + std::to_string(i), "payload " + std::to_string(i)));
    q.append_publish(msgs.back(), 1, static_cast<uint16_t>(i + 1), false, false);
  }
  auto v = views(q);
  EXPECT_EQ(v.size(), 1u);  // one writev element for all of them
  std::string wire = contents(q);
  EXPECT_EQ(q.bytes(), wire.size());
  std::string_view rest = wire;
  for (int i = 0; i < 50; ++i) {
    mqtt::Frame f;
    ASSERT_TRUE(mqtt::read_frame(rest, 1u << 28, f).ok());
    mqtt::Publish p;
    ASSERT_TRUE(mqtt::decode_publish(f, mqtt::kLevel311, p).ok());
    EXPECT_EQ(p.topic, "dev/" + std::to_string(i));
    EXPECT_EQ(p.payload, "payload " + std::to_string(i));
    EXPECT_EQ(p.packet_id, i + 1);
    rest.remove_prefix(f.size);
  }
  EXPECT_TRUE(rest.empty());
}

TEST(OutQueue, LargePayloadIsReferencedNotCopied) {
  OutQueue q;
  const std::string payload(5000, 'L');
  auto m = message("big", payload);
  const long before = m.use_count();
  q.append_publish(m, 1, 9, false, false);
  EXPECT_GT(m.use_count(), before);  // the queue keeps the message alive
  auto v = views(q);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1].data(), m->payload().data());
  EXPECT_EQ(v[1].size(), payload.size());
  mqtt::Frame f;
  const std::string wire = contents(q);
  mqtt::Publish p = decode311(wire, f);
  EXPECT_EQ(p.topic, "big");
  EXPECT_EQ(p.packet_id, 9);
  EXPECT_TRUE(p.payload == payload) << "payload of " << p.payload.size() << " bytes differs";
  q.consume(q.bytes());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(m.use_count(), before);  // released once written
}

TEST(OutQueue, BytesAfterALargePayloadComeAfterIt) {
  OutQueue q;
  q.append("A");
  auto m = message("big", std::string(2000, 'L'));
  q.append_publish(m, 0, 0, false, false);
  q.append("Z");
  auto small = message("s", "tiny");
  q.append_publish(small, 0, 0, false, false);
  const std::string wire = contents(q);
  const std::string expected = "A" + bytes({0x30, 0xd5, 0x0f, 0, 3}) + "big" +
                               std::string(2000, 'L') + "Z" + bytes({0x30, 7, 0, 1}) + "stiny";
  EXPECT_EQ(wire, expected);
  EXPECT_EQ(q.bytes(), expected.size());
  auto v = views(q);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1].data(), m->payload().data());
}

TEST(OutQueue, FanOutReferencesOneBuffer) {
  auto m = message("big", std::string(4096, 'F'));
  OutQueue a;
  OutQueue b;
  a.append_publish(m, 0, 0, false, false);
  b.append_publish(m, 1, 3, true, false);
  auto va = views(a);
  auto vb = views(b);
  ASSERT_EQ(va.size(), 2u);
  ASSERT_EQ(vb.size(), 2u);
  EXPECT_EQ(va[1].data(), vb[1].data());
  EXPECT_EQ(va[1].data(), m->payload().data());
}

// MQTT 5.0 section 3.3: after the packet id, the property length (a variable
// byte integer) and the properties: the message's forwarded ones, then this
// delivery's `extra`.
TEST(OutQueue, PublishV5CarriesForwardedAndExtraProperties) {
  mqtt::PropertyWriter fw;
  fw.add_string(mqtt::PropertyId::ContentType, "text/plain");
  ASSERT_TRUE(fw.ok());
  const std::string forwarded(fw.bytes());
  broker::MessageMeta meta;
  meta.properties = forwarded;
  auto m = message("v5/topic", "body", meta);
  mqtt::PropertyWriter xw;
  xw.add_u16(mqtt::PropertyId::TopicAlias, 3);
  xw.add_varint(mqtt::PropertyId::SubscriptionIdentifier, 42);
  ASSERT_TRUE(xw.ok());
  const std::string extra(xw.bytes());

  OutQueue q;
  q.append_publish_v5(m, 1, 0x0102, true, false, extra, false);
  const std::string wire = contents(q);
  EXPECT_EQ(q.bytes(), wire.size());
  const size_t props_len = forwarded.size() + extra.size();
  const std::string expected =
      bytes({0x33, static_cast<int>(2 + 8 + 2 + 1 + props_len + 4), 0, 8}) + "v5/topic" +
      bytes({0x01, 0x02, static_cast<int>(props_len)}) + forwarded + extra + "body";
  EXPECT_EQ(wire, expected);
  mqtt::Frame f;
  mqtt::Publish p = decode5(wire, f);
  EXPECT_EQ(p.topic, "v5/topic");
  EXPECT_EQ(p.payload, "body");
  EXPECT_EQ(p.qos, 1);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(p.packet_id, 0x0102);
  EXPECT_EQ(p.props.content_type, std::optional<std::string_view>("text/plain"));
  EXPECT_EQ(p.props.topic_alias, 3);
  EXPECT_EQ(p.props.subscription_identifier, 42u);
}

TEST(OutQueue, PublishV5WithoutPropertiesAndWithTheTopicOmitted) {
  mqtt::PropertyWriter xw;
  xw.add_u16(mqtt::PropertyId::TopicAlias, 1);
  const std::string extra(xw.bytes());
  auto m = message("named/by/alias", "x");
  OutQueue q;
  // DUP is set on a redelivery, so with QoS > 0 [MQTT-3.3.1-2].
  q.append_publish_v5(m, 1, 0x0a0b, false, true, extra, true);
  const std::string wire = contents(q);
  const std::string expected = bytes({0x3a, static_cast<int>(2 + 2 + 1 + extra.size() + 1), 0, 0,
                                      0x0a, 0x0b, static_cast<int>(extra.size())}) +
                               extra + "x";
  EXPECT_EQ(wire, expected);
  mqtt::Frame f;
  mqtt::Publish p = decode5(wire, f);
  EXPECT_TRUE(p.topic.empty());
  EXPECT_TRUE(p.dup);
  EXPECT_EQ(p.packet_id, 0x0a0b);
  EXPECT_EQ(p.props.topic_alias, 1);

  OutQueue plain;
  plain.append_publish_v5(m, 0, 0, false, false, {}, false);
  EXPECT_EQ(contents(plain),
            bytes({0x30, 2 + 14 + 1 + 1, 0, 14}) + "named/by/alias" + bytes({0}) + "x");
}

TEST(OutQueue, PublishV5LargePayloadIsReferenced) {
  const std::string payload(3000, 'V');
  auto m = message("t5", payload);
  OutQueue q;
  q.append_publish_v5(m, 2, 5, false, false, {}, false);
  auto v = views(q);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1].data(), m->payload().data());
  mqtt::Frame f;
  const std::string wire = contents(q);
  mqtt::Publish p = decode5(wire, f);
  EXPECT_TRUE(p.payload == payload) << "payload of " << p.payload.size() << " bytes differs";
  EXPECT_EQ(p.packet_id, 5);
  EXPECT_EQ(p.qos, 2);
}

TEST(OutQueue, GatherFillsAtMostMaxViewsInOrder) {
  OutQueue q;
  auto m1 = message("a", std::string(2000, '1'));
  auto m2 = message("b", std::string(2000, '2'));
  q.append_publish(m1, 0, 0, false, false);
  q.append_publish(m2, 0, 0, false, false);
  auto all = views(q);
  ASSERT_EQ(all.size(), 4u);  // header, payload, header, payload
  std::string_view two[2];
  ASSERT_EQ(q.gather(two, 2), 2u);
  EXPECT_EQ(two[0], all[0]);
  EXPECT_EQ(two[1], all[1]);
  EXPECT_EQ(q.gather(two, 0), 0u);
}

TEST(OutQueue, ConsumeInsideAViewAndAcrossViews) {
  OutQueue q;
  q.append("0123456789");
  auto m = message("big", std::string(1500, 'P'));
  q.append_publish(m, 1, 2, false, false);
  q.append("tail");
  std::string model = contents(q);
  ASSERT_EQ(model.size(), q.bytes());

  q.consume(3);  // inside the first run
  model.erase(0, 3);
  EXPECT_EQ(contents(q), model);
  EXPECT_EQ(q.bytes(), model.size());
  EXPECT_EQ(views(q)[0].substr(0, 2), "34");
  q.consume(2);  // again inside the same run
  model.erase(0, 2);
  EXPECT_EQ(contents(q), model);
  EXPECT_EQ(views(q)[0].substr(0, 2), "56");

  // Past the rest of the run (5 + header 10) and 100 bytes into the payload.
  q.consume(5 + 10 + 100);
  model.erase(0, 5 + 10 + 100);
  EXPECT_EQ(contents(q), model);
  EXPECT_EQ(q.bytes(), model.size());
  auto v = views(q);
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v[0].data(), m->payload().data() + 100);  // still a reference

  // Exactly to the end of the payload.
  q.consume(600);  // twice inside the payload
  q.consume(800);
  model.erase(0, 1400);
  EXPECT_EQ(contents(q), model);
  EXPECT_EQ(contents(q), "tail");

  q.consume(4);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_TRUE(views(q).empty());
}

// Byte-at-a-time and odd-sized consumption against a model string, over
// many small and large packets and runs longer than one buffer.
TEST(OutQueue, ConsumeInOddStepsMatchesAModel) {
  OutQueue q;
  std::string model;
  std::vector<MessagePtr> msgs;
  for (int i = 0; i < 40; ++i) {
    const std::string payload(static_cast<size_t>(i * 97 % 3000), static_cast<char>('a' + i % 26));
    msgs.push_back(message("t/" + std::to_string(i), payload));
    q.append_publish(msgs.back(), static_cast<uint8_t>(i % 3), static_cast<uint16_t>(i), i % 2 == 0,
                     false);
    q.append(std::string(static_cast<size_t>(i * 311 % 5000), 'r'));
  }
  model = contents(q);
  ASSERT_EQ(model.size(), q.bytes());
  size_t step = 1;
  while (!q.empty()) {
    const size_t n = std::min(step, q.bytes());
    q.consume(n);
    model.erase(0, n);
    ASSERT_EQ(q.bytes(), model.size());
    // Compared without printing the (long) strings on a failure.
    const std::string now = contents(q);
    ASSERT_TRUE(now == model)
        << "after consuming " << n << ", " << model.size()
        << " bytes left; first difference at byte "
        << std::mismatch(now.begin(), now.end(), model.begin(), model.end()).first - now.begin();
    step = step * 7 % 4093 + 1;
  }
  EXPECT_TRUE(model.empty());
}

TEST(OutQueue, RunsLongerThanOneBufferKeepTheirBytes) {
  OutQueue q;
  std::string model;
  for (int i = 0; i < 3000; ++i) {
    std::string s(64, static_cast<char>('A' + i % 26));
    q.append(s);
    model += s;
  }
  EXPECT_EQ(q.bytes(), model.size());
  EXPECT_EQ(contents(q), model);
  EXPECT_GT(views(q).size(), 1u);  // about 192 KiB: more than one run
}

TEST(OutQueue, ADrainedQueueIsReusable) {
  OutQueue q;
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    auto big = message("big", std::string(1024 + static_cast<size_t>(round), 'B'));
    auto small = message("s", "r" + std::to_string(round));
    q.append("x");
    q.append_publish(big, 1, 1, false, false);
    q.append_publish(small, 0, 0, false, false);
    const std::string wire = contents(q);
    ASSERT_EQ(wire.size(), q.bytes());
    EXPECT_EQ(wire[0], 'x');
    mqtt::Frame f;
    mqtt::Publish p = decode311(std::string_view(wire).substr(1, wire.size() - 1 - 7), f);
    EXPECT_EQ(p.payload.size(), 1024u + static_cast<size_t>(round));
    EXPECT_EQ(wire.substr(wire.size() - 7),
              bytes({0x30, 5, 0, 1}) + "s" + "r" + std::to_string(round));
    // Drain in two writes: one mid-payload.
    q.consume(50);
    q.consume(q.bytes());
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.bytes(), 0u);
    EXPECT_TRUE(views(q).empty());
  }
  q.append("again");
  EXPECT_EQ(contents(q), "again");
}

}  // namespace
