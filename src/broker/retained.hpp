// Retained messages: the last retained PUBLISH per topic [MQTT-3.3.1-5].
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/message.hpp"

namespace broker {

class PersistenceSink;

class RetainedStore {
 public:
  // Storage told about every change; set before the server starts.
  void set_sink(PersistenceSink* sink) { sink_ = sink; }
  // Stores `m` without telling the sink: a message loaded at start-up, or one
  // of the broker's own $SYS messages (not worth keeping across a restart).
  void load(const MessagePtr& m);
  // Stores `m` for its topic, or clears the topic when the payload is empty
  // [MQTT-3.3.1-10], [MQTT-3.3.1-11].
  void put(const MessagePtr& m);
  // Appends every retained message whose topic matches `filter`.
  void match(std::string_view filter, std::vector<MessagePtr>& out) const;
  size_t size() const;

 private:
  PersistenceSink* sink_ = nullptr;
  mutable std::mutex mu_;
  std::unordered_map<std::string, MessagePtr> by_topic_;
};

}  // namespace broker
