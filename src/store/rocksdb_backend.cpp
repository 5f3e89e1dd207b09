#include "store/rocksdb_backend.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

namespace store {

namespace {
std::string latest_key(std::string_view device_id, std::string_view topic) {
  std::string k;
  k.reserve(2 + device_id.size() + topic.size());
  k.push_back('L');
  k.append(device_id);
  k.push_back('\0');
  k.append(topic);
  return k;
}

std::string prefixed(char p, std::string_view s) {
  std::string k;
  k.reserve(1 + s.size());
  k.push_back(p);
  k.append(s);
  return k;
}

void put_i64(std::string& out, int64_t v) {
  auto u = static_cast<uint64_t>(v);
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

// Flags in the first byte of a retained value, above the QoS bits.
constexpr uint8_t kRetainedV5 = 0x80;
constexpr uint8_t kRetainedExpiry = 0x40;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
  return v;
}

int64_t get_i64(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return static_cast<int64_t>(v);
}
}  // namespace

RocksDbBackend::RocksDbBackend(std::string dir) : dir_(std::move(dir)) {}
RocksDbBackend::~RocksDbBackend() {
  close();
}

util::Status RocksDbBackend::open() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return util::Error{"cannot create data directory '" + dir_ + "': " + ec.message()};
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.max_open_files = 256;  // leave descriptors for MQTT connections
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir_ + "/store", &db);
  if (!s.ok()) {
    return util::Error{"cannot open the embedded store in '" + dir_ + "': " + s.ToString()};
  }
  db_.reset(db);
  return {};
}

util::Status RocksDbBackend::write(WriteSet& ws) {
  rocksdb::WriteBatch wb;
  std::string value;
  for (const auto& [key, msg] : ws.latest) {
    value.clear();
    put_i64(value, msg->received_ms());
    value.append(msg->payload());
    wb.Put(latest_key(key.device_id, key.topic), value);
  }
  for (const auto& [topic, msg] : ws.retained) {
    if (msg->payload().empty()) {
      wb.Delete(prefixed('R', topic));
      continue;
    }
    // qos | flags, received ms, [expiry, properties,] payload: a message with
    // MQTT 5 metadata sets kRetainedV5 and carries it before the payload.
    const bool v5 = msg->has_expiry() || !msg->properties().empty();
    value.clear();
    value.push_back(static_cast<char>(msg->qos() | (v5 ? kRetainedV5 : 0) |
                                      (msg->has_expiry() ? kRetainedExpiry : 0)));
    put_i64(value, msg->received_ms());
    if (v5) {
      put_u32(value, msg->expiry_interval_s());
      put_u32(value, static_cast<uint32_t>(msg->properties().size()));
      value.append(msg->properties());
    }
    value.append(msg->payload());
    wb.Put(prefixed('R', topic), value);
  }
  for (const auto& [client_id, snapshot] : ws.sessions) {
    if (snapshot) {
      wb.Put(prefixed('S', client_id), *snapshot);
    } else {
      wb.Delete(prefixed('S', client_id));
    }
  }
  // The write-ahead log without fsync: a process crash (even kill -9) loses
  // nothing written here; a power loss may lose the last moments.
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &wb);
  if (!s.ok()) {
    return util::Error{s.ToString()};
  }
  ws.latest.clear();
  ws.retained.clear();
  ws.sessions.clear();
  return {};
}

ReadStatus RocksDbBackend::read(std::string_view device_id, std::string_view topic, Record& out) {
  if (!db_) return ReadStatus::Unavailable;
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), latest_key(device_id, topic), &value);
  if (s.IsNotFound()) return ReadStatus::NotFound;
  if (!s.ok() || value.size() < 8) return ReadStatus::Unavailable;
  out.device_id = device_id;
  out.topic = topic;
  out.updated_ms = get_i64(value);
  out.payload = value.substr(8);
  return ReadStatus::Found;
}

util::Status RocksDbBackend::scan(
    char prefix, const std::function<void(std::string_view, std::string_view)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string start(1, prefix);
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    fn(std::string_view(k.data() + 1, k.size() - 1), std::string_view(v.data(), v.size()));
  }
  if (!it->status().ok()) {
    return util::Error{it->status().ToString()};
  }
  return {};
}

util::Status RocksDbBackend::load_retained(const std::function<void(const StoredRetained&)>& fn) {
  return scan('R', [&](std::string_view topic, std::string_view v) {
    if (v.size() < 9) return;
    const auto flags = static_cast<uint8_t>(v[0]);
    StoredRetained r{
        topic, v.substr(9), static_cast<uint8_t>(flags & 0x03), get_i64(v.substr(1)), {}};
    if (flags & kRetainedV5) {
      if (v.size() < 17) return;
      const uint32_t expiry = get_u32(v.substr(9));
      const uint32_t props_len = get_u32(v.substr(13));
      if (v.size() - 17 < props_len) return;
      r.meta.properties = v.substr(17, props_len);
      r.meta.has_expiry = (flags & kRetainedExpiry) != 0;
      r.meta.expiry_interval_s = expiry;
      r.payload = v.substr(17 + props_len);
    }
    fn(r);
  });
}

util::Status RocksDbBackend::load_sessions(
    const std::function<void(std::string_view, std::string_view)>& fn) {
  return scan('S', fn);
}

void RocksDbBackend::close() {
  if (db_) {
    db_->FlushWAL(true);
    db_.reset();
  }
}

}  // namespace store
