// The MQTT 5 topic aliases of one connection (3.3.2.3.4): numbers that stand
// for topics, one table per direction. A client sets an inbound alias with a
// PUBLISH that carries both the topic and the alias, then sends the alias with
// an empty topic [MQTT-3.3.2-12]; towards the client we assign aliases up to
// its Topic Alias Maximum, first come first served, and send the topic only
// the first time. Allocated on first use, so that connections without aliases
// pay one pointer in broker::Client.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace broker {

class TopicAliases {
 public:
  enum class Inbound : uint8_t { Ok, Unset };
  // Client -> server: a PUBLISH with `alias` (1..our maximum, checked by the
  // caller) and `topic` as received. A non-empty topic (re)defines the alias;
  // an empty one is replaced by the topic the alias stands for (the view points
  // into this table), or Unset when the alias was never defined.
  Inbound resolve(uint16_t alias, std::string_view& topic);

  // Server -> client, per message and without a copy of the topic: the alias
  // for `topic` and whether the topic may be left out (the client knows it).
  // Alias 0: none (all `limit` aliases are taken by other topics).
  struct Outbound {
    uint16_t alias = 0;
    bool omit_topic = false;
  };
  Outbound outbound(std::string_view topic, uint16_t limit) const;
  // Records that `alias` was sent with `topic` (only once the PUBLISH is
  // actually written: a dropped packet must not define an alias).
  void defined(std::string_view topic, uint16_t alias);

 private:
  struct TopicHash {
    using is_transparent = void;
    size_t operator()(std::string_view t) const noexcept {
      return std::hash<std::string_view>{}(t);
    }
  };
  std::vector<std::string> in_;  // index alias - 1
  std::unordered_map<std::string, uint16_t, TopicHash, std::equal_to<>> out_;
};

}  // namespace broker
