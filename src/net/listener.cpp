#include "net/listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/host_port.hpp"

namespace net {

util::Status check_address(const std::string& addr) {
  if (util::split_host_port(addr)) return {};
  return util::Error{"invalid address '" + addr +
                     "': expected IP:PORT, e.g. 127.0.0.1:8883 or [::1]:8883"};
}

util::Result<int> open_listener(const std::string& addr) {
  if (auto checked = check_address(addr); !checked) return std::move(checked).error();
  const util::HostPort hp = *util::split_host_port(addr);
  const std::string& host = hp.host;
  const std::string& port = hp.port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return util::Error{"invalid address '" + addr + "': " + gai_strerror(rc)};
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    util::Error error{std::string("cannot create socket: ") + std::strerror(errno)};
    freeaddrinfo(res);
    return error;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
    int e = errno;
    util::Error error{"cannot listen on " + addr + ": " + std::strerror(e) +
                      (e == EADDRINUSE ? " (another process is using this port)" : "")};
    freeaddrinfo(res);
    ::close(fd);
    return error;
  }
  freeaddrinfo(res);
  if (listen(fd, 4096) != 0) {
    util::Error error{"cannot listen on " + addr + ": " + std::strerror(errno)};
    ::close(fd);
    return error;
  }
  return fd;
}

std::string local_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    port = ntohs(a->sin_port);
    return std::string(ip) + ":" + std::to_string(port);
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
  port = ntohs(a->sin6_port);
  return "[" + std::string(ip) + "]:" + std::to_string(port);
}

}  // namespace net
