// broker::Client, SUBSCRIBE and UNSUBSCRIBE: the ACL, subscription options,
// the topic index, SUBACK/UNSUBACK and the retained messages a new
// subscription receives.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"
#include "mqtt/topic.hpp"

namespace broker {

using mqtt::ReasonCode;

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

}  // namespace broker
