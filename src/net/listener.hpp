// Listening sockets.
#pragma once

#include <string>

#include "util/result.hpp"

namespace net {

// Parses "IP:PORT", "[IPv6]:PORT" or "host:PORT" and returns a bound,
// listening, non-blocking socket; on failure a clear one-line reason (e.g.
// the address is already in use).
util::Result<int> open_listener(const std::string& addr);

// Whether `addr` has the form open_listener takes (without resolving or
// binding it); otherwise the same one-line error.
util::Status check_address(const std::string& addr);

// The "ip:port" a socket is bound to (useful when the port was 0).
std::string local_address(int fd);

}  // namespace net
