// Where the write-behind store puts its batches: RocksDB or Cassandra.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <unordered_map>
#include "broker/message.hpp"

#include "store/coalescer.hpp"
#include "store/store.hpp"

namespace store {

// Everything one flush writes. Each part keeps only the newest value per key.
struct WriteSet {
  Batch latest;  // (device_id, topic) -> newest device message
  std::unordered_map<std::string, broker::MessagePtr>
      retained;  // topic -> message; empty payload: delete
  std::unordered_map<std::string, std::optional<std::string>>
      sessions;  // client id -> snapshot; nullopt: delete

  bool empty() const { return latest.empty() && retained.empty() && sessions.empty(); }
  size_t size() const { return latest.size() + retained.size() + sessions.size(); }
};

struct StoredRetained {
  std::string_view topic;
  std::string_view payload;
  uint8_t qos = 0;
  int64_t updated_ms = 0;
  broker::MessageMeta meta;  // MQTT 5 properties and expiry (where the backend keeps them)
};

class Backend {
 public:
  virtual ~Backend() = default;
  // A short name for logs ("embedded RocksDB in ./data", "Cassandra at host:port").
  virtual std::string describe() const = 0;
  // Opens the database. An embedded store that cannot open is a start-up
  // error; a remote one succeeds and connects lazily (see write()).
  virtual util::Status open() = 0;
  // Writes the set; what was written is erased from it. Fails when
  // something remains (the caller keeps it and retries).
  virtual util::Status write(WriteSet& ws) = 0;
  virtual ReadStatus read(std::string_view device_id, std::string_view topic, Record& out) = 0;
  // Start-up loads of retained messages and persistent sessions (encoded with
  // store/session_codec.hpp). Fails when the data cannot be read now.
  virtual util::Status load_retained(const std::function<void(const StoredRetained&)>& fn) = 0;
  virtual util::Status load_sessions(
      const std::function<void(std::string_view client_id, std::string_view snapshot)>& fn) = 0;
  virtual void close() {}
};

}  // namespace store
