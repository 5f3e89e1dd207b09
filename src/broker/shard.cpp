#include "broker/shard.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <variant>

#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/peers.hpp"
#include "broker/session.hpp"

namespace broker {

thread_local Shard* Shard::current_ = nullptr;

Shard::Shard(Broker& broker, int index, int shard_count, std::function<void()> wake)
    : broker_(broker),
      index_(index),
      inbox_(std::move(wake)),
      outboxes_(static_cast<size_t>(shard_count)) {}

void Shard::add_client(Client* c) {
  clients_.emplace(c->conn_id(), c);
}

void Shard::remove_client(Client* c) {
  clients_.erase(c->conn_id());
}

void Shard::publish_from_device(const MessagePtr& msg) {
  ShardCounters::bump(counters_.messages_in[msg->qos() > 2 ? 2 : msg->qos()]);
  for (PublishObserver* o : broker_.observers()) o->on_device_publish(msg);
  // The other nodes' subscribers and gRPC streams (in non-broker mode only
  // the streams: the receiving node does not route a device's message).
  if (Peers* peers = broker_.peers()) peers->forward(msg, Source::Device);
  // In non-broker mode devices never reach each other, not even through
  // retained messages: their publishes go to the API and the store only.
  if (broker_.config().non_broker) return;
  if (msg->retain()) broker_.keep_retained(msg);
  route(msg);
}

void Shard::route(const MessagePtr& msg) {
  matches_.clear();
  broker_.index().match(msg->topic(), matches_);
  Peers* peers = broker_.peers();
  const bool groups_elsewhere = peers && peers->routes_shared();
  for (const Subscriber& sub : matches_) {
    // In a cluster a shared group's one copy is chosen across the nodes
    // (Broker::deliver_to_group), not here as well [MQTT-4.8.2].
    if (sub.group && groups_elsewhere) continue;
    // No Local: not back to the client that published it [MQTT-3.8.3-3].
    if (sub.no_local && sub.session->client_id() == msg->origin()) continue;
    // Delivered at the lower of the published and the granted QoS [MQTT-3.8.4-6];
    // the retain flag is cleared on normal forwarding [MQTT-3.3.1-9] unless the
    // subscription asked for Retain As Published [MQTT-3.3.1-12].
    deliver(sub.session, {msg, std::min(sub.qos, msg->qos()),
                          sub.retain_as_published && msg->retain(), sub.sub_id});
  }
  matches_.clear();
}

void Shard::deliver(const std::shared_ptr<Session>& s, Delivery d) {
  const int owner = s->owner_shard();
  if (owner == index_) {
    deliver_here(s, std::move(d));
    return;
  }
  broker_.submit_to(owner, inbox::Deliver{s, std::move(d)});
}

void Shard::deliver_here(const std::shared_ptr<Session>& s, Delivery&& d) {
  const int owner = s->owner_shard();
  if (owner != index_) {  // moved to another shard while this was in flight
    deliver(s, std::move(d));
    return;
  }
  if (s->client) {
    s->client->send(d);
  } else if (!s->clean && d.qos > 0) {
    queue_for_later(*s, std::move(d), broker_);
    mark_session_changed(s);
  }
  // QoS 0 to a session without a connection is not kept, as in Mosquitto's
  // default (queue_qos0_messages false).
}

void Shard::post(int shard, InboxItem item) {
  outboxes_[static_cast<size_t>(shard)].push_back(std::move(item));
}

void Shard::flush_outboxes() {
  for (size_t i = 0; i < outboxes_.size(); ++i) {
    if (!outboxes_[i].empty()) broker_.shard(static_cast<int>(i)).inbox().push_batch(outboxes_[i]);
  }
}

bool Shard::outboxes_empty() const {
  return std::all_of(outboxes_.begin(), outboxes_.end(), [](const auto& v) { return v.empty(); });
}

void Shard::drain_inbox() {
  // Whatever thread drains (the worker, or the main thread settling at
  // shutdown), what the handlers send on is batched in this shard's outboxes.
  OnThisThread here(*this);
  inbox_.take(drained_);
  struct Handler {
    Shard& shard;
    void operator()(inbox::Deliver& d) { shard.deliver_here(d.session, std::move(d.delivery)); }
    void operator()(inbox::Takeover& t) { shard.handle_takeover(t); }
    void operator()(inbox::Attach& a) { shard.handle_attach(a); }
    void operator()(inbox::Route& r) { shard.route(r.msg); }
    void operator()(inbox::Run& r) {
      if (r.fn) r.fn();
    }
  };
  for (InboxItem& item : drained_) std::visit(Handler{*this}, item);
  drained_.clear();
}

void Shard::handle_takeover(inbox::Takeover& t) {
  const std::shared_ptr<Session>& s = t.session;
  const int owner = s->owner_shard();
  if (owner != index_) {  // moved on meanwhile: follow it
    broker_.submit_to(owner, std::move(t));
    return;
  }
  inbox::Attach attach{s, t.conn_id, false};
  if (!broker_.holds_claim(*s, t.conn_id)) {
    // A newer CONNECT with this id came meanwhile: it, not this one, takes the
    // session; the Attach below finds this connection superseded and closes it.
    send_attach(t.from, std::move(attach));
    return;
  }
  // The existing connection is closed, and its will published [MQTT-3.1.4-2]
  // (an MQTT 5 will with a delay waits in the session, see below).
  if (s->client)
    s->client->close("session taken over by a new connection", true,
                     mqtt::ReasonCode::SessionTakenOver);
  const bool clean_start = t.clean_start;
  const bool present = !clean_start && !s->clean;
  if (present) {
    // The session resumes in time: a delayed will is not sent [MQTT-3.1.3-9].
    s->pending_will.reset();
  } else {
    // Clean start (or a session that ended with its connection) ends the old
    // session's state [MQTT-3.1.2-6] and sends a will still waiting.
    publish_pending_will(*s);
    broker_.discard_session_state(*s);
  }
  s->clean = t.expiry_s == 0;
  s->expiry_s = t.expiry_s;
  s->expires_at_ms = 0;
  s->timed = false;  // this shard's list drops it (see expire_sessions)
  // Likewise this shard's list of changed sessions (save_changed_sessions):
  // the new owner marks the session changed when it attaches, which saves it
  // whole, including any change this shard had not saved yet.
  s->unsaved_changes = false;
  attach.session_present = present;
  s->hand_to(t.from);
  send_attach(t.from, std::move(attach));
}

void Shard::send_attach(int shard, inbox::Attach attach) {
  if (shard == index_) {
    handle_attach(attach);
  } else {
    broker_.submit_to(shard, std::move(attach));
  }
}

void Shard::handle_attach(inbox::Attach& a) {
  const std::shared_ptr<Session>& s = a.session;
  auto it = clients_.find(a.conn_id);
  Client* c = it == clients_.end() ? nullptr : it->second;
  if (!c || c->closing()) {
    // The new connection went away while its session was being handed over.
    if (s->clean) broker_.release_session(s, a.conn_id);
    mark_session_changed(s);  // this shard owns it now: changes the old one had not saved
    return;
  }
  if (!broker_.holds_claim(*s, a.conn_id)) {
    c->close("client id claimed again by a newer connection");
    return;
  }
  c->attach(s, a.session_present);
}

void Shard::mark_session_changed(const std::shared_ptr<Session>& s) {
  if (s->clean || s->unsaved_changes || !broker_.persistence()) return;
  s->unsaved_changes = true;
  changed_sessions_.push_back(s);
}

void Shard::save_changed_sessions() {
  PersistenceSink* sink = broker_.persistence();
  for (auto& s : changed_sessions_) {
    // Moved to another shard: no longer ours to touch, not even unsaved_changes
    // (handle_takeover cleared it, and the new owner keeps its own list).
    if (!s->owned_by(index_)) continue;
    if (!s->unsaved_changes) continue;  // discarded meanwhile, or listed twice
    s->unsaved_changes = false;
    if (s->clean) continue;
    s->persisted = true;
    sink->session_saved(snapshot_of(*s));
  }
  changed_sessions_.clear();
}

SessionSnapshot snapshot_of(const Session& s) {
  SessionSnapshot snap;
  snap.client_id = s.client_id();
  snap.expiry_s = s.expiry_s;
  for (const auto& [filter, o] : s.subscriptions) snap.subscriptions.emplace_back(filter, o);
  // Messages in flight are saved as queued: after a restart (or on the node
  // the session moves to) they are sent again from the start of the QoS flow.
  for (const auto& f : s.inflight) {
    if (!f.released) snap.messages.push_back(f);  // the Delivery part
  }
  for (size_t i = 0; i < s.queue.size(); ++i) snap.messages.push_back(s.queue[i]);
  return snap;
}

void Shard::schedule_offline_session(const std::shared_ptr<Session>& s) {
  s->expires_at_ms = 0;
  if (s->expiry_s != kNeverExpires) {
    s->expires_at_ms = now_ms_ + int64_t{s->expiry_s} * 1000;
    if (s->expires_at_ms == 0) s->expires_at_ms = 1;
  }
  // Once in the list is enough: a client that reconnects and drops again
  // within its expiry only moves its deadline.
  if ((s->expires_at_ms != 0 || s->pending_will) && !s->timed) {
    s->timed = true;
    timed_sessions_.push_back(s);
  }
}

void Shard::publish_pending_will(Session& s) {
  if (!s.pending_will) return;
  std::unique_ptr<StoredWill> w = std::move(s.pending_will);
  publish_from_device(make_will_message(*w, s.client_id()));
}

void Shard::expire_sessions() {
  if (timed_sessions_.empty()) return;
  size_t keep = 0;
  for (size_t i = 0; i < timed_sessions_.size(); ++i) {
    std::shared_ptr<Session>& s = timed_sessions_[i];
    // Moved to another shard: no longer ours to touch (handle_takeover reset
    // `timed`; the new owner schedules it when it next goes offline).
    if (!s->owned_by(index_)) continue;
    if (s->client) {  // online again
      s->timed = false;
      continue;
    }
    if (s->pending_will && now_ms_ >= s->will_due_ms) publish_pending_will(*s);
    if (s->expires_at_ms != 0 && now_ms_ >= s->expires_at_ms) {
      // The session ends: a will still waiting goes now [MQTT-3.1.3-9].
      publish_pending_will(*s);
      if (broker_.release_session(s, s->last_conn_id)) {
        spdlog::info("session of client {} expired after {} s offline", s->client_id(),
                     s->expiry_s);
      }
      s->expires_at_ms = 0;
      s->timed = false;
      continue;
    }
    if (!s->pending_will && s->expires_at_ms == 0) {
      s->timed = false;
      continue;
    }
    if (keep != i) timed_sessions_[keep] = std::move(s);
    ++keep;
  }
  timed_sessions_.resize(keep);
}

MessagePtr make_will_message(const StoredWill& w, const std::string& client_id) {
  MessageMeta meta{w.properties, w.has_expiry, w.expiry_interval_s};
  return std::make_shared<const Message>(w.topic, w.payload, w.qos, w.retain, client_id,
                                         wall_clock_ms(), meta);
}

void queue_for_later(Session& s, Delivery d, Broker& broker) {
  const uint32_t max = broker.config().max_queued;
  if (s.queue.size() >= max) {
    // With --max-queued 0 nothing is queued: the new message is the one dropped.
    if (max > 0) s.queue.pop_front();
    ++s.dropped;
    broker.stats().dropped_queued.fetch_add(1, std::memory_order_relaxed);
    // Log the first drop and then every power of two, so a flood stays visible
    // without flooding the log.
    if ((s.dropped & (s.dropped - 1)) == 0) {
      broker.log_queue_drop(s.client_id(), s.dropped);
    }
  }
  if (max > 0) s.queue.push_back(std::move(d));
}

}  // namespace broker
