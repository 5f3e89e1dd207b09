// This node's interest in NATS subjects: a reference count per subject over
// the filters of the sessions it holds (online and offline persistent) and its
// gRPC streams. The first reference subscribes, the last unsubscribes (design
// note B.4), so NATS sends a node only what some local subscriber can match.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cluster/nats_link.hpp"

namespace cluster {

class Interest {
 public:
  // The handler of a shared-subscription group ("$share/g/f"), made on first use.
  using GroupHandler = std::function<const Handler*(std::string_view share_filter)>;
  // Messages of every plain subscription go to `handler`. A shared
  // subscription is a NATS queue subscription on `shared` (a second
  // connection, with echo: its group may be picked for this node's own
  // messages), one queue per group, so NATS gives each message to one node.
  Interest(Link& link, Link& shared, const Handler* handler, GroupHandler group_handler)
      : link_(link), shared_(shared), handler_(handler), group_handler_(std::move(group_handler)) {}

  // A filter gained its first / lost its last local subscriber.
  void add_filter(std::string_view filter);
  void remove_filter(std::string_view filter);
  // Every device message of the cluster (a gRPC stream is open here).
  void add_everything();
  void remove_everything();

  size_t subjects() const;

 private:
  // `queue` empty: a plain subscription on the main link.
  void add_subject(const std::string& subject, const std::string& queue = {},
                   const Handler* handler = nullptr);
  void remove_subject(const std::string& subject, const std::string& queue = {});

  struct Entry {
    int count = 0;
    Link::Subscription sub = nullptr;
  };
  Link& link_;
  Link& shared_;
  const Handler* handler_;
  GroupHandler group_handler_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> by_subject_;  // subject, or queue + ' ' + subject
};

}  // namespace cluster
