// The routing core shared by every shard: the subscription index, the session
// registry and retained messages. Knows nothing of sockets or gRPC.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/authenticator.hpp"
#include "broker/blocking_pool.hpp"
#include "broker/config.hpp"
#include "broker/inbox.hpp"
#include "broker/message.hpp"
#include "broker/peers.hpp"
#include "broker/persistence.hpp"
#include "broker/retained.hpp"
#include "broker/topic_index.hpp"

namespace broker {

class Session;
class Shard;

// Sees every message that devices publish (gRPC streams, the store). Called on
// the publishing shard's thread: it must not block.
class PublishObserver {
 public:
  virtual ~PublishObserver() = default;
  virtual void on_device_publish(const MessagePtr& msg) = 0;
  // A message another node of the cluster accepted (from its devices or its
  // API), called on the cluster's thread. The store ignores these: the node
  // that received a message stores it.
  virtual void on_peer_publish(const MessagePtr& /*msg*/, Source /*from*/) {}
};

// Counters for logs and metrics that change rarely; relaxed atomics. The
// per-message counters live in each shard (ShardCounters), so that workers do
// not bounce one cache line between cores on every message.
struct Stats {
  std::atomic<uint64_t> open_connections{0};  // sockets accepted and not yet closed
  std::atomic<uint64_t> refused_connections{0};
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> dropped_queued{0};
};

// Sums of every shard's counters plus the shared ones: the periodic log
// line, /metrics and $SYS.
struct StatsSnapshot {
  uint64_t open_connections = 0, messages_in = 0, messages_out = 0, dropped_qos0 = 0,
           dropped_queued = 0, sessions = 0, subscriptions = 0, retained = 0;
  uint64_t messages_in_qos[3] = {}, messages_out_qos[3] = {};
  uint64_t dropped_not_authorized = 0, dropped_too_large = 0, dropped_expired = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  uint64_t connected = 0;          // clients past CONNACK now
  uint64_t connections_total = 0;  // CONNECTs accepted since start
  uint64_t sessions_offline() const { return sessions > connected ? sessions - connected : 0; }
};

class Broker {
 public:
  // `wakers[i]` wakes shard i's event loop.
  Broker(Config cfg, std::vector<std::function<void()>> wakers);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  const Config& config() const { return cfg_; }
  TopicIndex& index() { return index_; }
  RetainedStore& retained() { return retained_; }
  Stats& stats() { return stats_; }
  // Safe from any thread (relaxed reads).
  StatsSnapshot stats_now();
  Shard& shard(int i) { return *shards_[static_cast<size_t>(i)]; }
  int shard_count() const { return static_cast<int>(shards_.size()); }

  void add_observer(PublishObserver* o) { observers_.push_back(o); }

  // Authentication and authorization; everything is allowed unless a policy
  // with files is set (nullptr: everything allowed again). Both are safe from
  // any thread at any time (SIGHUP reload); auth_policy() returns a copy that
  // stays valid however often the policy is replaced. Read at CONNECT only.
  void set_auth_policy(std::shared_ptr<const auth::Policy> p) { auth_.replace(std::move(p)); }
  std::shared_ptr<const auth::Policy> auth_policy() const { return auth_.policy(); }
  // Slow work (password hashing) that must not run on a worker thread.
  BlockingPool& blocking() { return blocking_; }

  // Durable storage of retained messages and persistent sessions; set before
  // the server starts, together with the load calls (load_stored_session, RetainedStore::load).
  void set_persistence(PersistenceSink* sink) {
    persistence_ = sink;
    retained_.set_sink(sink);
  }
  PersistenceSink* persistence() const { return persistence_; }
  // Recreates a stored persistent session, offline, before the server starts.
  void load_stored_session(SessionSnapshot&& snap);
  // Asks every shard to hand snapshots of its changed persistent sessions to
  // the sink (asynchronously, on the shards' threads).
  void request_session_saves();
  // The same, synchronously: only once the worker threads have stopped.
  void save_sessions_now();
  const std::vector<PublishObserver*>& observers() const { return observers_; }

  // CONNECT: registers connection `conn_id` on shard `shard` as the holder of
  // `client_id`. Returns the session when it is new (attach at once); returns
  // an existing session when another shard must hand it over first (see
  // Shard::handle_takeover). `is_new` tells which.
  std::shared_ptr<Session> claim_session(const std::string& client_id, int shard, uint64_t conn_id,
                                         bool& is_new);
  // Whether `conn_id` is still the latest claimant of `s`.
  bool holds_claim(const Session& s, uint64_t conn_id);
  // Forgets a clean session when its connection ends (only if `conn_id` still
  // holds it). Returns true when it was removed.
  bool release_session(const std::shared_ptr<Session>& s, uint64_t conn_id);
  std::shared_ptr<Session> find_session(std::string_view client_id);
  // Removes `s` from the registry (if it is still the one registered for its id).
  void forget_session(const std::shared_ptr<Session>& s);
  // Drops a session's subscriptions and queued state (clean session). Owner only.
  void discard_session_state(Session& s);
  void log_queue_drop(const std::string& client_id, uint64_t dropped);

  using SendResult = broker::SendResult;
  // Posts a message to one client's session, from any thread (the API).
  // Sent: the client is connected; Queued: it has a persistent session and is
  // offline (QoS 1/2 wait for it); NotFound: no session has that client id.
  SendResult send_to_client(std::string_view client_id, const MessagePtr& msg, uint8_t qos);
  // Hands `item` to shard `shard`'s thread, from any thread. From a worker
  // (Shard::current()) it joins that shard's outbox for `shard`, sent at the
  // end of the loop turn with one lock and at most one wake-up whatever the
  // count; from any other thread it goes to the target's inbox at once.
  void submit_to(int shard, InboxItem item);
  // Runs `fn` on shard `i`'s thread, from any thread.
  void run_on_shard(int i, std::function<void()> fn) { submit_to(i, inbox::Run{std::move(fn)}); }
  // Routes a message to every matching subscriber, from any thread (the API).
  void publish_from_api(const MessagePtr& msg);
  // A retained message set (or cleared) here: in memory, the store, and the
  // other nodes of the cluster.
  void keep_retained(const MessagePtr& msg);

  // ---- the cluster (src/cluster); all null/unused on a single server ----
  // Set before the server starts; the topic index reports interest to it.
  void set_peers(Peers* p) {
    peers_ = p;
    index_.set_peers(p);
  }
  Peers* peers() const { return peers_; }
  // A message another node accepted: to the gRPC streams (observers), and to
  // this node's subscribers unless it is a device's in non-broker mode. From
  // the cluster's thread; the messages of one `origin` (a worker of another
  // node) are routed in the order called.
  void deliver_from_peer(const MessagePtr& msg, Source from, std::string_view origin);
  // The cluster picked this node's members of `share_filter`
  // ("$share/{group}/{filter}") for `msg`: one of them gets it.
  void deliver_to_group(const MessagePtr& msg, std::string_view share_filter, Source from);
  // A retained change made on another node: kept in memory only (the node
  // that took it stores it).
  void retained_from_peer(const MessagePtr& msg) { retained_.load(msg); }
  // Another node's CONNECT claimed `client_id` (claim `revision`): on the
  // session's owner shard, closes its connection (MQTT 5: Session taken over,
  // 0x8E) with a takeover's will rules and removes the session from this node
  // (from its store too when `erase_stored`). `reply` runs on that shard with
  // the session's snapshot when it goes on there (persistent, and the new
  // connection did not ask for a clean start), else with nothing. A session
  // claimed here with a newer revision stays.
  void give_session_away(const std::string& client_id, bool clean_start, uint64_t revision,
                         bool erase_stored,
                         std::function<void(std::optional<SessionSnapshot>)> reply);
  // The session another node handed over becomes this node's, owned by shard
  // `shard` (called on its thread) unless one with that id is here already.
  void adopt_session(SessionSnapshot&& snap, int shard);
  // Every client id connected to this node that a newer claim elsewhere
  // supersedes is closed: the cluster calls this for each claim it sees.
  void claimed_elsewhere(const std::string& client_id, uint64_t revision);

  // The broker's own $SYS messages: retained in memory only (they are made
  // again after a restart) and routed like an API publish, never seen by the
  // observers (store, gRPC streams), which are for device messages.
  void publish_sys(const MessagePtr& msg);

 private:
  Config cfg_;
  TopicIndex index_;
  RetainedStore retained_;
  Stats stats_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<PublishObserver*> observers_;
  PersistenceSink* persistence_ = nullptr;
  Peers* peers_ = nullptr;
  auth::Authenticator auth_;  // the current auth::Policy, swapped under a mutex
  BlockingPool blocking_{2};
  std::mutex sessions_mu_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace broker
