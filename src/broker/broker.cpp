#include "broker/broker.hpp"

#include <spdlog/spdlog.h>

#include "broker/session.hpp"
#include "broker/shard.hpp"

namespace broker {

Broker::Broker(Config cfg, std::vector<std::function<void()>> wakers) : cfg_(cfg) {
  const int n = static_cast<int>(wakers.size());
  for (int i = 0; i < n; ++i) {
    shards_.push_back(
        std::make_unique<Shard>(*this, i, n, std::move(wakers[static_cast<size_t>(i)])));
  }
}

Broker::~Broker() = default;

std::shared_ptr<Session> Broker::claim_session(const std::string& client_id, int shard,
                                               uint64_t conn_id, bool& is_new) {
  std::lock_guard lock(sessions_mu_);
  auto [it, inserted] = sessions_.try_emplace(client_id);
  if (inserted) it->second = std::make_shared<Session>(client_id, shard);
  it->second->claim = conn_id;
  is_new = inserted;
  return it->second;
}

bool Broker::holds_claim(const Session& s, uint64_t conn_id) {
  std::lock_guard lock(sessions_mu_);
  return s.claim == conn_id;
}

bool Broker::release_session(const std::shared_ptr<Session>& s, uint64_t conn_id) {
  {
    std::lock_guard lock(sessions_mu_);
    if (s->claim != conn_id) return false;
    auto it = sessions_.find(s->client_id());
    if (it != sessions_.end() && it->second == s) sessions_.erase(it);
  }
  discard_session_state(*s);
  return true;
}

std::shared_ptr<Session> Broker::find_session(std::string_view client_id) {
  std::lock_guard lock(sessions_mu_);
  auto it = sessions_.find(std::string(client_id));
  return it == sessions_.end() ? nullptr : it->second;
}

void Broker::load_stored_session(SessionSnapshot&& snap) {
  // Spread restored sessions over the shards; a reconnect moves a session to
  // its connection's shard anyway.
  int owner = static_cast<int>(std::hash<std::string>{}(snap.client_id) % shards_.size());
  auto s = std::make_shared<Session>(snap.client_id, owner);
  s->clean = false;
  s->persisted = true;
  s->expiry_s = snap.expiry_s;
  for (auto& [filter, o] : snap.subscriptions) {
    index_.subscribe(filter, s, o);
    s->subscriptions.emplace(std::move(filter), o);
  }
  for (auto& m : snap.messages) s->queue.push_back(std::move(m));
  if (s->expiry_s != kNeverExpires) {
    // Its expiry counts again from this start; the shard's clock is the
    // steady clock in ms, as the workers set it.
    Shard& sh = *shards_[static_cast<size_t>(owner)];
    sh.set_now_ms(monotonic_ms());
    sh.schedule_offline_session(s);
  }
  std::lock_guard lock(sessions_mu_);
  sessions_.insert_or_assign(s->client_id(), std::move(s));
}

void Broker::request_session_saves() {
  for (auto& sh : shards_) {
    Shard* shard = sh.get();
    run_on_shard(shard->index(), [shard] { shard->save_changed_sessions(); });
  }
}

StatsSnapshot Broker::stats_now() {
  StatsSnapshot s;
  for (auto& sh : shards_) {
    const ShardCounters& c = sh->counters();
    for (int q = 0; q < 3; ++q) {
      s.messages_in_qos[q] += c.messages_in[q].load(std::memory_order_relaxed);
      s.messages_out_qos[q] += c.messages_out[q].load(std::memory_order_relaxed);
    }
    s.dropped_qos0 += c.dropped_qos0.load(std::memory_order_relaxed);
    s.dropped_not_authorized += c.dropped_not_authorized.load(std::memory_order_relaxed);
    s.dropped_too_large += c.dropped_too_large.load(std::memory_order_relaxed);
    s.dropped_expired += c.dropped_expired.load(std::memory_order_relaxed);
    s.bytes_in += c.bytes_in.load(std::memory_order_relaxed);
    s.bytes_out += c.bytes_out.load(std::memory_order_relaxed);
    s.connected += c.connected.load(std::memory_order_relaxed);
  }
  for (int q = 0; q < 3; ++q) {
    s.messages_in += s.messages_in_qos[q];
    s.messages_out += s.messages_out_qos[q];
  }
  s.open_connections = stats_.open_connections.load(std::memory_order_relaxed);
  s.connections_total = stats_.connections.load(std::memory_order_relaxed);
  s.dropped_queued = stats_.dropped_queued.load(std::memory_order_relaxed);
  s.subscriptions = index_.subscription_count();
  s.retained = retained_.size();
  std::lock_guard lock(sessions_mu_);
  s.sessions = sessions_.size();
  return s;
}

void Broker::save_sessions_now() {
  for (auto& sh : shards_) sh->save_changed_sessions();
}

void Broker::discard_session_state(Session& s) {
  if (s.persisted && persistence_) {
    persistence_->session_erased(s.client_id());
    s.persisted = false;
  }
  s.unsaved_changes = false;
  for (const auto& [filter, o] : s.subscriptions) index_.unsubscribe(filter, &s);
  s.subscriptions.clear();
  s.inflight.clear();
  s.held_back = 0;
  s.queue.clear();
  s.incoming_qos2.clear();
}

void Broker::log_queue_drop(const std::string& client_id, uint64_t dropped) {
  spdlog::warn(
      "client {}: message queue full ({} messages), dropped the oldest ({} dropped so far)",
      client_id, cfg_.max_queued, dropped);
}

Broker::SendResult Broker::send_to_client(std::string_view client_id, const MessagePtr& msg,
                                          uint8_t qos) {
  std::shared_ptr<Session> s = find_session(client_id);
  if (!s) return SendResult::NotFound;
  const bool online = s->online.load(std::memory_order_relaxed);
  if (!online && (s->clean || qos == 0)) return SendResult::NotFound;
  submit_to(s->owner_shard(), inbox::Deliver{s, {msg, qos, msg->retain(), 0}});
  return online ? SendResult::Sent : SendResult::Queued;
}

void Broker::submit_to(int shard, InboxItem item) {
  Shard* here = Shard::current();
  if (here && &here->broker() == this) {
    here->post(shard, std::move(item));
  } else {
    shards_[static_cast<size_t>(shard)]->inbox().push(std::move(item));
  }
}

void Broker::publish_sys(const MessagePtr& msg) {
  if (msg->retain()) retained_.load(msg);  // load(): not handed to the store
  Shard* target = shards_.front().get();
  run_on_shard(0, [target, msg] { target->route(msg); });
}

void Broker::publish_from_api(const MessagePtr& msg) {
  if (msg->retain()) retained_.put(msg);
  // Route on a shard's own thread: the topic index is thread-safe, but
  // delivery to local sessions must happen on their owner.
  Shard* target = shards_.front().get();
  run_on_shard(0, [target, msg] { target->route(msg); });
}

}  // namespace broker
