#include "cluster/envelope.hpp"

#include <memory>

namespace cluster {
namespace {

constexpr uint8_t kQosMask = 0x03;
constexpr uint8_t kRetain = 0x04;
constexpr uint8_t kExpiry = 0x08;
constexpr uint8_t kApi = 0x10;
constexpr uint8_t kKnownFlags = kQosMask | kRetain | kExpiry | kApi;
constexpr size_t kFixedBytes = 1 + 1 + 4 + 8 + 8;
constexpr size_t kMaxVarint = 5;        // 32 bits in 7-bit groups
constexpr uint32_t kMaxString = 65535;  // an MQTT string (topic, client id) [MQTT-1.5.3]

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// Reads the buffer front to back; every read checks what is left first.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}

  bool le(int bytes, uint64_t& v) {
    if (b_.size() < static_cast<size_t>(bytes)) return false;
    v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(b_[i])} << (8 * i);
    b_.remove_prefix(static_cast<size_t>(bytes));
    return true;
  }

  bool varint(uint32_t max, uint32_t& v) {
    uint64_t acc = 0;
    for (size_t i = 0; i < kMaxVarint && i < b_.size(); ++i) {
      const auto c = static_cast<unsigned char>(b_[i]);
      acc |= uint64_t{c & 0x7fu} << (7 * i);
      if (c & 0x80) continue;
      if (c == 0 && i > 0) return false;  // a needless trailing group: not canonical
      if (acc > max) return false;
      v = static_cast<uint32_t>(acc);
      b_.remove_prefix(i + 1);
      return true;
    }
    return false;  // cut short, or longer than 5 bytes
  }

  bool bytes(size_t n, std::string_view& v) {
    if (b_.size() < n) return false;
    v = b_.substr(0, n);
    b_.remove_prefix(n);
    return true;
  }

  size_t left() const { return b_.size(); }

 private:
  std::string_view b_;
};

}  // namespace

void encode_envelope(std::string& out, const broker::Message& m, Source source,
                     std::string_view node, uint32_t epoch, uint64_t seq, int64_t now_ms) {
  const std::string_view client = m.origin();
  const std::string_view topic = m.topic();
  const std::string_view payload = m.payload();
  const std::string_view props = m.properties();
  const size_t total = kFixedBytes + (m.has_expiry() ? 4 : 0) + varint_size(node.size()) +
                       node.size() + varint_size(client.size()) + client.size() +
                       varint_size(topic.size()) + varint_size(payload.size()) +
                       varint_size(props.size()) + topic.size() + payload.size() + props.size();
  out.clear();
  out.reserve(total);  // a no-op when the buffer is reused and large enough
  uint8_t flags = m.qos() & kQosMask;
  if (m.retain()) flags |= kRetain;
  if (m.has_expiry()) flags |= kExpiry;
  if (source == Source::Api) flags |= kApi;
  out.push_back(static_cast<char>(kEnvelopeVersion));
  out.push_back(static_cast<char>(flags));
  put_le(out, epoch, 4);
  put_le(out, seq, 8);
  put_le(out, static_cast<uint64_t>(m.received_ms()), 8);
  if (m.has_expiry()) put_le(out, m.remaining_s(now_ms), 4);
  put_varint(out, node.size());
  out.append(node);
  put_varint(out, client.size());
  out.append(client);
  put_varint(out, topic.size());
  put_varint(out, payload.size());
  put_varint(out, props.size());
  out.append(topic);
  out.append(payload);
  out.append(props);
}

util::Result<Envelope> decode_envelope(std::string_view bytes) {
  Reader r(bytes);
  uint64_t version = 0, flags = 0, epoch = 0, seq = 0, received = 0;
  if (!r.le(1, version)) return util::errorf("cluster envelope: empty");
  if (version != kEnvelopeVersion) {
    return util::errorf("cluster envelope: unknown version {}", version);
  }
  if (!r.le(1, flags) || !r.le(4, epoch) || !r.le(8, seq) || !r.le(8, received)) {
    return util::errorf("cluster envelope: header cut short ({} bytes)", bytes.size());
  }
  if ((flags & ~uint64_t{kKnownFlags}) != 0) {
    return util::errorf("cluster envelope: unknown flags {:#04x}", flags);
  }
  Envelope e;
  e.qos = static_cast<uint8_t>(flags & kQosMask);
  if (e.qos > 2) return util::errorf("cluster envelope: QoS 3");
  e.retain = (flags & kRetain) != 0;
  e.has_expiry = (flags & kExpiry) != 0;
  e.source = (flags & kApi) != 0 ? Source::Api : Source::Device;
  e.epoch = static_cast<uint32_t>(epoch);
  e.seq = seq;
  e.received_ms = static_cast<int64_t>(received);
  if (e.has_expiry) {
    uint64_t expiry = 0;
    if (!r.le(4, expiry)) return util::errorf("cluster envelope: expiry cut short");
    e.expiry_s = static_cast<uint32_t>(expiry);
  }
  uint32_t node_len = 0, client_len = 0, topic_len = 0, payload_len = 0, props_len = 0;
  if (!r.varint(kMaxNodeBytes, node_len) || node_len == 0 || !r.bytes(node_len, e.node)) {
    return util::errorf("cluster envelope: bad node id");
  }
  if (!r.varint(kMaxString, client_len) || !r.bytes(client_len, e.origin_client)) {
    return util::errorf("cluster envelope: bad client id");
  }
  if (!r.varint(kMaxString, topic_len) || !r.varint(UINT32_MAX, payload_len) ||
      !r.varint(UINT32_MAX, props_len)) {
    return util::errorf("cluster envelope: bad lengths");
  }
  // Compared in 64 bits: three 32-bit lengths cannot overflow the sum.
  if (uint64_t{topic_len} + payload_len + props_len != r.left()) {
    return util::errorf("cluster envelope: lengths {}+{}+{} but {} bytes left", topic_len,
                        payload_len, props_len, r.left());
  }
  if (!r.bytes(topic_len, e.topic) || !r.bytes(payload_len, e.payload) ||
      !r.bytes(props_len, e.properties)) {
    return util::errorf("cluster envelope: body cut short");  // unreachable after the check
  }
  return e;
}

broker::MessagePtr to_message(const Envelope& e, int64_t now_ms) {
  const broker::MessageMeta meta{e.properties, e.has_expiry, e.expiry_s};
  return std::make_shared<const broker::Message>(e.topic, e.payload, e.qos, e.retain,
                                                 e.origin_client, now_ms, meta);
}

}  // namespace cluster
