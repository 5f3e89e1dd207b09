// An application message as it travels through the broker: immutable and
// reference-counted, so fan-out to many subscribers shares one buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace broker {

// MQTT 5 metadata of a message: the properties a server forwards unaltered
// (Payload Format Indicator, Content Type, Response Topic, Correlation Data,
// User Properties, as one encoded property block without its length) and the
// Message Expiry Interval. Empty for 3.1/3.1.1 publishes.
struct MessageMeta {
  std::string_view properties;
  bool has_expiry = false;
  uint32_t expiry_interval_s = 0;
};

class Message {
 public:
  // `wire` holds the topic exactly as a PUBLISH carries it (2-byte length, then the
  // bytes) followed by the payload and then the forwarded v5 properties, so a
  // sender can emit it with no re-encoding and one allocation holds it all.
  Message(std::string_view topic, std::string_view payload, uint8_t qos, bool retain,
          std::string_view origin, int64_t received_ms, const MessageMeta& meta = {})
      : origin_(origin),
        topic_len_(static_cast<uint16_t>(topic.size())),
        qos_(qos),
        retain_(retain),
        has_expiry_(meta.has_expiry),
        props_len_(static_cast<uint32_t>(meta.properties.size())),
        expiry_s_(meta.expiry_interval_s),
        received_ms_(received_ms) {
    wire_.reserve(2 + topic.size() + payload.size() + meta.properties.size());
    wire_.push_back(static_cast<char>(topic.size() >> 8));
    wire_.push_back(static_cast<char>(topic.size() & 0xff));
    wire_.append(topic);
    wire_.append(payload);
    wire_.append(meta.properties);
  }

  std::string_view topic() const { return {wire_.data() + 2, topic_len_}; }
  std::string_view payload() const {
    return {wire_.data() + 2 + topic_len_, wire_.size() - 2 - topic_len_ - props_len_};
  }
  // Length-prefixed topic, as on the wire.
  std::string_view wire_topic() const { return {wire_.data(), 2u + topic_len_}; }
  uint8_t qos() const { return qos_; }
  bool retain() const { return retain_; }
  // Client id of the device that published it; empty for messages from the API.
  const std::string& origin() const { return origin_; }
  // Wall-clock time (ms since the Unix epoch) the server received it.
  int64_t received_ms() const { return received_ms_; }

  // MQTT 5: the forwarded property block (see MessageMeta); empty for 3.x.
  std::string_view properties() const {
    return {wire_.data() + wire_.size() - props_len_, props_len_};
  }
  bool has_expiry() const { return has_expiry_; }
  uint32_t expiry_interval_s() const { return expiry_s_; }
  MessageMeta meta() const { return {properties(), has_expiry_, expiry_s_}; }
  // Whether the Message Expiry Interval has passed at wall-clock `now_ms`.
  bool expired(int64_t now_ms) const {
    return has_expiry_ && now_ms - received_ms_ >= int64_t{expiry_s_} * 1000;
  }
  // Seconds left of the Message Expiry Interval at `now_ms` (at least 1 while not
  // expired), to send on with the message [MQTT-3.3.2-6].
  uint32_t remaining_s(int64_t now_ms) const {
    int64_t left_ms = int64_t{expiry_s_} * 1000 - (now_ms - received_ms_);
    if (left_ms <= 0) return 0;
    return static_cast<uint32_t>((left_ms + 999) / 1000);
  }

 private:
  std::string wire_;
  std::string origin_;
  uint16_t topic_len_;
  uint8_t qos_;
  bool retain_;
  bool has_expiry_;
  uint32_t props_len_;
  uint32_t expiry_s_;
  int64_t received_ms_;
};

using MessagePtr = std::shared_ptr<const Message>;

}  // namespace broker
