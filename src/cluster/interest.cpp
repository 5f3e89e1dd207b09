#include "cluster/interest.hpp"

#include <spdlog/spdlog.h>

#include "cluster/subject.hpp"
#include "mqtt/topic.hpp"

namespace cluster {

void Interest::add_filter(std::string_view filter) {
  std::string_view group, inner = filter;
  if (!mqtt::parse_shared_subscription(filter, group, inner)) {
    for (const std::string& s : filter_subjects(filter)) add_subject(s);
    return;
  }
  // "f/#" is two subjects under one queue name: NATS keeps them one group.
  const std::string queue = queue_name(group, inner);
  const Handler* h = group_handler_(filter);
  for (const std::string& s : filter_subjects(inner)) add_subject(s, queue, h);
}

void Interest::remove_filter(std::string_view filter) {
  std::string_view group, inner = filter;
  if (!mqtt::parse_shared_subscription(filter, group, inner)) {
    for (const std::string& s : filter_subjects(filter)) remove_subject(s);
    return;
  }
  const std::string queue = queue_name(group, inner);
  for (const std::string& s : filter_subjects(inner)) remove_subject(s, queue);
}

void Interest::add_everything() {
  add_subject("m.>");
  add_subject("m$.>");
}

void Interest::remove_everything() {
  remove_subject("m.>");
  remove_subject("m$.>");
}

size_t Interest::subjects() const {
  std::lock_guard lock(mu_);
  return by_subject_.size();
}

void Interest::add_subject(const std::string& subject, const std::string& queue,
                           const Handler* handler) {
  std::lock_guard lock(mu_);
  Entry& e = by_subject_[queue.empty() ? subject : queue + ' ' + subject];
  if (e.count++ > 0) return;
  auto sub = queue.empty() ? link_.subscribe(subject, handler_)
                           : shared_.subscribe(subject, handler, queue);
  if (!sub) {
    // Counted anyway, so that the matching remove balances; logged, as the
    // node will not hear that subject's messages from the other nodes.
    spdlog::error("{}", sub.error().message);
    return;
  }
  e.sub = sub.value();
}

void Interest::remove_subject(const std::string& subject, const std::string& queue) {
  std::lock_guard lock(mu_);
  auto it = by_subject_.find(queue.empty() ? subject : queue + ' ' + subject);
  if (it == by_subject_.end()) return;
  if (--it->second.count > 0) return;
  (queue.empty() ? link_ : shared_).unsubscribe(it->second.sub);
  by_subject_.erase(it);
}

}  // namespace cluster
