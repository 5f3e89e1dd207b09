#include "store/coalescer.hpp"

namespace store {

Coalescer::Stripe& Coalescer::stripe_for(std::string_view device_id, std::string_view topic) const {
  return stripes_[KeyHash{}(KeyView{device_id, topic}) % kStripes];
}

void Coalescer::put(const broker::MessagePtr& m) {
  const KeyView key{m->origin(), m->topic()};
  Stripe& s = stripe_for(key.device_id, key.topic);
  std::lock_guard lock(s.mu);
  if (auto it = s.map.find(key); it != s.map.end()) {
    it->second = m;
  } else {
    s.map.emplace(Key{std::string(key.device_id), std::string(key.topic)}, m);
  }
}

void Coalescer::take(Batch& out) {
  for (Stripe& s : stripes_) {
    std::lock_guard lock(s.mu);
    if (out.empty()) {
      out.swap(s.map);
    } else {
      out.merge(s.map);  // keys never repeat across stripes
    }
  }
}

void Coalescer::restore(Batch& failed) {
  while (!failed.empty()) {
    auto node = failed.extract(failed.begin());
    Stripe& s = stripe_for(node.key().device_id, node.key().topic);
    std::lock_guard lock(s.mu);
    // A value that arrived meanwhile is newer: the failed one is dropped.
    s.map.insert(std::move(node));
  }
}

broker::MessagePtr Coalescer::find(std::string_view device_id, std::string_view topic) const {
  Stripe& s = stripe_for(device_id, topic);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(KeyView{device_id, topic});
  return it == s.map.end() ? nullptr : it->second;
}

size_t Coalescer::pending() const {
  size_t n = 0;
  for (Stripe& s : stripes_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace store
