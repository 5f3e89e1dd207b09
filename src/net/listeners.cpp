#include "net/listeners.hpp"

#include <unistd.h>

#include "net/listener.hpp"

namespace net {

std::unique_ptr<Listener> Listener::open(const ListenerConfig& config, std::string& error) {
  std::unique_ptr<Listener> l(new Listener(config));
  if (l->tls()) {
    std::shared_ptr<const TlsContext> ctx = l->make_tls(error);
    if (!ctx) {
      error = l->where() + error;
      return nullptr;
    }
    l->tls_.store(std::move(ctx));
  }
  l->fd_ = open_listener(config.address, error);
  if (l->fd_ < 0) {
    error = l->where() + error;
    return nullptr;
  }
  l->bound_ = local_address(l->fd_);
  return l;
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Listener::describe() const {
  switch (config_.protocol) {
    case ListenerConfig::Protocol::Tcp:
      return bound_ + " (plain TCP)";
    case ListenerConfig::Protocol::Tls:
      return bound_ + " (TLS)";
    case ListenerConfig::Protocol::Ws:
      return bound_ + " (WebSocket " + config_.ws_path + ")";
    case ListenerConfig::Protocol::Wss:
      return bound_ + " (WebSocket over TLS " + config_.ws_path + ")";
  }
  return bound_;
}

std::string Listener::where() const {
  if (config_.origin.empty()) return "";
  return config_.origin + ": listener " + config_.address + ": ";
}

std::shared_ptr<const TlsContext> Listener::make_tls(std::string& error) const {
  auto ctx = std::make_shared<TlsContext>();
  if (!ctx->load(config_.cert_file, config_.key_file, error)) return nullptr;
  if (!config_.ca_file.empty() &&
      !ctx->verify_clients(config_.ca_file, config_.require_certificate, error)) {
    return nullptr;
  }
  return ctx;
}

bool Listener::reload_tls(std::string& error) {
  std::shared_ptr<const TlsContext> ctx = make_tls(error);
  if (!ctx) return false;
  tls_.store(std::move(ctx));
  return true;
}

}  // namespace net
