// The MQTT server: listeners, workers (one event loop per thread) and the broker.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.hpp"
#include "net/listener_config.hpp"
#include "net/listeners.hpp"
#include "net/worker.hpp"
#include "util/result.hpp"

namespace net {

struct ServerOptions {
  std::string addr = "127.0.0.1:8883";
  bool tls = true;
  std::string cert_file = "server.crt";
  std::string key_file = "private.key";
  // Client certificates: verified against this CA bundle when set; required
  // (handshake fails without one) when require_certificate.
  std::string ca_file;
  bool require_certificate = false;
  // MQTT over WebSocket beside the listener(s) above: plain, and over TLS with
  // cert_file and key_file; empty: none. ws_path is their HTTP path.
  std::string ws_addr, wss_addr;
  std::string ws_path = "/mqtt";
  int threads = 0;  // 0: one per core
  broker::Config broker;
  // [[listener]] tables of the config file. Empty: one listener from the
  // fields above (addr, tls, cert_file, key_file, ca_file, require_certificate).
  std::vector<ListenerConfig> listeners;
};

// The single listener the command-line flags describe.
ListenerConfig flags_listener(const ServerOptions& opts);

class Server {
 public:
  Server() = default;
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads TLS and binds every listener; on failure a one-line error.
  util::Status open(const ServerOptions& opts);
  // Starts the worker threads.
  void start();
  // Stops the workers, closes every connection, and joins.
  void stop();

  broker::Broker& broker() { return *broker_; }
  // The first listener's address.
  const std::string& bound_address() const { return listeners_.front()->bound_address(); }
  const std::vector<std::unique_ptr<Listener>>& listeners() const { return listeners_; }
  int threads() const { return static_cast<int>(workers_.size()); }

 private:
  std::vector<std::unique_ptr<Listener>> listeners_;  // outlive the workers
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<broker::Broker> broker_;
  std::vector<std::thread> threads_;
};

}  // namespace net
