// "HOST:PORT" and "[IPv6]:PORT" as every listening flag takes them (-a,
// --ws-addr, --grpc-addr, --http-addr, listener tables). One parser, so that
// they all accept and refuse the same things.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace util {

struct HostPort {
  std::string host;  // without brackets; empty: every interface
  std::string port;  // decimal, 0-65535
};

// The two parts of "[host]:port" or "host:port" (split at the last ':'),
// neither checked further: views into `addr`, the host without brackets.
struct HostPortText {
  std::string_view host;
  std::string_view port;
};

inline std::optional<HostPortText> split_at_port(std::string_view addr) {
  if (!addr.empty() && addr.front() == '[') {
    const size_t end = addr.find(']');
    if (end == std::string_view::npos || end + 1 >= addr.size() || addr[end + 1] != ':') {
      return std::nullopt;
    }
    return HostPortText{addr.substr(1, end - 1), addr.substr(end + 2)};
  }
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return HostPortText{addr.substr(0, colon), addr.substr(colon + 1)};
}

inline std::optional<HostPort> split_host_port(std::string_view addr) {
  const std::optional<HostPortText> parts = split_at_port(addr);
  if (!parts) return std::nullopt;
  const std::string_view port = parts->port;
  HostPort out;
  out.host = parts->host;
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos) {
    return std::nullopt;
  }
  unsigned value = 0;
  for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value > 65535) return std::nullopt;
  out.port = port;
  return out;
}

}  // namespace util
