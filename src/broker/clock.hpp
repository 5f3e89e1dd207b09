// The two clocks the server uses, in milliseconds.
#pragma once

#include <chrono>
#include <cstdint>

namespace broker {

// Since the Unix epoch: message timestamps and Message Expiry.
inline int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A steady clock: keep-alive, timeouts, session expiry (Shard::now_ms()).
inline int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace broker
