// Where the write-behind store puts its batches: RocksDB or Cassandra.
#pragma once

#include <string>
#include <string_view>

#include "store/coalescer.hpp"
#include "store/store.hpp"

namespace store {

class Backend {
 public:
  virtual ~Backend() = default;
  // A short name for logs ("rocksdb at ./data", "cassandra at host:port").
  virtual std::string describe() const = 0;
  // Opens the database. An embedded store that cannot open is a start-up
  // error; a remote one returns true and connects lazily (see write()).
  virtual bool open(std::string& error) = 0;
  // Writes every entry of `batch`; entries written are erased from it. Returns
  // false with `error` set when some entries remain (the caller retries them).
  virtual bool write(Batch& batch, std::string& error) = 0;
  virtual ReadStatus read(std::string_view device_id, std::string_view topic, Record& out) = 0;
  virtual void close() {}
};

}  // namespace store
