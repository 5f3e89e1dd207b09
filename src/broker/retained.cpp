#include "broker/retained.hpp"

#include "broker/persistence.hpp"
#include "mqtt/topic.hpp"

namespace broker {

void RetainedStore::put(const MessagePtr& m) {
  load(m);
  if (sink_) sink_->retained_changed(m);
}

void RetainedStore::load(const MessagePtr& m) {
  std::lock_guard lock(mu_);
  if (m->payload().empty()) {
    by_topic_.erase(std::string(m->topic()));
  } else {
    by_topic_.insert_or_assign(std::string(m->topic()), m);
  }
}

void RetainedStore::match(std::string_view filter, std::vector<MessagePtr>& out) const {
  std::lock_guard lock(mu_);
  for (const auto& [topic, msg] : by_topic_) {
    if (mqtt::topic_matches(filter, topic)) out.push_back(msg);
  }
}

size_t RetainedStore::size() const {
  std::lock_guard lock(mu_);
  return by_topic_.size();
}

}  // namespace broker
