// broker::Client, CONNECT: decoding and checking it at every protocol level,
// authentication (on the blocking pool when a password must be derived), the
// session claim and takeover, and CONNACK.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "broker/broker.hpp"
#include "broker/client.hpp"
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
  if (Peers* peers = shard_.broker().peers()) {
    // One connection per client id in the whole cluster: the claim is a round
    // trip to NATS (and maybe to the node that holds the session), made off
    // this thread while this connection is paused.
    state_ = State::Attaching;
    Broker& b = shard_.broker();
    const int shard = shard_.index();
    const uint64_t conn = conn_id_;
    peers->claim(client_id_, clean_, [&b, shard, conn](ClaimOutcome o) {
      b.run_on_shard(shard, [&b, shard, conn, o = std::move(o)]() mutable {
        const auto& clients = b.shard(shard).clients();
        auto it = clients.find(conn);
        if (it != clients.end() && !it->second->closing()) {
          it->second->claimed_in_cluster(std::move(o));
        }
      });
    });
    return;
  }
  claim_locally();
}

void Client::claimed_in_cluster(ClaimOutcome outcome) {
  cluster_revision_ = outcome.revision;
  if (outcome.session) shard_.broker().adopt_session(std::move(*outcome.session), shard_.index());
  claim_locally();
}

void Client::claim_locally() {
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
  Peers* peers = shard_.broker().peers();
  if (peers && cluster_revision_ != 0 && peers->superseded(client_id_, cluster_revision_)) {
    // A CONNECT with this id on another node claimed it after us: it wins.
    if (s->clean) shard_.broker().release_session(s, conn_id_);
    close("client id claimed by a newer connection on another node", false);
    return;
  }
  s->cluster_revision = cluster_revision_;
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

}  // namespace broker
