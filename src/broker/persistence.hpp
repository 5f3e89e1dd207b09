// What the broker hands to durable storage besides latest payloads: retained
// messages and persistent sessions. The sink is called on worker threads and
// must not block (the store coalesces and writes in the background).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "broker/message.hpp"
#include "broker/session.hpp"

namespace broker {

// A persistent (clean session 0) session as it is saved and restored:
// subscriptions, and the QoS 1/2 messages not yet acknowledged or sent.
struct SessionSnapshot {
  std::string client_id;
  uint32_t expiry_s = kNeverExpires;  // Session Expiry Interval
  std::vector<std::pair<std::string, SubOptions>> subscriptions;
  std::vector<Delivery> messages;  // in delivery order
};

// What `s` is saved as, and handed to another node as (owner thread only).
SessionSnapshot snapshot_of(const Session& s);

class PersistenceSink {
 public:
  virtual ~PersistenceSink() = default;
  // A retained message was set, or cleared (empty payload).
  virtual void retained_changed(const MessagePtr& m) = 0;
  virtual void session_saved(SessionSnapshot&& s) = 0;
  virtual void session_erased(const std::string& client_id) = 0;
};

}  // namespace broker
