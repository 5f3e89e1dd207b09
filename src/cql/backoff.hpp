// Reconnect back-off for a dropped Cassandra connection: doubles from `initial`
// up to `max`, with +-25% jitter so that many clients do not retry in step.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace cql {

class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds initial = std::chrono::milliseconds(100),
                   std::chrono::milliseconds max = std::chrono::milliseconds(10000),
                   uint64_t seed = 0x9E3779B97F4A7C15ull)
      : initial_(initial), max_(max), current_(initial), state_(seed | 1) {}

  // The delay before the next try; each call doubles the base delay.
  std::chrono::milliseconds next() {
    const auto base = current_;
    current_ = std::min(max_, current_ * 2);
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    const int64_t span = base.count() / 2;  // jitter in [-25%, +25%)
    const int64_t jitter =
        span > 0 ? static_cast<int64_t>(state_ % static_cast<uint64_t>(span)) - span / 2 : 0;
    return std::chrono::milliseconds(base.count() + jitter);
  }
  // After a successful connect.
  void reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
  uint64_t state_;
};

}  // namespace cql
