// Who holds each client id in the cluster: a JetStream key-value bucket
// (MQTT_OWNERS, history 1) mapping the id to the node whose connection claimed
// it last (design note B.5). The key's revision orders claims cluster-wide:
// the newest CONNECT has the largest, and a node closes any connection of its
// own whose claim a larger revision superseded. A watch on the bucket tells
// every node of every claim.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "cluster/nats_link.hpp"
#include "util/result.hpp"

struct __kvStore;
struct __kvWatcher;

namespace cluster {

// The bucket's key for a client id: "c." + base64url (any bytes are allowed
// in a client id; KV keys take [-/_=.A-Za-z0-9]), and its inverse.
std::string owner_key(std::string_view client_id);
std::optional<std::string> client_of_key(std::string_view key);

class Ownership {
 public:
  // `seen` is told of every claim the watch reports (client id, node,
  // revision), on the watch thread.
  using Seen = std::function<void(const std::string&, const std::string&, uint64_t)>;
  Ownership(Link& link, std::string node_id, int replicas, Seen seen);
  ~Ownership();
  Ownership(const Ownership&) = delete;
  Ownership& operator=(const Ownership&) = delete;

  // Blocking: opens (or creates) the bucket and starts the watch.
  util::Status open();
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  void close();

  struct Claim {
    uint64_t revision = 0;
    std::string previous_node;  // empty: nobody held it
  };
  // Blocking: makes this node the holder of `client_id`, by compare-and-set
  // on the previous revision (retried when another claim came between), so
  // `previous_node` is exactly the one this claim took it from.
  util::Result<Claim> claim(const std::string& client_id);
  // Blocking: the node that holds `client_id` (empty: none).
  util::Result<std::string> owner_of(const std::string& client_id);
  // Whether a claim newer than `revision` was seen (by the watch or a claim of
  // ours) for `client_id`.
  bool superseded(const std::string& client_id, uint64_t revision) const;

 private:
  void note(const std::string& client_id, uint64_t revision);
  void watch_loop();

  Link& link_;
  const std::string node_id_;
  const int replicas_;
  Seen seen_;
  __kvStore* kv_ = nullptr;
  __kvWatcher* watcher_ = nullptr;
  std::thread watch_thread_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint64_t> latest_;  // client id -> newest revision seen
};

}  // namespace cluster
