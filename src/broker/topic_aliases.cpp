#include "broker/topic_aliases.hpp"

namespace broker {

TopicAliases::Inbound TopicAliases::resolve(uint16_t alias, std::string_view& topic) {
  if (in_.size() < alias) in_.resize(alias);
  std::string& slot = in_[alias - 1u];
  if (topic.empty()) {
    if (slot.empty()) return Inbound::Unset;
    topic = slot;
  } else {
    slot.assign(topic);  // a topic with an alias (re)defines it [MQTT-3.3.2-12]
  }
  return Inbound::Ok;
}

TopicAliases::Outbound TopicAliases::outbound(std::string_view topic, uint16_t limit) const {
  if (auto it = out_.find(topic); it != out_.end()) return {it->second, true};
  if (out_.size() < limit) return {static_cast<uint16_t>(out_.size() + 1), false};
  return {};
}

void TopicAliases::defined(std::string_view topic, uint16_t alias) {
  out_.emplace(std::string(topic), alias);
}

}  // namespace broker
