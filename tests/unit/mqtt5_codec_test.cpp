// Unit tests for the MQTT 5.0 side of the codec (src/mqtt/codec.hpp, properties.hpp,
// reason_code.hpp). Hand-written byte sequences follow the figures of the
// OASIS MQTT Version 5.0 standard.
#include "mqtt/codec.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mqtt/packet.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/reason_code.hpp"
#include "mqtt/topic.hpp"

// Heap allocation counting through the sanitizer's malloc hooks, when the
// test binary is built with AddressSanitizer (the standalone build is).
#if defined(__SANITIZE_ADDRESS__)
#define MQTT5_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MQTT5_TEST_ASAN 1
#endif
#endif
#if defined(MQTT5_TEST_ASAN)
// The sanitizer runtime's hook API (declared here: GCC does not ship the
// header <sanitizer/allocator_interface.h>).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             size_t),
                                                         void (*free_hook)(const volatile void*));
#endif

namespace mqtt {
namespace {

// A v5 PUBLISH of `p` with `props` as its property block.
void encode_publish_props(std::string& out, Publish p, const Properties& props) {
  p.props.properties = props;
  encode_publish(out, kLevel5, p);
}

constexpr size_t kBig = 1 << 20;

#if defined(MQTT5_TEST_ASAN)
std::atomic<long> g_mallocs{0};
void count_malloc(const volatile void*, size_t) {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
}
void ignore_free(const volatile void*) {}
bool install_hooks() {
  static const bool installed =
      __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free) != 0;
  return installed;
}
#endif

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}
std::string u16(uint16_t v) {
  return bytes({v >> 8, v & 0xFF});
}
std::string str(std::string_view s) {
  return u16(static_cast<uint16_t>(s.size())) + std::string(s);
}
TopicRequest request(std::string_view filter, uint8_t qos) {
  TopicRequest t;
  t.filter = filter;
  t.qos = qos;
  return t;
}
std::string vbi(uint32_t v) {
  uint8_t b[4];
  const size_t n = encode_varint(v, b);
  return std::string(reinterpret_cast<const char*>(b), n);
}
// A property block with its Property Length.
std::string block(const std::string& props) {
  return vbi(static_cast<uint32_t>(props.size())) + props;
}

Frame make_frame(PacketType type, uint8_t flags, std::string_view body) {
  Frame f;
  f.type = type;
  f.flags = flags;
  f.body = body;
  f.size = 2 + body.size();
  return f;
}

// Frames `wire` as MQTT 5 and expects exactly one complete packet.
Frame frame_of(const std::string& wire) {
  Frame f;
  const DecodeResult r = read_frame(wire, kBig, f, kLevel5);
  EXPECT_EQ(r.status, DecodeStatus::Ok) << r.reason;
  EXPECT_EQ(f.size, wire.size());
  return f;
}

// The User Properties of a block, in order.
std::vector<std::pair<std::string_view, std::string_view>> user_props(const Properties& p) {
  std::vector<std::pair<std::string_view, std::string_view>> v;
  for (const Property& prop : p) {
    if (prop.id == PropertyId::UserProperty) v.emplace_back(prop.str, prop.value);
  }
  return v;
}

DecodeResult decode_block(PropertyContext ctx, const std::string& with_length, Properties& out) {
  std::string_view in = with_length;
  return decode_properties(in, ctx, out);
}

DecodeStatus block_status(PropertyContext ctx, const std::string& props) {
  Properties out;
  return decode_block(ctx, block(props), out).status;
}

// ================================================================ properties

// Table 2-4: identifier -> data type; everything else is unknown.
TEST(Properties5, IdentifierTypesMatchTable_2_4) {
  using T = PropertyType;
  const std::vector<std::pair<int, T>> table = {
      {0x01, T::Byte},
      {0x02, T::FourByteInteger},
      {0x03, T::Utf8String},
      {0x08, T::Utf8String},
      {0x09, T::BinaryData},
      {0x0B, T::VariableByteInteger},
      {0x11, T::FourByteInteger},
      {0x12, T::Utf8String},
      {0x13, T::TwoByteInteger},
      {0x15, T::Utf8String},
      {0x16, T::BinaryData},
      {0x17, T::Byte},
      {0x18, T::FourByteInteger},
      {0x19, T::Byte},
      {0x1A, T::Utf8String},
      {0x1C, T::Utf8String},
      {0x1F, T::Utf8String},
      {0x21, T::TwoByteInteger},
      {0x22, T::TwoByteInteger},
      {0x23, T::TwoByteInteger},
      {0x24, T::Byte},
      {0x25, T::Byte},
      {0x26, T::Utf8StringPair},
      {0x27, T::FourByteInteger},
      {0x28, T::Byte},
      {0x29, T::Byte},
      {0x2A, T::Byte},
  };
  EXPECT_EQ(table.size(), 27u);
  size_t known = 0;
  for (int id = 0; id < 256; ++id) {
    const std::optional<T> t = property_type(static_cast<uint8_t>(id));
    bool listed = false;
    for (const auto& [tid, type] : table) {
      if (tid == id) {
        listed = true;
        ASSERT_TRUE(t.has_value()) << id;
        EXPECT_EQ(*t, type) << id;
      }
    }
    if (!listed) {
      EXPECT_FALSE(t.has_value()) << id;
    }
    known += t.has_value() ? 1 : 0;
  }
  EXPECT_EQ(known, 27u);
  EXPECT_STREQ(to_string(PropertyId::TopicAlias), "Topic Alias");
  EXPECT_STREQ(to_string(static_cast<PropertyId>(0x30)), "unknown property");
}

// Table 2-4: which packet may carry which property.
TEST(Properties5, AllowedContextsMatchTable_2_4) {
  using C = PropertyContext;
  using P = PropertyId;
  const std::vector<std::pair<P, std::vector<C>>> table = {
      {P::PayloadFormatIndicator, {C::Publish, C::Will}},
      {P::MessageExpiryInterval, {C::Publish, C::Will}},
      {P::ContentType, {C::Publish, C::Will}},
      {P::ResponseTopic, {C::Publish, C::Will}},
      {P::CorrelationData, {C::Publish, C::Will}},
      {P::SubscriptionIdentifier, {C::Publish, C::Subscribe}},
      {P::SessionExpiryInterval, {C::Connect, C::Connack, C::Disconnect}},
      {P::AssignedClientIdentifier, {C::Connack}},
      {P::ServerKeepAlive, {C::Connack}},
      {P::AuthenticationMethod, {C::Connect, C::Connack, C::Auth}},
      {P::AuthenticationData, {C::Connect, C::Connack, C::Auth}},
      {P::RequestProblemInformation, {C::Connect}},
      {P::WillDelayInterval, {C::Will}},
      {P::RequestResponseInformation, {C::Connect}},
      {P::ResponseInformation, {C::Connack}},
      {P::ServerReference, {C::Connack, C::Disconnect}},
      {P::ReasonString,
       {C::Connack, C::Puback, C::Pubrec, C::Pubrel, C::Pubcomp, C::Suback, C::Unsuback,
        C::Disconnect, C::Auth}},
      {P::ReceiveMaximum, {C::Connect, C::Connack}},
      {P::TopicAliasMaximum, {C::Connect, C::Connack}},
      {P::TopicAlias, {C::Publish}},
      {P::MaximumQos, {C::Connack}},
      {P::RetainAvailable, {C::Connack}},
      {P::UserProperty,
       {C::Connect, C::Will, C::Connack, C::Publish, C::Puback, C::Pubrec, C::Pubrel, C::Pubcomp,
        C::Subscribe, C::Suback, C::Unsubscribe, C::Unsuback, C::Disconnect, C::Auth}},
      {P::MaximumPacketSize, {C::Connect, C::Connack}},
      {P::WildcardSubscriptionAvailable, {C::Connack}},
      {P::SubscriptionIdentifierAvailable, {C::Connack}},
      {P::SharedSubscriptionAvailable, {C::Connack}},
  };
  for (const auto& [id, allowed] : table) {
    for (int c = 0; c <= static_cast<int>(C::Auth); ++c) {
      bool expect = false;
      for (C a : allowed) expect = expect || static_cast<int>(a) == c;
      EXPECT_EQ(property_allowed(id, static_cast<C>(c)), expect)
          << to_string(id) << " in context " << c;
    }
  }
}

// One property of every data type survives writer -> decoder -> iterator.
TEST(Properties5, EveryDataTypeRoundTrips) {
  PropertyWriter w;
  w.add_byte(PropertyId::PayloadFormatIndicator, 1)
      .add_u16(PropertyId::TopicAlias, 0xBEEF)
      .add_u32(PropertyId::MessageExpiryInterval, 0xDEADBEEF)
      .add_varint(PropertyId::SubscriptionIdentifier, 268'435'455)
      .add_string(PropertyId::ContentType, "text/plain")
      .add_string(PropertyId::CorrelationData, std::string_view("\0\xff", 2))
      .add_user_property("k", "v");
  ASSERT_TRUE(w.ok());
  const std::string expected =
      bytes({0x01, 1}) + bytes({0x23, 0xBE, 0xEF}) + bytes({0x02, 0xDE, 0xAD, 0xBE, 0xEF}) +
      bytes({0x0B, 0xFF, 0xFF, 0xFF, 0x7F}) + bytes({0x03}) + str("text/plain") +
      bytes({0x09, 0, 2, 0, 0xFF}) + bytes({0x26}) + str("k") + str("v");
  EXPECT_EQ(w.bytes(), expected);

  std::string wire;
  w.append_to(wire);
  EXPECT_EQ(wire, block(expected));
  EXPECT_EQ(w.encoded_size(), wire.size());
  Properties p;
  std::string_view in = wire;
  ASSERT_TRUE(decode_properties(in, PropertyContext::Publish, p).ok());
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(p.raw(), expected);

  std::vector<Property> seen(p.begin(), p.end());
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen[0].type, PropertyType::Byte);
  EXPECT_EQ(seen[0].number, 1u);
  EXPECT_EQ(seen[1].type, PropertyType::TwoByteInteger);
  EXPECT_EQ(seen[1].number, 0xBEEFu);
  EXPECT_EQ(seen[2].type, PropertyType::FourByteInteger);
  EXPECT_EQ(seen[2].number, 0xDEADBEEFu);
  EXPECT_EQ(seen[3].type, PropertyType::VariableByteInteger);
  EXPECT_EQ(seen[3].number, 268'435'455u);
  EXPECT_EQ(seen[4].type, PropertyType::Utf8String);
  EXPECT_EQ(seen[4].str, "text/plain");
  EXPECT_EQ(seen[5].type, PropertyType::BinaryData);
  EXPECT_EQ(seen[5].str, std::string_view("\0\xff", 2));
  EXPECT_EQ(seen[6].type, PropertyType::Utf8StringPair);
  EXPECT_EQ(seen[6].str, "k");
  EXPECT_EQ(seen[6].value, "v");

  // Re-encoding each decoded property gives the same bytes.
  PropertyWriter again;
  for (const Property& prop : p) again.add(prop);
  EXPECT_EQ(again.bytes(), expected);
  EXPECT_EQ(p.count(PropertyId::UserProperty), 1u);
  ASSERT_TRUE(p.find(PropertyId::TopicAlias).has_value());
  EXPECT_EQ(p.find(PropertyId::TopicAlias)->number, 0xBEEFu);
  EXPECT_FALSE(p.find(PropertyId::ResponseTopic).has_value());
}

TEST(Properties5, EmptyBlockIsOneZeroByte_MQTT_2_2_2_1) {
  Properties p;
  const std::string wire = bytes({0x00, 0x42});
  std::string_view in = wire;
  ASSERT_TRUE(decode_properties(in, PropertyContext::Connect, p).ok());
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(in, bytes({0x42}));  // only the block was consumed
  EXPECT_EQ(p.begin(), p.end());
  PropertyWriter w;
  std::string out;
  w.append_to(out);
  EXPECT_EQ(out, bytes({0x00}));
}

// A block over 127 bytes has a two-byte Property Length.
TEST(Properties5, MultiBytePropertyLength) {
  PropertyWriter w;
  for (int i = 0; i < 30; ++i) w.add_user_property("name", "value");
  ASSERT_EQ(w.size(), 30u * 14u);  // 1 + (2 + 4) + (2 + 5) each
  std::string wire;
  w.append_to(wire);
  EXPECT_EQ(wire.substr(0, 2), bytes({0xA4, 0x03}));  // 420 = 36 + 3 * 128
  Properties p;
  std::string_view in = wire;
  ASSERT_TRUE(decode_properties(in, PropertyContext::Puback, p).ok());
  EXPECT_EQ(p.count(PropertyId::UserProperty), 30u);
}

TEST(Properties5, LengthOverrunIsMalformed) {
  Properties p;
  // Length 10, 3 bytes follow.
  EXPECT_EQ(decode_block(PropertyContext::Publish, bytes({10, 0x01, 0x01, 0x23}), p).status,
            DecodeStatus::Malformed);
  // A value running past the end of the block (Topic Alias needs 2 bytes).
  EXPECT_EQ(block_status(PropertyContext::Publish, bytes({0x23, 0x01})), DecodeStatus::Malformed);
  // A string whose length runs past the block.
  EXPECT_EQ(block_status(PropertyContext::Publish, bytes({0x03, 0, 5, 'a'})),
            DecodeStatus::Malformed);
  // A user property missing its value.
  EXPECT_EQ(block_status(PropertyContext::Publish, bytes({0x26}) + str("k")),
            DecodeStatus::Malformed);
  // Truncated Property Length itself.
  EXPECT_EQ(decode_block(PropertyContext::Publish, bytes({0x80}), p).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(decode_block(PropertyContext::Publish, "", p).status, DecodeStatus::Malformed);
}

// [MQTT-1.5.5-1]: Variable Byte Integers use the fewest bytes.
TEST(Properties5, NonMinimalVariableByteIntegerIsMalformed_MQTT_1_5_5_1) {
  Properties p;
  EXPECT_EQ(decode_block(PropertyContext::Publish, bytes({0x80, 0x00}), p).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(decode_block(PropertyContext::Publish, bytes({0xFF, 0xFF, 0xFF, 0xFF, 0x01}), p).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(block_status(PropertyContext::Publish, bytes({0x0B, 0x81, 0x00})),
            DecodeStatus::Malformed);
  EXPECT_EQ(block_status(PropertyContext::Publish, bytes({0x0B, 0x81, 0x01})), DecodeStatus::Ok);
}

TEST(Properties5, UnknownIdentifierIsMalformed_2_2_2_2) {
  for (int id : {0x00, 0x04, 0x07, 0x0A, 0x10, 0x14, 0x1B, 0x1E, 0x20, 0x2B, 0x7F}) {
    EXPECT_EQ(block_status(PropertyContext::Publish, bytes({id, 0})), DecodeStatus::Malformed)
        << id;
  }
  // A two-byte identifier (0x80 0x01 = 128) is unknown too.
  EXPECT_EQ(block_status(PropertyContext::Publish, bytes({0x80, 0x01, 0})),
            DecodeStatus::Malformed);
}

TEST(Properties5, PropertyNotAllowedInPacketIsMalformed_2_2_2_2) {
  using C = PropertyContext;
  EXPECT_EQ(block_status(C::Connect, bytes({0x23, 0, 1})), DecodeStatus::Malformed);  // alias
  EXPECT_EQ(block_status(C::Publish, bytes({0x1F}) + str("why")), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Will, bytes({0x11, 0, 0, 0, 1})), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Connect, bytes({0x18, 0, 0, 0, 1})), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Unsubscribe, bytes({0x0B, 1})), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Puback, bytes({0x11, 0, 0, 0, 1})), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Disconnect, bytes({0x15}) + str("m")), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Auth, bytes({0x21, 0, 1})), DecodeStatus::Malformed);
}

TEST(Properties5, DuplicatePropertyIsProtocolError) {
  using C = PropertyContext;
  EXPECT_EQ(block_status(C::Publish, bytes({0x03}) + str("a") + bytes({0x03}) + str("b")),
            DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Connect, bytes({0x21, 0, 1, 0x21, 0, 2})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Publish, bytes({0x01, 0, 0x01, 0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Puback, bytes({0x1F}) + str("a") + bytes({0x1F}) + str("a")),
            DecodeStatus::ProtocolError);
  // Subscription Identifier: repeatable in PUBLISH only.
  EXPECT_EQ(block_status(C::Publish, bytes({0x0B, 1, 0x0B, 2, 0x0B, 1})), DecodeStatus::Ok);
  EXPECT_EQ(block_status(C::Subscribe, bytes({0x0B, 1, 0x0B, 2})), DecodeStatus::ProtocolError);
  // User Property: repeatable everywhere, same name included.
  const std::string up = bytes({0x26}) + str("k") + str("v");
  for (C c :
       {C::Connect, C::Will, C::Connack, C::Publish, C::Puback, C::Pubrec, C::Pubrel, C::Pubcomp,
        C::Subscribe, C::Suback, C::Unsubscribe, C::Unsuback, C::Disconnect, C::Auth}) {
    EXPECT_EQ(block_status(c, up + up + up), DecodeStatus::Ok) << static_cast<int>(c);
  }
}

// [MQTT-1.5.4-1], [MQTT-1.5.7-1]: strings and string pairs must be UTF-8.
TEST(Properties5, BadUtf8InStringPropertyIsMalformed) {
  using C = PropertyContext;
  const std::string bad = bytes({0, 2, 0xC3, 0x28});
  const std::string nul = bytes({0, 1, 0x00});
  EXPECT_EQ(block_status(C::Publish, bytes({0x03}) + bad), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Publish, bytes({0x08}) + bad), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Puback, bytes({0x1F}) + nul), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Publish, bytes({0x26}) + bad + str("v")), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Publish, bytes({0x26}) + str("k") + bad), DecodeStatus::Malformed);
  EXPECT_EQ(block_status(C::Connack, bytes({0x12}) + bytes({0, 3, 0xED, 0xA0, 0x80})),
            DecodeStatus::Malformed);  // a surrogate
  // Binary data is not UTF-8 checked.
  EXPECT_EQ(block_status(C::Publish, bytes({0x09}) + bad), DecodeStatus::Ok);
  EXPECT_EQ(block_status(C::Connect, bytes({0x15}) + str("m") + bytes({0x16}) + bad),
            DecodeStatus::Ok);
  // Multi-byte UTF-8 is fine: "A" U+2A6D4 (the spec's example in 1.5.4).
  EXPECT_EQ(block_status(C::Publish, bytes({0x03, 0, 5, 'A', 0xF0, 0xAA, 0x9B, 0x94})),
            DecodeStatus::Ok);
}

TEST(Properties5, ForbiddenValuesAreProtocolErrors) {
  using C = PropertyContext;
  EXPECT_EQ(block_status(C::Connect, bytes({0x21, 0, 0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Connack, bytes({0x21, 0, 0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Connect, bytes({0x27, 0, 0, 0, 0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Connack, bytes({0x27, 0, 0, 0, 0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Publish, bytes({0x23, 0, 0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Publish, bytes({0x0B, 0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Subscribe, bytes({0x0B, 0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Publish, bytes({0x01, 2})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Will, bytes({0x01, 0xFF})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Connect, bytes({0x17, 2})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Connect, bytes({0x19, 2})), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Connack, bytes({0x24, 2})), DecodeStatus::ProtocolError);
  for (int id : {0x25, 0x28, 0x29, 0x2A}) {
    EXPECT_EQ(block_status(C::Connack, bytes({id, 2})), DecodeStatus::ProtocolError) << id;
    EXPECT_EQ(block_status(C::Connack, bytes({id, 1})), DecodeStatus::Ok) << id;
    EXPECT_EQ(block_status(C::Connack, bytes({id, 0})), DecodeStatus::Ok) << id;
  }
  // [MQTT-3.3.2-14] Response Topic is a topic name: no wildcards, not empty.
  EXPECT_EQ(block_status(C::Publish, bytes({0x08}) + str("a/+")), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Will, bytes({0x08}) + str("#")), DecodeStatus::ProtocolError);
  EXPECT_EQ(block_status(C::Publish, bytes({0x08}) + str("")), DecodeStatus::ProtocolError);
  // Edge values that are fine.
  EXPECT_EQ(block_status(C::Connect, bytes({0x21, 0, 1, 0x27, 0, 0, 0, 1, 0x22, 0, 0})),
            DecodeStatus::Ok);
  EXPECT_EQ(block_status(C::Publish, bytes({0x23, 0xFF, 0xFF, 0x02, 0, 0, 0, 0})),
            DecodeStatus::Ok);
}

TEST(Properties5, IteratorStopsAtUnparseableBytes) {
  // A view over bytes nobody validated: the valid prefix is visible, then
  // iteration ends instead of reading out of bounds.
  const std::string raw = bytes({0x01, 1, 0x23, 0, 7, 0x03, 0, 9, 'x'});
  Properties p(raw);
  std::vector<Property> seen(p.begin(), p.end());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].id, PropertyId::TopicAlias);
  EXPECT_EQ(Properties(bytes({0x7F, 0})).begin(), Properties(bytes({0x7F, 0})).end());
}

TEST(Properties5, WriterRejectsWrongTypesAndOversizedValues) {
  PropertyWriter w;
  w.add_u16(PropertyId::ContentType, 1);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 0u);
  w.clear();
  EXPECT_TRUE(w.ok());
  w.add_string(PropertyId::TopicAlias, "x");
  EXPECT_FALSE(w.ok());
  w.clear();
  w.add_varint(PropertyId::SubscriptionIdentifier, kMaxRemainingLength + 1);
  EXPECT_FALSE(w.ok());
  w.clear();
  w.add_string(PropertyId::ReasonString, std::string(65536, 'x'));
  EXPECT_FALSE(w.ok());
  w.clear();
  w.add_user_property(std::string(65536, 'x'), "v");
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 0u);
  w.clear();
  w.add_string(PropertyId::ReasonString, std::string(65535, 'x'));
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.size(), 1u + 2 + 65535);
}

// The writer can append straight into a packet buffer.
TEST(Properties5, WriterAppendsToAnExternalBuffer) {
  std::string buf = "head";
  PropertyWriter w(buf);
  w.add_byte(PropertyId::PayloadFormatIndicator, 1);
  EXPECT_EQ(buf, "head" + bytes({0x01, 1}));
  EXPECT_EQ(w.bytes(), bytes({0x01, 1}));
  w.clear();
  EXPECT_EQ(buf, "head");
}

// Forwarding a PUBLISH: keep everything but the per-connection properties,
// User Properties in their order [MQTT-3.3.2-17], [MQTT-3.3.2-18].
TEST(Properties5, ForwardingCopiesAllButPerConnectionProperties) {
  PropertyWriter in;
  in.add_user_property("a", "1")
      .add_u16(PropertyId::TopicAlias, 3)
      .add_u32(PropertyId::MessageExpiryInterval, 60)
      .add_string(PropertyId::ContentType, "json")
      .add_user_property("b", "2")
      .add_byte(PropertyId::PayloadFormatIndicator, 1)
      .add_user_property("a", "3");
  PropertyWriter out;
  out.add_except(in.view(), {PropertyId::TopicAlias, PropertyId::SubscriptionIdentifier,
                             PropertyId::MessageExpiryInterval});
  out.add_u32(PropertyId::MessageExpiryInterval, 42)
      .add_varint(PropertyId::SubscriptionIdentifier, 7);
  const Properties p = out.view();
  EXPECT_EQ(p.count(PropertyId::TopicAlias), 0u);
  EXPECT_EQ(p.find(PropertyId::MessageExpiryInterval)->number, 42u);
  EXPECT_EQ(p.find(PropertyId::ContentType)->str, "json");
  EXPECT_EQ(p.find(PropertyId::PayloadFormatIndicator)->number, 1u);
  using UP = std::vector<std::pair<std::string_view, std::string_view>>;
  EXPECT_EQ(user_props(p), (UP{{"a", "1"}, {"b", "2"}, {"a", "3"}}));

  PropertyWriter only_users;
  only_users.add_all(in.view(), PropertyId::UserProperty);
  EXPECT_EQ(user_props(only_users.view()), (UP{{"a", "1"}, {"b", "2"}, {"a", "3"}}));
  EXPECT_EQ(only_users.view().count(PropertyId::ContentType), 0u);
}

// ================================================================ reason codes

TEST(ReasonCode5, NamesAndTables) {
  EXPECT_STREQ(to_string(ReasonCode::Success), "Success");
  EXPECT_STREQ(to_string(ReasonCode::TopicAliasInvalid), "Topic Alias invalid");
  EXPECT_STREQ(to_string(ReasonCode::WildcardSubscriptionsNotSupported),
               "Wildcard Subscriptions not supported");
  EXPECT_STREQ(to_string(static_cast<ReasonCode>(0x03)), "unknown reason code");
  int known = 0;
  for (int c = 0; c < 256; ++c) known += known_reason_code(static_cast<uint8_t>(c)) ? 1 : 0;
  EXPECT_EQ(known, 43);  // Table 2-6

  auto count = [](PacketType t) {
    int n = 0;
    for (int c = 0; c < 256; ++c) n += valid_reason_code(t, static_cast<ReasonCode>(c)) ? 1 : 0;
    return n;
  };
  EXPECT_EQ(count(PacketType::Connack), 22);     // Table 3-1
  EXPECT_EQ(count(PacketType::Puback), 9);       // Table 3-4
  EXPECT_EQ(count(PacketType::Pubrec), 9);       // Table 3-5
  EXPECT_EQ(count(PacketType::Pubrel), 2);       // Table 3-6
  EXPECT_EQ(count(PacketType::Pubcomp), 2);      // Table 3-7
  EXPECT_EQ(count(PacketType::Suback), 12);      // Table 3-8
  EXPECT_EQ(count(PacketType::Unsuback), 7);     // Table 3-9
  EXPECT_EQ(count(PacketType::Disconnect), 29);  // Table 3-10
  EXPECT_EQ(count(PacketType::Auth), 3);         // Table 3-11
  EXPECT_EQ(count(PacketType::Publish), 0);
  EXPECT_TRUE(valid_reason_code(PacketType::Disconnect, ReasonCode::DisconnectWithWillMessage));
  EXPECT_FALSE(valid_reason_code(PacketType::Connack, ReasonCode::DisconnectWithWillMessage));
  EXPECT_TRUE(valid_reason_code(PacketType::Pubrel, ReasonCode::PacketIdentifierNotFound));
  EXPECT_FALSE(valid_reason_code(PacketType::Puback, ReasonCode::PacketIdentifierNotFound));
  EXPECT_TRUE(is_failure(ReasonCode::UnspecifiedError));
  EXPECT_FALSE(is_failure(ReasonCode::NoMatchingSubscribers));

  EXPECT_EQ(to_reason_code(DecodeStatus::Malformed), ReasonCode::MalformedPacket);
  EXPECT_EQ(to_reason_code(DecodeStatus::ProtocolError), ReasonCode::ProtocolError);
  EXPECT_EQ(to_reason_code(DecodeStatus::TooLarge), ReasonCode::PacketTooLarge);
  EXPECT_EQ(to_reason_code(DecodeStatus::BadProtocolVersion),
            ReasonCode::UnsupportedProtocolVersion);
  EXPECT_EQ(to_reason_code(DecodeStatus::Ok), ReasonCode::Success);
  // A result may name a more specific code than its status.
  EXPECT_EQ(to_reason_code(DecodeResult{DecodeStatus::ProtocolError, "x"}),
            ReasonCode::ProtocolError);
  EXPECT_EQ(to_reason_code(DecodeResult{DecodeStatus::ProtocolError, "x",
                                        static_cast<uint8_t>(ReasonCode::TopicAliasInvalid)}),
            ReasonCode::TopicAliasInvalid);
}

// A Topic Alias of 0 is a Protocol Error [MQTT-3.3.2-8] that a server answers
// with 0x94 Topic Alias invalid (3.3.2.3.4): the decode result says so.
TEST(Publish5, TopicAliasZeroNamesTopicAliasInvalid) {
  // PUBLISH QoS 0, topic "t", properties: Topic Alias (0x23) = 0, payload "p".
  const std::string wire = bytes({0x30, 0x08, 0x00, 0x01, 't', 0x03, 0x23, 0x00, 0x00, 'p'});
  Frame f;
  ASSERT_TRUE(read_frame(wire, 1024, f, kLevel5).ok());
  Publish p;
  DecodeResult r = decode_publish(f, kLevel5, p);
  EXPECT_EQ(r.status, DecodeStatus::ProtocolError);
  EXPECT_EQ(to_reason_code(r), ReasonCode::TopicAliasInvalid);
}

// ================================================================ framing

TEST(ReadFrame5, AuthIsFramedOnlyAtLevel5_MQTT_3_15_1_1) {
  const std::string wire = bytes({0xF0, 0x00});
  Frame f;
  EXPECT_EQ(read_frame(wire, kBig, f).status, DecodeStatus::Malformed);  // default: 3.1.1
  EXPECT_EQ(read_frame(wire, kBig, f, kLevel311).status, DecodeStatus::Malformed);
  ASSERT_TRUE(read_frame(wire, kBig, f, kLevel5).ok());
  EXPECT_EQ(f.type, PacketType::Auth);
  EXPECT_EQ(f.size, 2u);
  // Reserved flag bits of AUTH are 0.
  EXPECT_EQ(read_frame(bytes({0xF1, 0x00}), kBig, f, kLevel5).status, DecodeStatus::Malformed);
  // Other types are framed the same at both levels.
  EXPECT_EQ(read_frame(bytes({0x62, 0x02, 0, 1}), kBig, f, kLevel5).status, DecodeStatus::Ok);
  EXPECT_EQ(read_frame(bytes({0x60, 0x02, 0, 1}), kBig, f, kLevel5).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(read_frame(bytes({0x00, 0x00}), kBig, f, kLevel5).status, DecodeStatus::Malformed);
}

// ================================================================ CONNECT

// Figure 3-6 (CONNECT variable header example): protocol "MQTT" level 5,
// flags 0xCE (user name, password, will QoS 1, will, clean start), keep
// alive 10, properties: Session Expiry Interval 10.
TEST(Connect5, SpecExampleVariableHeader_Figure_3_6) {
  const std::string vh = bytes(
      {0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xCE, 0x00, 0x0A, 0x05, 0x11, 0x00, 0x00, 0x00, 0x0A});
  const std::string payload =
      str("cid") + bytes({0x00}) + str("will/t") + str("bye") + str("user") + str("pw");
  const std::string wire =
      bytes({0x10, static_cast<int>(vh.size() + payload.size())}) + vh + payload;
  Connect c;
  const DecodeResult r = decode_connect(frame_of(wire), c);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(c.protocol_name, "MQTT");
  EXPECT_EQ(c.protocol_level, kLevel5);
  EXPECT_TRUE(c.clean_session);
  EXPECT_EQ(c.keep_alive, 10);
  EXPECT_EQ(c.props.session_expiry_interval, 10u);
  EXPECT_EQ(c.props.receive_maximum, 65535);  // defaults
  EXPECT_TRUE(c.props.request_problem_information);
  EXPECT_FALSE(c.props.request_response_information);
  EXPECT_EQ(c.client_id, "cid");
  ASSERT_TRUE(c.will.has_value());
  EXPECT_EQ(c.will->qos, 1);
  EXPECT_FALSE(c.will->retain);
  EXPECT_EQ(c.will->topic, "will/t");
  EXPECT_EQ(c.will->payload, "bye");
  EXPECT_EQ(c.will_props.will_delay_interval, 0u);
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(c.password, "pw");

  // The encoder writes the same bytes.
  std::string again;
  encode_connect(again, kLevel5, c);
  EXPECT_EQ(again, wire);
}

Connect full_connect5(std::string& props_storage) {
  Connect c;
  c.protocol_name = "MQTT";
  c.protocol_level = kLevel5;
  c.clean_session = false;
  c.keep_alive = 300;
  c.client_id = "client-1";
  c.will = Will{"status/client-1", std::string_view("off\0line", 8), 2, true};
  c.username = "alice";
  c.password = std::string_view("s\0cret", 6);
  c.props.session_expiry_interval = 0xFFFFFFFF;
  c.props.receive_maximum = 20;
  c.props.maximum_packet_size = 1 << 20;
  c.props.topic_alias_maximum = 10;
  c.props.request_response_information = true;
  c.props.request_problem_information = false;
  c.props.authentication_method = "SCRAM-SHA-1";
  c.props.authentication_data = std::string_view("\x01\x02", 2);
  c.will_props.will_delay_interval = 30;
  c.will_props.payload_format_indicator = 1;
  c.will_props.message_expiry_interval = 3600;
  c.will_props.content_type = "text/plain";
  c.will_props.response_topic = "replies/1";
  c.will_props.correlation_data = std::string_view("\xff\x00", 2);
  PropertyWriter w;
  w.add_user_property("region", "eu").add_user_property("region", "us");
  props_storage = std::string(w.bytes());
  c.props.properties = Properties(props_storage);
  return c;
}

TEST(Connect5, RoundTripEveryProperty) {
  std::string storage;
  std::string will_storage;
  Connect c = full_connect5(storage);
  PropertyWriter ww;
  ww.add_user_property("w", "1");
  will_storage = std::string(ww.bytes());
  c.will_props.properties = Properties(will_storage);

  std::string wire;
  encode_connect(wire, kLevel5, c);
  ASSERT_FALSE(wire.empty());
  Connect d;
  const DecodeResult r = decode_connect(frame_of(wire), d);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(d.protocol_level, kLevel5);
  EXPECT_FALSE(d.clean_session);
  EXPECT_EQ(d.keep_alive, 300);
  EXPECT_EQ(d.client_id, "client-1");
  ASSERT_TRUE(d.will.has_value());
  EXPECT_EQ(d.will->topic, c.will->topic);
  EXPECT_EQ(d.will->payload, c.will->payload);
  EXPECT_EQ(d.will->qos, 2);
  EXPECT_TRUE(d.will->retain);
  EXPECT_EQ(d.username, "alice");
  EXPECT_EQ(d.password, c.password);
  EXPECT_EQ(d.props.session_expiry_interval, 0xFFFFFFFFu);
  EXPECT_EQ(d.props.receive_maximum, 20);
  EXPECT_EQ(d.props.maximum_packet_size, 1u << 20);
  EXPECT_EQ(d.props.topic_alias_maximum, 10);
  EXPECT_TRUE(d.props.request_response_information);
  EXPECT_FALSE(d.props.request_problem_information);
  EXPECT_EQ(d.props.authentication_method, "SCRAM-SHA-1");
  EXPECT_EQ(d.props.authentication_data, c.props.authentication_data);
  using UP = std::vector<std::pair<std::string_view, std::string_view>>;
  EXPECT_EQ(user_props(d.props.properties), (UP{{"region", "eu"}, {"region", "us"}}));
  EXPECT_EQ(d.will_props.will_delay_interval, 30u);
  EXPECT_EQ(d.will_props.payload_format_indicator, 1);
  EXPECT_EQ(d.will_props.message_expiry_interval, 3600u);
  EXPECT_EQ(d.will_props.content_type, "text/plain");
  EXPECT_EQ(d.will_props.response_topic, "replies/1");
  EXPECT_EQ(d.will_props.correlation_data, c.will_props.correlation_data);
  EXPECT_EQ(user_props(d.will_props.properties), (UP{{"w", "1"}}));

  // The 3.1.1 decoder still accepts it (properties skipped).
  Connect old;
  ASSERT_TRUE(decode_connect(frame_of(wire), old).ok());
  EXPECT_EQ(old.client_id, "client-1");
  EXPECT_EQ(old.will->topic, c.will->topic);
}

// decode_connect_v5 handles every level, so the broker can call it first.
TEST(Connect5, Levels3And4DecodeLikeDecodeConnect) {
  for (uint8_t level : {kLevel31, kLevel311}) {
    Connect c;
    c.protocol_name = level == kLevel31 ? "MQIsdp" : "MQTT";
    c.protocol_level = level;
    c.clean_session = true;
    c.keep_alive = 5;
    c.client_id = "x";
    c.will = Will{"w", "p", 1, false};
    c.username = "u";
    c.password = "p";
    std::string wire;
    encode_connect(wire, c.protocol_level, c);
    Connect v5;
    Connect old;
    ASSERT_TRUE(decode_connect(frame_of(wire), v5).ok());
    ASSERT_TRUE(decode_connect(frame_of(wire), old).ok());
    EXPECT_EQ(v5.protocol_level, level);
    EXPECT_EQ(v5.client_id, old.client_id);
    EXPECT_EQ(v5.will->topic, old.will->topic);
    EXPECT_EQ(v5.username, old.username);
    EXPECT_EQ(v5.props.receive_maximum, 65535);
    EXPECT_TRUE(v5.props.properties.empty());
  }
  // Errors are the same too.
  const std::string bad_level = str("MQTT") + bytes({6, 0, 0, 10}) + str("x");
  Connect v5;
  EXPECT_EQ(decode_connect(make_frame(PacketType::Connect, 0, bad_level), v5).status,
            DecodeStatus::BadProtocolVersion);
}

std::string connect5_body(const std::string& props, int flags = 0x02,
                          const std::string& payload = str("id")) {
  return str("MQTT") + bytes({5, flags, 0, 60}) + block(props) + payload;
}

DecodeStatus connect5_status(const std::string& body) {
  Connect c;
  return decode_connect(make_frame(PacketType::Connect, 0, body), c).status;
}

TEST(Connect5, InvalidPropertiesAreRejected) {
  EXPECT_EQ(connect5_status(connect5_body(bytes({0x21, 0, 0}))), DecodeStatus::ProtocolError);
  EXPECT_EQ(connect5_status(connect5_body(bytes({0x27, 0, 0, 0, 0}))), DecodeStatus::ProtocolError);
  EXPECT_EQ(connect5_status(connect5_body(bytes({0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2}))),
            DecodeStatus::ProtocolError);
  EXPECT_EQ(connect5_status(connect5_body(bytes({0x23, 0, 1}))), DecodeStatus::Malformed);
  EXPECT_EQ(connect5_status(connect5_body(bytes({0x17, 7}))), DecodeStatus::ProtocolError);
  // Authentication Data without Authentication Method (3.1.2.11.10).
  EXPECT_EQ(connect5_status(connect5_body(bytes({0x16}) + str("d"))), DecodeStatus::ProtocolError);
  EXPECT_EQ(connect5_status(connect5_body(bytes({0x15}) + str("m") + bytes({0x16}) + str("d"))),
            DecodeStatus::Ok);
  // Will Properties: a CONNECT-only property there is Malformed.
  const std::string will_payload =
      str("id") + block(bytes({0x11, 0, 0, 0, 1})) + str("w/t") + str("m");
  EXPECT_EQ(connect5_status(connect5_body("", 0x06, will_payload)), DecodeStatus::Malformed);
  const std::string will_ok =
      str("id") + block(bytes({0x18, 0, 0, 0, 1, 0x01, 1})) + str("w/t") + str("m");
  EXPECT_EQ(connect5_status(connect5_body("", 0x06, will_ok)), DecodeStatus::Ok);
  const std::string will_dup =
      str("id") + block(bytes({0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 1})) + str("w/t") + str("m");
  EXPECT_EQ(connect5_status(connect5_body("", 0x06, will_dup)), DecodeStatus::ProtocolError);
  // Truncated property block.
  EXPECT_EQ(connect5_status(str("MQTT") + bytes({5, 2, 0, 60, 5, 0x11, 0})),
            DecodeStatus::Malformed);
  // Password without user name is fine in MQTT 5.
  EXPECT_EQ(connect5_status(connect5_body("", 0x42, str("id") + str("pw"))), DecodeStatus::Ok);
}

// There is one CONNECT decoder for every level now: level-5 properties are
// always validated (the former 3.1.1 decoder skipped them unchecked).
TEST(Connect5, OneDecoderValidatesProperties) {
  const std::string body = connect5_body(bytes({0x7F, 0x23, 0, 0}));
  Connect c;
  EXPECT_EQ(decode_connect(make_frame(PacketType::Connect, 0, body), c).status,
            DecodeStatus::Malformed);
  EXPECT_EQ(connect5_status(body), DecodeStatus::Malformed);
}

TEST(Connect5, MinimalEncoding) {
  Connect c;
  c.clean_session = true;
  c.keep_alive = 60;
  c.client_id = "a";
  std::string wire;
  encode_connect(wire, kLevel5, c);
  EXPECT_EQ(wire, bytes({0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 1, 'a'}));
}

// ================================================================ PUBLISH

// Figure 3-9: topic "a/b", packet identifier 10, no properties.
TEST(Publish5, SpecExampleVariableHeader_Figure_3_9) {
  const std::string vh = bytes({0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 0x00});
  const std::string wire = bytes({0x32, static_cast<int>(vh.size() + 2)}) + vh + "hi";
  Publish p;
  const DecodeResult r = decode_publish(frame_of(wire), kLevel5, p);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.packet_id, 10);
  EXPECT_EQ(p.qos, 1);
  EXPECT_EQ(p.payload, "hi");
  EXPECT_TRUE(p.props.properties.empty());
  std::string again;
  encode_publish_props(again, p, p.props.properties);
  EXPECT_EQ(again, wire);
}

TEST(Publish5, RoundTripWithEveryProperty) {
  PropertyWriter w;
  w.add_byte(PropertyId::PayloadFormatIndicator, 1)
      .add_u32(PropertyId::MessageExpiryInterval, 120)
      .add_u16(PropertyId::TopicAlias, 4)
      .add_string(PropertyId::ResponseTopic, "reply/to")
      .add_string(PropertyId::CorrelationData, std::string_view("\0\1", 2))
      .add_user_property("a", "1")
      .add_varint(PropertyId::SubscriptionIdentifier, 1)
      .add_varint(PropertyId::SubscriptionIdentifier, 300)
      .add_string(PropertyId::ContentType, "application/json")
      .add_user_property("b", "2");
  ASSERT_TRUE(w.ok());
  for (uint8_t qos = 0; qos <= 2; ++qos) {
    Publish p;
    p.topic = "sensors/1/temp";
    p.payload = "{\"t\":21.5}";
    p.qos = qos;
    p.packet_id = qos > 0 ? 77 : 0;
    p.retain = qos == 1;
    p.dup = qos == 2;
    std::string wire;
    encode_publish_props(wire, p, w.view());
    Publish d;
    const DecodeResult r = decode_publish(frame_of(wire), kLevel5, d);
    ASSERT_TRUE(r.ok()) << r.reason;
    EXPECT_EQ(d.topic, p.topic);
    EXPECT_EQ(d.payload, p.payload);
    EXPECT_EQ(d.qos, qos);
    EXPECT_EQ(d.packet_id, p.packet_id);
    EXPECT_EQ(d.retain, p.retain);
    EXPECT_EQ(d.dup, p.dup);
    EXPECT_EQ(d.props.payload_format_indicator, 1);
    EXPECT_EQ(d.props.message_expiry_interval, 120u);
    EXPECT_EQ(d.props.topic_alias, 4);
    EXPECT_EQ(d.props.response_topic, "reply/to");
    EXPECT_EQ(d.props.correlation_data, std::string_view("\0\1", 2));
    EXPECT_EQ(d.props.content_type, "application/json");
    EXPECT_EQ(d.props.subscription_identifier, 1u);
    EXPECT_EQ(d.props.subscription_identifier_count, 2u);
    EXPECT_EQ(d.props.user_property_count, 2u);
    EXPECT_EQ(d.props.properties.raw(), w.bytes());
    // Views point into the frame.
    EXPECT_GE(d.props.properties.raw().data(), wire.data());
    EXPECT_LE(d.props.properties.raw().data() + d.props.properties.raw().size(),
              wire.data() + wire.size());
  }
}

TEST(Publish5, TopicAliasAllowsAnEmptyTopic_3_3_2_1) {
  PropertyWriter w;
  w.add_u16(PropertyId::TopicAlias, 9);
  Publish p;
  p.payload = "x";
  std::string wire;
  encode_publish_props(wire, p, w.view());
  EXPECT_EQ(wire, bytes({0x30, 7, 0, 0, 3, 0x23, 0, 9, 'x'}));
  Publish d;
  ASSERT_TRUE(decode_publish(frame_of(wire), kLevel5, d).ok());
  EXPECT_EQ(d.topic, "");
  EXPECT_EQ(d.props.topic_alias, 9);

  // Empty topic without an alias is a Protocol Error.
  std::string bare;
  encode_publish_props(bare, p, Properties());
  EXPECT_EQ(decode_publish(frame_of(bare), kLevel5, d).status, DecodeStatus::ProtocolError);
}

DecodeStatus publish5_status(uint8_t flags, const std::string& body) {
  Publish p;
  return decode_publish(make_frame(PacketType::Publish, flags, body), kLevel5, p).status;
}

TEST(Publish5, InvalidPackets) {
  // Topic Alias 0 [MQTT-3.3.2-8].
  EXPECT_EQ(publish5_status(0, str("t") + block(bytes({0x23, 0, 0}))), DecodeStatus::ProtocolError);
  // Property not allowed in PUBLISH.
  EXPECT_EQ(publish5_status(0, str("t") + block(bytes({0x21, 0, 1}))), DecodeStatus::Malformed);
  // Duplicated property.
  EXPECT_EQ(publish5_status(0, str("t") + block(bytes({0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1}))),
            DecodeStatus::ProtocolError);
  // Property length overruns the packet.
  EXPECT_EQ(publish5_status(0, str("t") + bytes({9, 0x01, 1})), DecodeStatus::Malformed);
  // No property length at all.
  EXPECT_EQ(publish5_status(0, str("t")), DecodeStatus::Malformed);
  EXPECT_EQ(publish5_status(2, str("t") + u16(1)), DecodeStatus::Malformed);
  // Wildcards, bad UTF-8, QoS 3, DUP on QoS 0, packet id 0.
  EXPECT_EQ(publish5_status(0, str("a/#") + block("")), DecodeStatus::ProtocolError);
  EXPECT_EQ(publish5_status(0, bytes({0, 1, 0xFF}) + block("")), DecodeStatus::Malformed);
  EXPECT_EQ(publish5_status(6, str("t") + u16(1) + block("")), DecodeStatus::Malformed);
  EXPECT_EQ(publish5_status(8, str("t") + block("")), DecodeStatus::Malformed);
  EXPECT_EQ(publish5_status(2, str("t") + u16(0) + block("")), DecodeStatus::ProtocolError);
  // Response Topic with a wildcard [MQTT-3.3.2-14].
  EXPECT_EQ(publish5_status(0, str("t") + block(bytes({0x08}) + str("r/+"))),
            DecodeStatus::ProtocolError);
  Publish p;
  EXPECT_EQ(
      decode_publish(make_frame(PacketType::Subscribe, 2, str("t") + block("")), kLevel5, p).status,
      DecodeStatus::ProtocolError);
}

TEST(Publish5, DecodeDoesNotAllocate) {
  // The decoded value cannot own memory...
  static_assert(std::is_trivially_copyable_v<Publish>);
  static_assert(std::is_trivially_copyable_v<Properties>);
#if defined(MQTT5_TEST_ASAN)
  // ...and the decoder does not allocate on the way.
  PropertyWriter w;
  w.add_user_property("k", "v").add_varint(PropertyId::SubscriptionIdentifier, 5);
  w.add_string(PropertyId::ContentType, "text/plain");
  Publish p;
  p.topic = "a/long/enough/topic/name/to/defeat/any/small/buffer/optimisation";
  p.payload = "payload";
  p.qos = 1;
  p.packet_id = 2;
  std::string wire;
  encode_publish_props(wire, p, w.view());
  ASSERT_TRUE(install_hooks());
  Frame f;
  Publish out;
  const long before = g_mallocs.load();
  const DecodeResult fr = read_frame(wire, kBig, f, kLevel5);
  const DecodeResult pr = decode_publish(f, kLevel5, out);
  const long after = g_mallocs.load();
  ASSERT_TRUE(fr.ok());
  ASSERT_TRUE(pr.ok()) << pr.reason;
  EXPECT_EQ(after, before);
  // The hook is live: a SUBSCRIBE fills a vector.
  Subscribe s;
  s.packet_id = 1;
  s.topics = {request("a", 0)};
  std::string sub;
  encode_subscribe(sub, kLevel5, s);
  Subscribe sout;
  const long before_sub = g_mallocs.load();
  ASSERT_TRUE(decode_subscribe(frame_of(sub), kLevel5, sout).ok());
  EXPECT_GT(g_mallocs.load(), before_sub);
#else
  GTEST_SKIP() << "allocation counting needs AddressSanitizer";
#endif
}

// The fixed-header helper lets the broker send one shared topic/payload with
// per-subscriber header, packet id and properties.
TEST(Publish5, FixedHeaderMatchesEncodePublish) {
  const std::string big_topic(300, 't');
  const std::string big_payload(20'000, 'p');
  const std::string big_props_user(200, 'u');
  PropertyWriter none;
  PropertyWriter small;
  small.add_u16(PropertyId::TopicAlias, 1);
  PropertyWriter big;
  big.add_user_property(big_props_user, "v");
  for (const PropertyWriter* w : {&none, &small, &big}) {
    for (std::string_view topic : {std::string_view("a"), std::string_view(big_topic)}) {
      for (std::string_view payload : {std::string_view(""), std::string_view(big_payload)}) {
        for (uint8_t qos = 0; qos <= 2; ++qos) {
          Publish p;
          p.topic = topic;
          p.payload = payload;
          p.qos = qos;
          p.packet_id = qos > 0 ? 513 : 0;
          p.retain = true;
          std::string wire;
          encode_publish_props(wire, p, w->view());
          uint8_t hdr[5];
          const size_t n = encode_publish_fixed_header_v5(hdr, qos, true, false, topic.size(),
                                                          w->size(), payload.size());
          ASSERT_GT(n, 0u);
          EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(hdr), n), wire.substr(0, n));
          EXPECT_EQ(publish_packet_size_v5(qos, topic.size(), w->size(), payload.size()),
                    wire.size());
          // Assemble it the way the broker would.
          std::string parts(reinterpret_cast<const char*>(hdr), n);
          parts += str(topic);
          if (qos > 0) parts += u16(513);
          parts += vbi(static_cast<uint32_t>(w->size()));
          parts += w->bytes();
          parts += payload;
          EXPECT_EQ(parts, wire);
        }
      }
    }
  }
  uint8_t hdr[5];
  EXPECT_EQ(encode_publish_fixed_header_v5(hdr, 0, false, false, 65536, 0, 0), 0u);
  EXPECT_EQ(encode_publish_fixed_header_v5(hdr, 0, false, false, 1, 0, kMaxRemainingLength), 0u);
  EXPECT_EQ(publish_packet_size_v5(0, 1, kMaxRemainingLength, 0), 0u);
}

TEST(Publish5, PayloadFormatValidation) {
  EXPECT_TRUE(valid_payload_format(0, bytes({0xFF})));
  EXPECT_FALSE(valid_payload_format(1, bytes({0xFF})));
  EXPECT_TRUE(valid_payload_format(1, "text"));
}

// ================================================================ SUBSCRIBE

// Figures 3-19 and 3-21: packet identifier 10, no properties; "a/b" with
// options 0x01 and "c/d" with options 0x02.
TEST(Subscribe5, SpecExample_Figures_3_19_and_3_21) {
  const std::string body = bytes({0x00, 0x0A, 0x00}) + bytes({0x00, 0x03, 'a', '/', 'b', 0x01}) +
                           bytes({0x00, 0x03, 'c', '/', 'd', 0x02});
  const std::string wire = bytes({0x82, static_cast<int>(body.size())}) + body;
  Subscribe s;
  const DecodeResult r = decode_subscribe(frame_of(wire), kLevel5, s);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(s.packet_id, 10);
  EXPECT_EQ(s.subscription_identifier, 0u);
  ASSERT_EQ(s.topics.size(), 2u);
  EXPECT_EQ(s.topics[0].filter, "a/b");
  EXPECT_EQ(s.topics[0].qos, 1);
  EXPECT_EQ(s.topics[1].filter, "c/d");
  EXPECT_EQ(s.topics[1].qos, 2);
  EXPECT_FALSE(s.topics[1].no_local);
  EXPECT_EQ(s.topics[1].retain_handling, RetainHandling::SendOnSubscribe);
  std::string again;
  encode_subscribe(again, kLevel5, s);
  EXPECT_EQ(again, wire);
}

TEST(Subscribe5, RoundTripOptionsAndProperties) {
  Subscribe s;
  s.packet_id = 0xABCD;
  s.subscription_identifier = 16384;
  PropertyWriter w;
  w.add_user_property("app", "x");
  s.properties = w.view();
  for (uint8_t qos = 0; qos <= 2; ++qos) {
    for (int rh = 0; rh <= 2; ++rh) {
      for (int bits = 0; bits < 4; ++bits) {
        TopicRequest t;
        t.filter = "a/+/c";
        t.qos = qos;
        t.no_local = (bits & 1) != 0;
        t.retain_as_published = (bits & 2) != 0;
        t.retain_handling = static_cast<RetainHandling>(rh);
        s.topics.push_back(t);
      }
    }
  }
  TopicRequest shared;
  shared.filter = "$share/group-1/sensors/#";
  shared.qos = 1;
  s.topics.push_back(shared);
  std::string wire;
  encode_subscribe(wire, kLevel5, s);
  Subscribe d;
  const DecodeResult r = decode_subscribe(frame_of(wire), kLevel5, d);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(d.packet_id, 0xABCD);
  EXPECT_EQ(d.subscription_identifier, 16384u);
  EXPECT_EQ(user_props(d.properties).size(), 1u);
  ASSERT_EQ(d.topics.size(), s.topics.size());
  for (size_t i = 0; i < s.topics.size(); ++i) {
    EXPECT_EQ(d.topics[i].filter, s.topics[i].filter);
    EXPECT_EQ(d.topics[i].qos, s.topics[i].qos);
    EXPECT_EQ(d.topics[i].no_local, s.topics[i].no_local);
    EXPECT_EQ(d.topics[i].retain_as_published, s.topics[i].retain_as_published);
    EXPECT_EQ(d.topics[i].retain_handling, s.topics[i].retain_handling);
    EXPECT_EQ(subscription_options(d.topics[i]), subscription_options(s.topics[i]));
  }
  EXPECT_EQ(d.topics.back().share_name, "group-1");
  EXPECT_EQ(d.topics.front().share_name, "");
  // Options byte layout (Figure 3-20).
  TopicRequest t;
  t.qos = 2;
  t.no_local = true;
  t.retain_as_published = true;
  t.retain_handling = RetainHandling::DoNotSend;
  EXPECT_EQ(subscription_options(t), 0x2E);
}

DecodeStatus subscribe5_status(const std::string& body) {
  Subscribe s;
  return decode_subscribe(make_frame(PacketType::Subscribe, 2, body), kLevel5, s).status;
}

TEST(Subscribe5, InvalidOptions) {
  const std::string head = u16(1) + block("");
  EXPECT_EQ(subscribe5_status(head + str("a") + bytes({0x00})), DecodeStatus::Ok);
  // [MQTT-3.8.3-5] reserved bits 6 and 7.
  EXPECT_EQ(subscribe5_status(head + str("a") + bytes({0x40})), DecodeStatus::Malformed);
  EXPECT_EQ(subscribe5_status(head + str("a") + bytes({0x81})), DecodeStatus::Malformed);
  // Retain Handling 3 and QoS 3 (3.8.3.1).
  EXPECT_EQ(subscribe5_status(head + str("a") + bytes({0x30})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(head + str("a") + bytes({0x03})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(head + str("a") + bytes({0x20 | 0x08 | 0x04 | 0x02})),
            DecodeStatus::Ok);
  // Subscription Identifier 0, twice, or in a 5-byte varint.
  EXPECT_EQ(subscribe5_status(u16(1) + block(bytes({0x0B, 0})) + str("a") + bytes({0})),
            DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(u16(1) + block(bytes({0x0B, 1, 0x0B, 1})) + str("a") + bytes({0})),
            DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(u16(1) + block(bytes({0x0B, 0x80, 0x80, 0x80, 0x80, 0x01})) +
                              str("a") + bytes({0})),
            DecodeStatus::Malformed);
  // Properties not allowed in SUBSCRIBE.
  EXPECT_EQ(subscribe5_status(u16(1) + block(bytes({0x23, 0, 1})) + str("a") + bytes({0})),
            DecodeStatus::Malformed);
  // No filters, packet id 0, truncated entry, bad flags.
  EXPECT_EQ(subscribe5_status(head), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(u16(0) + block("") + str("a") + bytes({0})),
            DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(head + str("a")), DecodeStatus::Malformed);
  EXPECT_EQ(subscribe5_status(u16(1)), DecodeStatus::Malformed);
  Subscribe s;
  EXPECT_EQ(decode_subscribe(make_frame(PacketType::Subscribe, 0, head + str("a") + bytes({0})),
                             kLevel5, s)
                .status,
            DecodeStatus::Malformed);
  // Bad filters.
  EXPECT_EQ(subscribe5_status(head + str("a/#/b") + bytes({0})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(head + bytes({0, 1, 0xC0}) + bytes({0})), DecodeStatus::Malformed);
}

// Section 4.8.2: "$share/{ShareName}/{filter}".
TEST(Subscribe5, SharedSubscriptions_MQTT_4_8_2_1_and_2) {
  const std::string head = u16(1) + block("");
  EXPECT_EQ(subscribe5_status(head + str("$share/g/a/b") + bytes({1})), DecodeStatus::Ok);
  EXPECT_EQ(subscribe5_status(head + str("$share/g/#") + bytes({1})), DecodeStatus::Ok);
  EXPECT_EQ(subscribe5_status(head + str("$share//a") + bytes({1})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(head + str("$share/g") + bytes({1})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(head + str("$share/g/") + bytes({1})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(head + str("$share/+/a") + bytes({1})), DecodeStatus::ProtocolError);
  EXPECT_EQ(subscribe5_status(head + str("$share/#") + bytes({1})), DecodeStatus::ProtocolError);
  // No Local on a shared subscription [MQTT-3.8.3-4].
  EXPECT_EQ(subscribe5_status(head + str("$share/g/a") + bytes({0x04})),
            DecodeStatus::ProtocolError);
  // "$share" without the slash is an ordinary filter.
  EXPECT_EQ(subscribe5_status(head + str("$share") + bytes({0x04})), DecodeStatus::Ok);

  std::string_view name;
  std::string_view inner;
  ASSERT_TRUE(parse_shared_subscription("$share/consumers/a/+/c", name, inner));
  EXPECT_EQ(name, "consumers");
  EXPECT_EQ(inner, "a/+/c");
  EXPECT_FALSE(parse_shared_subscription("a/b", name, inner));
  EXPECT_FALSE(is_shared_subscription("$SHARE/g/a"));

  // 3.1.1 keeps treating it as an ordinary filter.
  Subscribe old;
  const std::string body = u16(1) + str("$share/+/a") + bytes({1});
  EXPECT_TRUE(decode_subscribe(make_frame(PacketType::Subscribe, 2, body), kLevel311, old).ok());
}

// ================================================================ UNSUBSCRIBE

TEST(Unsubscribe5, RoundTripAndExactBytes) {
  Unsubscribe u;
  u.packet_id = 10;
  u.filters = {"a/b", "$share/g/c/#"};
  std::string wire;
  encode_unsubscribe(wire, kLevel5, u);
  EXPECT_EQ(wire, bytes({0xA2, 22, 0, 10, 0}) + str("a/b") + str("$share/g/c/#"));
  Unsubscribe d;
  ASSERT_TRUE(decode_unsubscribe(frame_of(wire), kLevel5, d).ok());
  EXPECT_EQ(d.packet_id, 10);
  EXPECT_EQ(d.filters, u.filters);

  PropertyWriter w;
  w.add_user_property("x", "y");
  u.properties = w.view();
  wire.clear();
  encode_unsubscribe(wire, kLevel5, u);
  ASSERT_TRUE(decode_unsubscribe(frame_of(wire), kLevel5, d).ok());
  EXPECT_EQ(user_props(d.properties).size(), 1u);
}

TEST(Unsubscribe5, InvalidPackets) {
  auto status = [](const std::string& body) {
    Unsubscribe u;
    return decode_unsubscribe(make_frame(PacketType::Unsubscribe, 2, body), kLevel5, u).status;
  };
  EXPECT_EQ(status(u16(1) + block(bytes({0x0B, 1})) + str("a")), DecodeStatus::Malformed);
  EXPECT_EQ(status(u16(1) + block("")), DecodeStatus::ProtocolError);
  EXPECT_EQ(status(u16(0) + block("") + str("a")), DecodeStatus::ProtocolError);
  EXPECT_EQ(status(u16(1) + block("") + str("$share/x")), DecodeStatus::ProtocolError);
  EXPECT_EQ(status(u16(1) + block("") + bytes({0, 3, 'a'})), DecodeStatus::Malformed);
  EXPECT_EQ(status(u16(1) + block(bytes({0x26}) + str("k") + bytes({0, 1, 0xFF})) + str("a")),
            DecodeStatus::Malformed);
}

// ================================================================ acks

TEST(Ack5, ShortFormsAndExactBytes_MQTT_3_4_2_1) {
  std::string wire;
  encode_ack(wire, kLevel5, PacketType::Puback, 1);
  EXPECT_EQ(wire, bytes({0x40, 0x02, 0x00, 0x01}));  // Success, no properties
  wire.clear();
  encode_ack(wire, kLevel5, PacketType::Pubrec, 0x0102, ReasonCode::NoMatchingSubscribers);
  EXPECT_EQ(wire, bytes({0x50, 0x03, 0x01, 0x02, 0x10}));
  wire.clear();
  encode_ack(wire, kLevel5, PacketType::Pubrel, 7, ReasonCode::PacketIdentifierNotFound);
  EXPECT_EQ(wire, bytes({0x62, 0x03, 0x00, 0x07, 0x92}));
  wire.clear();
  encode_ack(wire, kLevel5, PacketType::Pubcomp, 7);
  EXPECT_EQ(wire, bytes({0x70, 0x02, 0x00, 0x07}));

  Ack a;
  a.type = PacketType::Puback;
  a.packet_id = 3;
  a.reason_code = ReasonCode::QuotaExceeded;
  a.props.reason_string = "full";
  wire.clear();
  encode_ack(wire, kLevel5, a);
  EXPECT_EQ(wire, bytes({0x40, 0x0B, 0x00, 0x03, 0x97, 0x07, 0x1F}) + str("full"));
  // Success with a reason string still carries the reason code byte.
  a.reason_code = ReasonCode::Success;
  wire.clear();
  encode_ack(wire, kLevel5, a);
  EXPECT_EQ(wire, bytes({0x40, 0x0B, 0x00, 0x03, 0x00, 0x07, 0x1F}) + str("full"));
}

TEST(Ack5, DecodeEveryLength) {
  Ack a;
  // Remaining length 2: Success.
  ASSERT_TRUE(decode_ack(make_frame(PacketType::Puback, 0, u16(9)), kLevel5, a).ok());
  EXPECT_EQ(a.packet_id, 9);
  EXPECT_EQ(a.reason_code, ReasonCode::Success);
  // 3: reason code, no Property Length (3.4.2.2.1).
  ASSERT_TRUE(
      decode_ack(make_frame(PacketType::Pubrec, 0, u16(9) + bytes({0x80})), kLevel5, a).ok());
  EXPECT_EQ(a.type, PacketType::Pubrec);
  EXPECT_EQ(a.reason_code, ReasonCode::UnspecifiedError);
  // 4: reason code and empty properties.
  ASSERT_TRUE(
      decode_ack(make_frame(PacketType::Pubrel, 2, u16(9) + bytes({0, 0})), kLevel5, a).ok());
  EXPECT_EQ(a.type, PacketType::Pubrel);
  EXPECT_TRUE(a.props.properties.empty());
}

TEST(Ack5, RoundTripEveryTypeWithProperties) {
  for (PacketType t :
       {PacketType::Puback, PacketType::Pubrec, PacketType::Pubrel, PacketType::Pubcomp}) {
    PropertyWriter w;
    w.add_user_property("diag", "1").add_user_property("diag", "2");
    Ack a;
    a.type = t;
    a.packet_id = 65535;
    a.reason_code = (t == PacketType::Pubrel || t == PacketType::Pubcomp)
                        ? ReasonCode::PacketIdentifierNotFound
                        : ReasonCode::NotAuthorized;
    a.props.reason_string = "because";
    a.props.properties = w.view();
    std::string wire;
    encode_ack(wire, kLevel5, a);
    Ack d;
    const DecodeResult r = decode_ack(frame_of(wire), kLevel5, d);
    ASSERT_TRUE(r.ok()) << r.reason;
    EXPECT_EQ(d.type, t);
    EXPECT_EQ(d.packet_id, 65535);
    EXPECT_EQ(d.reason_code, a.reason_code);
    EXPECT_EQ(d.props.reason_string, "because");
    using UP = std::vector<std::pair<std::string_view, std::string_view>>;
    EXPECT_EQ(user_props(d.props.properties), (UP{{"diag", "1"}, {"diag", "2"}}));
  }
}

TEST(Ack5, InvalidAcks) {
  Ack a;
  auto status = [&](PacketType t, uint8_t flags, const std::string& body) {
    return decode_ack(make_frame(t, flags, body), kLevel5, a).status;
  };
  // Reason codes the packet does not allow [MQTT-3.4.2-1], [MQTT-3.6.2-1].
  EXPECT_EQ(status(PacketType::Puback, 0, u16(1) + bytes({0x92})), DecodeStatus::ProtocolError);
  EXPECT_EQ(status(PacketType::Pubrel, 2, u16(1) + bytes({0x10})), DecodeStatus::ProtocolError);
  EXPECT_EQ(status(PacketType::Pubcomp, 0, u16(1) + bytes({0x01})), DecodeStatus::ProtocolError);
  // Properties that do not belong, trailing bytes, overruns.
  EXPECT_EQ(status(PacketType::Puback, 0, u16(1) + bytes({0, 3, 0x23, 0, 1})),
            DecodeStatus::Malformed);
  EXPECT_EQ(status(PacketType::Puback, 0, u16(1) + bytes({0, 0, 0})), DecodeStatus::Malformed);
  EXPECT_EQ(status(PacketType::Puback, 0, u16(1) + bytes({0, 5, 0x1F})), DecodeStatus::Malformed);
  // Packet id 0, short body, flags.
  EXPECT_EQ(status(PacketType::Puback, 0, u16(0)), DecodeStatus::ProtocolError);
  EXPECT_EQ(status(PacketType::Puback, 0, bytes({1})), DecodeStatus::Malformed);
  EXPECT_EQ(status(PacketType::Pubrel, 0, u16(1)), DecodeStatus::Malformed);
  EXPECT_EQ(status(PacketType::Puback, 2, u16(1)), DecodeStatus::Malformed);
  EXPECT_EQ(status(PacketType::Unsuback, 0, u16(1)), DecodeStatus::ProtocolError);
}

// ================================================================ SUBACK / UNSUBACK

TEST(Suback5, ExactBytesAndRoundTrip) {
  const std::array<ReasonCode, 3> codes = {ReasonCode::GrantedQos1, ReasonCode::NotAuthorized,
                                           ReasonCode::SharedSubscriptionsNotSupported};
  std::string wire;
  encode_suback(wire, kLevel5, 10, codes);
  EXPECT_EQ(wire, bytes({0x90, 0x06, 0x00, 0x0A, 0x00, 0x01, 0x87, 0x9E}));
  Suback d;
  ASSERT_TRUE(decode_suback(frame_of(wire), kLevel5, d).ok());
  EXPECT_EQ(d.packet_id, 10);
  EXPECT_EQ(d.reason_codes, std::vector<ReasonCode>(codes.begin(), codes.end()));

  PropertyWriter w;
  w.add_user_property("k", "v");
  AckProperties props;
  props.reason_string = "partial";
  props.properties = w.view();
  wire.clear();
  encode_suback(wire, kLevel5, 11, codes, props);
  ASSERT_TRUE(decode_suback(frame_of(wire), kLevel5, d).ok());
  EXPECT_EQ(d.props.reason_string, "partial");
  EXPECT_EQ(user_props(d.props.properties).size(), 1u);
  EXPECT_EQ(d.reason_codes.size(), 3u);

  // UNSUBACK.
  const std::array<ReasonCode, 2> ucodes = {ReasonCode::Success, ReasonCode::NoSubscriptionExisted};
  wire.clear();
  encode_unsuback(wire, kLevel5, 12, ucodes);
  EXPECT_EQ(wire, bytes({0xB0, 0x05, 0x00, 0x0C, 0x00, 0x00, 0x11}));
  Unsuback u;
  ASSERT_TRUE(decode_unsuback(frame_of(wire), kLevel5, u).ok());
  EXPECT_EQ(u.reason_codes, std::vector<ReasonCode>(ucodes.begin(), ucodes.end()));

  // A SUBACK-only code in an UNSUBACK, none at all, a CONNACK code.
  EXPECT_EQ(
      decode_unsuback(make_frame(PacketType::Unsuback, 0, u16(1) + bytes({0, 0x01})), kLevel5, u)
          .status,
      DecodeStatus::ProtocolError);
  EXPECT_EQ(
      decode_suback(make_frame(PacketType::Suback, 0, u16(1) + bytes({0})), kLevel5, d).status,
      DecodeStatus::ProtocolError);
  EXPECT_EQ(decode_suback(make_frame(PacketType::Suback, 0, u16(1) + bytes({0, 0x86})), kLevel5, d)
                .status,
            DecodeStatus::ProtocolError);
}

// ================================================================ CONNACK

TEST(Connack5, ExactBytes) {
  Connack c;
  std::string wire;
  encode_connack(wire, kLevel5, c);
  EXPECT_EQ(wire, bytes({0x20, 0x03, 0x00, 0x00, 0x00}));
  c.session_present = true;
  c.props.receive_maximum = 100;
  c.props.assigned_client_identifier = "auto-1";
  wire.clear();
  encode_connack(wire, kLevel5, c);
  // Properties: Receive Maximum (3 bytes) + Assigned Client Identifier (9).
  EXPECT_EQ(wire, bytes({0x20, 0x0F, 0x01, 0x00, 0x0C, 0x21, 0x00, 0x64, 0x12}) + str("auto-1"));
  c = Connack{};
  c.reason_code = ReasonCode::UnsupportedProtocolVersion;
  wire.clear();
  encode_connack(wire, kLevel5, c);
  EXPECT_EQ(wire, bytes({0x20, 0x03, 0x00, 0x84, 0x00}));
}

TEST(Connack5, RoundTripEveryProperty) {
  PropertyWriter w;
  w.add_user_property("server", "a");
  Connack c;
  c.session_present = true;
  c.reason_code = ReasonCode::Success;
  ConnackProperties& p = c.props;
  p.session_expiry_interval = 600;
  p.receive_maximum = 32;
  p.maximum_qos = 1;
  p.retain_available = false;
  p.maximum_packet_size = 65536;
  p.assigned_client_identifier = "gen-42";
  p.topic_alias_maximum = 16;
  p.reason_string = "welcome";
  p.wildcard_subscription_available = false;
  p.subscription_identifiers_available = true;
  p.shared_subscription_available = false;
  p.server_keep_alive = 30;
  p.response_information = "resp/gen-42";
  p.server_reference = "other:1883";
  p.authentication_method = "token";
  p.authentication_data = std::string_view("\x00\x01", 2);
  p.properties = w.view();
  std::string wire;
  encode_connack(wire, kLevel5, c);
  Connack d;
  const DecodeResult r = decode_connack(frame_of(wire), kLevel5, d);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_TRUE(d.session_present);
  EXPECT_EQ(d.reason_code, ReasonCode::Success);
  const ConnackProperties& q = d.props;
  EXPECT_EQ(q.session_expiry_interval, 600u);
  EXPECT_EQ(q.receive_maximum, 32);
  EXPECT_EQ(q.maximum_qos, 1);
  EXPECT_EQ(q.retain_available, false);
  EXPECT_EQ(q.maximum_packet_size, 65536u);
  EXPECT_EQ(q.assigned_client_identifier, "gen-42");
  EXPECT_EQ(q.topic_alias_maximum, 16);
  EXPECT_EQ(q.reason_string, "welcome");
  EXPECT_EQ(q.wildcard_subscription_available, false);
  EXPECT_EQ(q.subscription_identifiers_available, true);
  EXPECT_EQ(q.shared_subscription_available, false);
  EXPECT_EQ(q.server_keep_alive, 30);
  EXPECT_EQ(q.response_information, "resp/gen-42");
  EXPECT_EQ(q.server_reference, "other:1883");
  EXPECT_EQ(q.authentication_method, "token");
  EXPECT_EQ(q.authentication_data, p.authentication_data);
  EXPECT_EQ(user_props(q.properties).size(), 1u);
  // A decoded CONNACK re-encodes to the same bytes (typed fields first, then
  // the User Properties, the encoder's order).
  std::string again;
  encode_connack(again, kLevel5, d);
  EXPECT_EQ(again, wire);
}

TEST(Connack5, InvalidConnacks) {
  Connack c;
  auto status = [&](const std::string& body) {
    return decode_connack(make_frame(PacketType::Connack, 0, body), kLevel5, c).status;
  };
  EXPECT_EQ(status(bytes({0, 0, 0})), DecodeStatus::Ok);
  EXPECT_EQ(status(bytes({2, 0, 0})), DecodeStatus::Malformed);               // [MQTT-3.2.2-1]
  EXPECT_EQ(status(bytes({1, 0x80, 0})), DecodeStatus::ProtocolError);        // [MQTT-3.2.2-6]
  EXPECT_EQ(status(bytes({0, 0x01, 0})), DecodeStatus::ProtocolError);        // 3.1.1 code
  EXPECT_EQ(status(bytes({0, 0})), DecodeStatus::Malformed);                  // no properties
  EXPECT_EQ(status(bytes({0, 0, 2, 0x24, 2})), DecodeStatus::ProtocolError);  // Maximum QoS 2
  EXPECT_EQ(status(bytes({0, 0, 2, 0x01, 1})), DecodeStatus::Malformed);      // PUBLISH property
  EXPECT_EQ(status(bytes({0, 0, 0, 0})), DecodeStatus::Malformed);            // trailing byte
}

// ================================================================ DISCONNECT

TEST(Disconnect5, ShortFormsAndExactBytes_3_14_2_1) {
  std::string wire;
  encode_disconnect(wire, kLevel5, Disconnect{});
  EXPECT_EQ(wire, bytes({0xE0, 0x00}));
  Disconnect d;
  d.reason_code = ReasonCode::SessionTakenOver;
  wire.clear();
  encode_disconnect(wire, kLevel5, d);
  EXPECT_EQ(wire, bytes({0xE0, 0x01, 0x8E}));
  d.reason_code = ReasonCode::UseAnotherServer;
  d.server_reference = "b:1883";
  wire.clear();
  encode_disconnect(wire, kLevel5, d);
  EXPECT_EQ(wire, bytes({0xE0, 0x0B, 0x9C, 0x09, 0x1C}) + str("b:1883"));

  Disconnect out;
  ASSERT_TRUE(decode_disconnect(make_frame(PacketType::Disconnect, 0, ""), kLevel5, out).ok());
  EXPECT_EQ(out.reason_code, ReasonCode::NormalDisconnection);
  ASSERT_TRUE(
      decode_disconnect(make_frame(PacketType::Disconnect, 0, bytes({0x04})), kLevel5, out).ok());
  EXPECT_EQ(out.reason_code, ReasonCode::DisconnectWithWillMessage);
  EXPECT_FALSE(out.session_expiry_interval.has_value());
}

TEST(Disconnect5, RoundTripWithProperties) {
  PropertyWriter w;
  w.add_user_property("k", "v");
  Disconnect d;
  d.reason_code = ReasonCode::NormalDisconnection;
  d.session_expiry_interval = 0;
  d.reason_string = "bye";
  d.server_reference = "elsewhere";
  d.properties = w.view();
  std::string wire;
  encode_disconnect(wire, kLevel5, d);
  Disconnect out;
  const DecodeResult r = decode_disconnect(frame_of(wire), kLevel5, out);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(out.reason_code, ReasonCode::NormalDisconnection);
  EXPECT_EQ(out.session_expiry_interval, 0u);
  EXPECT_EQ(out.reason_string, "bye");
  EXPECT_EQ(out.server_reference, "elsewhere");
  EXPECT_EQ(user_props(out.properties).size(), 1u);
}

TEST(Disconnect5, InvalidDisconnects) {
  Disconnect d;
  auto status = [&](uint8_t flags, const std::string& body) {
    return decode_disconnect(make_frame(PacketType::Disconnect, flags, body), kLevel5, d).status;
  };
  EXPECT_EQ(status(0, bytes({0x01})), DecodeStatus::ProtocolError);  // [MQTT-3.14.2-1]
  EXPECT_EQ(status(0, bytes({0x00, 0x02, 0x23, 0})), DecodeStatus::Malformed);
  EXPECT_EQ(status(0, bytes({0x00, 0x03, 0x23, 0, 1})), DecodeStatus::Malformed);
  EXPECT_EQ(status(0, bytes({0x00, 0x00, 0x00})), DecodeStatus::Malformed);
  EXPECT_EQ(status(1, ""), DecodeStatus::Malformed);  // [MQTT-3.14.1-1]
  EXPECT_EQ(status(0, bytes({0x00, 0x0A, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1})),
            DecodeStatus::ProtocolError);
  // decode_empty (3.1.1) keeps refusing a DISCONNECT with a body.
  EXPECT_EQ(decode_empty(make_frame(PacketType::Disconnect, 0, bytes({0x00}))).status,
            DecodeStatus::Malformed);
}

// ================================================================ AUTH

TEST(Auth5, RoundTripAndShortForm_3_15_2_1) {
  std::string wire;
  encode_auth(wire, kLevel5, Auth{});
  EXPECT_EQ(wire, bytes({0xF0, 0x00}));
  Auth out;
  ASSERT_TRUE(decode_auth(frame_of(wire), kLevel5, out).ok());
  EXPECT_EQ(out.reason_code, ReasonCode::Success);

  PropertyWriter w;
  w.add_user_property("step", "2");
  Auth a;
  a.reason_code = ReasonCode::ContinueAuthentication;
  a.authentication_method = "SCRAM-SHA-256";
  a.authentication_data = std::string_view("\x00nonce", 6);
  a.reason_string = "more";
  a.properties = w.view();
  wire.clear();
  encode_auth(wire, kLevel5, a);
  EXPECT_EQ(wire.substr(0, 5), bytes({0xF0, static_cast<int>(wire.size() - 2), 0x18,
                                      static_cast<int>(wire.size() - 4), 0x15}));
  const DecodeResult r = decode_auth(frame_of(wire), kLevel5, out);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(out.reason_code, ReasonCode::ContinueAuthentication);
  EXPECT_EQ(out.authentication_method, "SCRAM-SHA-256");
  EXPECT_EQ(out.authentication_data, a.authentication_data);
  EXPECT_EQ(out.reason_string, "more");
  EXPECT_EQ(user_props(out.properties).size(), 1u);
}

TEST(Auth5, InvalidAuths) {
  Auth a;
  auto status = [&](const std::string& body) {
    return decode_auth(make_frame(PacketType::Auth, 0, body), kLevel5, a).status;
  };
  const std::string method = bytes({0x15}) + str("m");
  EXPECT_EQ(status(bytes({0x18}) + block(method)), DecodeStatus::Ok);
  EXPECT_EQ(status(bytes({0x18}) + block("")), DecodeStatus::ProtocolError);  // no method
  EXPECT_EQ(status(bytes({0x18})), DecodeStatus::Malformed);                  // no Property Length
  EXPECT_EQ(status(bytes({0x04}) + block(method)), DecodeStatus::ProtocolError);  // [MQTT-3.15.2-1]
  EXPECT_EQ(status(bytes({0x18}) + block(method + method)), DecodeStatus::ProtocolError);
  EXPECT_EQ(status(bytes({0x18}) + block(method + bytes({0x11, 0, 0, 0, 0}))),
            DecodeStatus::Malformed);
  EXPECT_EQ(status(bytes({0x18}) + block(method) + "x"), DecodeStatus::Malformed);
  EXPECT_EQ(decode_auth(make_frame(PacketType::Auth, 1, ""), kLevel5, a).status,
            DecodeStatus::Malformed);
}

// ================================================================ encoders' limits

TEST(Encode5, UnrepresentablePacketsAppendNothing) {
  const std::string huge(65536, 'x');
  std::string wire = "keep";
  Ack a;
  a.packet_id = 1;
  a.props.reason_string = huge;
  encode_ack(wire, kLevel5, a);
  Connack c;
  c.props.reason_string = huge;
  encode_connack(wire, kLevel5, c);
  Disconnect d;
  d.reason_string = huge;
  encode_disconnect(wire, kLevel5, d);
  Auth au;
  au.authentication_method = huge;
  encode_auth(wire, kLevel5, au);
  Subscribe s;
  s.packet_id = 1;
  s.topics = {request(huge, 0)};
  encode_subscribe(wire, kLevel5, s);
  Unsubscribe u;
  u.packet_id = 1;
  u.filters = {huge};
  encode_unsubscribe(wire, kLevel5, u);
  Connect cn;
  cn.client_id = huge;
  encode_connect(wire, kLevel5, cn);
  Publish p;
  p.topic = huge;
  encode_publish_props(wire, p, Properties());
  EXPECT_EQ(wire, "keep");
}

// Encoders append after what is already in the buffer.
TEST(Encode5, EncodersAppend) {
  std::string wire = "xy";
  encode_ack(wire, kLevel5, PacketType::Puback, 1);
  encode_disconnect(wire, kLevel5, Disconnect{});
  EXPECT_EQ(wire, "xy" + bytes({0x40, 2, 0, 1, 0xE0, 0}));
  // A large body gets a multi-byte remaining length.
  const std::string reason(200, 'r');
  Ack a;
  a.packet_id = 1;
  a.props.reason_string = reason;
  wire = "z";
  encode_ack(wire, kLevel5, a);
  // 2 (id) + 1 (reason) + 2 (property length 203) + 203 = 208
  EXPECT_EQ(wire.substr(0, 4), "z" + bytes({0x40, 0xD0, 0x01}));
  Ack d;
  Frame f;
  ASSERT_TRUE(read_frame(std::string_view(wire).substr(1), kBig, f, kLevel5).ok());
  ASSERT_TRUE(decode_ack(f, kLevel5, d).ok());
  EXPECT_EQ(d.props.reason_string, reason);
}

// ================================================================ 3.1.1 unchanged

TEST(V311Unchanged, DecodersKeepTheir311Rules) {
  // A 3-byte PUBACK (v5 reason code) is still malformed for decode_ack.
  Ack a;
  EXPECT_EQ(
      decode_ack(make_frame(PacketType::Puback, 0, u16(1) + bytes({0x10})), kLevel311, a).status,
      DecodeStatus::Malformed);
  // Subscription options bits are still a malformed requested QoS in 3.1.1.
  Subscribe s;
  EXPECT_EQ(
      decode_subscribe(make_frame(PacketType::Subscribe, 2, u16(1) + str("a") + bytes({0x04})),
                       kLevel311, s)
          .status,
      DecodeStatus::Malformed);
  // A 3.1.1 PUBLISH body is not a v5 one: its first payload byte would be read
  // as the property length.
  Publish p;
  p.topic = "t";
  p.payload = "hello";
  std::string wire;
  encode_publish(wire, kLevel311, p);
  Publish old;
  ASSERT_TRUE(decode_publish(frame_of(wire), kLevel311, old).ok());
  EXPECT_EQ(old.payload, "hello");
  Publish v5;
  EXPECT_EQ(decode_publish(frame_of(wire), kLevel5, v5).status, DecodeStatus::Malformed);
  // AUTH is not framed by default.
  Frame f;
  EXPECT_EQ(read_frame(bytes({0xF0, 0}), kBig, f).status, DecodeStatus::Malformed);
}

}  // namespace
}  // namespace mqtt
