// A shard's inbox: work posted by other threads, drained in batches. Producers
// append whole batches under a short lock and wake the owner only when the
// inbox goes from empty to non-empty: one wake-up per batch, not per message.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <variant>
#include <vector>

#include "broker/delivery.hpp"
#include "broker/message.hpp"

namespace broker {

class Session;

// What one shard asks of another (or gRPC and the blocking pool of a shard):
// one type per request, so each carries exactly its fields.
namespace inbox {
// Hand `delivery` to `session` (routing found a subscriber owned elsewhere).
struct Deliver {
  std::shared_ptr<Session> session;
  Delivery delivery;
};
// Step 1 of a session takeover, on the session's current owner: a new
// connection `conn_id` on shard `from` claims it (see Shard::handle_takeover).
struct Takeover {
  std::shared_ptr<Session> session;
  uint64_t conn_id = 0;
  int from = 0;
  uint32_t expiry_s = 0;     // the new connection's Session Expiry Interval
  bool clean_start = false;  // the new connection asked for a clean start
};
// Step 2, on the new connection's shard: `session` now belongs here.
struct Attach {
  std::shared_ptr<Session> session;
  uint64_t conn_id = 0;
  bool session_present = false;
};
// Route `msg` to this node's subscribers from this shard (an API message, or
// one from another node of the cluster).
struct Route {
  MessagePtr msg;
};
// Run `fn` on the shard's thread (API calls, authentication results).
struct Run {
  std::function<void()> fn;
};
}  // namespace inbox

using InboxItem =
    std::variant<inbox::Deliver, inbox::Takeover, inbox::Attach, inbox::Route, inbox::Run>;

class Inbox {
 public:
  explicit Inbox(std::function<void()> wake) : wake_(std::move(wake)) {}

  void push(InboxItem item) {
    bool was_empty;
    {
      std::lock_guard lock(mu_);
      was_empty = items_.empty();
      items_.push_back(std::move(item));
    }
    if (was_empty) wake_();
  }

  // Moves `batch` in; `batch` is left empty but keeps its capacity.
  void push_batch(std::vector<InboxItem>& batch) {
    if (batch.empty()) return;
    bool was_empty;
    {
      std::lock_guard lock(mu_);
      was_empty = items_.empty();
      if (was_empty) {
        items_.swap(batch);
      } else {
        for (auto& it : batch) items_.push_back(std::move(it));
      }
    }
    batch.clear();
    if (was_empty) wake_();
  }

  // Swaps the pending items into `out` (which should be empty).
  void take(std::vector<InboxItem>& out) {
    std::lock_guard lock(mu_);
    items_.swap(out);
  }

 private:
  std::function<void()> wake_;
  std::mutex mu_;
  std::vector<InboxItem> items_;
};

}  // namespace broker
