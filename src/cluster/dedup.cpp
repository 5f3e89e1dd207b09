#include "cluster/dedup.hpp"

namespace cluster {

bool Dedup::first_time(std::string_view node, uint32_t epoch, uint64_t seq) {
  auto it = origins_.find(node);
  if (it == origins_.end()) {
    origins_.emplace(std::string(node), Origin{epoch, seq, 1});
    return true;
  }
  Origin& o = it->second;
  if (epoch < o.epoch) return false;  // from before the origin's reconnect
  if (epoch > o.epoch) {
    o = Origin{epoch, seq, 1};
    return true;
  }
  if (seq > o.highest) {
    const uint64_t shift = seq - o.highest;
    o.window = shift >= 64 ? 0 : o.window << shift;
    o.window |= 1;
    o.highest = seq;
    return true;
  }
  const uint64_t age = o.highest - seq;
  if (age >= 64) return false;  // below the window: cannot tell, so treat as a copy
  const uint64_t bit = uint64_t{1} << age;
  if (o.window & bit) return false;
  o.window |= bit;
  return true;
}

}  // namespace cluster
