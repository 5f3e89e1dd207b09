// MQTT 5 properties (section 2.2.2): identifiers, their data types, where each
// may appear, a validating decoder, a zero-copy view to iterate a decoded
// block and a writer to build one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

#include "mqtt/frame.hpp"

namespace mqtt {

// Table 2-4. All identifiers of MQTT 5.0 fit in one byte.
enum class PropertyId : uint8_t {
  PayloadFormatIndicator = 0x01,           // Byte: PUBLISH, Will
  MessageExpiryInterval = 0x02,            // Four Byte Integer: PUBLISH, Will
  ContentType = 0x03,                      // UTF-8 String: PUBLISH, Will
  ResponseTopic = 0x08,                    // UTF-8 String: PUBLISH, Will
  CorrelationData = 0x09,                  // Binary Data: PUBLISH, Will
  SubscriptionIdentifier = 0x0B,           // Variable Byte Integer: PUBLISH, SUBSCRIBE
  SessionExpiryInterval = 0x11,            // Four Byte Integer: CONNECT, CONNACK, DISCONNECT
  AssignedClientIdentifier = 0x12,         // UTF-8 String: CONNACK
  ServerKeepAlive = 0x13,                  // Two Byte Integer: CONNACK
  AuthenticationMethod = 0x15,             // UTF-8 String: CONNECT, CONNACK, AUTH
  AuthenticationData = 0x16,               // Binary Data: CONNECT, CONNACK, AUTH
  RequestProblemInformation = 0x17,        // Byte: CONNECT
  WillDelayInterval = 0x18,                // Four Byte Integer: Will
  RequestResponseInformation = 0x19,       // Byte: CONNECT
  ResponseInformation = 0x1A,              // UTF-8 String: CONNACK
  ServerReference = 0x1C,                  // UTF-8 String: CONNACK, DISCONNECT
  ReasonString = 0x1F,                     // UTF-8 String: CONNACK, acks, DISCONNECT, AUTH
  ReceiveMaximum = 0x21,                   // Two Byte Integer: CONNECT, CONNACK
  TopicAliasMaximum = 0x22,                // Two Byte Integer: CONNECT, CONNACK
  TopicAlias = 0x23,                       // Two Byte Integer: PUBLISH
  MaximumQos = 0x24,                       // Byte: CONNACK
  RetainAvailable = 0x25,                  // Byte: CONNACK
  UserProperty = 0x26,                     // UTF-8 String Pair: every packet with properties
  MaximumPacketSize = 0x27,                // Four Byte Integer: CONNECT, CONNACK
  WildcardSubscriptionAvailable = 0x28,    // Byte: CONNACK
  SubscriptionIdentifierAvailable = 0x29,  // Byte: CONNACK
  SharedSubscriptionAvailable = 0x2A,      // Byte: CONNACK
};

// The data types of section 1.5.
enum class PropertyType : uint8_t {
  Byte,
  TwoByteInteger,
  FourByteInteger,
  VariableByteInteger,
  Utf8String,
  BinaryData,
  Utf8StringPair,
};

// Which property block is being read or written: selects the identifiers
// allowed (Table 2-4). Will is the Will Properties block of CONNECT.
enum class PropertyContext : uint8_t {
  Connect,
  Will,
  Connack,
  Publish,
  Puback,
  Pubrec,
  Pubrel,
  Pubcomp,
  Subscribe,
  Suback,
  Unsubscribe,
  Unsuback,
  Disconnect,
  Auth,
};

// Which properties a PUBACK, PUBREC, PUBREL or PUBCOMP of type `t` may carry.
inline PropertyContext ack_context(PacketType t) {
  switch (t) {
    case PacketType::Pubrec:
      return PropertyContext::Pubrec;
    case PacketType::Pubrel:
      return PropertyContext::Pubrel;
    case PacketType::Pubcomp:
      return PropertyContext::Pubcomp;
    default:
      return PropertyContext::Puback;
  }
}

// The data type of identifier `id`; nullopt for an identifier MQTT 5.0 does
// not define.
std::optional<PropertyType> property_type(uint8_t id);
// Whether `id` may appear in a `ctx` block (Table 2-4).
bool property_allowed(PropertyId id, PropertyContext ctx);
// Whether `id` may appear more than once in a `ctx` block: only User Property
// everywhere, and Subscription Identifier in PUBLISH [MQTT-3.3.4-4].
bool property_repeatable(PropertyId id, PropertyContext ctx);
// The spec's name, e.g. "Topic Alias"; "unknown property" otherwise.
const char* to_string(PropertyId id);

// One decoded property. `number` holds Byte / Two Byte / Four Byte / Variable
// Byte Integer values; `str` a UTF-8 String, Binary Data or a pair's name;
// `value` a pair's value. Views point into the block's bytes.
struct Property {
  PropertyId id = PropertyId::PayloadFormatIndicator;
  PropertyType type = PropertyType::Byte;
  uint32_t number = 0;
  std::string_view str;
  std::string_view value;
};

// A view of the bytes of one property block (without its Property Length),
// e.g. as decode_properties or PropertyWriter produced them. Iterating
// yields each Property in wire order; iteration stops early at the first
// bytes it cannot parse, which never happens for a block decode_properties
// accepted. Copying a Properties copies the view, not the bytes.
class Properties {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Property;
    using difference_type = std::ptrdiff_t;
    using pointer = const Property*;
    using reference = const Property&;

    iterator() = default;
    reference operator*() const { return cur_; }
    pointer operator->() const { return &cur_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      advance();
      return old;
    }
    bool operator==(const iterator& o) const { return pos_ == o.pos_; }

   private:
    friend class Properties;
    iterator(std::string_view raw, size_t pos);
    void advance();  // parses the property at next_, or becomes end

    std::string_view raw_;
    size_t pos_ = 0;   // offset of cur_, raw_.size() at the end
    size_t next_ = 0;  // offset just past cur_
    Property cur_;
  };

  Properties() = default;
  explicit Properties(std::string_view raw) : raw_(raw) {}

  std::string_view raw() const { return raw_; }
  bool empty() const { return raw_.empty(); }
  iterator begin() const { return iterator(raw_, 0); }
  iterator end() const { return iterator(raw_, raw_.size()); }

  // The first property with identifier `id`.
  std::optional<Property> find(PropertyId id) const;
  // How many properties have identifier `id`.
  size_t count(PropertyId id) const;

  friend bool operator==(const Properties& a, const Properties& b) { return a.raw_ == b.raw_; }

 private:
  std::string_view raw_;
};

// Reads a Property Length (Variable Byte Integer) and that many bytes of
// properties from the front of `in`, and advances `in` past them. Checks,
// per section 2.2.2 and the property descriptions of chapter 3:
//   Malformed: the length or a value runs past its bounds, a non-minimal or
//     over-long Variable Byte Integer [MQTT-1.5.5-1], an unknown identifier
//     or one not allowed in `ctx` (2.2.2.2), a string or string pair that
//     is not valid UTF-8 [MQTT-1.5.4-1], [MQTT-1.5.7-1];
//   ProtocolError: a property other than User Property (and Subscription
//     Identifier in PUBLISH) given twice; Receive Maximum, Maximum Packet
//     Size, Topic Alias [MQTT-3.3.2-8] or Subscription Identifier of 0; a
//     Byte property that must be 0 or 1 (Payload Format Indicator, Request
//     Problem/Response Information, Maximum QoS, Retain/Wildcard/Subscription
//     Identifier/Shared Subscription Available) with another value; a
//     Response Topic that is not a valid topic name [MQTT-3.3.2-14].
// On success `out` views the property bytes inside the input.
DecodeResult decode_properties(std::string_view& in, PropertyContext ctx, Properties& out);

// Appends properties to a buffer, for the encoders. Values are written in
// the order added; User Properties keep their order (which the spec requires
// when forwarding them [MQTT-3.3.2-18]). The writer does not check which
// identifiers fit which packet: that is the caller's business. A value that
// cannot be represented (string over 65535 bytes, Variable Byte Integer over
// 268,435,455, an identifier used with the wrong data type) appends nothing
// and makes ok() false; encoders given a writer that is not ok() still encode
// the rest, so check ok() when it matters.
//
// By default the writer owns its buffer (reuse one with clear() to avoid
// allocations); constructed with a std::string it appends to that string.
class PropertyWriter {
 public:
  PropertyWriter() = default;
  explicit PropertyWriter(std::string& target) : ext_(&target), base_(target.size()) {}

  PropertyWriter& add_byte(PropertyId id, uint8_t v);
  PropertyWriter& add_u16(PropertyId id, uint16_t v);
  PropertyWriter& add_u32(PropertyId id, uint32_t v);
  PropertyWriter& add_varint(PropertyId id, uint32_t v);
  // A UTF-8 String or Binary Data property (the caller checks UTF-8).
  PropertyWriter& add_string(PropertyId id, std::string_view v);
  PropertyWriter& add_user_property(std::string_view name, std::string_view value);
  // Re-encodes one decoded property.
  PropertyWriter& add(const Property& p);
  // Appends already-encoded properties verbatim (e.g. a received block).
  PropertyWriter& add_raw(const Properties& p);
  // Copies every property of `p` whose identifier is `id`, in order; e.g.
  // add_all(publish.props.properties, PropertyId::UserProperty) to forward
  // User Properties.
  PropertyWriter& add_all(const Properties& p, PropertyId id);
  // Copies every property of `p` except those with the listed identifiers,
  // in order. To forward a PUBLISH: add_except(in, {TopicAlias,
  // SubscriptionIdentifier, MessageExpiryInterval}), then add the adjusted
  // Message Expiry Interval, the subscriber's Topic Alias and Subscription
  // Identifiers.
  PropertyWriter& add_except(const Properties& p, std::initializer_list<PropertyId> skip);

  bool ok() const { return ok_; }
  // The property bytes written so far (without a Property Length).
  std::string_view bytes() const { return std::string_view(buf()).substr(base_); }
  Properties view() const { return Properties(bytes()); }
  size_t size() const { return buf().size() - base_; }
  // The size of the block on the wire: Property Length + properties.
  size_t encoded_size() const;
  // Appends the Property Length and the properties to `out` (nothing when the
  // length exceeds 268,435,455).
  void append_to(std::string& out) const;
  // Forgets what was written (keeps the capacity) and makes ok() true again.
  void clear();

 private:
  std::string& buf() { return ext_ != nullptr ? *ext_ : own_; }
  const std::string& buf() const { return ext_ != nullptr ? *ext_ : own_; }
  bool header(PropertyId id, PropertyType type);  // writes the identifier

  std::string own_;
  std::string* ext_ = nullptr;
  size_t base_ = 0;
  bool ok_ = true;
};

// Encodes `value` as a Variable Byte Integer into out[0..3]; returns the byte
// count, 0 when value > 268,435,455 (the same encoding as the remaining
// length, so this is encode_remaining_length under the property name).
inline size_t encode_varint(uint32_t value, uint8_t out[4]) {
  return encode_remaining_length(value, out);
}
inline size_t varint_size(uint32_t value) {
  return remaining_length_size(value);
}

}  // namespace mqtt
