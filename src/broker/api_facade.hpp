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

// A client past CONNACK, as the API lists it.
struct ConnectedClient {
  std::string client_id;
  std::string remote;              // peer address
  uint8_t protocol_level = 0;      // 3, 4 or 5
  int64_t connected_since_ms = 0;  // Unix time (wall clock)
};

class ApiFacade {
 public:
  explicit ApiFacade(Broker& broker) : broker_(broker) {}

  // The largest MQTT packet the broker accepts (bounds the API's messages too).
  size_t max_packet_size() const { return broker_.config().max_packet_size; }
  // Registers `o` for every device PUBLISH; before the workers start.
  void add_observer(PublishObserver* o) { broker_.add_observer(o); }

  // Routes `msg` to every matching subscriber (and keeps it when retained).
  void publish(const MessagePtr& msg) { broker_.publish_from_api(msg); }
  // Sends `msg` to one client's session (see Broker::send_to_client).
  using SendResult = Broker::SendResult;
  SendResult send_to_client(std::string_view client_id, const MessagePtr& msg, uint8_t qos) {
    return broker_.send_to_client(client_id, msg, qos);
  }

  // Every connected client of every shard, in no particular order. Each shard
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
