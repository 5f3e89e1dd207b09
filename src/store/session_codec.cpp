#include "store/session_codec.hpp"

#include <cstdint>

namespace store {

namespace {
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_str(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      auto b = static_cast<uint8_t>(in.front());
      in.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  std::string_view str() {
    uint64_t n = varint();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string_view s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
  uint8_t u8() {
    if (in.empty()) {
      ok = false;
      return 0;
    }
    auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    return b;
  }
  int64_t i64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
    return static_cast<int64_t>(v);
  }
};
}  // namespace

namespace {
constexpr uint8_t kVersion = 2;

uint8_t options_byte(const broker::SubOptions& o) {
  return static_cast<uint8_t>(o.qos | (o.no_local ? 0x04 : 0) | (o.retain_as_published ? 0x08 : 0) |
                              (o.retain_handling << 4));
}
}  // namespace

std::string encode_session(const broker::SessionSnapshot& s) {
  std::string out;
  out.push_back(static_cast<char>(kVersion));
  put_varint(out, s.expiry_s);
  put_varint(out, s.subscriptions.size());
  for (const auto& [filter, o] : s.subscriptions) {
    put_str(out, filter);
    out.push_back(static_cast<char>(options_byte(o)));
    put_varint(out, o.id);
  }
  put_varint(out, s.messages.size());
  for (const auto& d : s.messages) {
    put_str(out, d.msg->topic());
    put_str(out, d.msg->payload());
    put_str(out, d.msg->origin());
    out.push_back(static_cast<char>(d.qos));
    out.push_back(d.retain ? 1 : 0);
    auto ms = static_cast<uint64_t>(d.msg->received_ms());
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((ms >> (8 * i)) & 0xff));
    put_varint(out, d.sub_id);
    put_str(out, d.msg->properties());
    out.push_back(d.msg->has_expiry() ? 1 : 0);
    put_varint(out, d.msg->expiry_interval_s());
  }
  return out;
}

bool decode_session(std::string_view client_id, std::string_view bytes,
                    broker::SessionSnapshot& out) {
  Reader r{bytes};
  // Version 1 (before MQTT 5) had no expiry, options, identifiers or properties.
  const uint8_t version = r.u8();
  if (version != 1 && version != kVersion) return false;
  const bool v2 = version == kVersion;
  out.client_id = client_id;
  out.subscriptions.clear();
  out.messages.clear();
  out.expiry_s = v2 ? static_cast<uint32_t>(r.varint()) : broker::kNeverExpires;
  uint64_t n = r.varint();
  for (uint64_t i = 0; r.ok && i < n; ++i) {
    std::string_view filter = r.str();
    uint8_t b = r.u8();
    broker::SubOptions o;
    o.qos = b & 0x03;
    o.no_local = (b & 0x04) != 0;
    o.retain_as_published = (b & 0x08) != 0;
    o.retain_handling = (b >> 4) & 0x03;
    if (v2) o.id = static_cast<uint32_t>(r.varint());
    if (!r.ok || o.qos > 2) return false;
    out.subscriptions.emplace_back(std::string(filter), o);
  }
  n = r.varint();
  for (uint64_t i = 0; r.ok && i < n; ++i) {
    std::string_view topic = r.str(), payload = r.str(), origin = r.str();
    uint8_t qos = r.u8();
    bool retain = r.u8() != 0;
    int64_t ms = r.i64();
    uint32_t sub_id = 0;
    broker::MessageMeta meta;
    if (v2) {
      sub_id = static_cast<uint32_t>(r.varint());
      meta.properties = r.str();
      meta.has_expiry = r.u8() != 0;
      meta.expiry_interval_s = static_cast<uint32_t>(r.varint());
    }
    if (!r.ok || qos > 2) return false;
    out.messages.push_back(
        {std::make_shared<const broker::Message>(topic, payload, qos, retain, origin, ms, meta),
         qos, retain, sub_id});
  }
  return r.ok && r.in.empty();
}

}  // namespace store
