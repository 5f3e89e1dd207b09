// The other nodes of a cluster, as the broker sees them: where this node's
// messages, retained changes and subscription interest go, and who is asked
// before a client id is taken. Implemented by cluster::Node (src/cluster) over
// NATS; a single server has none (Broker::peers() is null) and pays nothing.
//
// The broker calls these on worker threads, the gRPC threads and the main
// thread. None of them blocks: what needs a network round trip (a claim)
// answers later through a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/message.hpp"
#include "broker/persistence.hpp"

namespace broker {

// Who published a message that crosses nodes; non-broker mode (-n) routes
// device messages to the gRPC users only, API messages to devices too.
enum class Source : uint8_t { Device = 0, Api = 1 };

// What sending to one client came to: it is connected (Sent), it has a
// persistent session and is offline (Queued: QoS 1/2 wait for it), or no
// session has that client id (NotFound).
enum class SendResult : uint8_t { Sent = 0, Queued = 1, NotFound = 2 };

// A client past CONNACK, as the API lists it.
struct ConnectedClient {
  std::string client_id;
  std::string remote;              // peer address
  uint8_t protocol_level = 0;      // 3, 4 or 5
  int64_t connected_since_ms = 0;  // Unix time (wall clock)
  std::string node;                // cluster node it is connected to; empty: this server
};

// What a cluster-wide claim of a client id found.
struct ClaimOutcome {
  // The session the previous owner node handed over (a persistent session and
  // a connection that did not ask for a clean start); empty otherwise.
  std::optional<SessionSnapshot> session;
  // The claim's fencing number: a later claim anywhere has a larger one.
  uint64_t revision = 0;
  // The claim could not be made (NATS unreachable): the connection goes on
  // with local uniqueness only (see docs/cluster.md, "NATS down").
  bool local_only = false;
};

class Peers {
 public:
  virtual ~Peers() = default;

  // A message this node accepted from a device or the API: to every other
  // node with a matching subscription (or a gRPC stream).
  virtual void forward(const MessagePtr& msg, Source from) = 0;
  // A retained message was set or cleared (empty payload) here.
  virtual void retained_changed(const MessagePtr& msg) = 0;
  // A filter gained its first, or lost its last, subscription on this node.
  // Called under the topic index's lock, so in the order the index changed.
  virtual void interest_added(std::string_view filter) = 0;
  virtual void interest_removed(std::string_view filter) = 0;
  // Whether shared-subscription groups are served through the cluster now
  // (each message to one member whichever node it is on), so local routing
  // leaves them out; false while NATS is unreachable: then each node serves
  // its own members. Called per routed message: an atomic load.
  virtual bool routes_shared() const = 0;
  // A gRPC stream is open on this node: it needs every device message.
  virtual void want_everything(bool on) = 0;
  // CONNECT of `client_id` (after authentication): claims it cluster-wide,
  // asks the node that held it to close that connection and hand the session
  // over. `done` runs later on another thread.
  virtual void claim(const std::string& client_id, bool clean_start,
                     std::function<void(ClaimOutcome)> done) = 0;
  // Whether a claim of `client_id` newer than `revision` was seen on another
  // node (checked again when the connection attaches). Safe from any thread.
  virtual bool superseded(const std::string& client_id, uint64_t revision) = 0;

  // The gRPC API, for clients connected to other nodes. Blocking (a round
  // trip to the node that holds the client): API threads only.
  virtual SendResult send_to_remote_client(const std::string& client_id, const MessagePtr& msg,
                                           uint8_t qos) = 0;
  // Closes the client's connection on whichever node holds it; false: none.
  virtual bool disconnect_remote(const std::string& client_id) = 0;
  // The connected clients of the other nodes that answer within a moment.
  virtual std::vector<ConnectedClient> remote_clients() = 0;
};

}  // namespace broker
