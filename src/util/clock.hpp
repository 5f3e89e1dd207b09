// The two clocks the server uses, in milliseconds. One copy for every module
// (broker, store, api); broker/clock.hpp names them in broker:: as well.
#pragma once

#include <chrono>
#include <cstdint>

namespace util {

// Since the Unix epoch: message timestamps, Message Expiry, stored update times.
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

}  // namespace util
