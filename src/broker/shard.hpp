// The per-worker part of the broker. Each network worker thread owns one
// shard; every client connected to that worker, and every session owned by
// it, is touched only from that thread, so none of that state needs a lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/clock.hpp"
#include "broker/delivery.hpp"
#include "broker/inbox.hpp"
#include "broker/message.hpp"
#include "broker/topic_index.hpp"

namespace broker {

class Broker;
class Client;
class Session;
struct StoredWill;

// The will as a message, published now by `client_id`.
MessagePtr make_will_message(const StoredWill& w, const std::string& client_id);

// Queues `d` for a session whose inflight window is full or that is offline,
// dropping (and counting) the oldest beyond the configured bound.
void queue_for_later(Session& s, Delivery d, Broker& broker);

// Per-message counters of one shard. Only the shard's thread writes them
// (a plain load + store, no locked instruction); others read them relaxed
// (the stats line, /metrics, $SYS). Aligned so that two shards' counters
// never share a cache line.
struct alignas(64) ShardCounters {
  std::atomic<uint64_t> messages_in[3]{};   // PUBLISHes accepted from clients (and wills), by QoS
  std::atomic<uint64_t> messages_out[3]{};  // PUBLISHes written to clients, by QoS
  std::atomic<uint64_t> dropped_qos0{0};    // QoS 0 not sent: the out queue was full
  std::atomic<uint64_t> dropped_not_authorized{0};  // client PUBLISHes refused (ACL, $SYS)
  std::atomic<uint64_t> dropped_too_large{0};       // above the client's Maximum Packet Size
  std::atomic<uint64_t> dropped_expired{0};         // Message Expiry Interval passed before sending
  std::atomic<uint64_t> bytes_in{0};                // read from sockets (after TLS)
  std::atomic<uint64_t> bytes_out{0};               // written to sockets (before TLS)
  std::atomic<uint64_t> connected{0};               // gauge: this shard's clients past CONNACK
  static void bump(std::atomic<uint64_t>& c) { add(c, 1); }
  static void add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void drop(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
};

class Shard {
 public:
  ShardCounters& counters() { return counters_; }
  Shard(Broker& broker, int index, int shard_count, std::function<void()> wake);

  Broker& broker() { return broker_; }
  int index() const { return index_; }
  Inbox& inbox() { return inbox_; }

  // Milliseconds of a monotonic clock, refreshed once per loop turn.
  int64_t now_ms() const { return now_ms_; }
  void set_now_ms(int64_t t) { now_ms_ = t; }

  // Clients of this shard's connections, by connection id.
  void add_client(Client* c);
  void remove_client(Client* c);
  const std::unordered_map<uint64_t, Client*>& clients() const { return clients_; }

  // A device published `msg`: route it to matching subscribers (unless in
  // non-broker mode), keep it if retained, and hand it to the observers.
  void publish_from_device(const MessagePtr& msg);
  // Routes `msg` to every matching subscription; used for device and API messages.
  void route(const MessagePtr& msg);
  // Hands `d` to session `s`: at once when this shard owns it, else through
  // the owning shard's inbox.
  void deliver(const std::shared_ptr<Session>& s, Delivery d);
  // The shard whose worker runs on this thread (nullptr on other threads:
  // gRPC, the blocking pool, the main thread). Broker::submit_to batches what
  // a worker sends to other shards in its outbox; other threads post at once.
  static Shard* current() { return current_; }
  // Makes `shard` current() on this thread for the scope's lifetime.
  class OnThisThread {
   public:
    explicit OnThisThread(Shard& shard) : previous_(current_) { current_ = &shard; }
    ~OnThisThread() { current_ = previous_; }
    OnThisThread(const OnThisThread&) = delete;
    OnThisThread& operator=(const OnThisThread&) = delete;

   private:
    Shard* previous_;
  };

  // Processes what other threads posted. Called when woken.
  void drain_inbox();
  // Sends the batches collected for other shards. Called once per loop turn.
  void flush_outboxes();
  bool outboxes_empty() const;

  // Runs takeover step 1 on the session's current owner (see Broker::claim_session).
  void handle_takeover(inbox::Takeover& t);

  // A persistent session changed (subscriptions, queued or inflight messages):
  // it is saved at the next snapshot request. Owner thread only.
  void mark_session_changed(const std::shared_ptr<Session>& s);
  void save_changed_sessions();

  // A session of this shard went offline: it ends at s->expires_at_ms (if
  // set), and its pending will goes out at s->will_due_ms (if any).
  void schedule_offline_session(const std::shared_ptr<Session>& s);
  // Publishes due wills and ends expired sessions. Called from the tick.
  void expire_sessions();
  // Publishes a session's pending will now (its delay ran out, or the session ends).
  void publish_pending_will(Session& s);
  // Buffers for MQTT 5 properties built and used within one call on this
  // shard's thread (a PUBLISH's forwarded block; one delivery's own block),
  // shared by its connections instead of held by each.
  std::string& scratch_properties() { return scratch_properties_; }
  // Small packets (acks, CONNACK, ...) are encoded here, then copied out.
  std::string& scratch_packet() { return scratch_packet_; }
  std::string& scratch_delivery_properties() { return scratch_delivery_properties_; }

 private:
  void deliver_here(const std::shared_ptr<Session>& s, Delivery&& d);
  friend class Broker;  // submit_to appends to the outboxes
  // Appends to the batch for `shard`, sent at the end of the loop turn.
  void post(int shard, InboxItem item);
  void handle_attach(inbox::Attach& a);
  // Attach step of a takeover, on `shard` (here at once, or through its inbox).
  void send_attach(int shard, inbox::Attach attach);

  static thread_local Shard* current_;

  Broker& broker_;
  int index_;
  ShardCounters counters_;
  Inbox inbox_;
  int64_t now_ms_ = 0;
  std::unordered_map<uint64_t, Client*> clients_;
  std::vector<std::vector<InboxItem>> outboxes_;  // per target shard
  std::vector<InboxItem> drained_;                // reused between drains
  std::vector<Subscriber> matches_;               // reused between publishes
  std::vector<std::shared_ptr<Session>> changed_sessions_;
  // Offline sessions with a deadline (expiry or will delay); checked each tick.
  std::vector<std::shared_ptr<Session>> timed_sessions_;
  std::string scratch_properties_;
  std::string scratch_packet_;
  std::string scratch_delivery_properties_;
};

}  // namespace broker
