// broker::Client, messages towards the client: QoS 0 straight to the out
// queue (dropped when the client does not read), QoS 1/2 through the session's
// inflight window (bounded by our --max-inflight and the client's Receive
// Maximum) and queue, resent with DUP after a resume; the MQTT 5 properties of
// each delivery (expiry left, subscription identifier, topic alias).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"

namespace broker {

using mqtt::PropertyId;

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
    queue_for_later(s, d, shard_.broker());
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

}  // namespace broker
