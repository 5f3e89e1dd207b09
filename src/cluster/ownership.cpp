#include "cluster/ownership.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <optional>

namespace cluster {

namespace {
constexpr const char* kBucket = "MQTT_OWNERS";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

util::Error kv_error(std::string_view what, natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  return util::errorf("cluster: {}: {}{}{}", what, natsStatus_GetText(s), last && *last ? ": " : "",
                      last ? last : "");
}
}  // namespace

std::string owner_key(std::string_view id) {
  std::string out = "c.";
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : id) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kB64[(acc << (6 - bits)) & 63]);
  // An empty id cannot be claimed (the server assigns one), but keep the key
  // valid all the same: a KV key must not end with '.'.
  if (id.empty()) out.push_back('_');
  return out;
}

std::optional<std::string> client_of_key(std::string_view key) {
  if (key.substr(0, 2) != "c.") return std::nullopt;
  key.remove_prefix(2);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : key) {
    int v = b64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Ownership::Ownership(Link& link, std::string node_id, int replicas, Seen seen)
    : link_(link), node_id_(std::move(node_id)), replicas_(replicas), seen_(std::move(seen)) {}

Ownership::~Ownership() {
  close();
}

util::Status Ownership::open() {
  if (ready()) return {};
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = kBucket;
  cfg.History = 1;
  cfg.Replicas = replicas_;
  // Soft state: lost with the NATS servers, it is rebuilt by the next
  // CONNECTs, so memory is enough and faster than the file store.
  cfg.StorageType = js_MemoryStorage;
  natsStatus s = js_CreateKeyValue(&kv_, link_.jetstream(), &cfg);
  if (s != NATS_OK) s = js_KeyValue(&kv_, link_.jetstream(), kBucket);  // made elsewhere
  if (s != NATS_OK) return kv_error("the client-id bucket", s);
  kvWatchOptions wo;
  kvWatchOptions_Init(&wo);
  wo.IgnoreDeletes = true;
  s = kvStore_WatchAll(&watcher_, kv_, &wo);
  if (s != NATS_OK) {
    kvStore_Destroy(kv_);
    kv_ = nullptr;
    return kv_error("watching the client-id bucket", s);
  }
  watch_thread_ = std::thread([this] { watch_loop(); });
  ready_.store(true, std::memory_order_release);
  return {};
}

void Ownership::close() {
  if (stopping_.exchange(true)) return;
  ready_.store(false, std::memory_order_release);
  if (watcher_) kvWatcher_Stop(watcher_);
  if (watch_thread_.joinable()) watch_thread_.join();
  if (watcher_) kvWatcher_Destroy(watcher_);
  watcher_ = nullptr;
  if (kv_) kvStore_Destroy(kv_);
  kv_ = nullptr;
}

void Ownership::watch_loop() {
  while (!stopping_.load(std::memory_order_acquire)) {
    kvEntry* e = nullptr;
    natsStatus s = kvWatcher_Next(&e, watcher_, 1000);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK) {
      if (stopping_.load()) return;
      continue;
    }
    if (!e) continue;  // the end of the initial values
    std::optional<std::string> id = client_of_key(kvEntry_Key(e));
    const uint64_t rev = kvEntry_Revision(e);
    std::string node(static_cast<const char*>(kvEntry_Value(e)),
                     static_cast<size_t>(kvEntry_ValueLen(e)));
    kvEntry_Destroy(e);
    if (!id) continue;
    note(*id, rev);
    if (seen_) seen_(*id, node, rev);
  }
}

void Ownership::note(const std::string& client_id, uint64_t revision) {
  std::lock_guard lock(mu_);
  uint64_t& r = latest_[client_id];
  if (revision > r) r = revision;
}

bool Ownership::superseded(const std::string& client_id, uint64_t revision) const {
  std::lock_guard lock(mu_);
  auto it = latest_.find(client_id);
  return it != latest_.end() && it->second > revision;
}

util::Result<Ownership::Claim> Ownership::claim(const std::string& client_id) {
  if (!ready()) return util::Error{"cluster: the client-id bucket is not open"};
  const std::string key = owner_key(client_id);
  const int len = static_cast<int>(node_id_.size());
  for (int attempt = 0; attempt < 8; ++attempt) {
    kvEntry* e = nullptr;
    natsStatus s = kvStore_Get(&e, kv_, key.c_str());
    Claim c;
    uint64_t last = 0;
    if (s == NATS_OK) {
      last = kvEntry_Revision(e);
      c.previous_node.assign(static_cast<const char*>(kvEntry_Value(e)),
                             static_cast<size_t>(kvEntry_ValueLen(e)));
      kvEntry_Destroy(e);
    } else if (s != NATS_NOT_FOUND) {
      return kv_error("reading the holder of client " + client_id, s);
    }
    uint64_t rev = 0;
    s = last == 0 ? kvStore_Create(&rev, kv_, key.c_str(), node_id_.data(), len)
                  : kvStore_Update(&rev, kv_, key.c_str(), node_id_.data(), len, last);
    if (s == NATS_OK) {
      if (c.previous_node == node_id_) c.previous_node.clear();
      c.revision = rev;
      note(client_id, rev);
      return c;
    }
    // Another node's claim came between the read and the write: read again.
  }
  return util::Error{"cluster: client " + client_id + " is claimed too often to settle"};
}

util::Result<std::string> Ownership::owner_of(const std::string& client_id) {
  if (!ready()) return util::Error{"cluster: the client-id bucket is not open"};
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, kv_, owner_key(client_id).c_str());
  if (s == NATS_NOT_FOUND) return std::string();
  if (s != NATS_OK) return kv_error("reading the holder of client " + client_id, s);
  std::string node(static_cast<const char*>(kvEntry_Value(e)),
                   static_cast<size_t>(kvEntry_ValueLen(e)));
  kvEntry_Destroy(e);
  return node;
}

}  // namespace cluster
