// broker::Client, what the client sends about messages: its PUBLISHes (ACL,
// topic aliases, QoS 2 de-duplication, then routing) and its acknowledgements
// of ours (PUBACK, PUBREC, PUBREL, PUBCOMP), which move the outbound window.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"
#include "mqtt/topic.hpp"

namespace broker {

using mqtt::PropertyId;
using mqtt::ReasonCode;

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

}  // namespace broker
