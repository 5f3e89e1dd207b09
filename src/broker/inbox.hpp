// A shard's inbox: work posted by other threads, drained in batches. Producers
// append whole batches under a short lock and wake the owner only when the
// inbox goes from empty to non-empty: one wake-up per batch, not per message.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "broker/message.hpp"

namespace broker {

class Session;

struct InboxItem {
  enum class Kind : uint8_t {
    Deliver,   // send `msg` at `qos` to `session`
    Takeover,  // a new connection (`conn_id` on shard `from`) claims `session`
    Attach,    // `session` now belongs here: attach it to connection `conn_id`
    Run,       // run `fn` on the owning thread (API calls)
  };
  Kind kind = Kind::Deliver;
  uint8_t qos = 0;
  bool retain = false;
  uint32_t sub_id = 0;    // Deliver: the Subscription Identifier matched (v5)
  uint32_t expiry_s = 0;  // Takeover: the new connection's Session Expiry Interval
  bool flag = false;      // Takeover: the new connection asked for a clean start
                          // Attach: session present
  int from = 0;
  uint64_t conn_id = 0;
  std::shared_ptr<Session> session;
  MessagePtr msg;
  std::function<void()> fn;
};

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
