#include "api/stream_hub.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "mqtt/topic.hpp"

namespace api {

namespace {

// Generations are unique across hubs, so a thread's cached snapshot can never
// be mistaken for another (or a later) hub's.
std::atomic<uint64_t> g_generation{0};

uint64_t new_generation() {
  return g_generation.fetch_add(1, std::memory_order_relaxed) + 1;
}

bool is_power_of_two(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// Stream

Stream::Stream(StreamHub& hub, uint64_t id, StreamFilter filter, size_t capacity, std::string peer,
               StreamSink* sink)
    : hub_(hub),
      id_(id),
      filter_(std::move(filter)),
      capacity_(capacity),
      peer_(std::move(peer)),
      sink_(sink) {}

uint64_t Stream::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_total_;
}

void Stream::offer(const broker::MessagePtr& msg) {
  bool wake = false;
  uint64_t dropped = 0;
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    if (pending_.size() + in_batch_.load(std::memory_order_relaxed) >= capacity_) {
      // Full: drop the newest. The consumer learns how many it missed from
      // the next message that does get queued.
      ++dropped_pending_;
      dropped = ++dropped_total_;
    } else {
      pending_.push_back({msg, std::exchange(dropped_pending_, 0)});
      if (idle_) {
        idle_ = false;
        wake = true;
      }
    }
  }
  if (dropped != 0) hub_.note_drop(*this, dropped);
  if (wake) hub_.schedule(this);
}

void Stream::run() {
  for (;;) {
    if (cancelled_.load(std::memory_order_acquire)) return end();
    if (next_ < batch_.size()) {
      Item& it = batch_[next_++];
      in_batch_.store(batch_.size() - next_, std::memory_order_relaxed);
      const broker::MessagePtr msg = std::move(it.msg);
      const uint64_t dropped_before = it.dropped_before;
      sent_.fetch_add(1, std::memory_order_relaxed);
      // The token passes to the thread that reports this write done, which
      // may run before write() returns: touch nothing of ours after it.
      sink_->write(*msg, dropped_before, next_ < batch_.size());
      return;
    }
    batch_.clear();
    next_ = 0;
    std::lock_guard lock(mu_);
    if (cancelled_.load(std::memory_order_relaxed)) continue;  // end() outside the lock
    if (pending_.empty()) {
      idle_ = true;  // park the token; the next offer() or cancel() takes it
      return;
    }
    batch_.swap(pending_);
    in_batch_.store(batch_.size(), std::memory_order_relaxed);
  }
}

void Stream::on_write_done(bool ok) {
  if (!ok) {
    // The client went away or the call was cancelled: nothing more can be sent.
    std::lock_guard lock(mu_);
    cancelled_.store(true, std::memory_order_release);
  }
  run();
}

void Stream::cancel() {
  bool take = false;
  {
    std::lock_guard lock(mu_);
    cancelled_.store(true, std::memory_order_release);
    take = std::exchange(idle_, false);
  }
  // Parked: take the token and finish now. Otherwise its holder sees the flag
  // (an outstanding write completes, with ok=false, once the call is cancelled).
  if (take) run();
}

void Stream::end() {
  std::vector<Item> drop;
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    finished_ = true;
    drop.swap(pending_);
  }
  in_batch_.store(0, std::memory_order_relaxed);
  // Free the buffers now: a worker's cached snapshot may keep this object a
  // little longer than the RPC.
  std::vector<Item>().swap(batch_);
  next_ = 0;
  sink_->finish();
}

// ---------------------------------------------------------------------------
// StreamHub

StreamHub::StreamHub(size_t queue_capacity)
    : capacity_(std::max<size_t>(queue_capacity, 1)),
      snapshot_(std::make_shared<const Snapshot>()),
      generation_(new_generation()),
      dispatcher_([this] { dispatch_loop(); }) {}

StreamHub::~StreamHub() {
  stop();
}

const StreamHub::Snapshot& StreamHub::current() {
  struct Cache {
    uint64_t generation = 0;
    std::shared_ptr<const Snapshot> snapshot;
  };
  thread_local Cache cache;
  if (cache.generation != generation_.load(std::memory_order_acquire)) {
    std::lock_guard lock(mu_);
    cache.snapshot = snapshot_;
    cache.generation = generation_.load(std::memory_order_relaxed);
  }
  return *cache.snapshot;
}

void StreamHub::on_device_publish(const broker::MessagePtr& msg) {
  const Snapshot& snap = current();
  if (snap.size == 0) return;
  const std::string_view topic = msg->topic();
  for (const auto& s : snap.all_devices) {
    const std::string& f = s->filter().topic_filter;
    if (f.empty() || mqtt::topic_matches(f, topic)) s->offer(msg);
  }
  if (!snap.by_device.empty()) {
    auto it = snap.by_device.find(msg->origin());
    if (it != snap.by_device.end()) {
      for (const auto& s : it->second) {
        const std::string& f = s->filter().topic_filter;
        if (f.empty() || mqtt::topic_matches(f, topic)) s->offer(msg);
      }
    }
  }
}

void StreamHub::on_api_publish(const broker::MessagePtr& msg) {
  const Snapshot& snap = current();
  for (const auto& s : snap.api) {
    const StreamFilter& f = s->filter();
    if (!f.device_id.empty()) continue;  // API messages come from no device
    if (f.topic_filter.empty() || mqtt::topic_matches(f.topic_filter, msg->topic())) s->offer(msg);
  }
}

void StreamHub::on_peer_publish(const broker::MessagePtr& msg, broker::Source from) {
  if (from == broker::Source::Device) {
    on_device_publish(msg);
  } else {
    on_api_publish(msg);
  }
}

std::shared_ptr<Stream> StreamHub::open(StreamFilter filter, std::string peer, StreamSink* sink) {
  std::lock_guard lock(mu_);
  auto s = std::make_shared<Stream>(*this, next_id_++, std::move(filter), capacity_,
                                    std::move(peer), sink);
  streams_.push_back(s);
  publish_locked_snapshot();
  return s;
}

void StreamHub::close(const std::shared_ptr<Stream>& s) {
  std::lock_guard lock(mu_);
  std::erase(streams_, s);
  publish_locked_snapshot();
}

void StreamHub::publish_locked_snapshot() {
  auto snap = std::make_shared<Snapshot>();
  for (const auto& s : streams_) {
    const StreamFilter& f = s->filter();
    if (f.device_id.empty()) {
      snap->all_devices.push_back(s);
    } else {
      snap->by_device[f.device_id].push_back(s);
    }
    if (f.api_messages) snap->api.push_back(s);
  }
  const bool was_active = snapshot_ && snapshot_->size > 0;
  snap->size = streams_.size();
  if (on_active_ && was_active != (snap->size > 0)) on_active_(snap->size > 0);
  snapshot_ = std::move(snap);
  generation_.store(new_generation(), std::memory_order_release);
}

size_t StreamHub::stream_count() const {
  std::lock_guard lock(mu_);
  return streams_.size();
}

void StreamHub::note_drop(Stream& s, uint64_t dropped_total) {
  dropped_.fetch_add(1, std::memory_order_relaxed);
  // The first drop and then every power of two: a stalled stream stays
  // visible in the log without flooding it from an MQTT worker.
  if (is_power_of_two(dropped_total)) {
    spdlog::warn(
        "gRPC stream {} ({}) is not keeping up: its queue is full ({} messages), "
        "dropped {} so far",
        s.id(), s.peer(), capacity_, dropped_total);
  }
}

void StreamHub::schedule(Stream* s) {
  bool notify = false;
  {
    std::lock_guard lock(ready_mu_);
    ready_.push_back(s);
    notify = dispatcher_waiting_;
  }
  if (notify) ready_cv_.notify_one();
}

void StreamHub::dispatch_loop() {
  std::vector<Stream*> batch;
  std::unique_lock lock(ready_mu_);
  for (;;) {
    while (ready_.empty() && !stopping_) {
      dispatcher_waiting_ = true;
      ready_cv_.wait(lock);
      dispatcher_waiting_ = false;
    }
    if (ready_.empty()) return;  // stopping, and nothing left to run
    batch.swap(ready_);
    lock.unlock();
    // Each run() only starts a write (or finishes the RPC): it never waits.
    for (Stream* s : batch) s->run();
    batch.clear();
    lock.lock();
  }
}

void StreamHub::stop() {
  {
    std::lock_guard lock(ready_mu_);
    stopping_ = true;
  }
  ready_cv_.notify_one();
  if (dispatcher_.joinable()) dispatcher_.join();
}

}  // namespace api
