// The latest-payload store: the newest payload of every (device_id, topic)
// that devices publish. The broker hands it every device PUBLISH without
// waiting (write-behind); readers are API threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "broker/broker.hpp"
#include "broker/persistence.hpp"
#include "util/result.hpp"

namespace store {

struct Record {
  std::string device_id;
  std::string topic;
  std::string payload;
  int64_t updated_ms = 0;  // server receive time, ms since the Unix epoch
};

enum class ReadStatus { Found, NotFound, Unavailable };

// How the store is doing, for /metrics and /healthz; safe from any thread.
struct StoreHealth {
  bool up = true;             // false while the last write to the backend failed
  std::string problem;        // why, when !up
  size_t pending = 0;         // values waiting to be written
  uint64_t write_errors = 0;  // failed write attempts since start
};

// A store sees every device PUBLISH (PublishObserver) and every change of
// retained messages and persistent sessions (PersistenceSink).
class Store : public broker::PublishObserver, public broker::PersistenceSink {
 public:
  // Starts background flushing. Fails with a one-line error when the
  // store cannot be opened at all (an unreachable Cassandra is not an error:
  // it is retried in the background).
  virtual util::Status start() = 0;
  // Loads stored retained messages and persistent sessions into `b` (before
  // the server starts) and connects `b` to this store. A backend that cannot
  // be read now is logged and skipped, not fatal.
  virtual void restore_into(broker::Broker& b) = 0;
  // Flushes what is pending and stops.
  virtual void stop() = 0;
  // Reads the newest payload of (device_id, topic); may block briefly, so call
  // it from API threads, never from a worker.
  virtual ReadStatus latest(std::string_view device_id, std::string_view topic, Record& out) = 0;
  // A store that keeps nothing is always healthy.
  virtual StoreHealth health() const { return {}; }
};

}  // namespace store
