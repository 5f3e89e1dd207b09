#include "broker/out_queue.hpp"

#include "mqtt/codec.hpp"

namespace broker {

namespace {
// Below this many bytes a payload is copied; above it, referenced.
constexpr size_t kCopyLimit = 1024;
// An owned run grows to about this size before a new one is started.
constexpr size_t kRunSize = 64 * 1024;
}  // namespace

std::string& OutQueue::tail_bytes() {
  if (chunks_.empty() || chunks_.back().ref || chunks_.back().own.size() >= kRunSize) {
    Chunk c;
    c.own.swap(spare_);
    c.own.clear();
    chunks_.push_back(std::move(c));
  }
  return chunks_.back().own;
}

void OutQueue::append(std::string_view bytes) {
  if (bytes.empty()) return;
  tail_bytes().append(bytes);
  bytes_ += bytes.size();
}

void OutQueue::append_publish(const MessagePtr& m, uint8_t qos, uint16_t packet_id, bool retain,
                              bool dup) {
  uint8_t header[5];
  size_t hlen = mqtt::encode_publish_fixed_header(header, qos, retain, dup, m->topic().size(),
                                                  m->payload().size());
  const char pid[2] = {static_cast<char>(packet_id >> 8), static_cast<char>(packet_id & 0xff)};
  const size_t pid_len = qos > 0 ? 2 : 0;
  std::string_view wire_topic = m->wire_topic();
  std::string_view payload = m->payload();

  if (payload.size() < kCopyLimit) {
    std::string& run = tail_bytes();
    run.append(reinterpret_cast<const char*>(header), hlen);
    run.append(wire_topic);
    run.append(pid, pid_len);
    run.append(payload);
  } else {
    std::string& run = tail_bytes();
    run.append(reinterpret_cast<const char*>(header), hlen);
    run.append(wire_topic);
    run.append(pid, pid_len);
    Chunk c;
    c.ref = m;
    c.span = payload;
    chunks_.push_back(std::move(c));
  }
  bytes_ += hlen + wire_topic.size() + pid_len + payload.size();
}

void OutQueue::append_publish_v5(const MessagePtr& m, uint8_t qos, uint16_t packet_id, bool retain,
                                 bool dup, std::string_view extra, bool omit_topic) {
  std::string_view wire_topic = omit_topic ? std::string_view("\0\0", 2) : m->wire_topic();
  std::string_view forwarded = m->properties();
  std::string_view payload = m->payload();
  const size_t props_len = forwarded.size() + extra.size();
  uint8_t header[5];
  size_t hlen = mqtt::encode_publish_fixed_header_v5(
      header, qos, retain, dup, wire_topic.size() - 2, props_len, payload.size());
  uint8_t plen[4];
  size_t plen_len = mqtt::encode_varint(static_cast<uint32_t>(props_len), plen);
  const char pid[2] = {static_cast<char>(packet_id >> 8), static_cast<char>(packet_id & 0xff)};
  const size_t pid_len = qos > 0 ? 2 : 0;

  std::string& run = tail_bytes();
  run.append(reinterpret_cast<const char*>(header), hlen);
  run.append(wire_topic);
  run.append(pid, pid_len);
  run.append(reinterpret_cast<const char*>(plen), plen_len);
  run.append(forwarded);
  run.append(extra);
  if (payload.size() < kCopyLimit) {
    run.append(payload);
  } else {
    Chunk c;
    c.ref = m;
    c.span = payload;
    chunks_.push_back(std::move(c));
  }
  bytes_ += hlen + wire_topic.size() + pid_len + plen_len + props_len + payload.size();
}

size_t OutQueue::gather(std::string_view* out, size_t max) const {
  size_t n = 0;
  for (size_t i = 0; i < chunks_.size() && n < max; ++i) {
    std::string_view v = chunks_[i].view();
    if (!v.empty()) out[n++] = v;
  }
  return n;
}

void OutQueue::consume(size_t n) {
  bytes_ -= n;
  while (n > 0 && !chunks_.empty()) {
    Chunk& c = chunks_.front();
    size_t left = c.view().size();
    if (n < left) {
      c.offset += n;
      return;
    }
    n -= left;
    if (!c.ref && c.own.capacity() <= 4 * kRunSize) spare_.swap(c.own);
    chunks_.pop_front();
  }
  // Drop a fully written tail run too, keeping its buffer.
  while (!chunks_.empty() && chunks_.front().view().empty()) {
    if (!chunks_.front().ref) spare_.swap(chunks_.front().own);
    chunks_.pop_front();
  }
  if (chunks_.empty()) {
    chunks_.shrink_if_empty();
    // A large buffer left by a burst is not kept by an idle connection.
    if (spare_.capacity() > 4096) std::string().swap(spare_);
  }
}

}  // namespace broker
