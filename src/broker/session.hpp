// The server side of an MQTT session: what outlives one network connection
// when clean session is 0 (subscriptions, QoS 1/2 state, queued messages).
//
// Threading: a session is owned by one shard at a time (`owner`). Only that
// shard's thread touches the fields below marked "owner only"; other threads
// reach the session by posting to its owner's inbox.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/delivery.hpp"
#include "broker/message.hpp"
#include "broker/ring.hpp"
#include "broker/sub_options.hpp"

namespace broker {

class Client;

// Session Expiry Interval meaning "never" (and the value for a 3.1.1 session
// with clean session 0).
inline constexpr uint32_t kNeverExpires = 0xFFFFFFFF;

// A will message waiting to be published (MQTT 5 Will Delay Interval), or held
// by a connection until it ends.
struct StoredWill {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  std::string properties;  // forwarded v5 properties (see MessageMeta)
  bool has_expiry = false;
  uint32_t expiry_interval_s = 0;
  uint32_t delay_s = 0;
};

// A QoS 1/2 delivery written to the client and not yet fully acknowledged.
// (Delivery's fields first: same 32 bytes as before.)
struct OutboundFlight : Delivery {
  uint16_t packet_id = 0;
  bool released = false;  // QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP
  // Not yet resent on this connection: held back after a resume because the
  // client's Receive Maximum is smaller than what was in flight.
  bool held_back = false;
};

class Session {
 public:
  Session(std::string id, int owner_shard) : owner(owner_shard), client_id_(std::move(id)) {}

  const std::string& client_id() const { return client_id_; }

  // Shard that currently owns this session. Read it with owner_shard(),
  // owned_by() or assert_owned_by(); only a takeover moves it (hand_to).
  std::atomic<int> owner;
  // Acquire: the new owner sees everything the previous one wrote before
  // hand_to() released it.
  int owner_shard() const { return owner.load(std::memory_order_acquire); }
  bool owned_by(int shard) const { return owner_shard() == shard; }
  void hand_to(int shard) { owner.store(shard, std::memory_order_release); }
  // The one check behind "owner only": a debug build stops at the first touch
  // of a session's owner-only state from another shard's thread.
  void assert_owned_by([[maybe_unused]] int shard) const { assert(owned_by(shard)); }
  // Connection id of the latest CONNECT that claimed this client id; guarded
  // by the broker's session-registry mutex.
  uint64_t claim = 0;
  // Whether a connection is attached; readable from any thread (the API).
  std::atomic<bool> online{false};

  // ---- owner only ----
  Client* client = nullptr;  // the live connection, if any
  // The session ends with its connection (3.1.1 clean session 1, or MQTT 5
  // Session Expiry Interval 0).
  bool clean = true;
  // Seconds an offline session is kept (kNeverExpires: forever).
  uint32_t expiry_s = kNeverExpires;
  // Monotonic ms at which the offline session expires; 0 while online or never.
  int64_t expires_at_ms = 0;
  // A will waiting for its delay (or for the session's end) to run out.
  std::unique_ptr<StoredWill> pending_will;  // (a pointer: most sessions have none)
  int64_t will_due_ms = 0;
  // The connection that held the session when it went offline (its registry
  // claim, for expiry); 0 for a session restored from storage.
  uint64_t last_conn_id = 0;
  bool timed = false;  // in its owner shard's list of sessions with a deadline
  // Cluster: the claim revision of the attached connection (0: single server,
  // or claimed while NATS was down); a newer claim elsewhere ends it.
  uint64_t cluster_revision = 0;
  // Filter as subscribed ("$share/g/f" for a shared subscription) -> options.
  std::map<std::string, SubOptions, std::less<>> subscriptions;
  std::vector<OutboundFlight> inflight;  // in send order
  Ring<Delivery> queue;                  // QoS 1/2 deliveries waiting for room in the window
  std::vector<uint16_t> incoming_qos2;   // ids of QoS 2 PUBLISHes awaiting PUBREL
  uint16_t last_packet_id = 0;
  uint32_t held_back = 0;        // flights with held_back set
  uint64_t dropped = 0;          // messages dropped because the queue was full
  bool unsaved_changes = false;  // changed since the last snapshot
  bool persisted = false;        // a snapshot was handed to storage

  uint16_t next_packet_id() {
    // Skip 0 and ids still in flight [MQTT-2.3.1-2]; the window is small.
    for (;;) {
      if (++last_packet_id == 0) last_packet_id = 1;
      bool used = false;
      for (const auto& f : inflight) used |= f.packet_id == last_packet_id;
      if (!used) return last_packet_id;
    }
  }

 private:
  std::string client_id_;
};

}  // namespace broker
