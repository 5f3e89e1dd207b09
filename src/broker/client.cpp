#include "broker/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "broker/broker.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"
#include "mqtt/topic.hpp"

namespace broker {

namespace {
int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A client id for a client that sent none [MQTT-3.1.3-6].
std::string assigned_client_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("auto-{:016x}", rng());
}
// Whether a CONNECT asks for protocol "MQTT" level 5.
bool is_mqtt5_connect(const mqtt::Frame& f) {
  return f.body.size() >= 7 && f.body.substr(0, 6) == std::string_view("\0\4MQTT", 6) &&
         f.body[6] == mqtt::kLevel5;
}
}  // namespace

Client::Client(Shard& shard, uint64_t conn_id, std::string remote)
    : shard_(shard),
      conn_id_(conn_id),
      remote_(std::move(remote)),
      created_ms_(shard.now_ms()),
      last_rx_ms_(shard.now_ms()) {
  shard_.add_client(this);
}

Client::~Client() {
  on_closed("connection destroyed");
  shard_.remove_client(this);
}

size_t Client::on_bytes(std::string_view in) {
  size_t used = 0;
  const size_t max_packet = shard_.broker().config().max_packet_size;
  while (!closing_ && state_ != State::Attaching && used < in.size()) {
    mqtt::Frame f;
    mqtt::DecodeResult r = mqtt::read_frame(in.substr(used), max_packet, f);
    if (r.status == mqtt::DecodeStatus::NeedMore) break;
    if (!r.ok()) {
      protocol_error(r.reason);
      break;
    }
    used += f.size;
    last_rx_ms_ = shard_.now_ms();
    handle(f);
  }
  return used;
}

void Client::handle(const mqtt::Frame& f) {
  using mqtt::PacketType;
  if (state_ == State::AwaitConnect) {
    if (f.type != PacketType::Connect) {
      protocol_error("first packet is not CONNECT [MQTT-3.1.0-1]");
      return;
    }
    handle_connect(f);
    return;
  }
  switch (f.type) {
    case PacketType::Publish:
      handle_publish(f);
      break;
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp:
      handle_ack(f);
      break;
    case PacketType::Subscribe:
      handle_subscribe(f);
      break;
    case PacketType::Unsubscribe:
      handle_unsubscribe(f);
      break;
    case PacketType::Pingreq:
      if (auto r = mqtt::decode_empty(f); !r.ok()) return protocol_error(r.reason);
      scratch_.clear();
      mqtt::encode_pingresp(scratch_);
      write(scratch_);
      break;
    case PacketType::Disconnect:
      if (auto r = mqtt::decode_empty(f); !r.ok()) return protocol_error(r.reason);
      // A clean DISCONNECT discards the will [MQTT-3.14.4-3].
      close("client sent DISCONNECT", /*publish_will=*/false);
      break;
    case PacketType::Connect:
      protocol_error("second CONNECT [MQTT-3.1.0-2]");
      break;
    default:
      protocol_error("packet type a client must not send");
      break;
  }
}

void Client::handle_connect(const mqtt::Frame& f) {
  mqtt::Connect c;
  mqtt::DecodeResult r = mqtt::decode_connect(f, c);
  if (is_mqtt5_connect(f)) {
    // MQTT 5 is not spoken yet: refuse it like a 3.1.1 server would, before
    // its (different) variable header is read.
    send_connack(false, mqtt::ConnackCode::UnacceptableProtocolVersion);
    close("MQTT 5 is not supported yet", false);
    return;
  }
  if (r.status == mqtt::DecodeStatus::BadProtocolVersion) {
    // [MQTT-3.1.2-2]: answer 0x01, then close.
    send_connack(false, mqtt::ConnackCode::UnacceptableProtocolVersion);
    close(r.reason, false);
    return;
  }
  if (!r.ok()) return protocol_error(r.reason);
  level_ = c.protocol_level;
  clean_ = c.clean_session;
  keep_alive_s_ = c.keep_alive;
  if (c.client_id.empty()) {
    // 3.1 requires an id; 3.1.1 allows none only with clean session [MQTT-3.1.3-8].
    if (level_ == mqtt::kLevel31 || !clean_) {
      send_connack(false, mqtt::ConnackCode::IdentifierRejected);
      close("empty client id without clean session [MQTT-3.1.3-8]", false);
      return;
    }
    client_id_ = assigned_client_id();
  } else {
    client_id_ = c.client_id;
  }
  if (c.will) {
    will_ = StoredWill{std::string(c.will->topic), std::string(c.will->payload), c.will->qos,
                       c.will->retain};
  }
  authenticate(c);
}

void Client::authenticate(const mqtt::Connect& c) {
  std::shared_ptr<const auth::Policy> policy = shard_.broker().auth_policy();
  const bool cert = tls_common_name.has_value();
  const std::string_view cn = cert ? std::string_view(*tls_common_name) : std::string_view();
  if (!policy->has_password_file() || !c.username) {
    finish_connect(policy->check_connect(c.username, c.password, cert, cn));
    return;
  }
  // A password check costs a PBKDF2 derivation (~100 ms): do it on the
  // blocking pool and pause this connection meanwhile, not the worker.
  state_ = State::Attaching;
  std::optional<std::string> password;
  if (c.password) password.emplace(*c.password);
  Broker& b = shard_.broker();
  const int shard = shard_.index();
  const uint64_t conn = conn_id_;
  b.blocking().post([&b, shard, conn, policy, user = std::string(*c.username),
                     password = std::move(password), cert, cn = std::string(cn)] {
    auth::ConnectResult r = policy->check_connect(user, password, cert, cn);
    b.run_on_shard(shard, [&b, shard, conn, r = std::move(r)]() mutable {
      const auto& clients = b.shard(shard).clients();
      auto it = clients.find(conn);
      if (it != clients.end() && !it->second->closing()) it->second->finish_connect(std::move(r));
    });
  });
}

void Client::finish_connect(auth::ConnectResult r) {
  if (r.decision != auth::ConnectDecision::Accept) {
    spdlog::warn("refused connection from {} (client {}): {}", remote_, client_id_, r.reason);
    send_connack(false, auth::connack_code(r.decision));
    close(r.reason, false);
    return;
  }
  username_ = std::move(r.username);
  std::optional<std::string_view> user;
  if (username_) user = *username_;
  rules_ = shard_.broker().auth_policy()->rules_for({client_id_, user});
  // A will is a publish the client makes later: it needs the same right now.
  if (will_ && !rules_->may_publish(will_->topic)) {
    spdlog::warn("refused connection from {} (client {}): will topic '{}' not allowed by the ACL",
                 remote_, client_id_, will_->topic);
    send_connack(false, mqtt::ConnackCode::NotAuthorized);
    close("will topic not allowed", false);
    return;
  }
  state_ = State::AwaitConnect;  // not attached yet; on_bytes stays paused below
  bool is_new = false;
  std::shared_ptr<Session> s =
      shard_.broker().claim_session(client_id_, shard_.index(), conn_id_, is_new);
  if (is_new) {
    s->clean = clean_;
    attach(s, false);
    return;
  }
  // The id is in use (a live connection or a stored session): its owner hands
  // it over, possibly from another shard; parsing pauses until then.
  state_ = State::Attaching;
  InboxItem item;
  item.kind = InboxItem::Kind::Takeover;
  item.session = s;
  item.conn_id = conn_id_;
  item.from = shard_.index();
  item.flag = clean_;
  int owner = s->owner.load(std::memory_order_acquire);
  if (owner == shard_.index()) {
    shard_.handle_takeover(item);
  } else {
    shard_.post(owner, std::move(item));
  }
}

void Client::attach(const std::shared_ptr<Session>& s, bool session_present) {
  session_ = s;
  s->client = this;
  s->online.store(true, std::memory_order_relaxed);
  state_ = State::Connected;
  shard_.broker().stats().connections.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("client {} connected from {} (MQTT {}, clean session {}, keep-alive {}s{})",
               client_id_, remote_, level_ == mqtt::kLevel31 ? "3.1" : "3.1.1", clean_,
               keep_alive_s_, session_present ? ", session resumed" : "");
  send_connack(session_present, mqtt::ConnackCode::Accepted);
  if (session_present) resend_inflight();
  pump_queue();
  shard_.mark_session_changed(session_);  // a new persistent session is saved too
  // Bytes that arrived while the session was being handed over are parsed by
  // the network layer after this returns (it calls on_bytes again).
}

void Client::handle_publish(const mqtt::Frame& f) {
  mqtt::Publish p;
  if (auto r = mqtt::decode_publish(f, p); !r.ok()) return protocol_error(r.reason);
  Session& s = *session_;
  if (!rules_->allows_everything() && !rules_->may_publish(p.topic)) {
    // 3.1.1 has no negative acknowledgement: acknowledge, drop and log.
    ++refused_publishes_;
    if ((refused_publishes_ & (refused_publishes_ - 1)) == 0) {
      spdlog::warn("client {}: publish to '{}' not allowed by the ACL, dropped ({} so far)",
                   client_id_, p.topic, refused_publishes_);
    }
    if (p.qos > 0) {
      scratch_.clear();
      mqtt::encode_ack(scratch_, p.qos == 1 ? mqtt::PacketType::Puback : mqtt::PacketType::Pubrec,
                       p.packet_id);
      write(scratch_);
    }
    return;
  }
  if (p.qos == 2) {
    auto& pending = s.incoming_qos2;
    bool seen = std::find(pending.begin(), pending.end(), p.packet_id) != pending.end();
    if (!seen) {
      pending.push_back(p.packet_id);
      shard_.publish_from_device(std::make_shared<const Message>(
          p.topic, p.payload, p.qos, p.retain, client_id_, wall_clock_ms()));
    }
    // A resent PUBLISH before PUBREL is acknowledged again but not delivered
    // twice [MQTT-4.3.3-2].
    scratch_.clear();
    mqtt::encode_ack(scratch_, mqtt::PacketType::Pubrec, p.packet_id);
    write(scratch_);
    return;
  }
  shard_.publish_from_device(std::make_shared<const Message>(p.topic, p.payload, p.qos, p.retain,
                                                             client_id_, wall_clock_ms()));
  if (p.qos == 1) {
    scratch_.clear();
    mqtt::encode_ack(scratch_, mqtt::PacketType::Puback, p.packet_id);
    write(scratch_);
  }
}

void Client::handle_ack(const mqtt::Frame& f) {
  mqtt::Ack a;
  if (auto r = mqtt::decode_ack(f, a); !r.ok()) return protocol_error(r.reason);
  Session& s = *session_;
  auto flight = std::find_if(s.inflight.begin(), s.inflight.end(),
                             [&](const OutboundFlight& x) { return x.packet_id == a.packet_id; });
  switch (a.type) {
    case mqtt::PacketType::Puback:
      if (flight != s.inflight.end() && flight->qos == 1) s.inflight.erase(flight);
      pump_queue();
      shard_.mark_session_changed(session_);
      break;
    case mqtt::PacketType::Pubrec:
      if (flight != s.inflight.end() && flight->qos == 2) {
        flight->released = true;
        flight->msg.reset();  // the message itself is no longer needed [MQTT-4.3.3-1]
      }
      scratch_.clear();
      mqtt::encode_ack(scratch_, mqtt::PacketType::Pubrel, a.packet_id);
      write(scratch_);
      break;
    case mqtt::PacketType::Pubcomp:
      if (flight != s.inflight.end() && flight->qos == 2) s.inflight.erase(flight);
      pump_queue();
      shard_.mark_session_changed(session_);
      break;
    case mqtt::PacketType::Pubrel: {
      std::erase(s.incoming_qos2, a.packet_id);
      scratch_.clear();
      mqtt::encode_ack(scratch_, mqtt::PacketType::Pubcomp, a.packet_id);
      write(scratch_);
      break;
    }
    default:
      break;
  }
}

void Client::handle_subscribe(const mqtt::Frame& f) {
  mqtt::Subscribe sub;
  if (auto r = mqtt::decode_subscribe(f, sub); !r.ok()) return protocol_error(r.reason);
  Session& s = *session_;
  uint8_t codes[64];
  // (A unique_ptr rather than a vector: GCC 12 -O3 warns, wrongly, of a null
  // dereference inside vector::resize here.)
  std::unique_ptr<uint8_t[]> many;
  uint8_t* out = codes;
  if (sub.topics.size() > std::size(codes)) {
    many = std::make_unique<uint8_t[]>(sub.topics.size());
    out = many.get();
  }
  for (size_t i = 0; i < sub.topics.size(); ++i) {
    const auto& t = sub.topics[i];
    if (!rules_->allows_everything() && !rules_->may_subscribe(t.filter)) {
      spdlog::warn("client {}: subscription to '{}' not allowed by the ACL", client_id_, t.filter);
      out[i] = mqtt::kSubackFailure;
      continue;
    }
    uint8_t granted = std::min<uint8_t>(t.qos, 2);
    shard_.broker().index().subscribe(t.filter, session_, granted);
    s.subscriptions.insert_or_assign(std::string(t.filter), granted);
    out[i] = granted;
  }
  shard_.mark_session_changed(session_);
  scratch_.clear();
  mqtt::encode_suback(scratch_, sub.packet_id, {out, sub.topics.size()});
  write(scratch_);
  // Retained messages follow the SUBACK, flagged as retained [MQTT-3.3.1-8].
  for (size_t i = 0; i < sub.topics.size(); ++i) {
    if (out[i] != mqtt::kSubackFailure) send_retained(sub.topics[i].filter, out[i]);
  }
}

void Client::send_retained(std::string_view filter, uint8_t granted) {
  if (shard_.broker().config().non_broker) return;
  std::vector<MessagePtr> found;
  shard_.broker().retained().match(filter, found);
  for (const MessagePtr& m : found) send(m, std::min(m->qos(), granted), true);
}

void Client::handle_unsubscribe(const mqtt::Frame& f) {
  mqtt::Unsubscribe u;
  if (auto r = mqtt::decode_unsubscribe(f, u); !r.ok()) return protocol_error(r.reason);
  Session& s = *session_;
  for (std::string_view filter : u.filters) {
    shard_.broker().index().unsubscribe(filter, &s);
    if (auto it = s.subscriptions.find(filter); it != s.subscriptions.end()) {
      s.subscriptions.erase(it);
    }
  }
  shard_.mark_session_changed(session_);
  scratch_.clear();
  mqtt::encode_unsuback(scratch_, u.packet_id);
  write(scratch_);
}

void Client::send(const MessagePtr& msg, uint8_t qos, bool retain) {
  const Config& cfg = shard_.broker().config();
  // A deny rule inside a granted subscription ("deny a/secret" under "a/#").
  if (rules_->has_deny() && !rules_->may_receive(msg->topic())) return;
  if (qos == 0) {
    // A subscriber that does not read loses QoS 0 messages, counted, instead of
    // growing memory without bound or slowing the publisher.
    if (out_.bytes() > cfg.max_outgoing_bytes) {
      ShardCounters::bump(shard_.counters().dropped_qos0);
      return;
    }
    out_.append_publish(msg, 0, 0, retain, false);
    ShardCounters::bump(shard_.counters().messages_out);
    shard_.mark_dirty(this);
    return;
  }
  Session& s = *session_;
  if (s.inflight.size() < cfg.max_inflight && s.queue.empty()) {
    OutboundFlight fl{s.next_packet_id(), qos, retain, false, msg};
    out_.append_publish(msg, qos, fl.packet_id, retain, false);
    s.inflight.push_back(std::move(fl));
    ShardCounters::bump(shard_.counters().messages_out);
    shard_.mark_dirty(this);
  } else {
    enqueue_offline(s, {msg, qos, retain}, shard_.broker());
  }
  shard_.mark_session_changed(session_);
}

void Client::pump_queue() {
  Session& s = *session_;
  const uint32_t window = shard_.broker().config().max_inflight;
  while (!s.queue.empty() && s.inflight.size() < window) {
    QueuedDelivery d = std::move(s.queue.front());
    s.queue.pop_front();
    OutboundFlight fl{s.next_packet_id(), d.qos, d.retain, false, d.msg};
    out_.append_publish(d.msg, d.qos, fl.packet_id, d.retain, false);
    s.inflight.push_back(std::move(fl));
    ShardCounters::bump(shard_.counters().messages_out);
  }
  s.queue.shrink_if_empty();
  shard_.mark_dirty(this);
}

void Client::resend_inflight() {
  // Unacknowledged messages go again, in order, with DUP set [MQTT-4.4.0-1].
  for (const OutboundFlight& fl : session_->inflight) {
    if (fl.released) {
      scratch_.clear();
      mqtt::encode_ack(scratch_, mqtt::PacketType::Pubrel, fl.packet_id);
      out_.append(scratch_);
    } else {
      out_.append_publish(fl.msg, fl.qos, fl.packet_id, fl.retain, true);
    }
  }
  shard_.mark_dirty(this);
}

void Client::send_connack(bool present, mqtt::ConnackCode code) {
  scratch_.clear();
  mqtt::encode_connack(scratch_, present, code);
  write(scratch_);
}

void Client::write(std::string_view bytes) {
  out_.append(bytes);
  shard_.mark_dirty(this);
}

void Client::tick(int64_t now_ms) {
  if (closing_) return;
  const Config& cfg = shard_.broker().config();
  if (state_ == State::AwaitConnect &&
      now_ms - created_ms_ > static_cast<int64_t>(cfg.connect_timeout_s) * 1000) {
    spdlog::info("closing connection from {}: no CONNECT within {} s", remote_,
                 cfg.connect_timeout_s);
    close(fmt::format("no CONNECT within {} s", cfg.connect_timeout_s));
    return;
  }
  // A client silent for one and a half keep-alive periods is gone [MQTT-3.1.2-24].
  if (state_ == State::Connected && keep_alive_s_ > 0 &&
      now_ms - last_rx_ms_ > static_cast<int64_t>(keep_alive_s_) * 1500) {
    close(fmt::format("keep-alive timeout ({} s)", keep_alive_s_));
  }
}

void Client::protocol_error(std::string_view reason) {
  spdlog::warn("closing connection from {} (client {}): protocol error: {}", remote_,
               client_id_.empty() ? "-" : client_id_, reason);
  close(reason);
}

void Client::close(std::string_view reason, bool publish_will) {
  if (closing_) return;
  closing_ = true;
  close_reason_ = reason;
  if (!publish_will) graceful_ = true;
  on_closed(reason);
  shard_.closing().push_back(this);
}

void Client::on_closed(std::string_view reason) {
  if (state_ == State::Closed) return;
  const bool was_connected = state_ == State::Connected;
  state_ = State::Closed;
  if (!was_connected) return;
  // Detach first, so the will (or anything else routed now) never reaches this
  // dying connection.
  std::shared_ptr<Session> s = std::move(session_);
  s->client = nullptr;
  s->online.store(false, std::memory_order_relaxed);
  if (s->clean) shard_.broker().release_session(s, conn_id_);
  spdlog::info("client {} disconnected ({})", client_id_, reason);
  if (will_ && !graceful_) {
    // The will goes out when the connection ends without DISCONNECT [MQTT-3.1.2-8].
    shard_.publish_from_device(std::make_shared<const Message>(
        will_->topic, will_->payload, will_->qos, will_->retain, client_id_, wall_clock_ms()));
  }
  will_.reset();
}

}  // namespace broker
