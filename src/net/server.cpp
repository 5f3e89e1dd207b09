#include "net/server.hpp"

#include "broker/shard.hpp"

namespace net {

ListenerConfig flags_listener(const ServerOptions& opts) {
  ListenerConfig l;
  l.protocol = opts.tls ? ListenerConfig::Protocol::Tls : ListenerConfig::Protocol::Tcp;
  l.address = opts.addr;
  l.cert_file = opts.cert_file;
  l.key_file = opts.key_file;
  l.ca_file = opts.ca_file;
  l.require_certificate = opts.require_certificate;
  return l;
}

Server::~Server() {
  stop();
  workers_.clear();  // connections go before the broker they point into
  broker_.reset();
}

util::Status Server::open(const ServerOptions& opts) {
  std::vector<ListenerConfig> configs = opts.listeners;
  if (configs.empty()) configs.push_back(flags_listener(opts));
  for (const std::string* addr : {&opts.ws_addr, &opts.wss_addr}) {
    if (addr->empty()) continue;
    ListenerConfig ws = flags_listener(opts);
    ws.protocol =
        addr == &opts.ws_addr ? ListenerConfig::Protocol::Ws : ListenerConfig::Protocol::Wss;
    ws.address = *addr;
    ws.ws_path = opts.ws_path;
    if (ws.protocol == ListenerConfig::Protocol::Ws) {
      ws.ca_file.clear();
      ws.require_certificate = false;
    }
    configs.push_back(std::move(ws));
  }
  for (const ListenerConfig& config : configs) {
    auto l = Listener::open(config);
    if (!l) return std::move(l).error();
    listeners_.push_back(std::move(l).value());
  }
  std::vector<Listener*> listeners;
  for (auto& l : listeners_) listeners.push_back(l.get());

  int n = opts.threads > 0 ? opts.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  std::vector<std::function<void()>> wakers;
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, listeners));
    Worker* w = workers_.back().get();
    wakers.push_back([w] { w->wake(); });
  }
  broker_ = std::make_unique<broker::Broker>(opts.broker, std::move(wakers));
  for (int i = 0; i < n; ++i) workers_[static_cast<size_t>(i)]->set_shard(&broker_->shard(i));
  return {};
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
