// Bytes waiting to be written to one connection. Small packets are copied into
// a shared run of bytes (one writev element for many packets); large payloads
// are referenced in place from the shared Message, so fan-out does not copy
// them per subscriber.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "broker/message.hpp"
#include "broker/ring.hpp"

namespace broker {

class OutQueue {
 public:
  void append(std::string_view bytes);
  // Writes a PUBLISH of `m` with the given delivery QoS, packet id and flags.
  void append_publish(const MessagePtr& m, uint8_t qos, uint16_t packet_id, bool retain, bool dup);
  // The same for an MQTT 5 client: the properties are the message's forwarded
  // ones followed by `extra` (this delivery's Message Expiry Interval, Topic
  // Alias, Subscription Identifiers); with `omit_topic` the topic is sent
  // empty, named by the Topic Alias in `extra`.
  void append_publish_v5(const MessagePtr& m, uint8_t qos, uint16_t packet_id, bool retain,
                         bool dup, std::string_view extra, bool omit_topic);

  bool empty() const { return bytes_ == 0; }
  size_t bytes() const { return bytes_; }

  // Fills up to `max` views of the queued bytes, in order; returns the count.
  size_t gather(std::string_view* out, size_t max) const;
  // Drops the first `n` bytes (after they were written).
  void consume(size_t n);

 private:
  struct Chunk {
    std::string own;        // used when `ref` is null
    MessagePtr ref;         // keeps `span` alive
    std::string_view span;  // bytes inside *ref
    size_t offset = 0;      // bytes already written
    std::string_view view() const {
      return ref ? span.substr(offset) : std::string_view(own).substr(offset);
    }
  };
  std::string& tail_bytes();

  Ring<Chunk> chunks_;
  std::string spare_;  // a drained buffer kept for reuse, so steady state does not allocate
  size_t bytes_ = 0;
};

}  // namespace broker
