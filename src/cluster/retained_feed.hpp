// Retained messages across the cluster (design note B.6): every node keeps
// the whole retained set in memory, so a wildcard SUBSCRIBE is answered
// locally, and learns the other nodes' changes from a JetStream stream
// (MQTT_RETAINED, subjects "r.<topic subject>", one message per subject: the
// newest). A node that starts reads the stream's current set first, then
// follows it; a cleared topic is an empty payload, kept like any other.
//
// Every node applies every change in the stream's order, its own included,
// so two nodes that set one topic at once end with the same message.
#pragma once

#include <string>

#include "broker/broker.hpp"
#include "cluster/nats_link.hpp"

namespace cluster {

class RetainedFeed {
 public:
  RetainedFeed(Link& link, broker::Broker& broker, int replicas)
      : link_(link), broker_(broker), replicas_(replicas) {}
  ~RetainedFeed();
  RetainedFeed(const RetainedFeed&) = delete;
  RetainedFeed& operator=(const RetainedFeed&) = delete;

  // Blocking: creates the stream if needed and subscribes from its current set.
  util::Status open();
  void close();
  bool ready() const { return sub_ != nullptr; }
  // A retained change made here (`envelope`: the message, encoded).
  void publish(std::string_view topic, std::string_view envelope);

 private:
  static void on_message(struct __natsConnection*, struct __natsSubscription*,
                         struct __natsMsg* msg, void* closure);

  Link& link_;
  broker::Broker& broker_;
  const int replicas_;
  struct __natsSubscription* sub_ = nullptr;
};

}  // namespace cluster
