// The embedded backend: RocksDB in --data-dir. Keys are device_id, a zero
// byte, then the topic (neither may contain U+0000 [MQTT-1.5.3-2]); values are
// the receive time (8 bytes, big-endian ms) followed by the payload.
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
  bool open(std::string& error) override;
  bool write(Batch& batch, std::string& error) override;
  ReadStatus read(std::string_view device_id, std::string_view topic, Record& out) override;
  void close() override;

 private:
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace store
