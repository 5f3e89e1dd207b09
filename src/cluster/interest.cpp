#include "cluster/interest.hpp"

#include <spdlog/spdlog.h>

#include "cluster/subject.hpp"
#include "mqtt/topic.hpp"

namespace cluster {

namespace {
std::string_view inner_filter(std::string_view filter) {
  std::string_view group, inner = filter;
  mqtt::parse_shared_subscription(filter, group, inner);
  return inner;
}
}  // namespace

void Interest::add_filter(std::string_view filter) {
  for (const std::string& s : filter_subjects(inner_filter(filter))) add_subject(s);
}

void Interest::remove_filter(std::string_view filter) {
  for (const std::string& s : filter_subjects(inner_filter(filter))) remove_subject(s);
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

void Interest::add_subject(const std::string& subject) {
  std::lock_guard lock(mu_);
  Entry& e = by_subject_[subject];
  if (e.count++ > 0) return;
  auto sub = link_.subscribe(subject, handler_);
  if (!sub) {
    // Counted anyway, so that the matching remove balances; logged, as the
    // node will not hear that subject's messages from the other nodes.
    spdlog::error("{}", sub.error().message);
    return;
  }
  e.sub = sub.value();
}

void Interest::remove_subject(const std::string& subject) {
  std::lock_guard lock(mu_);
  auto it = by_subject_.find(subject);
  if (it == by_subject_.end()) return;
  if (--it->second.count > 0) return;
  link_.unsubscribe(it->second.sub);
  by_subject_.erase(it);
}

}  // namespace cluster
