// The operations HTTP endpoint (--http-addr): GET /metrics and GET /healthz,
// on threads of its own, never a worker's. Any other path is 404, a request
// that is not HTTP is 400.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "util/result.hpp"

namespace ops {

struct IpPort {
  std::string ip;  // without brackets
  int port = 0;
};

// Splits "IP:PORT" or "[IPv6]:PORT" (numeric addresses only, port 1-65535);
// otherwise a one-line error.
util::Result<IpPort> parse_ip_port(const std::string& addr);

struct HttpHandlers {
  std::function<std::string()> metrics;  // the /metrics page
  // Empty when healthy; else the reason /healthz answers 503.
  std::function<std::string()> health_problem;
};

class HttpServer {
 public:
  // Binds `addr` and starts serving. A one-line error when the address is bad
  // or cannot be bound (in use, not local...).
  static util::Result<std::unique_ptr<HttpServer>> start(const std::string& addr,
                                                         HttpHandlers handlers);
  ~HttpServer();  // stops serving and joins its threads
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const std::string& address() const { return address_; }

 private:
  struct Impl;
  HttpServer() = default;
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace ops
