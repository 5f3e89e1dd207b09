#include "net/listeners.hpp"

#include <unistd.h>

#include "net/listener.hpp"

namespace net {

util::Result<std::unique_ptr<Listener>> Listener::open(const ListenerConfig& config) {
  std::unique_ptr<Listener> l(new Listener(config));
  if (l->tls()) {
    auto ctx = l->make_tls();
    if (!ctx) return util::Error{l->where() + ctx.error().message};
    l->tls_.store(std::move(ctx).value());
  }
  auto fd = open_listener(config.address);
  if (!fd) return util::Error{l->where() + fd.error().message};
  l->fd_ = *fd;
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

util::Result<std::shared_ptr<const TlsContext>> Listener::make_tls() const {
  auto ctx = std::make_shared<TlsContext>();
  if (auto loaded = ctx->load(config_.cert_file, config_.key_file); !loaded) {
    return std::move(loaded).error();
  }
  if (!config_.ca_file.empty()) {
    if (auto verify = ctx->verify_clients(config_.ca_file, config_.require_certificate); !verify) {
      return std::move(verify).error();
    }
  }
  return std::shared_ptr<const TlsContext>(std::move(ctx));
}

util::Status Listener::reload_tls() {
  auto ctx = make_tls();
  if (!ctx) return std::move(ctx).error();
  tls_.store(std::move(ctx).value());
  return {};
}

}  // namespace net
