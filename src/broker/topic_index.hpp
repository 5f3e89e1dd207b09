// The subscription index: a trie with one hash map per topic level and
// dedicated '+' and '#' children. Publishes (reads) vastly outnumber
// subscribes (writes), so readers share a lock and never allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace broker {

class Session;

struct Subscriber {
  std::shared_ptr<Session> session;
  uint8_t qos = 0;
};

class TopicIndex {
 public:
  TopicIndex();
  ~TopicIndex();
  TopicIndex(const TopicIndex&) = delete;
  TopicIndex& operator=(const TopicIndex&) = delete;

  // Adds or replaces (same session and filter) a subscription. Returns true
  // when it replaced an existing one. `filter` must be valid.
  bool subscribe(std::string_view filter, const std::shared_ptr<Session>& s, uint8_t qos);
  // Returns true when a subscription was removed.
  bool unsubscribe(std::string_view filter, const Session* s);

  // Appends every subscriber whose filter matches `topic` to `out`, one entry per
  // session with the highest granted QoS of its matching filters. `out` is
  // reused by the caller, so steady-state matching does not allocate.
  void match(std::string_view topic, std::vector<Subscriber>& out) const;

  size_t subscription_count() const;

 private:
  struct Node;
  static void prune(Node& n, std::string_view filter);
  std::vector<Subscriber>* list_for(std::string_view filter, bool create);

  mutable std::shared_mutex mu_;
  std::unique_ptr<Node> root_;
  size_t count_ = 0;
};

}  // namespace broker
