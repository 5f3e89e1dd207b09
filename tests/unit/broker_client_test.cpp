// The per-connection protocol state machine and session/QoS state, driven
// through bytes exactly as the network layer drives it, on a one-shard broker.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"
#include "broker_fixture.hpp"
#include "mqtt/codec.hpp"

namespace {

using broker::Client;
using broker_test::only;
using mqtt::PacketType;

// A decoded packet the server sent.
struct Sent {
  PacketType type;
  uint8_t flags = 0;
  mqtt::Publish pub;  // for PUBLISH (views into `bytes`)
  uint16_t packet_id = 0;
  std::vector<uint8_t> codes;  // SUBACK return codes / CONNACK (present, code)
  std::shared_ptr<std::string> bytes;
  std::string topic() const { return std::string(pub.topic); }
  std::string payload() const { return std::string(pub.payload); }
};

class BrokerTest : public broker_test::BrokerFixture {
 protected:
  // Connects and returns the client; checks CONNACK when `expect_code` >= 0.
  Client& connect(std::string id, bool clean = true, std::optional<mqtt::Will> will = {},
                  uint8_t level = mqtt::kLevel311) {
    Client& c = open();
    mqtt::Connect m;
    m.protocol_name = level == mqtt::kLevel31 ? "MQIsdp" : "MQTT";
    m.protocol_level = level;
    m.clean_session = clean;
    m.keep_alive = 60;
    m.client_id = id;
    m.will = will;
    std::string b;
    mqtt::encode_connect(b, m.protocol_level, m);
    feed(c, b);
    return c;
  }

  // Hands bytes to the client, which must use them all.
  void feed(Client& c, std::string_view bytes) {
    EXPECT_EQ(BrokerFixture::feed(c, bytes), bytes.size());
  }

  // Drops a connection as the network layer does on EOF.
  void drop(Client& c, bool graceful = false) {
    if (graceful) {
      std::string b;
      mqtt::encode_disconnect(b, mqtt::kLevel311);
      feed(c, b);
    } else {
      c.close("test: connection lost");
    }
    forget(c);
  }

  // Everything the server wrote to `c` since the last call, decoded.
  std::vector<Sent> sent(Client& c) {
    std::vector<Sent> out;
    auto keep = std::make_shared<std::string>(written(c));
    std::string_view rest = *keep;
    while (!rest.empty()) {
      mqtt::Frame f;
      auto r = mqtt::read_frame(rest, 1 << 28, f);
      EXPECT_TRUE(r.ok()) << r.reason;
      if (!r.ok()) break;
      Sent s{f.type, f.flags, {}, 0, {}, keep};
      if (f.type == PacketType::Publish) {
        // Server-to-client PUBLISH decodes with the same rules.
        EXPECT_TRUE(mqtt::decode_publish(f, mqtt::kLevel311, s.pub).ok());
        s.packet_id = s.pub.packet_id;
      } else if (f.type == PacketType::Connack || f.type == PacketType::Suback) {
        for (char ch : f.body) s.codes.push_back(static_cast<uint8_t>(ch));
        if (f.type == PacketType::Suback) {
          s.packet_id = static_cast<uint16_t>((s.codes[0] << 8) | s.codes[1]);
          s.codes.erase(s.codes.begin(), s.codes.begin() + 2);
        }
      } else if (f.body.size() == 2) {
        s.packet_id = static_cast<uint16_t>((static_cast<uint8_t>(f.body[0]) << 8) |
                                            static_cast<uint8_t>(f.body[1]));
      }
      out.push_back(std::move(s));
      rest.remove_prefix(f.size);
    }
    return out;
  }

  void subscribe(Client& c, std::string filter, uint8_t qos, uint16_t pid = 1) {
    mqtt::Subscribe s;
    s.packet_id = pid;
    mqtt::TopicRequest t;
    t.filter = filter;
    t.qos = qos;
    s.topics.push_back(t);
    std::string b;
    mqtt::encode_subscribe(b, mqtt::kLevel311, s);
    feed(c, b);
  }

  void publish(Client& c, std::string topic, std::string payload, uint8_t qos = 0, uint16_t pid = 0,
               bool retain = false, bool dup = false) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = payload;
    p.qos = qos;
    p.packet_id = pid;
    p.retain = retain;
    p.dup = dup;
    std::string b;
    mqtt::encode_publish(b, mqtt::kLevel311, p);
    feed(c, b);
  }

  void ack(Client& c, PacketType type, uint16_t pid) {
    std::string b;
    mqtt::encode_ack(b, mqtt::kLevel311, type, pid);
    feed(c, b);
  }
};

TEST_F(BrokerTest, ConnectIsAcceptedWithoutSessionPresent) {
  Client& c = connect("dev1");
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::Connack);
  EXPECT_EQ(out[0].codes, (std::vector<uint8_t>{0, 0}));
}

// [MQTT-3.1.3-8]: a zero-length id with clean session 0 is refused with 0x02.
TEST_F(BrokerTest, EmptyClientIdNeedsCleanSession) {
  Client& ok = connect("", true);
  EXPECT_EQ(sent(ok)[0].codes, (std::vector<uint8_t>{0, 0}));
  EXPECT_FALSE(ok.client_id().empty());  // assigned by the server [MQTT-3.1.3-6]
  Client& refused = connect("", false);
  EXPECT_EQ(sent(refused)[0].codes, (std::vector<uint8_t>{0, 2}));
  EXPECT_TRUE(refused.closing());
}

// [MQTT-3.8.4-6]: delivered at the minimum of published and granted QoS.
TEST_F(BrokerTest, DeliveredQosIsTheMinimumOfPublishedAndGranted) {
  Client& sub = connect("sub");
  subscribe(sub, "t/#", 1);
  Client& pub = connect("pub");
  sent(sub);
  publish(pub, "t/a", "q2", 2, 7);
  publish(pub, "t/b", "q0", 0);
  auto out = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].pub.qos, 1);
  EXPECT_NE(out[0].packet_id, 0);
  EXPECT_EQ(out[1].pub.qos, 0);
}

TEST_F(BrokerTest, Qos1FlowHonoursTheInflightWindowAndQueuesInOrder) {
  broker::Config cfg;
  cfg.max_inflight = 2;
  make_broker(cfg);
  Client& sub = connect("sub");
  subscribe(sub, "t", 1);
  Client& pub = connect("pub");
  sent(sub);
  for (int i = 0; i < 5; ++i) publish(pub, "t", "m" + std::to_string(i), 1, uint16_t(i + 1));
  auto puback = only(sent(pub), PacketType::Puback);
  EXPECT_EQ(puback.size(), 6u - 1u);  // one PUBACK per QoS 1 PUBLISH
  auto first = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].payload(), "m0");
  EXPECT_EQ(first[1].payload(), "m1");
  ack(sub, PacketType::Puback, first[0].packet_id);
  auto next = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].payload(), "m2");
}

// [MQTT-4.3.3-2]: a QoS 2 PUBLISH resent before PUBREL is not delivered twice.
TEST_F(BrokerTest, Qos2InboundIsExactlyOnce) {
  Client& sub = connect("sub");
  subscribe(sub, "t", 2);
  Client& pub = connect("pub");
  sent(sub);
  publish(pub, "t", "once", 2, 9);
  publish(pub, "t", "once", 2, 9, false, /*dup=*/true);
  auto recs = only(sent(pub), PacketType::Pubrec);
  EXPECT_EQ(recs.size(), 2u);
  ack(pub, PacketType::Pubrel, 9);
  auto comps = only(sent(pub), PacketType::Pubcomp);
  ASSERT_EQ(comps.size(), 1u);
  EXPECT_EQ(comps[0].packet_id, 9);
  EXPECT_EQ(only(sent(sub), PacketType::Publish).size(), 1u);
  // After PUBREL the id is free again: a new message with id 9 is delivered.
  publish(pub, "t", "again", 2, 9);
  EXPECT_EQ(only(sent(sub), PacketType::Publish).size(), 1u);
}

TEST_F(BrokerTest, Qos2OutboundFlow) {
  Client& sub = connect("sub");
  subscribe(sub, "t", 2);
  Client& pub = connect("pub");
  sent(sub);
  publish(pub, "t", "x", 2, 1);
  auto p = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(p.size(), 1u);
  ack(sub, PacketType::Pubrec, p[0].packet_id);
  auto rel = only(sent(sub), PacketType::Pubrel);
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].packet_id, p[0].packet_id);
  ack(sub, PacketType::Pubcomp, p[0].packet_id);
  auto s = broker_->find_session("sub");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->inflight.empty());
}

TEST_F(BrokerTest, PersistentSessionKeepsSubscriptionsAndQueuesWhileOffline) {
  Client& sub = connect("sub", false);
  subscribe(sub, "t", 1);
  drop(sub);
  Client& pub = connect("pub");
  publish(pub, "t", "a", 1, 1);
  publish(pub, "t", "b", 2, 2);
  publish(pub, "t", "zero", 0);  // QoS 0 is not kept for offline sessions
  Client& back = connect("sub", false);
  auto out = sent(back);
  ASSERT_GE(out.size(), 3u);
  EXPECT_EQ(out[0].type, PacketType::Connack);
  EXPECT_EQ(out[0].codes, (std::vector<uint8_t>{1, 0}));  // session present
  auto pubs = only(out, PacketType::Publish);
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_EQ(pubs[0].payload(), "a");
  EXPECT_EQ(pubs[1].payload(), "b");
}

// [MQTT-4.4.0-1]: unacknowledged messages are resent with DUP on reconnect.
TEST_F(BrokerTest, UnacknowledgedMessagesAreResentWithDup) {
  Client& sub = connect("sub", false);
  subscribe(sub, "t", 1);
  Client& pub = connect("pub");
  sent(sub);
  publish(pub, "t", "m", 1, 1);
  auto first = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_FALSE(first[0].pub.dup);
  drop(sub);
  Client& back = connect("sub", false);
  auto again = only(sent(back), PacketType::Publish);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].pub.dup);
  EXPECT_EQ(again[0].packet_id, first[0].packet_id);
}

TEST_F(BrokerTest, OfflineQueueIsBoundedDroppingTheOldest) {
  broker::Config cfg;
  cfg.max_queued = 2;
  make_broker(cfg);
  Client& sub = connect("sub", false);
  subscribe(sub, "t", 1);
  drop(sub);
  Client& pub = connect("pub");
  for (int i = 0; i < 5; ++i) publish(pub, "t", std::to_string(i), 1, uint16_t(i + 1));
  EXPECT_EQ(broker_->stats().dropped_queued.load(), 3u);
  Client& back = connect("sub", false);
  auto pubs = only(sent(back), PacketType::Publish);
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_EQ(pubs[0].payload(), "3");
  EXPECT_EQ(pubs[1].payload(), "4");
}

// [MQTT-3.1.2-6]: clean session 1 discards the previous session.
TEST_F(BrokerTest, CleanSessionDiscardsPreviousState) {
  Client& sub = connect("sub", false);
  subscribe(sub, "t", 1);
  drop(sub);
  Client& back = connect("sub", true);
  EXPECT_EQ(sent(back)[0].codes, (std::vector<uint8_t>{0, 0}));
  Client& pub = connect("pub");
  publish(pub, "t", "x", 1, 1);
  EXPECT_TRUE(only(sent(back), PacketType::Publish).empty());
  EXPECT_EQ(broker_->index().subscription_count(), 0u);
}

TEST_F(BrokerTest, TakeoverClosesTheOldConnectionAndPublishesItsWill) {
  Client& watcher = connect("watcher");
  subscribe(watcher, "will/#", 0);
  sent(watcher);
  Client& first = connect("dev", false, mqtt::Will{"will/dev", "gone", 0, false});
  Client& second = connect("dev", false);
  EXPECT_TRUE(first.closing());
  EXPECT_EQ(sent(second)[0].codes, (std::vector<uint8_t>{1, 0}));
  auto wills = only(sent(watcher), PacketType::Publish);
  ASSERT_EQ(wills.size(), 1u);
  EXPECT_EQ(wills[0].payload(), "gone");
}

// [MQTT-3.1.2-8] and [MQTT-3.14.4-3]: a will goes out on a lost connection, not after DISCONNECT.
TEST_F(BrokerTest, WillOnlyWithoutDisconnect) {
  Client& watcher = connect("watcher");
  subscribe(watcher, "will/#", 1);
  sent(watcher);
  Client& a = connect("a", true, mqtt::Will{"will/a", "a-died", 1, false});
  Client& b = connect("b", true, mqtt::Will{"will/b", "b-died", 1, false});
  drop(a);
  drop(b, /*graceful=*/true);
  auto wills = only(sent(watcher), PacketType::Publish);
  ASSERT_EQ(wills.size(), 1u);
  EXPECT_EQ(wills[0].payload(), "a-died");
  EXPECT_EQ(wills[0].pub.qos, 1);
}

// [MQTT-3.3.1-5..11]
TEST_F(BrokerTest, RetainedMessages) {
  Client& pub = connect("pub");
  publish(pub, "r/1", "one", 1, 1, /*retain=*/true);
  publish(pub, "r/1", "newer", 0, 0, true);
  publish(pub, "r/2", "two", 0, 0, true);
  publish(pub, "r/2", "", 0, 0, true);  // clears r/2
  Client& sub = connect("sub");
  subscribe(sub, "r/+", 1);
  auto pubs = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].payload(), "newer");
  EXPECT_TRUE(pubs[0].pub.retain);  // [MQTT-3.3.1-8]
  // Forwarded live: retain flag cleared [MQTT-3.3.1-9].
  publish(pub, "r/1", "live", 0, 0, true);
  auto live = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_FALSE(live[0].pub.retain);
}

TEST_F(BrokerTest, OverlappingSubscriptionsGiveOneMessageAtTheHighestQos) {
  Client& sub = connect("sub");
  subscribe(sub, "a/#", 0, 1);
  subscribe(sub, "a/+", 2, 2);
  subscribe(sub, "a/b", 1, 3);
  Client& pub = connect("pub");
  sent(sub);
  publish(pub, "a/b", "x", 2, 1);
  auto pubs = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].pub.qos, 2);
}

TEST_F(BrokerTest, NonBrokerModeKeepsDevicesApart) {
  broker::Config cfg;
  cfg.non_broker = true;
  make_broker(cfg);
  Client& sub = connect("sub");
  subscribe(sub, "#", 0);
  Client& pub = connect("pub");
  sent(sub);
  publish(pub, "t", "x");
  EXPECT_TRUE(only(sent(sub), PacketType::Publish).empty());
  // What the API sends still reaches the device.
  auto msg = std::make_shared<const broker::Message>("t", "from-api", 0, false, "", 0);
  EXPECT_EQ(broker_->send_to_client("sub", msg, 0), broker::Broker::SendResult::Sent);
  settle();
  auto pubs = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].payload(), "from-api");
}

TEST_F(BrokerTest, ProtocolViolationsCloseTheConnection) {
  Client& c = open();
  publish(c, "t", "before connect");  // [MQTT-3.1.0-1]
  EXPECT_TRUE(c.closing());
  Client& d = connect("d");
  sent(d);
  std::string again;
  mqtt::Connect m;
  m.protocol_name = "MQTT";
  m.protocol_level = 4;
  m.client_id = "d";
  mqtt::encode_connect(again, m.protocol_level, m);
  d.on_bytes(again);  // [MQTT-3.1.0-2]
  EXPECT_TRUE(d.closing());
}

}  // namespace
