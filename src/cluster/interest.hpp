// This node's interest in NATS subjects: a reference count per subject over
// the filters of the sessions it holds (online and offline persistent) and its
// gRPC streams. The first reference subscribes, the last unsubscribes (design
// note B.4), so NATS sends a node only what some local subscriber can match.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cluster/nats_link.hpp"

namespace cluster {

class Interest {
 public:
  // Messages of every subscription go to `handler`.
  Interest(Link& link, const Handler* handler) : link_(link), handler_(handler) {}

  // A filter gained its first / lost its last local subscriber. A shared
  // subscription ("$share/g/f") counts as its filter f (see docs/cluster.md).
  void add_filter(std::string_view filter);
  void remove_filter(std::string_view filter);
  // Every device message of the cluster (a gRPC stream is open here).
  void add_everything();
  void remove_everything();

  size_t subjects() const;

 private:
  void add_subject(const std::string& subject);
  void remove_subject(const std::string& subject);

  struct Entry {
    int count = 0;
    Link::Subscription sub = nullptr;
  };
  Link& link_;
  const Handler* handler_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> by_subject_;
};

}  // namespace cluster
