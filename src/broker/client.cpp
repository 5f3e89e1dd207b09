// broker::Client's life cycle: bytes in, dispatch by packet type, keep-alive,
// DISCONNECT, closing and what ends with the connection (the will, a clean
// session). CONNECT is in client_connect.cpp, PUBLISH and its acks from the
// client in client_inbound.cpp, SUBSCRIBE/UNSUBSCRIBE in client_subscribe.cpp,
// the QoS 1/2 window towards the client in client_outbound.cpp.
#include "broker/client.hpp"

#include <spdlog/spdlog.h>

#include "broker/broker.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"

namespace broker {

using mqtt::ReasonCode;

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
  const bool publish_will = will_ && !graceful_;  // now, or after its delay
  if (publish_will && will_->delay_s > 0 && !s->clean) {
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
  if (publish_will && will_) shard_.publish_from_device(make_will_message(*will_, client_id_));
  will_.reset();
}

void Client::write(std::string_view bytes) {
  out_.append(bytes);
  transport_->wants_write();
}

void Client::send_ack(mqtt::PacketType type, uint16_t packet_id, ReasonCode code) {
  std::string& scratch = shard_.scratch_packet();
  scratch.clear();
  mqtt::encode_ack(scratch, level_, type, packet_id, code);
  write(scratch);
}

}  // namespace broker
