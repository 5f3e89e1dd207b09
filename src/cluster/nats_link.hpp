// The cluster link: this node's one connection to NATS (libnats), which both
// publishes and subscribes, so that `no_echo` keeps our own messages from
// coming back (design note B.1). It connects in the background and keeps
// retrying, logs once when the link is lost and once when it is back, and
// never blocks a caller on the network except in the calls marked blocking.
//
// Every subscription's messages arrive on one libnats delivery thread, in the
// order the server sent them (the global delivery pool, size 1), so what they
// feed (de-duplication, per-topic order) needs no lock of its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "util/result.hpp"

struct __natsConnection;
struct __natsSubscription;
struct __natsMsg;
struct __jsCtx;

namespace cluster {

// One received message, valid during the handler call.
struct Received {
  std::string_view subject;
  std::string_view reply;  // empty: none asked
  std::string_view data;
};
using Handler = std::function<void(const Received&)>;

class Link {
 public:
  struct Callbacks {
    std::function<void()> connected;  // first connect and every reconnect
    std::function<void()> lost;
  };
  // `no_echo`: our own publishes never come back to this connection.
  // `logs`: this link's state changes are the node's log lines (the main
  // link); a second link logs them at debug level only.
  Link(std::vector<std::string> servers, std::string name, Callbacks callbacks, bool no_echo = true,
       bool logs = true);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Starts connecting; an unreachable server is retried in the background.
  util::Status start();
  // Closes the connection; no handler runs after this returns.
  void stop();

  bool connected() const { return connected_.load(std::memory_order_acquire); }
  const std::string& servers_text() const { return servers_text_; }
  // Publishes without waiting (buffered while reconnecting; libnats drops
  // beyond its reconnect buffer).
  void publish(const std::string& subject, std::string_view data);
  // A subscription, with a queue group when `queue` is not empty. `handler`
  // runs on the delivery thread and must outlive the link (one handler
  // serves many subscriptions). Kept across reconnects by libnats.
  using Subscription = __natsSubscription*;
  util::Result<Subscription> subscribe(const std::string& subject, const Handler* handler,
                                       const std::string& queue = {});
  void unsubscribe(Subscription sub);
  // Blocking: a request and its reply, or an error ("no responders", timeout).
  util::Result<std::string> request(const std::string& subject, std::string_view data,
                                    int timeout_ms);
  // Blocking: a request to every node listening on `subject`; the replies
  // that come within `wait_ms`.
  std::vector<std::string> gather(const std::string& subject, std::string_view data, int wait_ms);
  // Blocking: waits until the server has seen everything sent before.
  util::Status flush(int timeout_ms);

  __natsConnection* connection() { return nc_; }
  // The JetStream context (valid once started).
  __jsCtx* jetstream() { return js_; }

 private:
  static void on_message(__natsConnection*, __natsSubscription*, __natsMsg* msg, void* closure);
  static void on_connected(__natsConnection* nc, void* closure);
  static void on_disconnected(__natsConnection* nc, void* closure);
  static void on_reconnected(__natsConnection* nc, void* closure);

  std::vector<std::string> servers_;
  std::string servers_text_;
  std::string name_;
  Callbacks callbacks_;
  bool no_echo_;
  spdlog::level::level_enum info_, warn_;
  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace cluster
