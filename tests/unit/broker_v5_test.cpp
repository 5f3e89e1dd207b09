// MQTT 5.0 behaviour of the per-connection state machine (src/broker/client.cpp)
// and of the routing it drives (src/broker/shard.cpp, topic_index.cpp), driven
// through bytes exactly as the network layer drives it, on a one-shard broker
// (the approach of broker_client_test.cpp). Client packets are written with the
// client-side v5 encoders; what the server sends is framed with
// read_frame(..., mqtt::kLevel5) and decoded with the client-side v5 decoders.
//
// Spec references are to the OASIS MQTT Version 5.0 standard (7 March 2019):
// [MQTT-x.y.z-n] conformance statements, or the section number where the
// statement has no identifier.
#include <gtest/gtest.h>

#include <spdlog/spdlog.h>
#include <unistd.h>
#include "result_helpers.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.hpp"
#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/message.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"
#include "broker_fixture.hpp"
#include "mqtt/codec.hpp"

namespace {

using broker::Client;
using broker_test::only;
using mqtt::PacketType;
using mqtt::PropertyId;
using mqtt::ReasonCode;

// A v5 PUBLISH of `p` with `props` as its property block.
void encode_publish_props(std::string& out, mqtt::Publish p, const mqtt::Properties& props) {
  p.props.properties = props;
  mqtt::encode_publish(out, mqtt::kLevel5, p);
}

constexpr int64_t kT0 = 1'000'000;  // the shard's monotonic clock at the start of each test

// A packet the server sent, decoded with the rules of the connection's level.
// The decoded views point into `bytes`, which every copy shares.
struct Pkt {
  PacketType type = PacketType::Connect;
  uint8_t flags = 0;
  std::shared_ptr<const std::string> bytes;
  std::string_view raw;  // the whole frame
  mqtt::Connack connack;
  mqtt::Publish pub;
  mqtt::Ack ack;                // PUBACK, PUBREC, PUBREL, PUBCOMP
  mqtt::Suback suback;          // SUBACK, UNSUBACK
  mqtt::Disconnect disconnect;  // DISCONNECT
  std::string_view body;        // 3.1.1 CONNACK / SUBACK / UNSUBACK body

  std::string topic() const { return std::string(pub.topic); }
  std::string payload() const { return std::string(pub.payload); }
  std::vector<uint32_t> sub_ids() const {
    std::vector<uint32_t> ids;
    for (const mqtt::Property& p : pub.props.properties) {
      if (p.id == PropertyId::SubscriptionIdentifier) ids.push_back(p.number);
    }
    return ids;
  }
};

std::vector<std::string> payloads(const std::vector<Pkt>& v) {
  std::vector<std::string> out;
  for (const auto& p : v)
    if (p.type == PacketType::Publish) out.push_back(p.payload());
  return out;
}

// Reason codes as numbers, so that failures print readably.
int rc(ReasonCode c) {
  return static_cast<int>(c);
}
std::vector<int> rcs(const std::vector<ReasonCode>& v) {
  std::vector<int> out;
  for (ReasonCode c : v) out.push_back(rc(c));
  return out;
}

std::string varint(uint32_t v) {
  uint8_t b[4];
  const size_t n = mqtt::encode_varint(v, b);
  return std::string(reinterpret_cast<const char*>(b), n);
}

// A level-5 CONNECT for client "x" (clean start, keep-alive 60) whose CONNECT
// property block is `props` verbatim, for packets the encoder cannot produce.
std::string raw_connect5(std::string_view props) {
  std::string body("\0\4MQTT\5\2\0\x3c", 10);
  body += varint(static_cast<uint32_t>(props.size()));
  body += props;
  body += std::string("\0\1x", 3);
  std::string frame(1, '\x10');
  frame += varint(static_cast<uint32_t>(body.size()));
  frame += body;
  return frame;
}

// A PUBLISH property block built with a PropertyWriter.
std::string props_of(const std::function<void(mqtt::PropertyWriter&)>& fill) {
  mqtt::PropertyWriter w;
  fill(w);
  EXPECT_TRUE(w.ok());
  return std::string(w.bytes());
}

class BrokerV5Test : public broker_test::BrokerFixture {
 protected:
  BrokerV5Test() : BrokerFixture(spdlog::level::off) {}

  void make_broker(broker::Config cfg) override {
    BrokerFixture::make_broker(cfg);
    shard().set_now_ms(kT0);
  }

  // A v5 CONNECT with the encoder's defaults (no properties), keep-alive 60.
  static mqtt::Connect connect_packet(std::string_view id, bool clean_start = true,
                                      uint32_t session_expiry = 0) {
    mqtt::Connect c;
    c.protocol_name = "MQTT";
    c.protocol_level = mqtt::kLevel5;
    c.clean_session = clean_start;
    c.keep_alive = 60;
    c.client_id = id;
    c.props.session_expiry_interval = session_expiry;
    return c;
  }

  Client& connect(const mqtt::Connect& m) {
    Client& c = open();
    std::string b;
    mqtt::encode_connect(b, mqtt::kLevel5, m);
    EXPECT_FALSE(b.empty());
    feed(c, b);
    return c;
  }
  Client& connect5(std::string_view id, bool clean_start = true, uint32_t session_expiry = 0) {
    return connect(connect_packet(id, clean_start, session_expiry));
  }
  // Connects and checks the CONNACK, which it consumes.
  Client& connected5(std::string_view id, bool clean_start = true, uint32_t session_expiry = 0) {
    Client& c = connect5(id, clean_start, session_expiry);
    expect_connack(c, ReasonCode::Success);
    return c;
  }
  Client& connected5(const mqtt::Connect& m) {
    Client& c = connect(m);
    expect_connack(c, ReasonCode::Success);
    return c;
  }
  void expect_connack(Client& c, ReasonCode code) {
    auto out = sent(c);
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out[0].type, PacketType::Connack);
    EXPECT_EQ(rc(out[0].connack.reason_code), rc(code));
  }

  Client& connect311(std::string_view id, bool clean = true, uint16_t keep_alive = 60) {
    Client& c = open();
    mqtt::Connect m;
    m.protocol_name = "MQTT";
    m.protocol_level = mqtt::kLevel311;
    m.clean_session = clean;
    m.keep_alive = keep_alive;
    m.client_id = id;
    std::string b;
    mqtt::encode_connect(b, m.protocol_level, m);
    feed(c, b);
    auto out = sent(c);
    EXPECT_FALSE(out.empty());
    if (!out.empty()) {
      EXPECT_EQ(out[0].type, PacketType::Connack);
      EXPECT_EQ(out[0].body, std::string_view("\0\0", 2));
    }
    return c;
  }

  // The connection is lost (no DISCONNECT): the network layer closes it.
  void drop(Client& c) {
    if (!c.closing()) c.close("test: connection lost");
    forget(c);
  }
  // Advances the shard's clock to kT0 + `ms` and runs the session timers.
  void at(int64_t ms) {
    shard().set_now_ms(kT0 + ms);
    shard().expire_sessions();
    settle();
  }

  // Everything the server wrote to `c` since the last call, decoded.
  std::vector<Pkt> sent(Client& c) {
    const bool v5 = c.protocol_level() == mqtt::kLevel5;
    auto keep = std::make_shared<const std::string>(written(c));
    std::vector<Pkt> out;
    std::string_view rest = *keep;
    while (!rest.empty()) {
      mqtt::Frame f;
      auto r = mqtt::read_frame(rest, 1u << 28, f, v5 ? mqtt::kLevel5 : mqtt::kLevel311);
      EXPECT_TRUE(r.ok()) << r.reason;
      if (!r.ok()) break;
      Pkt p;
      p.type = f.type;
      p.flags = f.flags;
      p.bytes = keep;
      p.raw = rest.substr(0, f.size);
      p.body = f.body;
      mqtt::DecodeResult d;
      switch (f.type) {
        case PacketType::Connack:
          if (v5) d = mqtt::decode_connack(f, mqtt::kLevel5, p.connack);
          break;
        case PacketType::Publish:
          if (v5) {
            d = mqtt::decode_publish(f, mqtt::kLevel5, p.pub);
          } else {
            d = mqtt::decode_publish(f, mqtt::kLevel311, p.pub);
          }
          break;
        case PacketType::Puback:
        case PacketType::Pubrec:
        case PacketType::Pubrel:
        case PacketType::Pubcomp:
          if (v5) {
            d = mqtt::decode_ack(f, mqtt::kLevel5, p.ack);
          } else {
            mqtt::Ack a;
            d = mqtt::decode_ack(f, mqtt::kLevel311, a);
            p.ack.type = a.type;
            p.ack.packet_id = a.packet_id;
          }
          break;
        case PacketType::Suback:
          if (v5) d = mqtt::decode_suback(f, mqtt::kLevel5, p.suback);
          break;
        case PacketType::Unsuback:
          if (v5) d = mqtt::decode_unsuback(f, mqtt::kLevel5, p.suback);
          break;
        case PacketType::Disconnect:
          if (v5) {
            d = mqtt::decode_disconnect(f, mqtt::kLevel5, p.disconnect);
          } else {
            ADD_FAILURE() << "DISCONNECT sent to an MQTT 3.1.1 client";
          }
          break;
        default:
          break;
      }
      EXPECT_TRUE(d.ok()) << "decoding packet type " << static_cast<int>(f.type) << ": "
                          << d.reason;
      out.push_back(std::move(p));
      rest.remove_prefix(f.size);
    }
    return out;
  }

  // The one DISCONNECT the server sent last, or an empty optional.
  std::optional<int> disconnect_code(Client& c) {
    auto d = only(sent(c), PacketType::Disconnect);
    if (d.empty()) return std::nullopt;
    EXPECT_EQ(d.size(), 1u);
    // [MQTT-3.14.2-2]: the server never sends a Session Expiry Interval.
    EXPECT_FALSE(d.back().disconnect.session_expiry_interval.has_value());
    return rc(d.back().disconnect.reason_code);
  }

  void subscribe5(Client& c, const std::vector<mqtt::TopicRequest>& topics, uint16_t pid = 1,
                  uint32_t sub_id = 0) {
    mqtt::Subscribe s;
    s.packet_id = pid;
    s.subscription_identifier = sub_id;
    s.topics = topics;
    std::string b;
    mqtt::encode_subscribe(b, mqtt::kLevel5, s);
    ASSERT_FALSE(b.empty());
    feed(c, b);
  }
  static mqtt::TopicRequest req(std::string_view filter, uint8_t qos, bool no_local = false,
                                bool retain_as_published = false,
                                mqtt::RetainHandling rh = mqtt::RetainHandling::SendOnSubscribe) {
    mqtt::TopicRequest t;
    t.filter = filter;
    t.qos = qos;
    t.no_local = no_local;
    t.retain_as_published = retain_as_published;
    t.retain_handling = rh;
    return t;
  }
  // Subscribes and checks the SUBACK, consuming what the server sent.
  void subscribed5(Client& c, std::string_view filter, uint8_t qos, uint32_t sub_id = 0) {
    subscribe5(c, {req(filter, qos)}, 1, sub_id);
    auto acks = only(sent(c), PacketType::Suback);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(rcs(acks[0].suback.reason_codes), std::vector<int>{qos});
  }

  void unsubscribe5(Client& c, const std::vector<std::string_view>& filters, uint16_t pid = 1) {
    mqtt::Unsubscribe u;
    u.packet_id = pid;
    u.filters = filters;
    std::string b;
    mqtt::encode_unsubscribe(b, mqtt::kLevel5, u);
    ASSERT_FALSE(b.empty());
    feed(c, b);
  }

  // A v5 PUBLISH with `props` as its property block; returns the bytes used.
  size_t publish5(Client& c, std::string_view topic, std::string_view payload, uint8_t qos = 0,
                  uint16_t pid = 0, std::string_view props = {}, bool retain = false) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = payload;
    p.qos = qos;
    p.packet_id = pid;
    p.retain = retain;
    std::string b;
    encode_publish_props(b, p, mqtt::Properties(props));
    EXPECT_FALSE(b.empty());
    return feed(c, b);
  }

  void ack5(Client& c, PacketType type, uint16_t pid, ReasonCode code = ReasonCode::Success) {
    std::string b;
    mqtt::encode_ack(b, mqtt::kLevel5, type, pid, code);
    feed(c, b);
  }

  void disconnect5(Client& c, ReasonCode code = ReasonCode::NormalDisconnection,
                   std::optional<uint32_t> session_expiry = std::nullopt) {
    mqtt::Disconnect d;
    d.reason_code = code;
    d.session_expiry_interval = session_expiry;
    std::string b;
    mqtt::encode_disconnect(b, mqtt::kLevel5, d);
    feed(c, b);
  }

  void subscribe311(Client& c, std::string_view filter, uint8_t qos) {
    mqtt::Subscribe s;
    s.packet_id = 1;
    mqtt::TopicRequest t;
    t.filter = filter;
    t.qos = qos;
    s.topics.push_back(t);
    std::string b;
    mqtt::encode_subscribe(b, mqtt::kLevel311, s);
    feed(c, b);
    sent(c);
  }

  void publish311(Client& c, std::string_view topic, std::string_view payload, uint8_t qos = 0,
                  uint16_t pid = 0) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = payload;
    p.qos = qos;
    p.packet_id = pid;
    std::string b;
    mqtt::encode_publish(b, mqtt::kLevel311, p);
    feed(c, b);
  }
};

// ---------------------------------------------------------------- CONNACK

using BrokerV5Connect = BrokerV5Test;

// 3.2.2.3.3 Receive Maximum, 3.2.2.3.6 Maximum Packet Size, 3.2.2.3.8 Topic
// Alias Maximum: the server announces the limits it enforces.
TEST_F(BrokerV5Connect, ConnackAnnouncesTheServerLimits) {
  broker::Config cfg;
  cfg.max_inflight = 7;
  cfg.topic_alias_max = 5;
  cfg.max_packet_size = 4096;
  make_broker(cfg);
  Client& c = connect5("c");
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].type, PacketType::Connack);
  const mqtt::Connack& ack = out[0].connack;
  EXPECT_EQ(rc(ack.reason_code), rc(ReasonCode::Success));
  EXPECT_FALSE(ack.session_present);
  EXPECT_EQ(ack.props.receive_maximum, std::optional<uint16_t>(7));
  EXPECT_EQ(ack.props.topic_alias_maximum, std::optional<uint16_t>(5));
  EXPECT_EQ(ack.props.maximum_packet_size, std::optional<uint32_t>(4096));
  // The client chose its id and keep-alive: neither is sent back.
  EXPECT_FALSE(ack.props.assigned_client_identifier.has_value());
  EXPECT_FALSE(ack.props.server_keep_alive.has_value());
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.protocol_level(), mqtt::kLevel5);
}

// 3.2.2.3.6: without a configured limit (the protocol's own maximum) no
// Maximum Packet Size is announced, which means "no limit".
TEST_F(BrokerV5Connect, NoMaximumPacketSizeByDefault) {
  Client& c = connect5("c");
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].connack.props.maximum_packet_size.has_value());
  EXPECT_EQ(out[0].connack.props.receive_maximum,
            std::optional<uint16_t>(broker::Config{}.max_inflight));
}

// [MQTT-3.1.3-6], [MQTT-3.2.2-16]: a zero-length Client Identifier is given a
// unique one, returned as Assigned Client Identifier, whatever Clean Start is.
TEST_F(BrokerV5Connect, EmptyClientIdIsAssignedWithCleanStartOneAndZero) {
  Client& a = connect5("", /*clean_start=*/true);
  auto out_a = sent(a);
  ASSERT_EQ(out_a.size(), 1u);
  EXPECT_EQ(rc(out_a[0].connack.reason_code), rc(ReasonCode::Success));
  ASSERT_TRUE(out_a[0].connack.props.assigned_client_identifier.has_value());
  const std::string id_a(*out_a[0].connack.props.assigned_client_identifier);
  EXPECT_FALSE(id_a.empty());
  EXPECT_EQ(id_a, a.client_id());
  EXPECT_NE(broker_->find_session(id_a), nullptr);

  // Clean start 0 (3.1.1 refuses this with 0x02) and a session that outlives
  // the connection under the assigned id.
  Client& b = connect5("", /*clean_start=*/false, /*session_expiry=*/60);
  auto out_b = sent(b);
  ASSERT_EQ(out_b.size(), 1u);
  EXPECT_EQ(rc(out_b[0].connack.reason_code), rc(ReasonCode::Success));
  ASSERT_TRUE(out_b[0].connack.props.assigned_client_identifier.has_value());
  const std::string id_b(*out_b[0].connack.props.assigned_client_identifier);
  EXPECT_EQ(id_b, b.client_id());
  EXPECT_NE(id_a, id_b);
  drop(b);
  EXPECT_NE(broker_->find_session(id_b), nullptr);
}

// [MQTT-3.1.2-21], 3.2.2.3.14: a Server Keep Alive replaces the client's
// keep-alive when the server's maximum is lower (or the client asked for none).
TEST_F(BrokerV5Connect, ServerKeepAliveWhenTheMaximumOverrides) {
  broker::Config cfg;
  cfg.max_keep_alive = 30;
  make_broker(cfg);
  auto keep_alive_of = [&](uint16_t asked) -> std::optional<uint16_t> {
    const std::string id = "k" + std::to_string(asked);
    mqtt::Connect m = connect_packet(id);
    m.keep_alive = asked;
    Client& c = connect(m);
    auto out = sent(c);
    EXPECT_EQ(out.size(), 1u);
    if (out.empty()) return std::nullopt;
    EXPECT_EQ(rc(out[0].connack.reason_code), rc(ReasonCode::Success));
    return out[0].connack.props.server_keep_alive;
  };
  EXPECT_EQ(keep_alive_of(60), std::optional<uint16_t>(30));
  EXPECT_EQ(keep_alive_of(0), std::optional<uint16_t>(30));
  EXPECT_FALSE(keep_alive_of(20).has_value());
  EXPECT_FALSE(keep_alive_of(30).has_value());
}

// The Server Keep Alive is the one enforced: 1.5 times it without a packet
// closes the connection with 0x8D [MQTT-3.1.2-22].
TEST_F(BrokerV5Connect, ServerKeepAliveIsEnforced) {
  broker::Config cfg;
  cfg.max_keep_alive = 10;
  make_broker(cfg);
  Client& c = connected5("c");  // asks for 60
  c.tick(kT0 + 15'000);
  EXPECT_FALSE(c.closing());
  c.tick(kT0 + 15'001);
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::KeepAliveTimeout));
}

// 3.1.2.11.9 / 4.12: enhanced authentication is not offered, so a CONNECT
// with an Authentication Method gets CONNACK 0x8C and the connection closes.
TEST_F(BrokerV5Connect, AuthenticationMethodIsRefusedWith0x8C) {
  mqtt::Connect m = connect_packet("auth");
  m.props.authentication_method = "SCRAM-SHA-1";
  m.props.authentication_data = "client-first";
  Client& c = connect(m);
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].type, PacketType::Connack);
  EXPECT_EQ(rc(out[0].connack.reason_code), rc(ReasonCode::BadAuthenticationMethod));
  EXPECT_FALSE(out[0].connack.session_present);  // [MQTT-3.2.2-6]
  EXPECT_TRUE(c.closing());
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(broker_->find_session("auth"), nullptr);
}

// [MQTT-3.1.4-1], 3.2.2.2: a v5 CONNECT that is malformed is answered with
// CONNACK 0x81 before the connection closes.
TEST_F(BrokerV5Connect, MalformedConnectGetsConnack0x81) {
  // Topic Alias (0x23) is not allowed in CONNECT: Malformed (2.2.2.2).
  Client& c = open();
  feed(c, raw_connect5(std::string("\x23\x00\x01", 3)));
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].type, PacketType::Connack);
  EXPECT_EQ(rc(out[0].connack.reason_code), rc(ReasonCode::MalformedPacket));
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(broker_->find_session("x"), nullptr);
}

// 3.2.2.2: a v5 CONNECT with a protocol error gets CONNACK 0x82.
TEST_F(BrokerV5Connect, ProtocolErrorInConnectGetsConnack0x82) {
  // Receive Maximum 0 (3.1.2.11.3).
  Client& c = open();
  feed(c, raw_connect5(std::string("\x21\x00\x00", 3)));
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].type, PacketType::Connack);
  EXPECT_EQ(rc(out[0].connack.reason_code), rc(ReasonCode::ProtocolError));
  EXPECT_TRUE(c.closing());

  // Authentication Data without Authentication Method (3.1.2.11.10).
  mqtt::Connect m = connect_packet("d");
  m.props.authentication_data = "x";
  Client& d = connect(m);
  auto out_d = sent(d);
  ASSERT_EQ(out_d.size(), 1u);
  EXPECT_EQ(rc(out_d[0].connack.reason_code), rc(ReasonCode::ProtocolError));
  EXPECT_TRUE(d.closing());
}

// 3.1.3.2.3 / 3.2.2.2: a will payload that is not UTF-8 although its Payload
// Format Indicator says so is refused with CONNACK 0x99.
TEST_F(BrokerV5Connect, InvalidWillPayloadFormatGetsConnack0x99) {
  mqtt::Connect m = connect_packet("w");
  const std::string bad("\xc3\x28", 2);
  m.will = mqtt::Will{"will/w", bad, 0, false};
  m.will_props.payload_format_indicator = 1;
  Client& c = connect(m);
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(rc(out[0].connack.reason_code), rc(ReasonCode::PayloadFormatInvalid));
  EXPECT_TRUE(c.closing());
}

// ---------------------------------------------------------------- reason codes

using BrokerV5ReasonCode = BrokerV5Test;

// 3.4.2.1 / 3.5.2.1: a publish the ACL refuses is acknowledged with 0x87 Not
// authorized (QoS 1 and 2) and not delivered; SUBSCRIBE gets 0x87 per filter
// (3.9.3); a 3.1.1 client gets its plain acknowledgement.
TEST_F(BrokerV5ReasonCode, AclRefusalsAreNotAuthorized) {
  const std::string acl = ::testing::TempDir() + "broker_v5_acl." + std::to_string(::getpid());
  {
    std::ofstream f(acl, std::ios::binary);
    f << "topic readwrite ok/#\n";
  }
  auth::AuthOptions o;
  o.acl_file = acl;
  std::string error;
  auto policy = test_util::value_or_empty(auth::Policy::load(o), error);
  std::remove(acl.c_str());
  ASSERT_TRUE(policy) << error;
  broker_->set_auth_policy(policy);

  Client& sub = connected5("sub");
  subscribe5(sub, {req("ok/#", 1), req("secret/#", 1)});
  auto subacks = only(sent(sub), PacketType::Suback);
  ASSERT_EQ(subacks.size(), 1u);
  EXPECT_EQ(rcs(subacks[0].suback.reason_codes),
            (std::vector<int>{0x01, rc(ReasonCode::NotAuthorized)}));

  Client& pub = connected5("pub");
  publish5(pub, "secret/x", "no", 1, 1);
  publish5(pub, "secret/x", "no", 2, 2);
  publish5(pub, "ok/x", "yes", 1, 3);
  auto acks = sent(pub);
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0].type, PacketType::Puback);
  EXPECT_EQ(acks[0].ack.packet_id, 1);
  EXPECT_EQ(rc(acks[0].ack.reason_code), rc(ReasonCode::NotAuthorized));
  EXPECT_EQ(acks[1].type, PacketType::Pubrec);
  EXPECT_EQ(acks[1].ack.packet_id, 2);
  EXPECT_EQ(rc(acks[1].ack.reason_code), rc(ReasonCode::NotAuthorized));
  EXPECT_EQ(acks[2].type, PacketType::Puback);
  EXPECT_EQ(rc(acks[2].ack.reason_code), rc(ReasonCode::Success));
  EXPECT_FALSE(pub.closing());

  Client& old = connect311("old");
  publish311(old, "secret/y", "no", 1, 4);
  auto old_acks = sent(old);
  ASSERT_EQ(old_acks.size(), 1u);
  EXPECT_EQ(old_acks[0].type, PacketType::Puback);
  EXPECT_EQ(old_acks[0].raw.size(), 4u);  // 3.1.1 has no reason code

  EXPECT_EQ(payloads(sent(sub)), std::vector<std::string>{"yes"});
}

// 3.3.2.3.2: a payload that is not UTF-8 although its Payload Format Indicator
// says so may be refused with 0x99: PUBACK/PUBREC for QoS 1/2, DISCONNECT for
// QoS 0. It is not delivered.
TEST_F(BrokerV5ReasonCode, PayloadFormatInvalidIs0x99) {
  Client& sub = connected5("sub");
  subscribed5(sub, "t", 2);
  Client& pub = connected5("pub");
  const std::string utf8 =
      props_of([](auto& w) { w.add_byte(PropertyId::PayloadFormatIndicator, 1); });
  const std::string bad("\xff\xfe", 2);
  publish5(pub, "t", bad, 1, 1, utf8);
  publish5(pub, "t", bad, 2, 2, utf8);
  auto acks = sent(pub);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].type, PacketType::Puback);
  EXPECT_EQ(rc(acks[0].ack.reason_code), rc(ReasonCode::PayloadFormatInvalid));
  EXPECT_EQ(acks[1].type, PacketType::Pubrec);
  EXPECT_EQ(rc(acks[1].ack.reason_code), rc(ReasonCode::PayloadFormatInvalid));
  // A refused QoS 2 PUBLISH does not hold a packet id: PUBREL finds nothing.
  ack5(pub, PacketType::Pubrel, 2);
  auto comp = only(sent(pub), PacketType::Pubcomp);
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(rc(comp[0].ack.reason_code), rc(ReasonCode::PacketIdentifierNotFound));
  // Valid UTF-8 with the indicator passes.
  publish5(pub, "t", "h\xc3\xa9llo", 1, 3, utf8);
  EXPECT_EQ(rc(only(sent(pub), PacketType::Puback).at(0).ack.reason_code), rc(ReasonCode::Success));
  EXPECT_EQ(payloads(sent(sub)), std::vector<std::string>{"h\xc3\xa9llo"});
  // QoS 0 has no acknowledgement: DISCONNECT 0x99.
  publish5(pub, "t", bad, 0, 0, utf8);
  EXPECT_TRUE(pub.closing());
  EXPECT_EQ(disconnect_code(pub), rc(ReasonCode::PayloadFormatInvalid));
  EXPECT_TRUE(only(sent(sub), PacketType::Publish).empty());
}

// 3.7.2.1 (PUBCOMP reason codes): PUBREL for a packet id the server does not
// hold gets PUBCOMP 0x92 Packet Identifier not found; a known one 0x00.
TEST_F(BrokerV5ReasonCode, PubrelForAnUnknownIdGetsPubcomp0x92) {
  Client& c = connected5("c");
  ack5(c, PacketType::Pubrel, 77);
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::Pubcomp);
  EXPECT_EQ(out[0].ack.packet_id, 77);
  EXPECT_EQ(rc(out[0].ack.reason_code), rc(ReasonCode::PacketIdentifierNotFound));
  EXPECT_FALSE(c.closing());

  publish5(c, "t", "x", 2, 5);
  EXPECT_EQ(only(sent(c), PacketType::Pubrec).size(), 1u);
  ack5(c, PacketType::Pubrel, 5);
  auto ok = sent(c);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].type, PacketType::Pubcomp);
  EXPECT_EQ(rc(ok[0].ack.reason_code), rc(ReasonCode::Success));
}

// 3.6.2.1 (PUBREL reason codes): PUBREC for a packet id the server never sent
// gets PUBREL 0x92; for one in flight, PUBREL 0x00.
TEST_F(BrokerV5ReasonCode, PubrecForAnUnknownIdGetsPubrel0x92) {
  Client& sub = connected5("sub");
  subscribed5(sub, "t", 2);
  ack5(sub, PacketType::Pubrec, 99);
  auto out = sent(sub);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::Pubrel);
  EXPECT_EQ(out[0].ack.packet_id, 99);
  EXPECT_EQ(rc(out[0].ack.reason_code), rc(ReasonCode::PacketIdentifierNotFound));

  Client& pub = connected5("pub");
  publish5(pub, "t", "x", 2, 1);
  auto p = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(p.size(), 1u);
  ack5(sub, PacketType::Pubrec, p[0].pub.packet_id);
  auto rel = only(sent(sub), PacketType::Pubrel);
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].ack.packet_id, p[0].pub.packet_id);
  EXPECT_EQ(rc(rel[0].ack.reason_code), rc(ReasonCode::Success));
}

// A PUBREC with a failure reason code ends that QoS 2 flow (4.3.3): no PUBREL,
// nothing left in flight.
TEST_F(BrokerV5ReasonCode, PubrecFailureEndsTheFlow) {
  Client& sub = connected5("sub");
  subscribed5(sub, "t", 2);
  Client& pub = connected5("pub");
  publish5(pub, "t", "x", 2, 1);
  auto p = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(p.size(), 1u);
  ack5(sub, PacketType::Pubrec, p[0].pub.packet_id, ReasonCode::UnspecifiedError);
  EXPECT_TRUE(sent(sub).empty());
  EXPECT_TRUE(broker_->find_session("sub")->inflight.empty());
}

// 3.9.3: SUBACK carries the granted QoS per filter, in order [MQTT-3.9.3-1].
TEST_F(BrokerV5ReasonCode, SubackGrantsTheRequestedQos) {
  Client& c = connected5("c");
  subscribe5(c, {req("a", 2), req("b", 0), req("c/+", 1)}, 42);
  auto acks = sent(c);
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0].type, PacketType::Suback);
  EXPECT_EQ(acks[0].suback.packet_id, 42);
  EXPECT_EQ(rcs(acks[0].suback.reason_codes), (std::vector<int>{0x02, 0x00, 0x01}));
}

// 3.11.3: UNSUBACK 0x00 for a removed subscription, 0x11 No subscription existed.
TEST_F(BrokerV5ReasonCode, UnsubackTellsWhetherTheSubscriptionExisted) {
  Client& c = connected5("c");
  subscribed5(c, "a", 1);
  unsubscribe5(c, {"a", "b"}, 7);
  auto acks = sent(c);
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0].type, PacketType::Unsuback);
  EXPECT_EQ(acks[0].suback.packet_id, 7);
  EXPECT_EQ(rcs(acks[0].suback.reason_codes),
            (std::vector<int>{0x00, rc(ReasonCode::NoSubscriptionExisted)}));
  unsubscribe5(c, {"a"}, 8);
  auto again = only(sent(c), PacketType::Unsuback);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(rcs(again[0].suback.reason_codes),
            std::vector<int>{rc(ReasonCode::NoSubscriptionExisted)});
  EXPECT_EQ(broker_->index().subscription_count(), 0u);
}

// [MQTT-3.3.4-7], 3.2.2.3.3: more unacknowledged QoS 2 PUBLISHes than our
// Receive Maximum is DISCONNECT 0x93. A resent PUBLISH with an id still open
// does not count twice, and PUBREL frees its slot.
TEST_F(BrokerV5ReasonCode, Qos2BeyondOurReceiveMaximumIsDisconnect0x93) {
  broker::Config cfg;
  cfg.max_inflight = 2;
  make_broker(cfg);
  Client& c = connect5("c");
  ASSERT_EQ(sent(c).at(0).connack.props.receive_maximum, std::optional<uint16_t>(2));
  publish5(c, "t", "1", 2, 1);
  publish5(c, "t", "2", 2, 2);
  publish5(c, "t", "1", 2, 1);  // the same id again: no new flow
  EXPECT_FALSE(c.closing());
  ack5(c, PacketType::Pubrel, 1);
  publish5(c, "t", "3", 2, 3);
  EXPECT_FALSE(c.closing());
  EXPECT_EQ(only(sent(c), PacketType::Pubrec).size(), 4u);
  publish5(c, "t", "4", 2, 4);  // ids 2 and 3 are still open
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::ReceiveMaximumExceeded));
  // QoS 1 never counts (acknowledged at once).
  Client& d = connected5("d");
  for (uint16_t i = 1; i <= 5; ++i) publish5(d, "t", "q1", 1, i);
  EXPECT_FALSE(d.closing());
  EXPECT_EQ(only(sent(d), PacketType::Puback).size(), 5u);
}

// ---------------------------------------------------------------- server DISCONNECT

using BrokerV5Disconnect = BrokerV5Test;

// [MQTT-3.1.2-22], 3.14.2.1: keep-alive timeout closes with DISCONNECT 0x8D; a
// 3.1.1 client is just closed (3.1.1 has no server DISCONNECT).
TEST_F(BrokerV5Disconnect, KeepAliveTimeoutIs0x8D) {
  mqtt::Connect m = connect_packet("c");
  m.keep_alive = 10;
  Client& c = connected5(m);
  Client& old = connect311("old", true, 10);
  c.tick(kT0 + 15'000);
  old.tick(kT0 + 15'000);
  EXPECT_FALSE(c.closing());
  EXPECT_FALSE(old.closing());
  c.tick(kT0 + 15'001);
  old.tick(kT0 + 15'001);
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::KeepAliveTimeout));
  EXPECT_TRUE(old.closing());
  EXPECT_TRUE(sent(old).empty());  // no DISCONNECT to 3.1.1
}

// A packet received resets the keep-alive timer.
TEST_F(BrokerV5Disconnect, TrafficKeepsTheConnectionAlive) {
  mqtt::Connect m = connect_packet("c");
  m.keep_alive = 10;
  Client& c = connected5(m);
  shard().set_now_ms(kT0 + 10'000);
  std::string ping;
  mqtt::encode_pingreq(ping);
  feed(c, ping);
  EXPECT_EQ(only(sent(c), PacketType::Pingresp).size(), 1u);
  c.tick(kT0 + 25'000);
  EXPECT_FALSE(c.closing());
  c.tick(kT0 + 25'001);
  EXPECT_TRUE(c.closing());
}

// [MQTT-3.1.4-3], 3.14.2.1: the connection whose session is taken over gets
// DISCONNECT 0x8E; a 3.1.1 one is closed without it.
TEST_F(BrokerV5Disconnect, TakeoverIs0x8E) {
  Client& first = connected5("dev");
  Client& second = connect5("dev");
  EXPECT_TRUE(first.closing());
  EXPECT_EQ(disconnect_code(first), rc(ReasonCode::SessionTakenOver));
  EXPECT_EQ(rc(sent(second).at(0).connack.reason_code), rc(ReasonCode::Success));
  EXPECT_FALSE(second.closing());

  Client& old1 = connect311("old");
  Client& old2 = connect311("old");
  EXPECT_TRUE(old1.closing());
  EXPECT_TRUE(sent(old1).empty());
  EXPECT_FALSE(old2.closing());
}

// 3.14.2.1 / 4.13: a malformed packet after CONNACK is DISCONNECT 0x81; a
// 3.1.1 client is just closed.
TEST_F(BrokerV5Disconnect, MalformedPacketIs0x81) {
  Client& c = connected5("c");
  // PUBLISH with QoS 3 [MQTT-3.3.1-4]: topic "t", packet id 1, no properties.
  feed(c, std::string("\x36\x06\x00\x01t\x00\x01\x00", 8));
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::MalformedPacket));

  Client& d = connected5("d");
  // PUBLISH with a property PUBLISH must not carry (Session Expiry Interval).
  feed(d, std::string("\x30\x09\x00\x01t\x05\x11\x00\x00\x00\x0a", 11));
  EXPECT_TRUE(d.closing());
  EXPECT_EQ(disconnect_code(d), rc(ReasonCode::MalformedPacket));

  Client& old = connect311("old");
  feed(old, std::string("\x36\x05\x00\x01t\x00\x01", 7));
  EXPECT_TRUE(old.closing());
  EXPECT_TRUE(sent(old).empty());
}

// [MQTT-3.3.2-9], 3.3.2.3.4: a Topic Alias above the Topic Alias Maximum we
// announced is DISCONNECT 0x94; the maximum itself is accepted [MQTT-3.3.2-12].
TEST_F(BrokerV5Disconnect, TopicAliasAboveOurMaximumIs0x94) {
  broker::Config cfg;
  cfg.topic_alias_max = 3;
  make_broker(cfg);
  Client& c = connected5("c");
  const std::string alias3 = props_of([](auto& w) { w.add_u16(PropertyId::TopicAlias, 3); });
  const std::string alias4 = props_of([](auto& w) { w.add_u16(PropertyId::TopicAlias, 4); });
  publish5(c, "t", "x", 1, 1, alias3);
  EXPECT_FALSE(c.closing());
  EXPECT_EQ(only(sent(c), PacketType::Puback).size(), 1u);
  publish5(c, "t", "x", 1, 2, alias4);
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::TopicAliasInvalid));
}

// Topic aliases off (maximum 0): any alias is invalid.
TEST_F(BrokerV5Disconnect, AnyTopicAliasIsInvalidWhenTheMaximumIsZero) {
  broker::Config cfg;
  cfg.topic_alias_max = 0;
  make_broker(cfg);
  Client& c = connect5("c");
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].connack.props.topic_alias_maximum.value_or(0), 0);
  publish5(c, "t", "x", 0, 0, props_of([](auto& w) { w.add_u16(PropertyId::TopicAlias, 1); }));
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::TopicAliasInvalid));
}

// 3.3.4: an empty topic with an alias that has no mapping is a Protocol
// Error, DISCONNECT 0x82.
TEST_F(BrokerV5Disconnect, UnknownTopicAliasIs0x82) {
  Client& c = connected5("c");
  publish5(c, "", "x", 0, 0, props_of([](auto& w) { w.add_u16(PropertyId::TopicAlias, 2); }));
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::ProtocolError));
}

// [MQTT-3.3.4-6]: a PUBLISH from a client must not carry a Subscription
// Identifier; the server treats it as a Protocol Error (DISCONNECT 0x82).
TEST_F(BrokerV5Disconnect, PublishWithSubscriptionIdentifierIs0x82) {
  Client& sub = connected5("sub");
  subscribed5(sub, "t", 0);
  Client& c = connected5("c");
  publish5(c, "t", "x", 0, 0,
           props_of([](auto& w) { w.add_varint(PropertyId::SubscriptionIdentifier, 5); }));
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::ProtocolError));
  EXPECT_TRUE(only(sent(sub), PacketType::Publish).empty());
}

// 4.12: AUTH without an Authentication Method in CONNECT is a Protocol Error
// (DISCONNECT 0x82); so is a second CONNECT [MQTT-3.1.0-2].
TEST_F(BrokerV5Disconnect, UnexpectedAuthOrConnectIs0x82) {
  Client& c = connected5("c");
  mqtt::Auth a;
  a.reason_code = ReasonCode::ReAuthenticate;
  a.authentication_method = "x";
  std::string b;
  mqtt::encode_auth(b, mqtt::kLevel5, a);
  feed(c, b);
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::ProtocolError));

  Client& d = connected5("d");
  std::string again;
  mqtt::encode_connect(again, mqtt::kLevel5, connect_packet("d"));
  feed(d, again);
  EXPECT_TRUE(d.closing());
  EXPECT_EQ(disconnect_code(d), rc(ReasonCode::ProtocolError));
}

// [MQTT-3.14.0-1]: no DISCONNECT before CONNACK: a refused CONNECT is answered
// with CONNACK only.
TEST_F(BrokerV5Disconnect, NoDisconnectBeforeConnack) {
  mqtt::Connect m = connect_packet("c");
  m.props.authentication_method = "x";
  Client& c = connect(m);
  auto out = sent(c);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::Connack);
}

// ---------------------------------------------------------------- topic aliases

using BrokerV5TopicAlias = BrokerV5Test;

// 3.3.2.3.4, [MQTT-3.3.2-12]: a topic with an alias sets (or replaces) the
// mapping; an empty topic with that alias uses it. Mappings belong to the
// connection [MQTT-3.3.2-7].
TEST_F(BrokerV5TopicAlias, InboundAliasIsSetThenUsed) {
  Client& sub = connected5("sub");
  subscribed5(sub, "t/#", 0);
  Client& pub = connected5("pub");
  const std::string alias1 = props_of([](auto& w) { w.add_u16(PropertyId::TopicAlias, 1); });
  publish5(pub, "t/long/topic", "1", 0, 0, alias1);
  publish5(pub, "", "2", 0, 0, alias1);
  publish5(pub, "t/other", "3", 0, 0, alias1);  // redefines alias 1
  publish5(pub, "", "4", 0, 0, alias1);
  EXPECT_FALSE(pub.closing());
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].topic(), "t/long/topic");
  EXPECT_EQ(got[1].topic(), "t/long/topic");
  EXPECT_EQ(got[1].payload(), "2");
  EXPECT_EQ(got[2].topic(), "t/other");
  EXPECT_EQ(got[3].topic(), "t/other");
  // The alias is not forwarded as such: sub announced no Topic Alias Maximum.
  for (const auto& p : got) EXPECT_EQ(p.pub.props.topic_alias, 0);

  // A new connection starts without mappings.
  drop(pub);
  Client& again = connected5("pub");
  publish5(again, "", "5", 0, 0, alias1);
  EXPECT_TRUE(again.closing());
  EXPECT_EQ(disconnect_code(again), rc(ReasonCode::ProtocolError));
}

// [MQTT-3.3.2-11]: towards a subscriber that announced Topic Alias Maximum N
// the server uses aliases 1..N only: topic + alias the first time, an empty
// topic + alias afterwards; topics beyond N go by name.
TEST_F(BrokerV5TopicAlias, OutboundAliasesUpToTheClientsMaximum) {
  mqtt::Connect m = connect_packet("sub");
  m.props.topic_alias_maximum = 2;
  Client& sub = connected5(m);
  subscribed5(sub, "t/#", 1);
  Client& pub = connected5("pub");
  const char* topics[] = {"t/a", "t/a", "t/b", "t/c", "t/a", "t/c", "t/b"};
  uint16_t pid = 0;
  for (const char* t : topics) publish5(pub, t, t, 1, ++pid);
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 7u);
  struct Want {
    std::string topic;
    uint16_t alias;
  };
  const Want want[] = {{"t/a", 1}, {"", 1}, {"t/b", 2}, {"t/c", 0}, {"", 1}, {"t/c", 0}, {"", 2}};
  std::map<uint16_t, std::string> mapping;  // what the client knows
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].topic(), want[i].topic);
    EXPECT_EQ(got[i].pub.props.topic_alias, want[i].alias);
    EXPECT_LE(got[i].pub.props.topic_alias, 2);
    // The client can always resolve what it receives.
    std::string resolved = got[i].topic();
    if (got[i].pub.props.topic_alias != 0) {
      if (resolved.empty()) {
        ASSERT_TRUE(mapping.count(got[i].pub.props.topic_alias));
        resolved = mapping[got[i].pub.props.topic_alias];
      } else {
        mapping[got[i].pub.props.topic_alias] = resolved;
      }
    }
    EXPECT_EQ(resolved, got[i].payload());
  }
}

// The server's own limit (Config::topic_alias_max) also caps the aliases it
// uses towards a client that accepts more.
TEST_F(BrokerV5TopicAlias, OutboundAliasesAlsoCappedByTheServerLimit) {
  broker::Config cfg;
  cfg.topic_alias_max = 1;
  make_broker(cfg);
  mqtt::Connect m = connect_packet("sub");
  m.props.topic_alias_maximum = 50;
  Client& sub = connected5(m);
  subscribed5(sub, "t/#", 0);
  Client& pub = connected5("pub");
  for (const char* t : {"t/a", "t/b", "t/c", "t/a"}) publish5(pub, t, t);
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].pub.props.topic_alias, 1);
  EXPECT_EQ(got[1].pub.props.topic_alias, 0);
  EXPECT_EQ(got[2].pub.props.topic_alias, 0);
  EXPECT_EQ(got[3].pub.props.topic_alias, 1);
  EXPECT_EQ(got[3].topic(), "");
}

// 3.1.2.11.5: a client that announced no Topic Alias Maximum (0) gets none.
TEST_F(BrokerV5TopicAlias, NoOutboundAliasesWhenTheClientAnnouncedZero) {
  Client& sub = connected5("sub");
  subscribed5(sub, "t/#", 0);
  Client& pub = connected5("pub");
  for (int i = 0; i < 3; ++i) publish5(pub, "t/a", "x");
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& p : got) {
    EXPECT_EQ(p.topic(), "t/a");
    EXPECT_EQ(p.pub.props.topic_alias, 0);
    EXPECT_FALSE(p.pub.props.properties.find(PropertyId::TopicAlias).has_value());
  }
}

// ---------------------------------------------------------------- flow control

using BrokerV5Flow = BrokerV5Test;

// [MQTT-3.3.4-9]: no more unacknowledged QoS 1/2 PUBLISHes towards a client
// than its Receive Maximum; the rest follow as PUBACKs free the window.
TEST_F(BrokerV5Flow, ClientReceiveMaximumLimitsWhatIsInFlight) {
  mqtt::Connect m = connect_packet("sub");
  m.props.receive_maximum = 2;
  Client& sub = connected5(m);
  subscribed5(sub, "t", 1);
  Client& pub = connected5("pub");
  for (uint16_t i = 0; i < 5; ++i) publish5(pub, "t", "m" + std::to_string(i), 1, i + 1);
  auto first = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].payload(), "m0");
  EXPECT_EQ(first[1].payload(), "m1");
  EXPECT_EQ(broker_->find_session("sub")->queue.size(), 3u);
  ack5(sub, PacketType::Puback, first[0].pub.packet_id);
  auto next = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].payload(), "m2");
  ack5(sub, PacketType::Puback, first[1].pub.packet_id);
  ack5(sub, PacketType::Puback, next[0].pub.packet_id);
  EXPECT_EQ(payloads(sent(sub)), (std::vector<std::string>{"m3", "m4"}));
  // QoS 0 is not limited by the Receive Maximum.
  for (int i = 0; i < 4; ++i) publish5(pub, "t", "zero", 0);
  EXPECT_EQ(only(sent(sub), PacketType::Publish).size(), 4u);
}

// [MQTT-3.1.2-24], [MQTT-3.1.2-25]: a PUBLISH larger than the client's Maximum
// Packet Size is not sent, and is treated as delivered (nothing stays in
// flight or queued); smaller ones still go.
TEST_F(BrokerV5Flow, PublishAboveTheClientsMaximumPacketSizeIsDropped) {
  mqtt::Connect m = connect_packet("sub");
  m.props.maximum_packet_size = 64;
  m.props.topic_alias_maximum = 5;
  Client& sub = connected5(m);
  subscribed5(sub, "t/x", 1);
  Client& pub = connected5("pub");
  const std::string big(100, 'B');
  publish5(pub, "t/x", big, 1, 1);
  publish5(pub, "t/x", big, 0);
  EXPECT_TRUE(sent(sub).empty());
  auto s = broker_->find_session("sub");
  EXPECT_TRUE(s->inflight.empty());
  EXPECT_EQ(s->queue.size(), 0u);
  // The dropped message defined no alias: the next one names its topic.
  publish5(pub, "t/x", "small", 1, 2);
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic(), "t/x");
  EXPECT_EQ(got[0].payload(), "small");
  EXPECT_LE(got[0].raw.size(), 64u);
  EXPECT_EQ(s->inflight.size(), 1u);
}

// The same for messages waiting for the Receive Maximum window: a too large
// one is skipped when its turn comes.
TEST_F(BrokerV5Flow, QueuedPublishAboveTheMaximumPacketSizeIsSkipped) {
  mqtt::Connect m = connect_packet("sub");
  m.props.maximum_packet_size = 64;
  m.props.receive_maximum = 1;
  Client& sub = connected5(m);
  subscribed5(sub, "t", 1);
  Client& pub = connected5("pub");
  publish5(pub, "t", "first", 1, 1);
  publish5(pub, "t", std::string(100, 'B'), 1, 2);
  publish5(pub, "t", "third", 1, 3);
  auto first = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].payload(), "first");
  ack5(sub, PacketType::Puback, first[0].pub.packet_id);
  auto rest = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].payload(), "third");
  auto s = broker_->find_session("sub");
  EXPECT_EQ(s->inflight.size(), 1u);
  EXPECT_EQ(s->queue.size(), 0u);
}

// [MQTT-4.4.0-1]: unacknowledged PUBLISHes are resent on a resumed session
// with their packet ids and DUP set.
TEST_F(BrokerV5Flow, InflightIsResentWithDupOnResume) {
  mqtt::Connect m = connect_packet("sub", false, 100);
  Client& sub = connected5(m);
  subscribed5(sub, "t", 1);
  Client& pub = connected5("pub");
  publish5(pub, "t", "a", 1, 1);
  publish5(pub, "t", "b", 1, 2);
  auto first = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(first.size(), 2u);
  drop(sub);
  Client& back = connect(m);
  auto out = sent(back);
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(out[0].connack.session_present);
  auto again = only(out, PacketType::Publish);
  ASSERT_EQ(again.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(again[i].pub.dup);
    EXPECT_EQ(again[i].pub.packet_id, first[i].pub.packet_id);
    EXPECT_EQ(again[i].payload(), first[i].payload());
  }
}

// [MQTT-3.3.4-9] "The Server MUST NOT send more than Receive Maximum QoS 1
// and QoS 2 PUBLISH packets for which it has not received PUBACK, PUBCOMP, or
// PUBREC with a Reason Code of 128 or greater from the Client." A session that
// resumes on a connection with a smaller Receive Maximum than its messages were
// sent under gets only that many resent at once, the rest as acks come.
TEST_F(BrokerV5Flow, ResendOnResumeRespectsTheNewReceiveMaximum) {
  mqtt::Connect m = connect_packet("sub", false, 100);
  m.props.receive_maximum = 10;
  Client& sub = connected5(m);
  subscribed5(sub, "t", 1);
  Client& pub = connected5("pub");
  for (uint16_t i = 0; i < 5; ++i) publish5(pub, "t", "m" + std::to_string(i), 1, i + 1);
  ASSERT_EQ(only(sent(sub), PacketType::Publish).size(), 5u);
  drop(sub);
  m.props.receive_maximum = 2;
  Client& back = connect(m);
  auto again = only(sent(back), PacketType::Publish);
  EXPECT_LE(again.size(), 2u);
  // The rest follow as the client acknowledges.
  std::vector<std::string> got = payloads(again);
  for (int round = 0; round < 5 && !again.empty(); ++round) {
    for (const auto& p : again) ack5(back, PacketType::Puback, p.pub.packet_id);
    again = only(sent(back), PacketType::Publish);
    EXPECT_LE(again.size(), 2u);
    for (const auto& p : again) got.push_back(p.payload());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4"}));
}

// 3.2.2.3.6, 3.14.2.1: a packet above the Maximum Packet Size we
// announced is DISCONNECT 0x95 Packet too large.
TEST_F(BrokerV5Flow, InboundPacketAboveOurMaximumIs0x95) {
  broker::Config cfg;
  cfg.max_packet_size = 64;
  make_broker(cfg);
  Client& c = connected5("c");
  publish5(c, "t", std::string(30, 'x'), 1, 1);
  EXPECT_FALSE(c.closing());
  EXPECT_EQ(only(sent(c), PacketType::Puback).size(), 1u);
  publish5(c, "t", std::string(100, 'x'), 1, 2);
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::PacketTooLarge));
}

// ---------------------------------------------------------------- message expiry

using BrokerV5Expiry = BrokerV5Test;

// [MQTT-3.3.2-6]: the Message Expiry Interval sent on is the time left, never
// more than the publisher's.
TEST_F(BrokerV5Expiry, LiveMessageCarriesItsRemainingInterval) {
  Client& sub = connected5("sub");
  subscribed5(sub, "t", 1);
  Client& old = connect311("old");
  subscribe311(old, "t", 1);
  Client& pub = connected5("pub");
  publish5(pub, "t", "x", 1, 1,
           props_of([](auto& w) { w.add_u32(PropertyId::MessageExpiryInterval, 100); }));
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].pub.props.message_expiry_interval.has_value());
  EXPECT_LE(*got[0].pub.props.message_expiry_interval, 100u);
  EXPECT_GE(*got[0].pub.props.message_expiry_interval, 99u);
  EXPECT_EQ(payloads(sent(old)), std::vector<std::string>{"x"});
}

// [MQTT-3.3.2-5], [MQTT-3.3.2-6]: a queued message whose expiry interval passed
// while the subscriber was offline is not delivered; one still valid goes with
// the time left.
TEST_F(BrokerV5Expiry, ExpiredQueuedMessageIsNotDelivered) {
  Client& sub = connected5("sub", false, 300);
  subscribed5(sub, "t", 1);
  drop(sub);
  auto s = broker_->find_session("sub");
  ASSERT_NE(s, nullptr);
  const int64_t now = broker::wall_clock_ms();
  auto stale = std::make_shared<const broker::Message>("t", "stale", 1, false, "pub", now - 20'000,
                                                       broker::MessageMeta{"", true, 10});
  auto fresh = std::make_shared<const broker::Message>("t", "fresh", 1, false, "pub", now - 5'000,
                                                       broker::MessageMeta{"", true, 60});
  auto plain = std::make_shared<const broker::Message>("t", "plain", 1, false, "pub", now - 5'000);
  shard().deliver(s, {stale, 1, false});
  shard().deliver(s, {fresh, 1, false});
  shard().deliver(s, {plain, 1, false});
  settle();
  EXPECT_EQ(s->queue.size(), 3u);

  Client& back = connect5("sub", false, 300);
  auto out = sent(back);
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(out[0].connack.session_present);
  auto got = only(out, PacketType::Publish);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload(), "fresh");
  ASSERT_TRUE(got[0].pub.props.message_expiry_interval.has_value());
  EXPECT_LE(*got[0].pub.props.message_expiry_interval, 55u);
  EXPECT_GE(*got[0].pub.props.message_expiry_interval, 50u);
  EXPECT_EQ(got[1].payload(), "plain");
  EXPECT_FALSE(got[1].pub.props.message_expiry_interval.has_value());
  EXPECT_EQ(s->inflight.size(), 2u);
}

// 3.3.2.3.3: a retained message expires too: not sent to a new subscriber.
TEST_F(BrokerV5Expiry, ExpiredRetainedMessageIsNotSent) {
  const int64_t now = broker::wall_clock_ms();
  broker_->retained().put(std::make_shared<const broker::Message>(
      "r/old", "old", 1, true, "pub", now - 20'000, broker::MessageMeta{"", true, 10}));
  broker_->retained().put(std::make_shared<const broker::Message>(
      "r/new", "new", 1, true, "pub", now, broker::MessageMeta{"", true, 3600}));
  Client& sub = connected5("sub");
  subscribe5(sub, {req("r/#", 1)});
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload(), "new");
  EXPECT_TRUE(got[0].pub.retain);
  EXPECT_LE(got[0].pub.props.message_expiry_interval.value_or(0), 3600u);
  EXPECT_GE(got[0].pub.props.message_expiry_interval.value_or(0), 3599u);
}

// ---------------------------------------------------------------- session expiry

using BrokerV5Session = BrokerV5Test;

// 3.1.2.11.2: Session Expiry Interval 0 (absent): the session ends with the
// network connection.
TEST_F(BrokerV5Session, ExpiryZeroEndsWithTheConnection) {
  Client& c = connected5("c", /*clean_start=*/false, /*session_expiry=*/0);
  subscribed5(c, "t", 1);
  ASSERT_NE(broker_->find_session("c"), nullptr);
  drop(c);
  EXPECT_EQ(broker_->find_session("c"), nullptr);
  EXPECT_EQ(broker_->index().subscription_count(), 0u);
  Client& back = connect5("c", false);
  EXPECT_FALSE(sent(back).at(0).connack.session_present);
}

// 3.1.2.11.2, [MQTT-4.1.0-2]: a session with expiry N survives N seconds
// offline and is discarded when they have passed.
TEST_F(BrokerV5Session, ExpiryNLastsNSecondsOffline) {
  Client& c = connected5("c", false, 10);
  subscribed5(c, "t", 1);
  drop(c);
  at(9'999);
  EXPECT_NE(broker_->find_session("c"), nullptr);
  EXPECT_EQ(broker_->index().subscription_count(), 1u);
  at(10'000);
  EXPECT_EQ(broker_->find_session("c"), nullptr);
  EXPECT_EQ(broker_->index().subscription_count(), 0u);
  Client& back = connect5("c", false, 10);
  EXPECT_FALSE(sent(back).at(0).connack.session_present);
}

// 3.2.2.1.1: a reconnect in time resumes the session (Session Present)
// with what was queued, and the expiry timer no longer runs.
TEST_F(BrokerV5Session, ReconnectInTimeResumesTheSession) {
  Client& c = connected5("c", false, 10);
  subscribed5(c, "t", 1);
  drop(c);
  Client& pub = connected5("pub");
  publish5(pub, "t", "queued", 1, 1);
  at(5'000);
  Client& back = connect5("c", false, 10);
  auto out = sent(back);
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(out[0].connack.session_present);
  EXPECT_EQ(payloads(out), std::vector<std::string>{"queued"});
  at(60'000);
  EXPECT_NE(broker_->find_session("c"), nullptr);
  EXPECT_FALSE(back.closing());
}

// 3.14.2.2.2: setting a non-zero Session Expiry Interval in DISCONNECT after
// CONNECT said 0 is a Protocol Error: DISCONNECT 0x82 from the server.
TEST_F(BrokerV5Session, DisconnectCannotSetExpiryAfterZero) {
  Client& c = connected5("c", false, 0);
  disconnect5(c, ReasonCode::NormalDisconnection, 60);
  EXPECT_TRUE(c.closing());
  EXPECT_EQ(disconnect_code(c), rc(ReasonCode::ProtocolError));
  forget(c);
  EXPECT_EQ(broker_->find_session("c"), nullptr);
}

// 3.14.2.2.2: DISCONNECT may change a non-zero Session Expiry Interval: to 0
// (the session ends now) or to another value (used from then on).
TEST_F(BrokerV5Session, DisconnectChangesTheExpiry) {
  Client& a = connected5("a", false, 60);
  disconnect5(a, ReasonCode::NormalDisconnection, 0);
  EXPECT_TRUE(sent(a).empty());  // no DISCONNECT back
  forget(a);
  EXPECT_EQ(broker_->find_session("a"), nullptr);

  Client& b = connected5("b", false, 60);
  disconnect5(b, ReasonCode::NormalDisconnection, 5);
  forget(b);
  at(4'999);
  EXPECT_NE(broker_->find_session("b"), nullptr);
  at(5'000);
  EXPECT_EQ(broker_->find_session("b"), nullptr);
}

// ---------------------------------------------------------------- will delay

class BrokerV5Will : public BrokerV5Test {
 protected:
  void SetUp() override {
    BrokerV5Test::SetUp();
    watcher_ = &connected5("watcher");
    subscribed5(*watcher_, "will/#", 1);
  }
  // Connects "dev" with a will on "will/dev" delayed by `delay_s`.
  Client& connect_with_will(uint32_t delay_s, uint32_t session_expiry, bool clean_start = true) {
    mqtt::Connect m = connect_packet("dev", clean_start, session_expiry);
    m.will = mqtt::Will{"will/dev", "gone", 1, false};
    m.will_props.will_delay_interval = delay_s;
    m.will_props.content_type = "text/plain";
    return connected5(m);
  }
  std::vector<std::string> wills() { return payloads(sent(*watcher_)); }

  Client* watcher_ = nullptr;
};

// 3.1.3.2.2 Will Delay Interval: the will goes out once the delay has passed.
TEST_F(BrokerV5Will, PublishedOnlyAfterTheDelay) {
  Client& dev = connect_with_will(5, 100);
  drop(dev);
  EXPECT_TRUE(wills().empty());
  at(4'999);
  EXPECT_TRUE(wills().empty());
  at(5'000);
  auto got = only(sent(*watcher_), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload(), "gone");
  EXPECT_EQ(got[0].topic(), "will/dev");
  // Will properties travel with it (3.1.3.2), the delay itself does not.
  EXPECT_EQ(got[0].pub.props.content_type, std::optional<std::string_view>("text/plain"));
  EXPECT_FALSE(got[0].pub.props.properties.find(PropertyId::WillDelayInterval).has_value());
  at(20'000);
  EXPECT_TRUE(wills().empty());  // once only
  EXPECT_NE(broker_->find_session("dev"), nullptr);
}

// [MQTT-3.1.3-9]: a new connection to the session before the delay has passed
// (Clean Start 0) cancels the will.
TEST_F(BrokerV5Will, CancelledByAReconnectInTime) {
  Client& dev = connect_with_will(5, 100);
  drop(dev);
  at(2'000);
  Client& back = connect5("dev", /*clean_start=*/false, 100);
  EXPECT_TRUE(sent(back).at(0).connack.session_present);
  at(10'000);
  EXPECT_TRUE(wills().empty());
  // Nor does the new connection inherit it: it has no will.
  drop(back);
  at(200'000);
  EXPECT_TRUE(wills().empty());
}

// 3.1.2.4, 3.1.3.2.2: a reconnect with Clean Start 1 ends the old session, and
// with it the wait: the will goes out at once.
TEST_F(BrokerV5Will, PublishedAtOnceOnReconnectWithCleanStart) {
  Client& dev = connect_with_will(5, 100);
  drop(dev);
  at(2'000);
  EXPECT_TRUE(wills().empty());
  Client& back = connect5("dev", /*clean_start=*/true, 100);
  EXPECT_FALSE(sent(back).at(0).connack.session_present);
  EXPECT_EQ(wills(), std::vector<std::string>{"gone"});
  at(10'000);
  EXPECT_TRUE(wills().empty());
}

// [MQTT-3.1.3-9]: a session takeover of a live connection counts as a
// reconnect: Clean Start 0 cancels the delayed will, Clean Start 1 sends it.
TEST_F(BrokerV5Will, TakeoverOfALiveConnection) {
  connect_with_will(5, 100);
  Client& second = connect5("dev", /*clean_start=*/false, 100);
  EXPECT_TRUE(sent(second).at(0).connack.session_present);
  at(10'000);
  EXPECT_TRUE(wills().empty());
  drop(second);

  connect_with_will(5, 100, /*clean_start=*/false);
  Client& third = connect5("dev", /*clean_start=*/true, 100);
  EXPECT_FALSE(sent(third).at(0).connack.session_present);
  EXPECT_EQ(wills(), std::vector<std::string>{"gone"});
}

// 3.1.3.2.2: the will goes out when the session ends, if that comes before the
// Will Delay Interval.
TEST_F(BrokerV5Will, PublishedAtSessionExpiryIfThatComesFirst) {
  Client& dev = connect_with_will(100, 5);
  drop(dev);
  at(4'999);
  EXPECT_TRUE(wills().empty());
  EXPECT_NE(broker_->find_session("dev"), nullptr);
  at(5'000);
  EXPECT_EQ(wills(), std::vector<std::string>{"gone"});
  EXPECT_EQ(broker_->find_session("dev"), nullptr);
  at(200'000);
  EXPECT_TRUE(wills().empty());
}

// A session that ends with its connection (expiry 0) sends the will at once.
TEST_F(BrokerV5Will, SessionExpiryZeroSendsTheWillAtOnce) {
  Client& dev = connect_with_will(30, 0);
  drop(dev);
  EXPECT_EQ(wills(), std::vector<std::string>{"gone"});
}

// [MQTT-3.14.4-3], 3.14.2.1: DISCONNECT 0x04 publishes the will, 0x00 discards it.
TEST_F(BrokerV5Will, DisconnectReasonDecidesTheWill) {
  Client& a = connect_with_will(0, 0);
  disconnect5(a, ReasonCode::NormalDisconnection);
  EXPECT_TRUE(a.closing());
  forget(a);
  at(100'000);
  EXPECT_TRUE(wills().empty());

  Client& b = connect_with_will(0, 0);
  disconnect5(b, ReasonCode::DisconnectWithWillMessage);
  EXPECT_TRUE(b.closing());
  forget(b);
  EXPECT_EQ(wills(), std::vector<std::string>{"gone"});
}

// ---------------------------------------------------------------- subscription options

using BrokerV5SubOptions = BrokerV5Test;

// [MQTT-3.8.3-3]: No Local: a client's own messages are not sent back to it
// through that subscription; other clients' are.
TEST_F(BrokerV5SubOptions, NoLocal) {
  Client& me = connected5("me");
  subscribe5(me, {req("t", 1, /*no_local=*/true)});
  sent(me);
  Client& other = connected5("other");
  publish5(me, "t", "mine", 1, 1);
  publish5(other, "t", "theirs", 1, 1);
  EXPECT_EQ(payloads(sent(me)), std::vector<std::string>{"theirs"});
  // An overlapping subscription without No Local brings it back (once).
  subscribe5(me, {req("#", 1)}, 2);
  sent(me);
  publish5(me, "t", "mine again", 1, 2);
  EXPECT_EQ(payloads(sent(me)), std::vector<std::string>{"mine again"});
}

// [MQTT-3.3.1-12], [MQTT-3.3.1-13]: Retain As Published keeps the RETAIN flag
// of the received PUBLISH when forwarding; without it the flag is cleared.
TEST_F(BrokerV5SubOptions, RetainAsPublished) {
  Client& keep = connected5("keep");
  subscribe5(keep, {req("t", 0, false, /*retain_as_published=*/true)});
  Client& clear = connected5("clear");
  subscribe5(clear, {req("t", 0)});
  sent(keep);
  sent(clear);
  Client& pub = connected5("pub");
  publish5(pub, "t", "r", 0, 0, {}, /*retain=*/true);
  publish5(pub, "t", "n", 0, 0, {}, /*retain=*/false);
  auto k = only(sent(keep), PacketType::Publish);
  auto c = only(sent(clear), PacketType::Publish);
  ASSERT_EQ(k.size(), 2u);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_TRUE(k[0].pub.retain);
  EXPECT_FALSE(k[1].pub.retain);
  EXPECT_FALSE(c[0].pub.retain);
  EXPECT_FALSE(c[1].pub.retain);
}

// [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]: Retain Handling 0 sends the
// retained messages at every SUBSCRIBE, 1 only when the subscription is new,
// 2 never.
TEST_F(BrokerV5SubOptions, RetainHandling) {
  Client& pub = connected5("pub");
  publish5(pub, "r/1", "kept", 1, 1, {}, /*retain=*/true);
  Client& sub = connected5("sub");
  using RH = mqtt::RetainHandling;
  auto retained_after = [&](mqtt::TopicRequest t) {
    subscribe5(sub, {t});
    auto got = only(sent(sub), PacketType::Publish);
    for (const auto& p : got) EXPECT_TRUE(p.pub.retain);
    return got.size();
  };
  EXPECT_EQ(retained_after(req("r/1", 1, false, false, RH::SendOnSubscribe)), 1u);
  EXPECT_EQ(retained_after(req("r/1", 1, false, false, RH::SendOnSubscribe)), 1u);  // existing
  EXPECT_EQ(retained_after(req("r/+", 1, false, false, RH::SendIfNew)), 1u);        // new
  EXPECT_EQ(retained_after(req("r/+", 1, false, false, RH::SendIfNew)), 0u);        // existing
  EXPECT_EQ(retained_after(req("r/#", 1, false, false, RH::DoNotSend)), 0u);        // new
  EXPECT_EQ(retained_after(req("r/#", 1, false, false, RH::DoNotSend)), 0u);        // existing
}

// [MQTT-3.3.4-3], [MQTT-3.3.4-5]: a delivered PUBLISH carries the
// Subscription Identifier of the subscription it matched; two overlapping
// subscriptions with different identifiers get one copy each, with its own
// identifier. A re-SUBSCRIBE replaces the identifier (3.8.2.1.2).
TEST_F(BrokerV5SubOptions, SubscriptionIdentifiers) {
  Client& sub = connected5("sub");
  subscribed5(sub, "s/+", 1, /*sub_id=*/7);
  Client& pub = connected5("pub");
  publish5(pub, "s/x", "one", 1, 1);
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sub_ids(), std::vector<uint32_t>{7});

  subscribed5(sub, "s/#", 1, /*sub_id=*/9);
  publish5(pub, "s/x", "two", 1, 2);
  got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 2u);
  std::multiset<uint32_t> ids;
  for (const auto& p : got) {
    EXPECT_EQ(p.payload(), "two");
    ASSERT_EQ(p.sub_ids().size(), 1u);
    ids.insert(p.sub_ids()[0]);
  }
  EXPECT_EQ(ids, (std::multiset<uint32_t>{7, 9}));

  // Only "s/#" matches "s": one copy, id 9.
  publish5(pub, "s", "three", 1, 3);
  got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sub_ids(), std::vector<uint32_t>{9});

  // Re-subscribing "s/+" with id 8 replaces 7; "s/#" without an id replaces 9.
  subscribed5(sub, "s/+", 1, 8);
  subscribed5(sub, "s/#", 1, 0);
  publish5(pub, "s/x", "four", 1, 4);
  got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 2u);
  std::multiset<size_t> counts;
  ids.clear();
  for (const auto& p : got) {
    counts.insert(p.sub_ids().size());
    for (uint32_t id : p.sub_ids()) ids.insert(id);
  }
  EXPECT_EQ(ids, (std::multiset<uint32_t>{8}));
  EXPECT_EQ(counts, (std::multiset<size_t>{0, 1}));
}

// Two filters of one SUBSCRIBE share its identifier: a message matching both
// is sent once [MQTT-3.3.4-2], with that identifier.
TEST_F(BrokerV5SubOptions, OneCopyForOverlappingFiltersWithTheSameIdentifier) {
  Client& sub = connected5("sub");
  subscribe5(sub, {req("a/+", 0), req("a/#", 2)}, 1, 11);
  sent(sub);
  Client& pub = connected5("pub");
  publish5(pub, "a/b", "x", 2, 1);
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sub_ids(), std::vector<uint32_t>{11});
  EXPECT_EQ(got[0].pub.qos, 2);  // the highest granted QoS
}

// The identifier also comes with retained messages sent on SUBSCRIBE.
TEST_F(BrokerV5SubOptions, SubscriptionIdentifierOnRetainedMessages) {
  Client& pub = connected5("pub");
  publish5(pub, "r", "kept", 0, 0, {}, true);
  Client& sub = connected5("sub");
  subscribe5(sub, {req("r", 0)}, 1, 300);
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].pub.retain);
  EXPECT_EQ(got[0].sub_ids(), std::vector<uint32_t>{300});
}

// 4.8.2: a shared subscription delivers each message to one member of the
// group, and sends no retained messages on SUBSCRIBE.
TEST_F(BrokerV5SubOptions, SharedSubscriptionGoesToOneMember) {
  Client& pub = connected5("pub");
  publish5(pub, "job", "retained", 0, 0, {}, true);
  Client& a = connected5("a");
  Client& b = connected5("b");
  subscribe5(a, {req("$share/g/job", 1)});
  subscribe5(b, {req("$share/g/job", 1)});
  // No retained message for a shared subscription (4.8.2).
  auto suback_only = [](const std::vector<Pkt>& out) {
    return out.size() == 1 && out[0].type == PacketType::Suback &&
           out[0].suback.reason_codes.size() == 1 &&
           rc(out[0].suback.reason_codes[0]) == rc(ReasonCode::GrantedQos1);
  };
  EXPECT_TRUE(suback_only(sent(a)));
  EXPECT_TRUE(suback_only(sent(b)));
  for (int i = 0; i < 4; ++i) publish5(pub, "job", "j" + std::to_string(i));
  auto pa = payloads(sent(a));
  auto pb = payloads(sent(b));
  EXPECT_EQ(pa.size() + pb.size(), 4u);
  EXPECT_EQ(pa.size(), 2u);  // round robin
  // An offline member (persistent session) is skipped while another is online.
  Client& c = connected5("c", false, 100);
  subscribed5(c, "$share/g/job", 1);
  drop(c);
  for (int i = 0; i < 6; ++i) publish5(pub, "job", "k", 1, static_cast<uint16_t>(i + 1));
  EXPECT_EQ(payloads(sent(a)).size() + payloads(sent(b)).size(), 6u);
  EXPECT_EQ(broker_->find_session("c")->queue.size(), 0u);
}

// ---------------------------------------------------------------- forwarded properties

using BrokerV5Forward = BrokerV5Test;

// [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17],
// [MQTT-3.3.2-18], [MQTT-3.3.2-20]: Payload Format Indicator, Response Topic,
// Correlation Data, User Properties (in order, duplicates kept) and Content
// Type reach a v5 subscriber unaltered; the publisher's Topic Alias does not.
// A 3.1.1 subscriber gets the plain 3.1.1 PUBLISH.
TEST_F(BrokerV5Forward, PropertiesReachSubscribersUnaltered) {
  Client& sub = connected5("sub");
  subscribed5(sub, "t", 1);
  Client& old = connect311("old");
  subscribe311(old, "t", 1);
  Client& pub = connected5("pub");
  const std::string correlation("\x00\x01\xff\x80", 4);
  auto fill = [&](mqtt::PropertyWriter& w, bool with_alias) {
    w.add_byte(PropertyId::PayloadFormatIndicator, 1);
    w.add_user_property("k", "v1");
    w.add_string(PropertyId::ContentType, "application/json");
    if (with_alias) w.add_u16(PropertyId::TopicAlias, 1);
    w.add_string(PropertyId::ResponseTopic, "reply/to/me");
    w.add_user_property("a", "b");
    w.add_string(PropertyId::CorrelationData, correlation);
    w.add_user_property("k", "v1");
    w.add_user_property("k", "v2");
    w.add_user_property("", "");
  };
  const std::string sent_props = props_of([&](auto& w) { fill(w, true); });
  const std::string want = props_of([&](auto& w) { fill(w, false); });
  publish5(pub, "t", "{\"x\":1}", 1, 1, sent_props, /*retain=*/true);

  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload(), "{\"x\":1}");
  EXPECT_EQ(got[0].pub.props.properties.raw(), want);  // byte-identical, in order
  EXPECT_EQ(got[0].pub.props.content_type, std::optional<std::string_view>("application/json"));
  EXPECT_EQ(got[0].pub.props.response_topic, std::optional<std::string_view>("reply/to/me"));
  EXPECT_EQ(got[0].pub.props.correlation_data, std::optional<std::string_view>(correlation));
  EXPECT_EQ(got[0].pub.props.user_property_count, 5u);

  auto plain = only(sent(old), PacketType::Publish);
  ASSERT_EQ(plain.size(), 1u);
  mqtt::Publish p;
  p.topic = "t";
  p.payload = "{\"x\":1}";
  p.qos = 1;
  p.packet_id = plain[0].pub.packet_id;
  std::string want311;
  mqtt::encode_publish(want311, mqtt::kLevel311, p);
  EXPECT_EQ(plain[0].raw, want311);

  // Kept with the retained message too.
  Client& later = connected5("later");
  subscribe5(later, {req("t", 1)});
  auto retained = only(sent(later), PacketType::Publish);
  ASSERT_EQ(retained.size(), 1u);
  EXPECT_EQ(retained[0].pub.props.properties.raw(), want);
}

// The forwarded properties come first, the delivery's own (Subscription
// Identifier, Topic Alias, Message Expiry Interval) after them.
TEST_F(BrokerV5Forward, ForwardedPropertiesWithTheDeliverysOwn) {
  mqtt::Connect m = connect_packet("sub");
  m.props.topic_alias_maximum = 4;
  Client& sub = connected5(m);
  subscribed5(sub, "t", 1, 21);
  Client& pub = connected5("pub");
  const std::string forwarded = props_of([](auto& w) {
    w.add_user_property("order", "1");
    w.add_string(PropertyId::ContentType, "text/plain");
    w.add_user_property("order", "2");
  });
  const std::string with_expiry =
      forwarded + props_of([](auto& w) { w.add_u32(PropertyId::MessageExpiryInterval, 1000); });
  publish5(pub, "t", "x", 1, 1, with_expiry);
  auto got = only(sent(sub), PacketType::Publish);
  ASSERT_EQ(got.size(), 1u);
  const std::string_view raw = got[0].pub.props.properties.raw();
  EXPECT_EQ(raw.substr(0, forwarded.size()), forwarded);
  EXPECT_EQ(got[0].sub_ids(), std::vector<uint32_t>{21});
  EXPECT_EQ(got[0].pub.props.topic_alias, 1);
  EXPECT_LE(got[0].pub.props.message_expiry_interval.value_or(0), 1000u);
  EXPECT_GE(got[0].pub.props.message_expiry_interval.value_or(0), 999u);
}

}  // namespace
