#include "store/write_behind_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace store {

WriteBehindStore::WriteBehindStore(std::unique_ptr<Backend> backend,
                                   std::chrono::milliseconds interval)
    : backend_(std::move(backend)), interval_(interval) {}

WriteBehindStore::~WriteBehindStore() {
  stop();
}

bool WriteBehindStore::start(std::string& error) {
  if (!backend_->open(error)) return false;
  spdlog::info("latest-payload store: {} (flush every {} ms)", backend_->describe(),
               interval_.count());
  thread_ = std::thread([this] { run(); });
  return true;
}

void WriteBehindStore::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // One last attempt for what arrived since the last flush.
  if (!flush_once() && coalescer_.pending() > 0) {
    spdlog::warn("latest-payload store: {} values could not be written before shutdown",
                 coalescer_.pending());
  }
  backend_->close();
}

void WriteBehindStore::on_device_publish(const broker::MessagePtr& msg) {
  coalescer_.put(msg);
}

bool WriteBehindStore::flush_once() {
  Batch batch;
  coalescer_.take(batch);
  if (batch.empty()) return true;
  const size_t total = batch.size();
  std::string error;
  bool ok = backend_->write(batch, error);
  stats_.written.fetch_add(total - batch.size(), std::memory_order_relaxed);
  if (ok) {
    stats_.batches.fetch_add(1, std::memory_order_relaxed);
    if (down_) {
      spdlog::info("latest-payload store: {} is back; pending values written",
                   backend_->describe());
      down_ = false;
    }
    return true;
  }
  stats_.failures.fetch_add(1, std::memory_order_relaxed);
  if (!down_) {
    spdlog::warn(
        "latest-payload store: cannot write to {}: {}; keeping the newest values in "
        "memory and retrying",
        backend_->describe(), error);
    down_ = true;
  }
  coalescer_.restore(batch);
  return false;
}

void WriteBehindStore::run() {
  auto backoff = interval_;
  const auto max_backoff = std::chrono::milliseconds(5000);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, backoff, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    bool ok = flush_once();
    lock.lock();
    backoff = ok ? interval_ : std::min(max_backoff, backoff * 2);
  }
}

ReadStatus WriteBehindStore::latest(std::string_view device_id, std::string_view topic,
                                    Record& out) {
  // A value not yet flushed is the newest one.
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
