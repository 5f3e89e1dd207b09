// MQTT 5 properties: the identifier table, the validating decoder, the view's
// iterator and the writer.
#include "mqtt/properties.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mqtt/detail.hpp"
#include "mqtt/reason_code.hpp"
#include "mqtt/topic.hpp"

namespace mqtt {

namespace {

using detail::Reader;

constexpr uint8_t kMaxPropertyId = 0x2A;

// Bit per PropertyContext.
constexpr uint16_t bit(PropertyContext c) {
  return static_cast<uint16_t>(1u << static_cast<unsigned>(c));
}

constexpr uint16_t kConnect = bit(PropertyContext::Connect);
constexpr uint16_t kWill = bit(PropertyContext::Will);
constexpr uint16_t kConnack = bit(PropertyContext::Connack);
constexpr uint16_t kPublish = bit(PropertyContext::Publish);
constexpr uint16_t kAcks = bit(PropertyContext::Puback) | bit(PropertyContext::Pubrec) |
                           bit(PropertyContext::Pubrel) | bit(PropertyContext::Pubcomp);
constexpr uint16_t kSubscribe = bit(PropertyContext::Subscribe);
constexpr uint16_t kSubUnsubAcks = bit(PropertyContext::Suback) | bit(PropertyContext::Unsuback);
constexpr uint16_t kUnsubscribe = bit(PropertyContext::Unsubscribe);
constexpr uint16_t kDisconnect = bit(PropertyContext::Disconnect);
constexpr uint16_t kAuth = bit(PropertyContext::Auth);
constexpr uint16_t kEverywhere = 0x3FFF;  // all 14 contexts

struct Spec {
  bool known = false;
  PropertyType type = PropertyType::Byte;
  uint16_t contexts = 0;
  const char* name = "unknown property";
};

constexpr Spec spec(PropertyType t, uint16_t contexts, const char* name) {
  return Spec{true, t, contexts, name};
}

// Table 2-4, indexed by identifier.
constexpr Spec kSpecs[kMaxPropertyId + 1] = {
    {},  // 0x00
    spec(PropertyType::Byte, kPublish | kWill, "Payload Format Indicator"),
    spec(PropertyType::FourByteInteger, kPublish | kWill, "Message Expiry Interval"),
    spec(PropertyType::Utf8String, kPublish | kWill, "Content Type"),
    {},
    {},
    {},
    {},
    spec(PropertyType::Utf8String, kPublish | kWill, "Response Topic"),  // 0x08
    spec(PropertyType::BinaryData, kPublish | kWill, "Correlation Data"),
    {},
    spec(PropertyType::VariableByteInteger, kPublish | kSubscribe, "Subscription Identifier"),
    {},
    {},
    {},
    {},
    {},  // 0x10
    spec(PropertyType::FourByteInteger, kConnect | kConnack | kDisconnect,
         "Session Expiry Interval"),
    spec(PropertyType::Utf8String, kConnack, "Assigned Client Identifier"),
    spec(PropertyType::TwoByteInteger, kConnack, "Server Keep Alive"),
    {},
    spec(PropertyType::Utf8String, kConnect | kConnack | kAuth, "Authentication Method"),
    spec(PropertyType::BinaryData, kConnect | kConnack | kAuth, "Authentication Data"),
    spec(PropertyType::Byte, kConnect, "Request Problem Information"),
    spec(PropertyType::FourByteInteger, kWill, "Will Delay Interval"),  // 0x18
    spec(PropertyType::Byte, kConnect, "Request Response Information"),
    spec(PropertyType::Utf8String, kConnack, "Response Information"),
    {},
    spec(PropertyType::Utf8String, kConnack | kDisconnect, "Server Reference"),
    {},
    {},
    spec(PropertyType::Utf8String, kConnack | kAcks | kSubUnsubAcks | kDisconnect | kAuth,
         "Reason String"),
    {},  // 0x20
    spec(PropertyType::TwoByteInteger, kConnect | kConnack, "Receive Maximum"),
    spec(PropertyType::TwoByteInteger, kConnect | kConnack, "Topic Alias Maximum"),
    spec(PropertyType::TwoByteInteger, kPublish, "Topic Alias"),
    spec(PropertyType::Byte, kConnack, "Maximum QoS"),
    spec(PropertyType::Byte, kConnack, "Retain Available"),
    spec(PropertyType::Utf8StringPair,
         kConnect | kWill | kConnack | kPublish | kAcks | kSubscribe | kSubUnsubAcks |
             kUnsubscribe | kDisconnect | kAuth,
         "User Property"),
    spec(PropertyType::FourByteInteger, kConnect | kConnack, "Maximum Packet Size"),
    spec(PropertyType::Byte, kConnack, "Wildcard Subscription Available"),  // 0x28
    spec(PropertyType::Byte, kConnack, "Subscription Identifier Available"),
    spec(PropertyType::Byte, kConnack, "Shared Subscription Available"),
};

static_assert((kConnect | kWill | kConnack | kPublish | kAcks | kSubscribe | kSubUnsubAcks |
               kUnsubscribe | kDisconnect | kAuth) == kEverywhere);

const Spec& spec_of(uint32_t id) {
  static constexpr Spec kUnknown{};
  return id <= kMaxPropertyId ? kSpecs[id] : kUnknown;
}

// Why parse_one failed; nullptr when it did not.
using Failure = const char*;

// Parses the property at the reader's position into `p` (types only; no
// context, duplicate or value checks). Views point into the reader's buffer.
Failure parse_one(Reader& r, Property& p) {
  uint32_t id = 0;
  switch (r.varint_strict(id)) {
    case Reader::Varint::Ok:
      break;
    case Reader::Varint::Truncated:
      return "truncated property identifier";
    case Reader::Varint::Invalid:
      return "invalid property identifier encoding";
  }
  const Spec& s = spec_of(id);
  if (!s.known) return "unknown property identifier";
  p = Property{};
  p.id = static_cast<PropertyId>(id);
  p.type = s.type;
  switch (s.type) {
    case PropertyType::Byte: {
      uint8_t v = 0;
      if (!r.u8(v)) return "truncated property value";
      p.number = v;
      return nullptr;
    }
    case PropertyType::TwoByteInteger: {
      uint16_t v = 0;
      if (!r.u16(v)) return "truncated property value";
      p.number = v;
      return nullptr;
    }
    case PropertyType::FourByteInteger:
      if (!r.u32(p.number)) return "truncated property value";
      return nullptr;
    case PropertyType::VariableByteInteger:
      switch (r.varint_strict(p.number)) {
        case Reader::Varint::Ok:
          return nullptr;
        case Reader::Varint::Truncated:
          return "truncated property value";
        case Reader::Varint::Invalid:
          return "invalid variable byte integer in property";
      }
      return "invalid variable byte integer in property";
    case PropertyType::Utf8String:
    case PropertyType::BinaryData:
      if (!r.prefixed(p.str)) return "truncated property value";
      return nullptr;
    case PropertyType::Utf8StringPair:
      if (!r.prefixed(p.str) || !r.prefixed(p.value)) return "truncated property value";
      return nullptr;
  }
  return "unknown property type";
}

DecodeResult malformed(const char* why) {
  return {DecodeStatus::Malformed, why};
}
DecodeResult protocol_error(const char* why) {
  return {DecodeStatus::ProtocolError, why};
}

// Value checks of chapter 3 for a property that parsed and is allowed here.
DecodeResult check_value(const Property& p) {
  switch (p.type) {
    case PropertyType::Utf8String:
      if (!valid_utf8(p.str)) return malformed("property string not valid UTF-8");
      break;
    case PropertyType::Utf8StringPair:
      if (!valid_utf8(p.str) || !valid_utf8(p.value)) {
        return malformed("user property not valid UTF-8");  // [MQTT-1.5.7-1]
      }
      break;
    default:
      break;
  }
  switch (p.id) {
    case PropertyId::PayloadFormatIndicator:
      if (p.number > 1) return protocol_error("payload format indicator not 0 or 1");
      break;
    case PropertyId::RequestProblemInformation:
      if (p.number > 1) return protocol_error("request problem information not 0 or 1");
      break;
    case PropertyId::RequestResponseInformation:
      if (p.number > 1) return protocol_error("request response information not 0 or 1");
      break;
    case PropertyId::MaximumQos:
      if (p.number > 1) return protocol_error("maximum QoS not 0 or 1");
      break;
    case PropertyId::RetainAvailable:
    case PropertyId::WildcardSubscriptionAvailable:
    case PropertyId::SubscriptionIdentifierAvailable:
    case PropertyId::SharedSubscriptionAvailable:
      if (p.number > 1) return protocol_error("availability flag not 0 or 1");
      break;
    case PropertyId::ReceiveMaximum:
      if (p.number == 0) return protocol_error("receive maximum 0");
      break;
    case PropertyId::MaximumPacketSize:
      if (p.number == 0) return protocol_error("maximum packet size 0");
      break;
    case PropertyId::TopicAlias:
      if (p.number == 0) {
        // [MQTT-3.3.2-8]; a server answers it with 0x94 Topic Alias invalid (3.3.2.3.4).
        return {DecodeStatus::ProtocolError, "topic alias 0",
                static_cast<uint8_t>(ReasonCode::TopicAliasInvalid)};
      }
      break;
    case PropertyId::SubscriptionIdentifier:
      if (p.number == 0) return protocol_error("subscription identifier 0");
      break;
    case PropertyId::ResponseTopic:
      // A topic name: not empty, no wildcards. [MQTT-3.3.2-14]
      if (!valid_topic_name(p.str)) return protocol_error("response topic not a valid topic name");
      break;
    default:
      break;
  }
  return {};
}

void put_u8(std::string& out, uint8_t v) {
  out.push_back(static_cast<char>(v));
}

void put_u16(std::string& out, uint16_t v) {
  put_u8(out, static_cast<uint8_t>(v >> 8));
  put_u8(out, static_cast<uint8_t>(v & 0xFF));
}

void put_u32(std::string& out, uint32_t v) {
  put_u16(out, static_cast<uint16_t>(v >> 16));
  put_u16(out, static_cast<uint16_t>(v & 0xFFFF));
}

void put_varint(std::string& out, uint32_t v) {
  uint8_t b[4];
  const size_t n = encode_varint(v, b);
  out.append(reinterpret_cast<const char*>(b), n);
}

constexpr size_t kMaxString = 65535;

}  // namespace

std::optional<PropertyType> property_type(uint8_t id) {
  const Spec& s = spec_of(id);
  if (!s.known) return std::nullopt;
  return s.type;
}

bool property_allowed(PropertyId id, PropertyContext ctx) {
  return (spec_of(static_cast<uint8_t>(id)).contexts & bit(ctx)) != 0;
}

bool property_repeatable(PropertyId id, PropertyContext ctx) {
  return id == PropertyId::UserProperty ||
         (id == PropertyId::SubscriptionIdentifier && ctx == PropertyContext::Publish);
}

const char* to_string(PropertyId id) {
  return spec_of(static_cast<uint8_t>(id)).name;
}

DecodeResult decode_properties(std::string_view& in, PropertyContext ctx, Properties& out) {
  Reader r(in);
  uint32_t len = 0;
  switch (r.varint_strict(len)) {
    case Reader::Varint::Ok:
      break;
    case Reader::Varint::Truncated:
      return malformed("truncated property length");
    case Reader::Varint::Invalid:
      return malformed("invalid property length encoding");  // [MQTT-1.5.5-1]
  }
  std::string_view block;
  if (!r.bytes(len, block)) return malformed("property length exceeds packet");

  uint64_t seen = 0;  // bit per identifier, for duplicates
  Reader pr(block);
  while (!pr.done()) {
    Property p;
    if (Failure why = parse_one(pr, p); why != nullptr) return malformed(why);
    if (!property_allowed(p.id, ctx)) {
      return malformed("property not allowed in this packet");  // 2.2.2.2
    }
    const uint64_t mask = uint64_t{1} << static_cast<unsigned>(p.id);
    if ((seen & mask) != 0 && !property_repeatable(p.id, ctx)) {
      return protocol_error("duplicate property");
    }
    seen |= mask;
    if (DecodeResult v = check_value(p); !v.ok()) return v;
  }
  out = Properties(block);
  in.remove_prefix(r.pos());
  return {};
}

// ---------------------------------------------------------------- view

Properties::iterator::iterator(std::string_view raw, size_t pos)
    : raw_(raw), pos_(pos), next_(pos) {
  if (pos_ < raw_.size()) advance();
}

void Properties::iterator::advance() {
  if (next_ >= raw_.size()) {
    pos_ = next_ = raw_.size();
    return;
  }
  Reader r(raw_.substr(next_));
  Property p;
  if (parse_one(r, p) != nullptr) {
    pos_ = next_ = raw_.size();  // unparseable: stop
    return;
  }
  pos_ = next_;
  next_ += r.pos();
  cur_ = p;
}

std::optional<Property> Properties::find(PropertyId id) const {
  for (const Property& p : *this) {
    if (p.id == id) return p;
  }
  return std::nullopt;
}

size_t Properties::count(PropertyId id) const {
  size_t n = 0;
  for (const Property& p : *this) n += p.id == id ? 1 : 0;
  return n;
}

// ---------------------------------------------------------------- writer

bool PropertyWriter::header(PropertyId id, PropertyType type) {
  const Spec& s = spec_of(static_cast<uint8_t>(id));
  if (!s.known || s.type != type) {
    ok_ = false;
    return false;
  }
  put_u8(buf(), static_cast<uint8_t>(id));
  return true;
}

PropertyWriter& PropertyWriter::add_byte(PropertyId id, uint8_t v) {
  if (header(id, PropertyType::Byte)) put_u8(buf(), v);
  return *this;
}

PropertyWriter& PropertyWriter::add_u16(PropertyId id, uint16_t v) {
  if (header(id, PropertyType::TwoByteInteger)) put_u16(buf(), v);
  return *this;
}

PropertyWriter& PropertyWriter::add_u32(PropertyId id, uint32_t v) {
  if (header(id, PropertyType::FourByteInteger)) put_u32(buf(), v);
  return *this;
}

PropertyWriter& PropertyWriter::add_varint(PropertyId id, uint32_t v) {
  if (v > kMaxRemainingLength) {
    ok_ = false;
    return *this;
  }
  if (header(id, PropertyType::VariableByteInteger)) put_varint(buf(), v);
  return *this;
}

PropertyWriter& PropertyWriter::add_string(PropertyId id, std::string_view v) {
  if (v.size() > kMaxString) {
    ok_ = false;
    return *this;
  }
  const std::optional<PropertyType> t = property_type(static_cast<uint8_t>(id));
  if (t != PropertyType::Utf8String && t != PropertyType::BinaryData) {
    ok_ = false;
    return *this;
  }
  if (header(id, *t)) {
    put_u16(buf(), static_cast<uint16_t>(v.size()));
    buf().append(v);
  }
  return *this;
}

PropertyWriter& PropertyWriter::add_user_property(std::string_view name, std::string_view value) {
  if (name.size() > kMaxString || value.size() > kMaxString) {
    ok_ = false;
    return *this;
  }
  if (header(PropertyId::UserProperty, PropertyType::Utf8StringPair)) {
    std::string& b = buf();
    put_u16(b, static_cast<uint16_t>(name.size()));
    b.append(name);
    put_u16(b, static_cast<uint16_t>(value.size()));
    b.append(value);
  }
  return *this;
}

PropertyWriter& PropertyWriter::add(const Property& p) {
  switch (p.type) {
    case PropertyType::Byte:
      return add_byte(p.id, static_cast<uint8_t>(p.number));
    case PropertyType::TwoByteInteger:
      return add_u16(p.id, static_cast<uint16_t>(p.number));
    case PropertyType::FourByteInteger:
      return add_u32(p.id, p.number);
    case PropertyType::VariableByteInteger:
      return add_varint(p.id, p.number);
    case PropertyType::Utf8String:
    case PropertyType::BinaryData:
      return add_string(p.id, p.str);
    case PropertyType::Utf8StringPair:
      if (p.id != PropertyId::UserProperty) {
        ok_ = false;
        return *this;
      }
      return add_user_property(p.str, p.value);
  }
  ok_ = false;
  return *this;
}

PropertyWriter& PropertyWriter::add_raw(const Properties& p) {
  buf().append(p.raw());
  return *this;
}

PropertyWriter& PropertyWriter::add_all(const Properties& p, PropertyId id) {
  for (const Property& prop : p) {
    if (prop.id == id) add(prop);
  }
  return *this;
}

PropertyWriter& PropertyWriter::add_except(const Properties& p,
                                           std::initializer_list<PropertyId> skip) {
  for (const Property& prop : p) {
    bool keep = true;
    for (PropertyId s : skip) keep = keep && prop.id != s;
    if (keep) add(prop);
  }
  return *this;
}

size_t PropertyWriter::encoded_size() const {
  const size_t n = size();
  if (n > kMaxRemainingLength) return 0;
  return varint_size(static_cast<uint32_t>(n)) + n;
}

void PropertyWriter::append_to(std::string& out) const {
  const size_t n = size();
  if (n > kMaxRemainingLength) return;
  put_varint(out, static_cast<uint32_t>(n));
  out.append(bytes());
}

void PropertyWriter::clear() {
  buf().resize(base_);
  ok_ = true;
}

}  // namespace mqtt
