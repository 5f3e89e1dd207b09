// A listening socket together with what every connection accepted from it
// shares: its TLS context (replaced on reload) and its connection count.
// All workers wait on every listener (EPOLLEXCLUSIVE); a connection keeps a
// pointer to the listener it came from.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "net/listener_config.hpp"
#include "net/tls.hpp"

namespace net {

class Listener {
 public:
  // Loads TLS (for a TLS listener) and binds; on failure a one-line error
  // that names the listener's origin when it has one.
  static util::Result<std::unique_ptr<Listener>> open(const ListenerConfig& config);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const { return fd_; }
  bool tls() const {
    return config_.protocol == ListenerConfig::Protocol::Tls ||
           config_.protocol == ListenerConfig::Protocol::Wss;
  }
  bool websocket() const {
    return config_.protocol == ListenerConfig::Protocol::Ws ||
           config_.protocol == ListenerConfig::Protocol::Wss;
  }
  const ListenerConfig& config() const { return config_; }
  const std::string& bound_address() const { return bound_; }
  // "127.0.0.1:8883 (TLS)", "127.0.0.1:8080 (WebSocket /mqtt)": for log lines.
  std::string describe() const;

  // At accept time, on any worker: the current context. The caller keeps the
  // shared_ptr while it creates the SSL object (which then holds its own
  // reference to the SSL_CTX), so a reload never frees a context in use.
  std::shared_ptr<const TlsContext> tls_context() const { return tls_.load(); }
  // Loads the certificate, key (and CA file) again into a new context and
  // swaps it in for new connections; on failure keeps the current one and
  // says why.
  util::Status reload_tls();

  // Counts a new connection; false (and nothing counted) when this listener's
  // max_connections is reached.
  bool admit() {
    size_t before = open_.fetch_add(1, std::memory_order_relaxed);
    if (config_.max_connections == 0 || before < config_.max_connections) return true;
    open_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  void release() { open_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  explicit Listener(const ListenerConfig& config) : config_(config) {}
  util::Result<std::shared_ptr<const TlsContext>> make_tls() const;
  std::string where() const;  // "FILE:LINE: listener ADDR: " or ""

  ListenerConfig config_;
  int fd_ = -1;
  std::string bound_;
  std::atomic<std::shared_ptr<const TlsContext>> tls_;
  std::atomic<size_t> open_{0};
};

}  // namespace net
