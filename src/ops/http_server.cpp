// cpp-httplib (Debian's libcpp-httplib-dev) does the HTTP: request parsing,
// limits and timeouts are its, well tested; we only route two paths.
#include "ops/http_server.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

#include "util/host_port.hpp"

namespace ops {

util::Result<IpPort> parse_ip_port(const std::string& addr) {
  const bool v6 = !addr.empty() && addr[0] == '[';
  const std::optional<util::HostPortText> parts = util::split_at_port(addr);
  // Without brackets only one ':' (an IPv6 address needs them here).
  if (!parts || (!v6 && parts->host.find(':') != std::string_view::npos)) {
    return util::Error{"'" + addr + "' is not IP:PORT ([IPv6]:PORT for IPv6)"};
  }
  const std::string host(parts->host);
  const std::string_view port_text = parts->port;
  in6_addr buf{};
  if (inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), &buf) != 1) {
    return util::Error{"'" + addr + "': '" + host + "' is not a numeric IP address"};
  }
  int p = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || p < 1 || p > 65535) {
    return util::Error{"'" + addr + "': port '" + std::string(port_text) +
                       "' is not a number from 1 to 65535"};
  }
  return IpPort{host, p};
}

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
};

util::Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& addr,
                                                            HttpHandlers handlers) {
  const util::Result<IpPort> where = parse_ip_port(addr);
  if (!where) return util::Error{"--http-addr " + where.error().message};
  const std::string& ip = where->ip;
  const int port = where->port;
  std::unique_ptr<HttpServer> self(new HttpServer);
  self->impl_ = std::make_unique<Impl>();
  self->address_ = addr;
  httplib::Server& svr = self->impl_->server;
  // Two threads answer requests: a scraper that is slow to send its request
  // (cut off after the read timeout) cannot hold /healthz up on its own.
  svr.new_task_queue = [] { return new httplib::ThreadPool(2); };
  svr.set_read_timeout(5, 0);
  svr.set_write_timeout(5, 0);
  svr.set_keep_alive_max_count(10);
  svr.set_keep_alive_timeout(2);
  svr.set_payload_max_length(64 * 1024);
  // httplib sets SO_REUSEPORT by default, which would let two servers bind the
  // same port silently; SO_REUSEADDR only, so "in use" is a start-up error.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  svr.Get("/metrics", [h = handlers.metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(h(), "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/healthz",
          [h = handlers.health_problem](const httplib::Request&, httplib::Response& res) {
            const std::string problem = h();
            if (problem.empty()) {
              res.set_content("ok\n", "text/plain; charset=utf-8");
            } else {
              res.status = 503;
              res.set_content(problem + "\n", "text/plain; charset=utf-8");
            }
          });
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* what = res.status == 400   ? "bad request"
                       : res.status == 404 ? "not found: try /metrics or /healthz"
                                           : "error";
    res.set_content(std::to_string(res.status) + " " + what + "\n", "text/plain; charset=utf-8");
  });
  errno = 0;
  if (!svr.bind_to_port(ip, port)) {
    const int err = errno;
    return util::Error{"cannot listen on --http-addr " + addr + ": " +
                       (err != 0 ? std::strerror(err) : "bind failed")};
  }
  self->impl_->thread = std::thread([&svr] { svr.listen_after_bind(); });
  // stop() only works once the accept loop runs: wait for it, so that an early
  // shutdown never leaves the destructor joining a thread that will not end.
  for (int i = 0; i < 2000 && !svr.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return self;
}

HttpServer::~HttpServer() {
  if (!impl_) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace ops
