#include "broker/broker.hpp"

#include <spdlog/spdlog.h>

#include "broker/client.hpp"
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
  // Never to other nodes: each has its own $SYS.
  submit_to(0, inbox::Route{msg});
}

void Broker::publish_from_api(const MessagePtr& msg) {
  if (msg->retain()) keep_retained(msg);
  if (peers_) peers_->forward(msg, Source::Api);
  // Route on a shard's own thread: the topic index is thread-safe, but
  // delivery to local sessions must happen on their owner.
  submit_to(0, inbox::Route{msg});
}

void Broker::keep_retained(const MessagePtr& msg) {
  retained_.put(msg);
  if (peers_) peers_->retained_changed(msg);
}

void Broker::deliver_from_peer(const MessagePtr& msg, Source from, std::string_view origin) {
  for (PublishObserver* o : observers_) o->on_peer_publish(msg, from);
  if (from == Source::Device && cfg_.non_broker) return;
  // One shard per origin keeps each publisher's messages in the order it sent
  // them, across topics too, as on a single node [MQTT-4.6.0-6], while the
  // routing work of several origins spreads over the workers.
  const size_t shard = std::hash<std::string_view>{}(origin) % shards_.size();
  submit_to(static_cast<int>(shard), inbox::Route{msg});
}

void Broker::deliver_to_group(const MessagePtr& msg, std::string_view share_filter, Source from) {
  if (from == Source::Device && cfg_.non_broker) return;
  Subscriber sub;
  if (!index_.pick_member(share_filter, sub)) return;  // the last member left meanwhile
  submit_to(sub.session->owner_shard(),
            inbox::Deliver{sub.session,
                           {msg, std::min(sub.qos, msg->qos()),
                            sub.retain_as_published && msg->retain(), sub.sub_id}});
}

void Broker::forget_session(const std::shared_ptr<Session>& s) {
  std::lock_guard lock(sessions_mu_);
  auto it = sessions_.find(s->client_id());
  if (it != sessions_.end() && it->second == s) sessions_.erase(it);
}

void Broker::give_session_away(const std::string& client_id, bool clean_start, uint64_t revision,
                               bool erase_stored,
                               std::function<void(std::optional<SessionSnapshot>)> reply) {
  std::shared_ptr<Session> s = find_session(client_id);
  if (!s) {
    reply(std::nullopt);
    return;
  }
  // On the owner's thread; a session that moves meanwhile is followed there.
  struct Step {
    Broker* b;
    std::shared_ptr<Session> s;
    bool clean_start, erase_stored;
    uint64_t revision;
    std::function<void(std::optional<SessionSnapshot>)> reply;
    void operator()() {
      Shard* here = Shard::current();
      if (!here || !s->owned_by(here->index())) {
        b->run_on_shard(s->owner_shard(), std::move(*this));
        return;
      }
      if (s->cluster_revision > revision) {  // claimed here again since: ours now
        reply(std::nullopt);
        return;
      }
      if (s->client) {
        s->client->close("session taken over by a connection on another node", true,
                         mqtt::ReasonCode::SessionTakenOver);
      }
      std::optional<SessionSnapshot> snap;
      if (!clean_start && !s->clean && b->find_session(s->client_id()) == s) {
        // It goes on there: a delayed will is not sent [MQTT-3.1.3-9].
        s->pending_will.reset();
        snap = snapshot_of(*s);
      } else {
        here->publish_pending_will(*s);
      }
      s->timed = false;
      s->unsaved_changes = false;
      // The session now lives on the other node, which saves it; a shared
      // store (Cassandra) keeps the row for it.
      if (!erase_stored) s->persisted = false;
      b->forget_session(s);
      b->discard_session_state(*s);
      reply(std::move(snap));
    }
  };
  Step step{this, s, clean_start, erase_stored, revision, std::move(reply)};
  const int owner = s->owner_shard();
  run_on_shard(owner, std::move(step));
}

void Broker::adopt_session(SessionSnapshot&& snap, int shard) {
  if (find_session(snap.client_id)) {
    spdlog::warn("client {}: a session handed over by another node was ignored: one is here",
                 snap.client_id);
    return;
  }
  auto s = std::make_shared<Session>(snap.client_id, shard);
  s->clean = false;
  s->expiry_s = snap.expiry_s;
  for (auto& [filter, o] : snap.subscriptions) {
    index_.subscribe(filter, s, o);
    s->subscriptions.emplace(std::move(filter), o);
  }
  for (auto& m : snap.messages) s->queue.push_back(std::move(m));
  std::lock_guard lock(sessions_mu_);
  sessions_.try_emplace(s->client_id(), std::move(s));
}

void Broker::claimed_elsewhere(const std::string& client_id, uint64_t revision) {
  std::shared_ptr<Session> s = find_session(client_id);
  if (!s) return;
  struct Step {
    Broker* b;
    std::shared_ptr<Session> s;
    uint64_t revision;
    void operator()() {
      Shard* here = Shard::current();
      if (!here || !s->owned_by(here->index())) {
        b->run_on_shard(s->owner_shard(), std::move(*this));
        return;
      }
      if (!s->client || s->cluster_revision >= revision) return;
      // Two CONNECTs raced on two nodes and the other one's claim is newer:
      // only one connection per client id [MQTT-3.1.4-2], the newest.
      s->client->close("client id claimed by a newer connection on another node", true,
                       mqtt::ReasonCode::SessionTakenOver);
    }
  };
  run_on_shard(s->owner_shard(), Step{this, s, revision});
}

}  // namespace broker
