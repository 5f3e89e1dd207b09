// This server as one node of a cluster (issue #15, docs/cluster.md): the
// broker's Peers over NATS. Messages go out on their topic's subject to every
// node interested (core NATS, interest routing), come in through one
// de-duplicated handler and are routed here like local ones; client ids are
// claimed in a JetStream bucket, sessions handed over on request; retained
// messages follow a JetStream stream.
//
// Blocking NATS calls (claims, requests) run on the node's own job thread or
// on the caller's when that is a gRPC thread, never on a worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/api_facade.hpp"
#include "broker/blocking_pool.hpp"
#include "broker/broker.hpp"
#include "broker/peers.hpp"
#include "cluster/dedup.hpp"
#include "cluster/interest.hpp"
#include "cluster/nats_link.hpp"
#include "cluster/options.hpp"
#include "cluster/ownership.hpp"
#include "cluster/retained_feed.hpp"

namespace cluster {

class Node final : public broker::Peers {
 public:
  Node(broker::Broker& broker, Options opts);
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Starts connecting (in the background when NATS is not reachable yet).
  util::Status start();
  // Leaves the cluster: after the workers stopped.
  void stop();
  const std::string& id() const { return opts_.node_id; }
  bool linked() const { return link_.connected(); }

  // broker::Peers
  void forward(const broker::MessagePtr& msg, broker::Source from) override;
  void retained_changed(const broker::MessagePtr& msg) override;
  void interest_added(std::string_view filter) override { interest_.add_filter(filter); }
  void interest_removed(std::string_view filter) override { interest_.remove_filter(filter); }
  void want_everything(bool on) override;
  bool routes_shared() const override { return shared_link_.connected(); }
  void claim(const std::string& client_id, bool clean_start,
             std::function<void(broker::ClaimOutcome)> done) override;
  bool superseded(const std::string& client_id, uint64_t revision) override {
    return owners_.superseded(client_id, revision);
  }

  // NotFound also when the node that holds the client cannot be asked.
  broker::SendResult send_to_remote_client(const std::string& client_id,
                                           const broker::MessagePtr& msg, uint8_t qos) override;
  bool disconnect_remote(const std::string& client_id) override;
  std::vector<broker::ConnectedClient> remote_clients() override;

 private:
  void on_link_up();
  void set_up();  // on the job thread: bucket, feed, control subjects
  void on_envelope(const Received& r);
  void on_group_message(const std::string& share_filter, const Received& r);
  const Handler* group_handler(std::string_view share_filter);
  void on_takeover(const Received& r);
  void on_send(const Received& r);
  void on_disconnect(const Received& r);
  void on_list(const Received& r);
  void reply(std::string_view to, std::string_view data);
  std::string_view origin_of_this_thread();
  uint64_t next_seq();

  broker::Broker& broker_;
  broker::ApiFacade facade_;
  Options opts_;
  Link link_;
  Link shared_link_;  // queue subscriptions of shared groups (echo on)
  Handler envelope_handler_, takeover_handler_, send_handler_, disconnect_handler_, list_handler_;
  std::mutex groups_mu_;
  // One handler per group ever seen; kept until stop (libnats may still be
  // delivering to one whose subscription just ended).
  std::unordered_map<std::string, std::unique_ptr<Handler>> group_handlers_;
  Interest interest_;
  Ownership owners_;
  RetainedFeed retained_;
  Dedup dedup_;  // the delivery thread's only
  broker::BlockingPool jobs_{1};
  std::atomic<bool> set_up_{false}, setting_up_{false};
  std::vector<Link::Subscription> control_subs_;
  // Per origin (each worker, the API threads): its name and sequence. A
  // worker's counter has one writer; the API's is atomic.
  std::vector<std::string> shard_origins_;
  struct alignas(64) Seq {
    uint64_t next = 0;
  };
  std::vector<Seq> shard_seqs_;
  std::string api_origin_;
  std::atomic<uint64_t> api_seq_{0};
  std::atomic<uint32_t> epoch_;
  std::atomic<uint64_t> refused_subjects_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace cluster
