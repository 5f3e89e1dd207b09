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
using mqtt::PropertyId;
using mqtt::ReasonCode;

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

// Largest packet size a CONNACK can announce (the protocol's own maximum).
constexpr size_t kProtocolMaxPacket = 268'435'460;
}  // namespace

Client::Client(Shard& shard, Transport& transport, uint64_t conn_id, std::string remote)
    : shard_(shard),
      transport_(&transport),
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
    mqtt::DecodeResult r =
        mqtt::read_frame(in.substr(used), max_packet, f, v5() ? mqtt::kLevel5 : mqtt::kLevel311);
    if (r.status == mqtt::DecodeStatus::NeedMore) break;
    if (!r.ok()) {
      fail(r);
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
    case PacketType::Pingreq: {
      if (auto r = mqtt::decode_empty(f); !r.ok()) return fail(r);
      std::string& scratch = shard_.scratch_packet();
      scratch.clear();
      mqtt::encode_pingresp(scratch);
      write(scratch);
      break;
    }
    case PacketType::Disconnect:
      handle_disconnect(f);
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
  if (r.status == mqtt::DecodeStatus::BadProtocolVersion) {
    // [MQTT-3.1.2-2]: answer 0x01, then close.
    send_connack(false, ReasonCode::UnsupportedProtocolVersion);
    close(r.reason, false);
    return;
  }
  if (!r.ok()) {
    // A v5 client is told why in its CONNACK [MQTT-3.1.4-1]; 3.x has no code for it.
    if (is_mqtt5_connect(f)) {
      level_ = mqtt::kLevel5;
      spdlog::warn("closing connection from {}: protocol error in CONNECT: {}", remote_, r.reason);
      send_connack(false, mqtt::to_reason_code(r));
      close(r.reason, false);
      return;
    }
    return protocol_error(r.reason);
  }
  level_ = c.protocol_level;
  clean_ = c.clean_session;
  keep_alive_s_ = c.keep_alive;
  // A 3.1.1 session without clean session lasts until the client cleans it.
  session_expiry_s_ = clean_ ? 0 : kNeverExpires;
  if (v5() && !accept_connect_properties(c)) return;
  if (c.client_id.empty()) {
    // 3.1 requires an id; 3.1.1 allows none only with clean session
    // [MQTT-3.1.3-8]; v5 allows none and returns the one assigned [MQTT-3.2.2-16].
    if (level_ == mqtt::kLevel31 || (level_ == mqtt::kLevel311 && !clean_)) {
      send_connack(false, ReasonCode::ClientIdentifierNotValid);
      close("empty client id without clean session [MQTT-3.1.3-8]", false);
      return;
    }
    client_id_ = assigned_client_id();
    assigned_id_ = v5();
  } else {
    client_id_ = c.client_id;
  }
  if (c.will) {
    StoredWill w;
    w.topic = c.will->topic;
    w.payload = c.will->payload;
    w.qos = c.will->qos;
    w.retain = c.will->retain;
    if (v5()) {
      const mqtt::WillProperties& wp = c.will_props;
      if (!mqtt::valid_payload_format(wp.payload_format_indicator, c.will->payload)) {
        return refuse(ReasonCode::PayloadFormatInvalid, "will payload is not UTF-8");
      }
      mqtt::PropertyWriter pw(w.properties);
      pw.add_except(wp.properties,
                    {PropertyId::WillDelayInterval, PropertyId::MessageExpiryInterval});
      w.has_expiry = wp.message_expiry_interval.has_value();
      w.expiry_interval_s = wp.message_expiry_interval.value_or(0);
      w.delay_s = wp.will_delay_interval;
    }
    will_ = std::make_unique<StoredWill>(std::move(w));
  }
  authenticate(c);
}

bool Client::accept_connect_properties(const mqtt::Connect& c) {
  const Config& cfg = shard_.broker().config();
  const mqtt::ConnectProperties& p = c.props;
  if (p.authentication_method) {
    // Enhanced authentication (AUTH exchanges) is not offered.
    refuse(ReasonCode::BadAuthenticationMethod,
           fmt::format("authentication method '{}' not supported", *p.authentication_method));
    return false;
  }
  session_expiry_s_ = p.session_expiry_interval;
  client_receive_max_ = p.receive_maximum;
  client_max_packet_ = p.maximum_packet_size;
  out_alias_limit_ = std::min(p.topic_alias_maximum, cfg.topic_alias_max);
  if (cfg.max_keep_alive > 0 && (keep_alive_s_ == 0 || keep_alive_s_ > cfg.max_keep_alive)) {
    keep_alive_s_ = cfg.max_keep_alive;
    server_keep_alive_ = true;
  }
  return true;
}

void Client::refuse(ReasonCode code, std::string_view reason) {
  spdlog::warn("refused connection from {} (client {}): {}", remote_,
               client_id_.empty() ? "-" : client_id_, reason);
  send_connack(false, code);
  close(reason, false);
}

void Client::authenticate(const mqtt::Connect& c) {
  std::shared_ptr<const auth::Policy> policy = shard_.broker().auth_policy();
  const bool cert = tls_common_name.has_value();
  const std::string_view cn = cert ? std::string_view(*tls_common_name) : std::string_view();
  if (!policy->has_password_file() || !c.username) {
    finish_connect(policy->check_connect(c.username, c.password, cert, cn), policy);
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
    b.run_on_shard(shard, [&b, shard, conn, policy, r = std::move(r)]() mutable {
      const auto& clients = b.shard(shard).clients();
      auto it = clients.find(conn);
      if (it != clients.end() && !it->second->closing()) {
        it->second->finish_connect(std::move(r), policy);
      }
    });
  });
}

void Client::finish_connect(auth::ConnectResult r,
                            const std::shared_ptr<const auth::Policy>& policy) {
  if (r.decision != auth::ConnectDecision::Accept) {
    return refuse(mqtt::to_reason_code(auth::connack_code(r.decision)), r.reason);
  }
  username_ = std::move(r.username);
  std::optional<std::string_view> user;
  if (username_) user = *username_;
  rules_ = policy->rules_for({client_id_, user});
  // A will is a publish the client makes later: it needs the same right now.
  if (will_ && !rules_->may_publish(will_->topic)) {
    return refuse(ReasonCode::NotAuthorized,
                  fmt::format("will topic '{}' not allowed by the ACL", will_->topic));
  }
  if (will_ && mqtt::is_sys_topic(will_->topic)) {
    return refuse(ReasonCode::NotAuthorized,
                  fmt::format("will topic '{}': $SYS topics are the broker's own", will_->topic));
  }
  state_ = State::AwaitConnect;  // not attached yet; on_bytes stays paused below
  bool is_new = false;
  std::shared_ptr<Session> s =
      shard_.broker().claim_session(client_id_, shard_.index(), conn_id_, is_new);
  if (is_new) {
    s->clean = session_expiry_s_ == 0;
    s->expiry_s = session_expiry_s_;
    attach(s, false);
    return;
  }
  // The id is in use (a live connection or a stored session): its owner hands
  // it over, possibly from another shard; parsing pauses until then.
  state_ = State::Attaching;
  inbox::Takeover t{s, conn_id_, shard_.index(), session_expiry_s_, clean_};
  const int owner = s->owner_shard();
  if (owner == shard_.index()) {
    shard_.handle_takeover(t);
  } else {
    shard_.broker().submit_to(owner, std::move(t));
  }
}

void Client::attach(const std::shared_ptr<Session>& s, bool session_present) {
  s->assert_owned_by(shard_.index());
  session_ = s;
  s->client = this;
  s->online.store(true, std::memory_order_relaxed);
  s->expires_at_ms = 0;
  state_ = State::Connected;
  shard_.broker().stats().connections.fetch_add(1, std::memory_order_relaxed);
  ShardCounters::bump(shard_.counters().connected);
  const char* level = level_ == mqtt::kLevel31 ? "3.1" : v5() ? "5" : "3.1.1";
  spdlog::info("client {} connected from {} (MQTT {}, clean {} {}, keep-alive {}s{})", client_id_,
               remote_, level, v5() ? "start" : "session", clean_, keep_alive_s_,
               session_present ? ", session resumed" : "");
  send_connack(session_present, ReasonCode::Success);
  if (session_present) resend_inflight();
  pump_queue();
  shard_.mark_session_changed(session_);  // a new persistent session is saved too
  // Bytes that arrived while the session was being handed over are parsed by
  // the network layer after this returns (it calls on_bytes again).
}

void Client::handle_publish(const mqtt::Frame& f) {
  mqtt::Publish p;
  if (auto r = mqtt::decode_publish(f, level_, p); !r.ok()) return fail(r);
  Session& s = *session_;
  MessageMeta meta;
  if (v5()) {
    if (p.props.subscription_identifier_count > 0) {
      return protocol_error(
          "PUBLISH from a client carries a Subscription Identifier [MQTT-3.3.4-6]");
    }
    if (!resolve_topic_alias(p)) return;
    if (!mqtt::valid_payload_format(p.props.payload_format_indicator, p.payload)) {
      // [MQTT-3.3.2-4] lets the receiver refuse it: with a reason code where
      // there is an acknowledgement, else by closing.
      if (p.qos == 0) {
        return protocol_error("payload is not UTF-8 though its format indicator says so",
                              ReasonCode::PayloadFormatInvalid);
      }
      send_ack(p.qos == 1 ? mqtt::PacketType::Puback : mqtt::PacketType::Pubrec, p.packet_id,
               ReasonCode::PayloadFormatInvalid);
      return;
    }
    if (!p.props.properties.empty()) {
      std::string& forwarded = shard_.scratch_properties();
      forwarded.clear();
      mqtt::PropertyWriter w(forwarded);
      w.add_except(p.props.properties, {PropertyId::TopicAlias, PropertyId::SubscriptionIdentifier,
                                        PropertyId::MessageExpiryInterval});
      meta.properties = forwarded;
      meta.has_expiry = p.props.message_expiry_interval.has_value();
      meta.expiry_interval_s = p.props.message_expiry_interval.value_or(0);
    }
  }
  // $SYS is written by the broker only (see mqtt::is_sys_topic), like a deny rule.
  const bool sys = mqtt::is_sys_topic(p.topic);
  if (sys || (!rules_->allows_everything() && !rules_->may_publish(p.topic))) {
    // 3.1.1 has no negative acknowledgement: acknowledge, drop and log
    // [MQTT-3.3.5-2]; v5 says Not Authorized.
    ++refused_publishes_;
    ShardCounters::bump(shard_.counters().dropped_not_authorized);
    if ((refused_publishes_ & (refused_publishes_ - 1)) == 0) {
      spdlog::warn("client {}: publish to '{}' {}, dropped ({} so far)", client_id_, p.topic,
                   sys ? "refused: $SYS topics are the broker's own" : "not allowed by the ACL",
                   refused_publishes_);
    }
    if (p.qos > 0) {
      send_ack(p.qos == 1 ? mqtt::PacketType::Puback : mqtt::PacketType::Pubrec, p.packet_id,
               ReasonCode::NotAuthorized);
    }
    return;
  }
  if (p.qos == 2) {
    auto& pending = s.incoming_qos2;
    bool seen = std::find(pending.begin(), pending.end(), p.packet_id) != pending.end();
    if (!seen) {
      // Our Receive Maximum bounds the QoS 2 flows a v5 client keeps open
      // [MQTT-3.3.4-7]; QoS 1 is acknowledged at once and never counts.
      if (v5() && pending.size() >= shard_.broker().config().max_inflight) {
        return protocol_error("more unacknowledged QoS 2 PUBLISHes than our Receive Maximum",
                              ReasonCode::ReceiveMaximumExceeded);
      }
      pending.push_back(p.packet_id);
      shard_.publish_from_device(std::make_shared<const Message>(
          p.topic, p.payload, p.qos, p.retain, client_id_, wall_clock_ms(), meta));
    }
    // A resent PUBLISH before PUBREL is acknowledged again but not delivered
    // twice [MQTT-4.3.3-2].
    send_ack(mqtt::PacketType::Pubrec, p.packet_id);
    return;
  }
  shard_.publish_from_device(std::make_shared<const Message>(p.topic, p.payload, p.qos, p.retain,
                                                             client_id_, wall_clock_ms(), meta));
  if (p.qos == 1) send_ack(mqtt::PacketType::Puback, p.packet_id);
}

bool Client::resolve_topic_alias(mqtt::Publish& p) {
  const uint16_t alias = p.props.topic_alias;
  if (alias == 0) return true;  // an empty topic without alias fails decoding
  const uint16_t max = shard_.broker().config().topic_alias_max;
  if (alias > max) {
    protocol_error(fmt::format("topic alias {} above our maximum {} [MQTT-3.3.2-9]", alias, max),
                   ReasonCode::TopicAliasInvalid);
    return false;
  }
  if (!aliases_) aliases_ = std::make_unique<TopicAliases>();
  if (aliases_->resolve(alias, p.topic) == TopicAliases::Inbound::Unset) {
    protocol_error(fmt::format("topic alias {} used before it was set", alias));
    return false;
  }
  return true;
}

void Client::handle_ack(const mqtt::Frame& f) {
  mqtt::Ack a;
  if (auto r = mqtt::decode_ack(f, level_, a); !r.ok()) return fail(r);
  Session& s = *session_;
  auto flight = std::find_if(s.inflight.begin(), s.inflight.end(),
                             [&](const OutboundFlight& x) { return x.packet_id == a.packet_id; });
  if (flight != s.inflight.end() && flight->held_back) {
    // Acknowledged from the previous connection's copy: no need to resend it.
    flight->held_back = false;
    --s.held_back;
  }
  switch (a.type) {
    case mqtt::PacketType::Puback:
      if (flight != s.inflight.end() && flight->qos == 1) s.inflight.erase(flight);
      pump_queue();
      shard_.mark_session_changed(session_);
      break;
    case mqtt::PacketType::Pubrec:
      if (mqtt::is_failure(a.reason_code)) {
        // The client refused the message: its QoS 2 flow ends here (v5).
        if (flight != s.inflight.end() && flight->qos == 2) s.inflight.erase(flight);
        pump_queue();
        shard_.mark_session_changed(session_);
        break;
      }
      if (flight != s.inflight.end() && flight->qos == 2) {
        flight->released = true;
        flight->msg.reset();  // the message itself is no longer needed [MQTT-4.3.3-1]
      }
      send_ack(
          mqtt::PacketType::Pubrel, a.packet_id,
          flight != s.inflight.end() ? ReasonCode::Success : ReasonCode::PacketIdentifierNotFound);
      break;
    case mqtt::PacketType::Pubcomp:
      if (flight != s.inflight.end() && flight->qos == 2) s.inflight.erase(flight);
      pump_queue();
      shard_.mark_session_changed(session_);
      break;
    case mqtt::PacketType::Pubrel: {
      const size_t before = s.incoming_qos2.size();
      std::erase(s.incoming_qos2, a.packet_id);
      send_ack(mqtt::PacketType::Pubcomp, a.packet_id,
               s.incoming_qos2.size() < before ? ReasonCode::Success
                                               : ReasonCode::PacketIdentifierNotFound);
      break;
    }
    default:
      break;
  }
}

void Client::handle_subscribe(const mqtt::Frame& f) {
  mqtt::Subscribe sub;
  if (auto r = mqtt::decode_subscribe(f, level_, sub); !r.ok()) return fail(r);
  Session& s = *session_;
  std::vector<ReasonCode> codes(sub.topics.size());
  std::vector<bool> with_retained(sub.topics.size());
  for (size_t i = 0; i < sub.topics.size(); ++i) {
    const mqtt::TopicRequest& t = sub.topics[i];
    std::string_view group, inner = t.filter;
    const bool shared = mqtt::parse_shared_subscription(t.filter, group, inner);
    if (!rules_->allows_everything() && !rules_->may_subscribe(inner)) {
      spdlog::warn("client {}: subscription to '{}' not allowed by the ACL", client_id_, t.filter);
      codes[i] = ReasonCode::NotAuthorized;
      continue;
    }
    SubOptions o;
    o.qos = std::min<uint8_t>(t.qos, 2);
    o.no_local = t.no_local;
    o.retain_as_published = t.retain_as_published;
    o.retain_handling = static_cast<uint8_t>(t.retain_handling);
    o.id = sub.subscription_identifier;
    const bool existed = shard_.broker().index().subscribe(t.filter, session_, o);
    s.subscriptions.insert_or_assign(std::string(t.filter), o);
    codes[i] = static_cast<ReasonCode>(o.qos);
    // Retained messages follow the SUBACK as Retain Handling says
    // [MQTT-3.3.1-9..11]; never for a shared subscription (4.8.2).
    with_retained[i] = !shared && (o.retain_handling == 0 || (o.retain_handling == 1 && !existed));
  }
  shard_.mark_session_changed(session_);
  std::string& scratch = shard_.scratch_packet();
  scratch.clear();
  mqtt::encode_suback(scratch, level_, sub.packet_id, codes);
  write(scratch);
  for (size_t i = 0; i < sub.topics.size(); ++i) {
    if (with_retained[i]) {
      send_retained(sub.topics[i].filter, static_cast<uint8_t>(codes[i]),
                    sub.subscription_identifier);
    }
  }
}

void Client::send_retained(std::string_view filter, uint8_t granted, uint32_t sub_id) {
  if (shard_.broker().config().non_broker) return;
  std::vector<MessagePtr> found;
  shard_.broker().retained().match(filter, found);
  // Sent with the retain flag set [MQTT-3.3.1-8]; expired ones are skipped in send().
  for (const MessagePtr& m : found) send({m, std::min(m->qos(), granted), true, sub_id});
}

void Client::handle_unsubscribe(const mqtt::Frame& f) {
  mqtt::Unsubscribe u;
  if (auto r = mqtt::decode_unsubscribe(f, level_, u); !r.ok()) return fail(r);
  Session& s = *session_;
  std::vector<ReasonCode> codes;
  codes.reserve(u.filters.size());
  for (std::string_view filter : u.filters) {
    shard_.broker().index().unsubscribe(filter, &s);
    auto it = s.subscriptions.find(filter);
    codes.push_back(it != s.subscriptions.end() ? ReasonCode::Success
                                                : ReasonCode::NoSubscriptionExisted);
    if (it != s.subscriptions.end()) s.subscriptions.erase(it);
  }
  shard_.mark_session_changed(session_);
  std::string& scratch = shard_.scratch_packet();
  scratch.clear();
  mqtt::encode_unsuback(scratch, level_, u.packet_id, codes);
  write(scratch);
}

void Client::handle_disconnect(const mqtt::Frame& f) {
  mqtt::Disconnect d;
  if (auto r = mqtt::decode_disconnect(f, level_, d); !r.ok()) return fail(r);
  if (!v5()) {
    // A clean DISCONNECT discards the will [MQTT-3.14.4-3].
    close("client sent DISCONNECT", /*publish_will=*/false);
    return;
  }
  if (d.session_expiry_interval) {
    // A session that was to end with the connection cannot be kept now [MQTT-3.14.2-2].
    if (session_expiry_s_ == 0 && *d.session_expiry_interval != 0) {
      return protocol_error("DISCONNECT sets a Session Expiry Interval after CONNECT said 0");
    }
    session_expiry_s_ = *d.session_expiry_interval;
    session_->expiry_s = session_expiry_s_;
    session_->clean = session_expiry_s_ == 0;
  }
  // 0x04 asks for the will; any other reason discards it [MQTT-3.14.4-3].
  const bool with_will = d.reason_code == ReasonCode::DisconnectWithWillMessage;
  close(fmt::format("client sent DISCONNECT ({})", mqtt::to_string(d.reason_code)), with_will);
}

void Client::send(const Delivery& d) {
  const Config& cfg = shard_.broker().config();
  // A deny rule inside a granted subscription ("deny a/secret" under "a/#").
  if (rules_->has_deny() && !rules_->may_receive(d.msg->topic())) return;
  if (d.qos == 0) {
    // A subscriber that does not read loses QoS 0 messages, counted, instead of
    // growing memory without bound or slowing the publisher.
    if (out_.bytes() > cfg.max_outgoing_bytes) {
      ShardCounters::bump(shard_.counters().dropped_qos0);
      return;
    }
    if (!write_publish(d, 0, false)) return;
    ShardCounters::bump(shard_.counters().messages_out[0]);
    transport_->wants_write();
    return;
  }
  Session& s = *session_;
  s.assert_owned_by(shard_.index());
  if (s.inflight.size() < send_window() && s.queue.empty()) {
    OutboundFlight fl{d, s.next_packet_id()};
    if (!write_publish(d, fl.packet_id, false)) return;
    s.inflight.push_back(std::move(fl));
    ShardCounters::bump(shard_.counters().messages_out[d.qos]);
    transport_->wants_write();
  } else {
    enqueue_offline(s, d, shard_.broker());
  }
  shard_.mark_session_changed(session_);
}

bool Client::write_publish(const Delivery& d, uint16_t packet_id, bool dup, bool check_expiry) {
  const MessagePtr& m = d.msg;
  const uint8_t qos = d.qos;
  const bool retain = d.retain;
  const uint32_t sub_id = d.sub_id;
  int64_t now = 0;
  if (m->has_expiry()) {
    now = wall_clock_ms();
    // Not delivered once its Message Expiry Interval has passed [MQTT-3.3.2-5].
    if (check_expiry && m->expired(now)) {
      ShardCounters::bump(shard_.counters().dropped_expired);
      return false;
    }
  }
  if (!v5()) {
    out_.append_publish(m, qos, packet_id, retain, dup);
    return true;
  }
  std::string& extra = shard_.scratch_delivery_properties();
  extra.clear();
  mqtt::PropertyWriter w(extra);
  // The time left goes with it [MQTT-3.3.2-6].
  if (m->has_expiry())
    w.add_u32(PropertyId::MessageExpiryInterval, std::max(1u, m->remaining_s(now)));
  if (sub_id != 0) w.add_varint(PropertyId::SubscriptionIdentifier, sub_id);
  TopicAliases::Outbound alias;
  if (out_alias_limit_ > 0) {
    if (!aliases_) aliases_ = std::make_unique<TopicAliases>();
    alias = aliases_->outbound(m->topic(), out_alias_limit_);
    if (alias.alias != 0) w.add_u16(PropertyId::TopicAlias, alias.alias);
  }
  const bool omit_topic = alias.omit_topic;
  const size_t size =
      mqtt::publish_packet_size_v5(qos, omit_topic ? 0 : m->topic().size(),
                                   m->properties().size() + extra.size(), m->payload().size());
  // Never above the client's Maximum Packet Size: dropped as if sent [MQTT-3.1.2-24/25].
  if (size == 0 || (client_max_packet_ != 0 && size > client_max_packet_)) {
    spdlog::debug("client {}: {}-byte PUBLISH on '{}' exceeds its maximum packet size {}, dropped",
                  client_id_, size, m->topic(), client_max_packet_);
    ShardCounters::bump(shard_.counters().dropped_too_large);
    return false;
  }
  if (alias.alias != 0 && !omit_topic) aliases_->defined(m->topic(), alias.alias);
  out_.append_publish_v5(m, qos, packet_id, retain, dup, extra, omit_topic);
  return true;
}

uint32_t Client::send_window() const {
  // The client's Receive Maximum caps what is unacknowledged towards it [MQTT-3.3.4-9].
  return std::min<uint32_t>(shard_.broker().config().max_inflight, client_receive_max_);
}

void Client::pump_queue() {
  Session& s = *session_;
  s.assert_owned_by(shard_.index());
  const uint32_t window = send_window();
  if (s.held_back > 0) send_held_back(window);
  while (!s.queue.empty() && s.inflight.size() < window) {
    OutboundFlight fl{std::move(s.queue.front()), s.next_packet_id()};
    s.queue.pop_front();
    if (!write_publish(fl, fl.packet_id, false)) continue;
    ShardCounters::bump(shard_.counters().messages_out[fl.qos]);
    s.inflight.push_back(std::move(fl));
  }
  s.queue.shrink_if_empty();
  transport_->wants_write();
}

void Client::send_held_back(uint32_t window) {
  Session& s = *session_;
  size_t unacked = s.inflight.size() - s.held_back;
  for (auto it = s.inflight.begin(); it != s.inflight.end() && s.held_back > 0;) {
    if (!it->held_back) {
      ++it;
      continue;
    }
    if (unacked >= window) break;
    it->held_back = false;
    --s.held_back;
    // Resent with its original packet id and DUP [MQTT-4.4.0-1].
    if (!write_publish(*it, it->packet_id, /*dup=*/true, /*check_expiry=*/false)) {
      it = s.inflight.erase(it);  // now too large for this client: dropped
      continue;
    }
    ++unacked;
    ++it;
  }
}

void Client::resend_inflight() {
  // Unacknowledged messages go again, in order, with DUP set [MQTT-4.4.0-1];
  // delivery has started, so they no longer expire. No more than the client's
  // Receive Maximum go at once [MQTT-3.3.4-9]: the rest are held back and
  // resent as acknowledgements come (pump_queue).
  Session& s = *session_;
  s.held_back = 0;
  for (OutboundFlight& fl : s.inflight) {
    if (fl.released) {
      send_ack(mqtt::PacketType::Pubrel, fl.packet_id);  // counts: awaits PUBCOMP
      fl.held_back = false;
    } else {
      fl.held_back = true;
      ++s.held_back;
    }
  }
  send_held_back(send_window());
  transport_->wants_write();
}

void Client::send_ack(mqtt::PacketType type, uint16_t packet_id, ReasonCode code) {
  std::string& scratch = shard_.scratch_packet();
  scratch.clear();
  mqtt::encode_ack(scratch, level_, type, packet_id, code);
  write(scratch);
}

void Client::send_connack(bool present, ReasonCode code) {
  const Config& cfg = shard_.broker().config();
  mqtt::Connack c;
  c.session_present = present;
  c.reason_code = code;
  // 3.x sends the return code `code` maps to and no properties.
  if (v5() && code == ReasonCode::Success) {
    // What the client must respect; an absent limit means "none".
    if (cfg.max_inflight < 65535) c.props.receive_maximum = static_cast<uint16_t>(cfg.max_inflight);
    if (cfg.max_packet_size < kProtocolMaxPacket) {
      c.props.maximum_packet_size = static_cast<uint32_t>(cfg.max_packet_size);
    }
    c.props.topic_alias_maximum = cfg.topic_alias_max;
    // Said explicitly, though absent means the same, for clients that show them.
    c.props.retain_available = true;
    c.props.wildcard_subscription_available = true;
    c.props.subscription_identifiers_available = true;
    c.props.shared_subscription_available = true;
    if (assigned_id_) c.props.assigned_client_identifier = client_id_;
    if (server_keep_alive_) c.props.server_keep_alive = keep_alive_s_;
  }
  std::string& scratch = shard_.scratch_packet();
  scratch.clear();
  mqtt::encode_connack(scratch, level_, c);
  write(scratch);
}

void Client::write(std::string_view bytes) {
  out_.append(bytes);
  transport_->wants_write();
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
    close(fmt::format("keep-alive timeout ({} s)", keep_alive_s_), true,
          ReasonCode::KeepAliveTimeout);
  }
}

void Client::fail(const mqtt::DecodeResult& r) {
  protocol_error(r.reason, mqtt::to_reason_code(r));
}

void Client::protocol_error(std::string_view reason, ReasonCode code) {
  spdlog::warn("closing connection from {} (client {}): protocol error: {}", remote_,
               client_id_.empty() ? "-" : client_id_, reason);
  close(reason, true, code);
}

void Client::close(std::string_view reason, bool publish_will, std::optional<ReasonCode> code) {
  if (closing_) return;
  // A v5 client hears why, but only once CONNACK went out [MQTT-3.14.0-1].
  if (code && v5() && state_ == State::Connected) {
    mqtt::Disconnect d;
    d.reason_code = *code;
    std::string& scratch = shard_.scratch_packet();
    scratch.clear();
    mqtt::encode_disconnect(scratch, level_, d);
    write(scratch);
  }
  closing_ = true;
  close_reason_ = reason;
  if (!publish_will) graceful_ = true;
  on_closed(reason);
  transport_->close_requested();
}

void Client::on_closed(std::string_view reason) {
  if (state_ == State::Closed) return;
  const bool was_connected = state_ == State::Connected;
  state_ = State::Closed;
  if (!was_connected) return;
  ShardCounters::drop(shard_.counters().connected);
  // Detach first, so the will (or anything else routed now) never reaches this
  // dying connection.
  std::shared_ptr<Session> s = std::move(session_);
  s->client = nullptr;
  s->online.store(false, std::memory_order_relaxed);
  s->last_conn_id = conn_id_;
  spdlog::info("client {} disconnected ({})", client_id_, reason);
  const bool will_now = will_ && !graceful_;
  if (will_now && will_->delay_s > 0 && !s->clean) {
    // MQTT 5 Will Delay Interval: the session keeps the will until the delay
    // or the session ends; a reconnect in time cancels it [MQTT-3.1.3-9].
    s->will_due_ms = shard_.now_ms() + int64_t{will_->delay_s} * 1000;
    s->pending_will = std::move(will_);
  }
  if (s->clean) {
    shard_.broker().release_session(s, conn_id_);
  } else {
    shard_.schedule_offline_session(s);
  }
  // The will goes out when the connection ends without DISCONNECT [MQTT-3.1.2-8].
  if (will_now && will_) shard_.publish_from_device(make_will_message(*will_, client_id_));
  will_.reset();
}

}  // namespace broker
