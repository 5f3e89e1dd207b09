// An application message as it travels through the broker: immutable and
// reference-counted, so fan-out to many subscribers shares one buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace broker {

class Message {
 public:
  // `wire` holds the topic exactly as a PUBLISH carries it (2-byte length, then the
  // bytes) followed by the payload, so a sender can emit it with no re-encoding.
  Message(std::string_view topic, std::string_view payload, uint8_t qos, bool retain,
          std::string_view origin, int64_t received_ms)
      : origin_(origin),
        topic_len_(static_cast<uint16_t>(topic.size())),
        qos_(qos),
        retain_(retain),
        received_ms_(received_ms) {
    wire_.reserve(2 + topic.size() + payload.size());
    wire_.push_back(static_cast<char>(topic.size() >> 8));
    wire_.push_back(static_cast<char>(topic.size() & 0xff));
    wire_.append(topic);
    wire_.append(payload);
  }

  std::string_view topic() const { return {wire_.data() + 2, topic_len_}; }
  std::string_view payload() const {
    return {wire_.data() + 2 + topic_len_, wire_.size() - 2 - topic_len_};
  }
  // Length-prefixed topic, as on the wire.
  std::string_view wire_topic() const { return {wire_.data(), 2u + topic_len_}; }
  uint8_t qos() const { return qos_; }
  bool retain() const { return retain_; }
  // Client id of the device that published it; empty for messages from the API.
  const std::string& origin() const { return origin_; }
  int64_t received_ms() const { return received_ms_; }

 private:
  std::string wire_;
  std::string origin_;
  uint16_t topic_len_;
  uint8_t qos_;
  bool retain_;
  int64_t received_ms_;
};

using MessagePtr = std::shared_ptr<const Message>;

}  // namespace broker
