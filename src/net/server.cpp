#include "net/server.hpp"

#include <unistd.h>

#include "broker/shard.hpp"
#include "net/listener.hpp"

namespace net {

Server::~Server() {
  stop();
  workers_.clear();  // connections go before the broker they point into
  broker_.reset();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool Server::open(const ServerOptions& opts, std::string& error) {
  if (opts.tls && !tls_.load(opts.cert_file, opts.key_file, error)) return false;
  if (opts.tls && !opts.ca_file.empty() &&
      !tls_.verify_clients(opts.ca_file, opts.require_certificate, error)) {
    return false;
  }
  listen_fd_ = open_listener(opts.addr, error);
  if (listen_fd_ < 0) return false;
  bound_ = local_address(listen_fd_);

  int n = opts.threads > 0 ? opts.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  std::vector<std::function<void()>> wakers;
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, listen_fd_, opts.tls ? tls_.get() : nullptr));
    Worker* w = workers_.back().get();
    wakers.push_back([w] { w->wake(); });
  }
  broker_ = std::make_unique<broker::Broker>(opts.broker, std::move(wakers));
  for (int i = 0; i < n; ++i) workers_[static_cast<size_t>(i)]->set_shard(&broker_->shard(i));
  return true;
}

void Server::start() {
  for (auto& w : workers_) threads_.emplace_back([raw = w.get()] { raw->run(); });
}

void Server::stop() {
  for (auto& w : workers_) w->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // The loops have stopped: from here one thread runs every shard. Deliver
  // what was still in flight between shards (acknowledged QoS 1/2 messages
  // must reach their sessions), write what is queued, then close.
  for (int round = 0; round < 8; ++round) {
    bool work = false;
    for (auto& w : workers_) work |= w->settle_for_shutdown();
    if (!work) break;
  }
  for (auto& w : workers_) w->close_all();
}

}  // namespace net
