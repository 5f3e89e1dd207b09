// What the gRPC API (src/api) may do to the broker, and nothing more: publish,
// send to one client, list the connected clients, disconnect one. It hides
// which shard owns a client and how work is posted there (run_on_shard), so
// src/api needs neither Client, Session nor Shard. Every call is safe from any
// thread; none blocks: answers that need a shard's thread come as futures.
#pragma once

#include <cstdint>
#include <future>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/message.hpp"

namespace broker {

class ApiFacade {
 public:
  explicit ApiFacade(Broker& broker) : broker_(broker) {}

  // The largest MQTT packet the broker accepts (bounds the API's messages too).
  size_t max_packet_size() const { return broker_.config().max_packet_size; }
  // Registers `o` for every device PUBLISH; before the workers start.
  void add_observer(PublishObserver* o) { broker_.add_observer(o); }

  // A gRPC stream is open (on) or the last one closed: in a cluster, this node
  // then takes every node's device messages (or stops).
  void want_everything(bool on) {
    if (Peers* p = broker_.peers()) p->want_everything(on);
  }
  // Routes `msg` to every matching subscriber (and keeps it when retained).
  void publish(const MessagePtr& msg) { broker_.publish_from_api(msg); }
  // Sends `msg` to one client's session (see Broker::send_to_client).
  using SendResult = Broker::SendResult;
  // In a cluster, a client on another node is asked there (blocking).
  SendResult send_to_client(std::string_view client_id, const MessagePtr& msg, uint8_t qos) {
    SendResult r = broker_.send_to_client(client_id, msg, qos);
    if (r != SendResult::NotFound) return r;
    Peers* p = broker_.peers();
    return p ? p->send_to_remote_client(std::string(client_id), msg, qos) : r;
  }
  // In a cluster: the clients of the other nodes (blocking, a moment), and
  // closing a client on another node (blocking; false: none found).
  std::vector<ConnectedClient> remote_clients() {
    Peers* p = broker_.peers();
    return p ? p->remote_clients() : std::vector<ConnectedClient>{};
  }
  bool disconnect_remote(std::string_view client_id) {
    Peers* p = broker_.peers();
    return p && p->disconnect_remote(std::string(client_id));
  }

  // Every connected client of every shard (this node), in no particular order. Each shard
  // lists its own on its thread; the future breaks (std::future_error) when
  // the workers stopped without running that.
  std::future<std::vector<ConnectedClient>> list_clients();
  // Closes the connection of `client_id` with reason Administrative action
  // (its will is published), on the shard that owns it. The future says
  // whether there was a connection to close; it breaks like list_clients'.
  std::future<bool> disconnect(std::string_view client_id);

 private:
  Broker& broker_;
};

}  // namespace broker
