// The embedded backend: RocksDB in --data-dir. One key space, by prefix:
//   'L' device_id \0 topic  ->  i64 receive ms (big-endian) + payload   latest payloads
//   'R' topic               ->  u8 qos + i64 ms + payload                retained messages
//   'S' client_id           ->  session snapshot (store/session_codec.hpp)
// Device ids and topics never contain U+0000 [MQTT-1.5.3-2], so \0 separates.
#pragma once

#include <memory>
#include <string>

#include "store/backend.hpp"

namespace rocksdb {
class DB;
}

namespace store {

class RocksDbBackend : public Backend {
 public:
  explicit RocksDbBackend(std::string dir);
  ~RocksDbBackend() override;

  std::string describe() const override { return "embedded RocksDB in " + dir_; }
  util::Status open() override;
  util::Status write(WriteSet& ws) override;
  ReadStatus read(std::string_view device_id, std::string_view topic, Record& out) override;
  util::Status load_retained(const std::function<void(const StoredRetained&)>& fn) override;
  util::Status load_sessions(const std::function<void(std::string_view client_id,
                                                      std::string_view snapshot)>& fn) override;
  void close() override;

 private:
  util::Status scan(char prefix, const std::function<void(std::string_view, std::string_view)>& fn);

  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace store
