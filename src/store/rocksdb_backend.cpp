#include "store/rocksdb_backend.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

namespace store {

namespace {
std::string make_key(std::string_view device_id, std::string_view topic) {
  std::string k;
  k.reserve(device_id.size() + 1 + topic.size());
  k.append(device_id);
  k.push_back('\0');
  k.append(topic);
  return k;
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_u64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
  return v;
}
}  // namespace

RocksDbBackend::RocksDbBackend(std::string dir) : dir_(std::move(dir)) {}
RocksDbBackend::~RocksDbBackend() {
  close();
}

bool RocksDbBackend::open(std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    error = "cannot create data directory '" + dir_ + "': " + ec.message();
    return false;
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.max_open_files = 256;  // leave descriptors for MQTT connections
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir_ + "/latest", &db);
  if (!s.ok()) {
    error = "cannot open the embedded store in '" + dir_ + "': " + s.ToString();
    return false;
  }
  db_.reset(db);
  return true;
}

bool RocksDbBackend::write(Batch& batch, std::string& error) {
  rocksdb::WriteBatch wb;
  std::string value;
  for (const auto& [key, msg] : batch) {
    value.clear();
    put_u64(value, static_cast<uint64_t>(msg->received_ms()));
    value.append(msg->payload());
    wb.Put(make_key(key.device_id, key.topic), value);
  }
  // The write-ahead log without fsync: a process crash (even kill -9) loses
  // nothing written here; a power loss may lose the last moments.
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!s.ok()) {
    error = s.ToString();
    return false;
  }
  batch.clear();
  return true;
}

ReadStatus RocksDbBackend::read(std::string_view device_id, std::string_view topic, Record& out) {
  if (!db_) return ReadStatus::Unavailable;
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), make_key(device_id, topic), &value);
  if (s.IsNotFound()) return ReadStatus::NotFound;
  if (!s.ok() || value.size() < 8) return ReadStatus::Unavailable;
  out.device_id = device_id;
  out.topic = topic;
  out.updated_ms = static_cast<int64_t>(get_u64(value));
  out.payload = value.substr(8);
  return ReadStatus::Found;
}

void RocksDbBackend::close() {
  if (db_) {
    db_->FlushWAL(true);
    db_.reset();
  }
}

}  // namespace store
