#include "cluster/node.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "broker/clock.hpp"
#include "broker/shard.hpp"
#include "cluster/envelope.hpp"
#include "cluster/requests.hpp"
#include "cluster/subject.hpp"

namespace cluster {

namespace {
// A new epoch for each run and each reconnect: the receivers' de-duplication
// starts afresh for an origin whose epoch grew (design note B.3).
uint32_t epoch_now() {
  using namespace std::chrono;
  return static_cast<uint32_t>(
      duration_cast<seconds>(system_clock::now().time_since_epoch()).count() -
      1'577'836'800);  // since 2020-01-01
}
constexpr int kTakeoverTimeoutMs = 2000;
constexpr int kRequestTimeoutMs = 2000;
constexpr int kGatherMs = 300;
}  // namespace

Node::Node(broker::Broker& broker, Options opts)
    : broker_(broker),
      facade_(broker),
      opts_(std::move(opts)),
      link_(opts_.servers, opts_.node_id, {[this] { on_link_up(); }, {}}),
      shared_link_(opts_.servers, opts_.node_id + "-shared", {}, /*no_echo=*/false,
                   /*logs=*/false),
      envelope_handler_([this](const Received& r) { on_envelope(r); }),
      takeover_handler_([this](const Received& r) { on_takeover(r); }),
      send_handler_([this](const Received& r) { on_send(r); }),
      disconnect_handler_([this](const Received& r) { on_disconnect(r); }),
      list_handler_([this](const Received& r) { on_list(r); }),
      interest_(link_, shared_link_, &envelope_handler_,
                [this](std::string_view f) { return group_handler(f); }),
      owners_(link_, opts_.node_id, opts_.replicas,
              [this](const std::string& id, const std::string&, uint64_t rev) {
                // Every claim, ours included: a connection here whose claim is
                // older is closed (the revision decides, not the node).
                broker_.claimed_elsewhere(id, rev);
              }),
      retained_(link_, broker, opts_.replicas),
      shard_seqs_(static_cast<size_t>(broker.shard_count())),
      api_origin_(opts_.node_id + "/api"),
      epoch_(epoch_now()) {
  for (int i = 0; i < broker.shard_count(); ++i) {
    shard_origins_.push_back(opts_.node_id + "/" + std::to_string(i));
  }
}

Node::~Node() {
  stop();
}

util::Status Node::start() {
  if (auto s = link_.start(); !s) return s;
  return shared_link_.start();
}

void Node::stop() {
  if (stopping_.exchange(true)) return;
  owners_.close();
  retained_.close();
  for (auto sub : control_subs_) link_.unsubscribe(sub);
  control_subs_.clear();
  shared_link_.stop();
  link_.stop();
}

void Node::on_link_up() {
  if (set_up_.load()) {
    // A reconnect: libnats subscribed everything again; our sequence numbers
    // start a new epoch so that nobody drops them as old.
    uint32_t e = epoch_.load();
    epoch_.store(std::max(e + 1, epoch_now()));
    return;
  }
  if (setting_up_.exchange(true)) return;
  jobs_.post([this] { set_up(); });
}

void Node::set_up() {
  bool warned = false;
  while (!stopping_.load()) {
    util::Status owners = owners_.open();
    util::Status feed = owners ? retained_.open() : util::Status{};
    if (owners && feed) break;
    if (!warned) {
      spdlog::warn("{}; retrying every second",
                   !owners ? owners.error().message : feed.error().message);
      warned = true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (stopping_.load()) return;
  struct Control {
    const char* verb;
    const Handler* handler;
  };
  for (const Control& c : {Control{"takeover", &takeover_handler_}, Control{"send", &send_handler_},
                           Control{"disconnect", &disconnect_handler_}}) {
    auto sub = link_.subscribe(node_subject(opts_.node_id, c.verb), c.handler);
    if (sub) {
      control_subs_.push_back(sub.value());
    } else {
      spdlog::error("{}", sub.error().message);
    }
  }
  if (auto sub = link_.subscribe("c.all.list", &list_handler_))
    control_subs_.push_back(sub.value());
  set_up_.store(true);
  spdlog::info("cluster: node {} joined: client ids, retained messages and requests shared",
               opts_.node_id);
}

std::string_view Node::origin_of_this_thread() {
  broker::Shard* here = broker::Shard::current();
  if (here && &here->broker() == &broker_) {
    return shard_origins_[static_cast<size_t>(here->index())];
  }
  return api_origin_;
}

uint64_t Node::next_seq() {
  broker::Shard* here = broker::Shard::current();
  if (here && &here->broker() == &broker_) {
    return ++shard_seqs_[static_cast<size_t>(here->index())].next;
  }
  return api_seq_.fetch_add(1, std::memory_order_relaxed) + 1;
}

void Node::forward(const broker::MessagePtr& msg, broker::Source from) {
  thread_local std::string subject, envelope;
  topic_subject(msg->topic(), subject);
  if (subject.size() > kMaxSubjectBytes) {
    // NATS caps a subject (its control line); such a topic stays on this node.
    if (refused_subjects_.fetch_add(1, std::memory_order_relaxed) == 0) {
      spdlog::warn("cluster: topic of {} bytes too long for NATS; kept on this node (logged once)",
                   msg->topic().size());
    }
    return;
  }
  const std::string_view origin = origin_of_this_thread();
  encode_envelope(envelope, *msg, from, origin, epoch_.load(std::memory_order_relaxed), next_seq(),
                  broker::wall_clock_ms());
  link_.publish(subject, envelope);
}

void Node::retained_changed(const broker::MessagePtr& msg) {
  thread_local std::string envelope;
  encode_envelope(envelope, *msg, broker::Source::Device, origin_of_this_thread(),
                  epoch_.load(std::memory_order_relaxed), 0, broker::wall_clock_ms());
  retained_.publish(msg->topic(), envelope);
}

void Node::want_everything(bool on) {
  if (on) {
    interest_.add_everything();
  } else {
    interest_.remove_everything();
  }
}

void Node::on_envelope(const Received& r) {
  auto e = decode_envelope(r.data);
  if (!e) {
    spdlog::warn("cluster: ignored a message on {} that is not ours: {}", r.subject,
                 e.error().message);
    return;
  }
  const Envelope& env = e.value();
  // One copy per message, however many of our subscriptions matched it.
  if (!dedup_.first_time(env.node, env.epoch, env.seq)) return;
  broker_.deliver_from_peer(to_message(env, broker::wall_clock_ms()), env.source, env.node);
}

const Handler* Node::group_handler(std::string_view share_filter) {
  std::lock_guard lock(groups_mu_);
  auto [it, added] = group_handlers_.try_emplace(std::string(share_filter));
  if (added) {
    it->second = std::make_unique<Handler>(
        [this, f = it->first](const Received& r) { on_group_message(f, r); });
  }
  return it->second.get();
}

void Node::on_group_message(const std::string& share_filter, const Received& r) {
  auto e = decode_envelope(r.data);
  if (!e) return;
  // No de-duplication: NATS gave this message to this node's queue
  // subscription once, and a group's filter maps to subjects that do not
  // overlap ("f" and "f.>").
  broker_.deliver_to_group(to_message(e.value(), broker::wall_clock_ms()), share_filter,
                           e.value().source);
}

void Node::claim(const std::string& client_id, bool clean_start,
                 std::function<void(broker::ClaimOutcome)> done) {
  if (!owners_.ready()) {
    done(broker::ClaimOutcome{std::nullopt, 0, true});
    return;
  }
  jobs_.post([this, client_id, clean_start, done = std::move(done)] {
    broker::ClaimOutcome out;
    auto c = owners_.claim(client_id);
    if (!c) {
      spdlog::warn("{}; client {} connects with this node's word only", c.error().message,
                   client_id);
      out.local_only = true;
      done(std::move(out));
      return;
    }
    out.revision = c.value().revision;
    const std::string& previous = c.value().previous_node;
    if (!previous.empty()) {
      auto answer = link_.request(node_subject(previous, "takeover"),
                                  encode(TakeoverRequest{client_id, clean_start, out.revision}),
                                  kTakeoverTimeoutMs);
      if (!answer) {
        spdlog::info("cluster: client {}: node {} did not hand its session over ({})", client_id,
                     previous, answer.error().message);
      } else if (auto reply = decode_takeover_reply(client_id, answer.value())) {
        if (*reply) {
          out.session = std::move(**reply);
          spdlog::info("cluster: client {}: session taken over from node {}", client_id, previous);
        }
      } else {
        spdlog::warn("cluster: client {}: node {} answered the takeover with bad bytes", client_id,
                     previous);
      }
    }
    done(std::move(out));
  });
}

void Node::reply(std::string_view to, std::string_view data) {
  if (to.empty()) return;
  link_.publish(std::string(to), data);
}

void Node::on_takeover(const Received& r) {
  auto req = decode_takeover(r.data);
  if (!req) return;
  broker_.give_session_away(
      req->client_id, req->clean_start, req->revision, !opts_.shared_store,
      [this, to = std::string(r.reply)](std::optional<broker::SessionSnapshot> session) {
        reply(to, encode_takeover_reply(session));
      });
}

void Node::on_send(const Received& r) {
  auto req = decode_send(r.data);
  if (!req) return;
  auto e = decode_envelope(req->envelope);
  if (!e) return;
  auto result = broker_.send_to_client(req->client_id,
                                       to_message(e.value(), broker::wall_clock_ms()), req->qos);
  const char code = static_cast<char>(result);
  reply(r.reply, std::string_view(&code, 1));
}

void Node::on_disconnect(const Received& r) {
  std::string id(r.data), to(r.reply);
  // The answer waits for the client's shard: not on the delivery thread.
  jobs_.post([this, id = std::move(id), to = std::move(to)] {
    bool found = false;
    try {
      found = facade_.disconnect(id).get();
    } catch (const std::future_error&) {
    }
    const char code = found ? 1 : 0;
    reply(to, std::string_view(&code, 1));
  });
}

void Node::on_list(const Received& r) {
  jobs_.post([this, to = std::string(r.reply)] {
    std::vector<broker::ConnectedClient> clients;
    try {
      clients = facade_.list_clients().get();
    } catch (const std::future_error&) {
    }
    for (auto& c : clients) c.node = opts_.node_id;
    reply(to, encode_clients(clients));
  });
}

broker::SendResult Node::send_to_remote_client(const std::string& client_id,
                                               const broker::MessagePtr& msg, uint8_t qos) {
  using R = broker::SendResult;
  auto owner = owners_.owner_of(client_id);
  if (!owner || owner.value().empty() || owner.value() == opts_.node_id) return R::NotFound;
  SendRequest req;
  req.client_id = client_id;
  req.qos = qos;
  encode_envelope(req.envelope, *msg, broker::Source::Api, api_origin_, epoch_.load(), 0,
                  broker::wall_clock_ms());
  auto answer = link_.request(node_subject(owner.value(), "send"), encode(req), kRequestTimeoutMs);
  if (!answer || answer.value().size() != 1) return R::NotFound;
  const auto code = static_cast<uint8_t>(answer.value()[0]);
  return code <= static_cast<uint8_t>(R::NotFound) ? static_cast<R>(code) : R::NotFound;
}

bool Node::disconnect_remote(const std::string& client_id) {
  auto owner = owners_.owner_of(client_id);
  if (!owner || owner.value().empty() || owner.value() == opts_.node_id) return false;
  auto answer =
      link_.request(node_subject(owner.value(), "disconnect"), client_id, kRequestTimeoutMs);
  return answer && answer.value().size() == 1 && answer.value()[0] == 1;
}

std::vector<broker::ConnectedClient> Node::remote_clients() {
  std::vector<broker::ConnectedClient> out;
  if (!set_up_.load()) return out;
  for (const std::string& answer : link_.gather("c.all.list", {}, kGatherMs)) {
    if (auto clients = decode_clients(answer)) {
      for (auto& c : *clients) out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace cluster
