// Listening sockets.
#pragma once

#include <string>

namespace net {

// Parses "IP:PORT", "[IPv6]:PORT" or "host:PORT" and returns a bound,
// listening, non-blocking socket; on failure returns -1 and sets `error` to a
// clear one-line reason (e.g. the address is already in use).
int open_listener(const std::string& addr, std::string& error);

// Whether `addr` has the form open_listener takes (without resolving or
// binding it); false with the same one-line `error` otherwise.
bool check_address(const std::string& addr, std::string& error);

// The "ip:port" a socket is bound to (useful when the port was 0).
std::string local_address(int fd);

}  // namespace net
