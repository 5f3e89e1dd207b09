#include "store/coalescer.hpp"

namespace store {

Coalescer::Stripe& Coalescer::stripe_for(std::string_view device_id, std::string_view topic) const {
  return stripes_[KeyHash{}(Key{device_id, topic}) % kStripes];
}

void Coalescer::upsert(Batch& map, const broker::MessagePtr& m, bool keep_existing) {
  Key key{m->origin(), m->topic()};
  auto it = map.find(key);
  if (it == map.end()) {
    map.emplace(key, m);
    return;
  }
  if (keep_existing) return;
  // Re-point the key at the new message before the old one can be freed;
  // extracting the node lets the key change without a new allocation.
  auto node = map.extract(it);
  node.key() = key;
  node.mapped() = m;
  map.insert(std::move(node));
}

void Coalescer::put(const broker::MessagePtr& m) {
  Stripe& s = stripe_for(m->origin(), m->topic());
  std::lock_guard lock(s.mu);
  upsert(s.map, m, false);
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
  for (auto& [key, msg] : failed) {
    Stripe& s = stripe_for(key.device_id, key.topic);
    std::lock_guard lock(s.mu);
    upsert(s.map, msg, /*keep_existing=*/true);
  }
  failed.clear();
}

broker::MessagePtr Coalescer::find(std::string_view device_id, std::string_view topic) const {
  Stripe& s = stripe_for(device_id, topic);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(Key{device_id, topic});
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
