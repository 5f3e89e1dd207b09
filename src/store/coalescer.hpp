// Write-behind coalescing of the latest payload per (device_id, topic).
//
// Workers call put() for every device PUBLISH; only the newest message per key
// is kept until the store thread takes the batch. Keys are views into the
// message itself, so an update of a known key allocates nothing, and memory is
// bounded by the number of distinct keys however long the database is away.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/message.hpp"

namespace store {

struct Key {
  std::string_view device_id;
  std::string_view topic;
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const noexcept {
    size_t h = std::hash<std::string_view>{}(k.device_id);
    return h ^
           (std::hash<std::string_view>{}(k.topic) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  }
};

// Newest message per key; the key views point into the mapped message.
using Batch = std::unordered_map<Key, broker::MessagePtr, KeyHash>;

class Coalescer {
 public:
  // Keeps `m` as the newest value of (m->origin(), m->topic()).
  void put(const broker::MessagePtr& m);
  // Moves everything pending into `out` (which should be empty).
  void take(Batch& out);
  // Puts back entries that could not be written, unless a newer value for the
  // same key arrived meanwhile.
  void restore(Batch& failed);
  // The pending (not yet written) newest value of a key, if any.
  broker::MessagePtr find(std::string_view device_id, std::string_view topic) const;
  size_t pending() const;

 private:
  static constexpr size_t kStripes = 16;
  struct Stripe {
    mutable std::mutex mu;
    Batch map;
  };
  Stripe& stripe_for(std::string_view device_id, std::string_view topic) const;
  static void upsert(Batch& map, const broker::MessagePtr& m, bool keep_existing);

  mutable std::array<Stripe, kStripes> stripes_;
};

}  // namespace store
