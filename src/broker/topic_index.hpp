// The subscription index: a trie with one hash map per topic level and
// dedicated '+' and '#' children. Publishes (reads) vastly outnumber
// subscribes (writes), so readers share a lock and never allocate.
//
// Shared subscriptions ("$share/{group}/{filter}") live in the node of their
// inner filter, one member list per group; a match picks one member of each
// matching group, round robin, preferring members that are online.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/sub_options.hpp"

namespace broker {

class Peers;
class Session;

// One delivery a match asks for.
struct Subscriber {
  std::shared_ptr<Session> session;
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint32_t sub_id = 0;
  // The shared-subscription group this delivery was picked for; null for a
  // plain subscription. A group's copy is its own: never merged with the
  // session's plain one or another group's (4.8.2).
  const void* group = nullptr;
};

class TopicIndex {
 public:
  TopicIndex();
  ~TopicIndex();
  TopicIndex(const TopicIndex&) = delete;
  TopicIndex& operator=(const TopicIndex&) = delete;

  // Adds or replaces (same session and filter) a subscription. Returns true
  // when it replaced an existing one. `filter` must be valid; a
  // "$share/{group}/{filter}" one joins that group.
  bool subscribe(std::string_view filter, const std::shared_ptr<Session>& s, const SubOptions& o);
  bool subscribe(std::string_view filter, const std::shared_ptr<Session>& s, uint8_t qos) {
    return subscribe(filter, s, SubOptions{.qos = qos});
  }
  // Returns true when a subscription was removed.
  bool unsubscribe(std::string_view filter, const Session* s);

  // Appends every subscriber whose filter matches `topic` to `out`: one entry
  // per session and Subscription Identifier, with the highest granted QoS of
  // its matching filters (so a 3.1.1 session gets one entry), plus one per
  // matching shared-subscription group. `out` is reused
  // by the caller, so steady-state matching does not allocate.
  void match(std::string_view topic, std::vector<Subscriber>& out) const;

  // One member of the shared-subscription group "$share/{group}/{filter}",
  // picked as match() picks (round robin, online first); false when the group
  // has no member here. The cluster delivers a group's messages this way.
  bool pick_member(std::string_view share_filter, Subscriber& out) const;

  size_t subscription_count() const;

  // The cluster: told when a filter (a "$share/..." one per group) gains its
  // first or loses its last subscriber on this node. Set before the server starts.
  void set_peers(Peers* p) { peers_ = p; }

 private:
  struct Node;
  struct SharedGroup;
  struct Lists;
  static void prune(Node& n, std::string_view filter);
  Lists lists_for(std::string_view filter, bool create);
  static Subscriber pick(const SharedGroup& g);
  static void add_matches(const std::vector<Subscriber>& list,
                          const std::vector<std::unique_ptr<SharedGroup>>& groups,
                          std::vector<Subscriber>& out);

  mutable std::shared_mutex mu_;
  std::unique_ptr<Node> root_;
  size_t count_ = 0;
  Peers* peers_ = nullptr;
};

}  // namespace broker
