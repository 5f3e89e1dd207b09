// Drops the extra copies a node gets when several of its NATS subscriptions
// match one message (e.g. "a/#" and "a/+", or the gRPC stream's "m.>"): NATS
// delivers one copy per matching subscription (design note cluster-design.md
// section B.3). Anti-replay style: per origin node, the highest sequence seen
// plus a 64-bit window of the sequences just below it. Copies of one message
// arrive right behind each other (one route per server pair, one FIFO in the
// link), so the window only has to absorb small reorderings, e.g. across a
// reconnect.
//
// Epochs are compared as numbers: the link code must never reuse a lower epoch
// for a node id, also not after a restart of the node (e.g. derive it from the
// wall clock at connect), or that node's messages are dropped as stale.
//
// Not thread-safe: one instance per cluster link thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cluster {

class Dedup {
 public:
  // True the first time (node, epoch, seq) is seen. Per origin node: the highest
  // seq seen plus a 64-bit window below it; a seq older than the window counts
  // as seen (dropped); a newer epoch resets the origin, an older epoch is
  // dropped. Lookup by node does not allocate once the node is known.
  bool first_time(std::string_view node, uint32_t epoch, uint64_t seq);
  size_t origins() const { return origins_.size(); }

 private:
  struct Origin {
    uint32_t epoch = 0;
    uint64_t highest = 0;  // highest seq seen in `epoch`
    uint64_t window = 0;   // bit i set: seq highest - i seen (bit 0 is `highest`)
  };
  // Transparent hash and equality, so find() takes a string_view as it is.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Origin, Hash, std::equal_to<>> origins_;
};

}  // namespace cluster
