#include "store/write_behind_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "store/session_codec.hpp"

namespace store {

WriteBehindStore::WriteBehindStore(std::unique_ptr<Backend> backend,
                                   std::chrono::milliseconds interval)
    : backend_(std::move(backend)), interval_(interval) {}

WriteBehindStore::~WriteBehindStore() {
  stop();
}

util::Status WriteBehindStore::start() {
  if (auto opened = backend_->open(); !opened) return opened;
  spdlog::info("store: {} (flush every {} ms)", backend_->describe(), interval_.count());
  thread_ = std::thread([this] { run(); });
  return {};
}

void WriteBehindStore::restore_into(broker::Broker& b) {
  size_t retained = 0, sessions = 0, bad = 0;
  if (auto loaded = backend_->load_retained([&](const StoredRetained& r) {
        b.retained().load(std::make_shared<const broker::Message>(r.topic, r.payload, r.qos, true,
                                                                  "", r.updated_ms, r.meta));
        ++retained;
      });
      !loaded) {
    spdlog::warn("store: cannot load retained messages from {}: {}", backend_->describe(),
                 loaded.error().message);
  }
  if (auto loaded =
          backend_->load_sessions([&](std::string_view client_id, std::string_view bytes) {
            broker::SessionSnapshot snap;
            if (!decode_session(client_id, bytes, snap)) {
              ++bad;
              return;
            }
            b.load_stored_session(std::move(snap));
            ++sessions;
          });
      !loaded) {
    spdlog::warn("store: cannot load sessions from {}: {}", backend_->describe(),
                 loaded.error().message);
  }
  if (bad) spdlog::warn("store: skipped {} unreadable stored sessions", bad);
  spdlog::info("store: restored {} retained messages and {} persistent sessions", retained,
               sessions);
  b.set_persistence(this);
  std::lock_guard lock(mu_);
  broker_ = &b;
}

void WriteBehindStore::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // Last snapshots are taken by the caller's shutdown (workers have stopped);
  // one last attempt for what is pending.
  if (!flush_once() && pending() > 0) {
    spdlog::warn("store: {} values could not be written before shutdown", pending());
  }
  backend_->close();
}

void WriteBehindStore::on_device_publish(const broker::MessagePtr& msg) {
  coalescer_.put(msg);
}

void WriteBehindStore::retained_changed(const broker::MessagePtr& m) {
  std::lock_guard lock(rare_mu_);
  rare_.retained.insert_or_assign(std::string(m->topic()), m);
}

void WriteBehindStore::session_saved(broker::SessionSnapshot&& s) {
  std::string bytes = encode_session(s);
  std::lock_guard lock(rare_mu_);
  rare_.sessions.insert_or_assign(s.client_id, std::move(bytes));
}

void WriteBehindStore::session_erased(const std::string& client_id) {
  std::lock_guard lock(rare_mu_);
  rare_.sessions.insert_or_assign(client_id, std::nullopt);
}

size_t WriteBehindStore::pending() const {
  std::lock_guard lock(rare_mu_);
  return coalescer_.pending() + rare_.retained.size() + rare_.sessions.size();
}

StoreHealth WriteBehindStore::health() const {
  StoreHealth h;
  h.up = !down_.load(std::memory_order_relaxed);
  if (!h.up) {
    std::lock_guard lock(error_mu_);
    h.problem = "cannot write to " + backend_->describe() + ": " + down_error_;
  }
  h.pending = pending();
  h.write_errors = stats_.failures.load(std::memory_order_relaxed);
  return h;
}

void WriteBehindStore::take(WriteSet& ws) {
  coalescer_.take(ws.latest);
  std::lock_guard lock(rare_mu_);
  ws.retained.swap(rare_.retained);
  ws.sessions.swap(rare_.sessions);
}

void WriteBehindStore::put_back(WriteSet& ws) {
  coalescer_.restore(ws.latest);
  std::lock_guard lock(rare_mu_);
  // What changed meanwhile is newer than what failed: keep it.
  for (auto& [k, v] : ws.retained) rare_.retained.try_emplace(k, std::move(v));
  for (auto& [k, v] : ws.sessions) rare_.sessions.try_emplace(k, std::move(v));
  ws.retained.clear();
  ws.sessions.clear();
}

bool WriteBehindStore::flush_once() {
  // While a batch is being written it is in neither the coalescer nor the
  // backend; readers wait for the flush (see latest()).
  std::lock_guard flushing(flush_mu_);
  WriteSet ws;
  take(ws);
  if (ws.empty()) return true;
  const size_t total = ws.size();
  util::Status written = backend_->write(ws);
  stats_.written.fetch_add(total - ws.size(), std::memory_order_relaxed);
  if (written) {
    stats_.batches.fetch_add(1, std::memory_order_relaxed);
    if (down_.load(std::memory_order_relaxed)) {
      spdlog::info("store: {} is back; pending values written", backend_->describe());
      down_.store(false, std::memory_order_relaxed);
    }
    return true;
  }
  stats_.failures.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(error_mu_);
    down_error_ = written.error().message;
  }
  if (!down_.load(std::memory_order_relaxed)) {
    spdlog::warn("store: cannot write to {}: {}; keeping the newest values in memory and retrying",
                 backend_->describe(), written.error().message);
    down_.store(true, std::memory_order_relaxed);
  }
  put_back(ws);
  return false;
}

void WriteBehindStore::run() {
  auto backoff = interval_;
  const auto max_backoff = std::chrono::milliseconds(5000);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, backoff, [this] { return stopping_; });
    if (stopping_) break;
    broker::Broker* b = broker_;
    lock.unlock();
    // Sessions are snapshotted by their owner threads; what they hand over is
    // written by the next flush.
    if (b) b->request_session_saves();
    bool ok = flush_once();
    lock.lock();
    backoff = ok ? interval_ : std::min(max_backoff, backoff * 2);
  }
}

ReadStatus WriteBehindStore::latest(std::string_view device_id, std::string_view topic,
                                    Record& out) {
  // No flush in progress while we look: a value is then either still in the
  // coalescer (the newest) or already in the backend, never in between.
  std::lock_guard flushing(flush_mu_);
  if (broker::MessagePtr m = coalescer_.find(device_id, topic)) {
    out.device_id = device_id;
    out.topic = topic;
    out.payload = m->payload();
    out.updated_ms = m->received_ms();
    return ReadStatus::Found;
  }
  return backend_->read(device_id, topic, out);
}

}  // namespace store
