// The server side of an MQTT session: what outlives one network connection
// when clean session is 0 (subscriptions, QoS 1/2 state, queued messages).
//
// Threading: a session is owned by one shard at a time (`owner`). Only that
// shard's thread touches the fields below marked "owner only"; other threads
// reach the session by posting to its owner's inbox.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "broker/message.hpp"
#include "broker/ring.hpp"

namespace broker {

class Client;

// A QoS 1/2 message sent to the client and not yet fully acknowledged.
struct OutboundFlight {
  uint16_t packet_id = 0;
  uint8_t qos = 1;
  bool retain = false;
  bool released = false;  // QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP
  MessagePtr msg;
};

// A QoS 1/2 message waiting for room in the inflight window.
struct QueuedDelivery {
  MessagePtr msg;
  uint8_t qos = 1;
  bool retain = false;
};

class Session {
 public:
  Session(std::string id, int owner_shard) : owner(owner_shard), client_id_(std::move(id)) {}

  const std::string& client_id() const { return client_id_; }

  // Shard that currently owns this session.
  std::atomic<int> owner;
  // Connection id of the latest CONNECT that claimed this client id; guarded
  // by the broker's session-registry mutex.
  uint64_t claim = 0;
  // Whether a connection is attached; readable from any thread (the API).
  std::atomic<bool> online{false};

  // ---- owner only ----
  Client* client = nullptr;  // the live connection, if any
  bool clean = true;
  std::map<std::string, uint8_t, std::less<>> subscriptions;  // filter -> granted QoS
  std::vector<OutboundFlight> inflight;                       // in send order
  Ring<QueuedDelivery> queue;
  std::vector<uint16_t> incoming_qos2;  // ids of QoS 2 PUBLISHes awaiting PUBREL
  uint16_t last_packet_id = 0;
  uint64_t dropped = 0;        // messages dropped because the queue was full
  bool persist_dirty = false;  // changed since the last snapshot
  bool persisted = false;      // a snapshot was handed to storage

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
