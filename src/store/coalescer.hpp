// Write-behind coalescing of the latest payload per (device_id, topic).
//
// Workers call put() for every device PUBLISH; only the newest message per key
// is kept until the store thread takes the batch. An update of a known key
// allocates nothing, and memory is bounded by the number of distinct keys
// however long the database is away.
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

// A key owns its strings (one allocation per distinct key, made once); lookups
// use KeyView, so updating a known key hashes once and allocates nothing.
struct Key {
  std::string device_id;
  std::string topic;
};

struct KeyView {
  std::string_view device_id;
  std::string_view topic;
};

struct KeyHash {
  using is_transparent = void;
  size_t operator()(const KeyView& k) const noexcept {
    size_t h = std::hash<std::string_view>{}(k.device_id);
    return h ^
           (std::hash<std::string_view>{}(k.topic) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  }
  size_t operator()(const Key& k) const noexcept { return (*this)(KeyView{k.device_id, k.topic}); }
};

struct KeyEq {
  using is_transparent = void;
  static KeyView v(const Key& k) { return {k.device_id, k.topic}; }
  static KeyView v(const KeyView& k) { return k; }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    return v(a).device_id == v(b).device_id && v(a).topic == v(b).topic;
  }
};

// Newest message per key.
using Batch = std::unordered_map<Key, broker::MessagePtr, KeyHash, KeyEq>;

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

  mutable std::array<Stripe, kStripes> stripes_;
};

}  // namespace store
