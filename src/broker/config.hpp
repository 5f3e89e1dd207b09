// Tunables of the routing core, filled from the command line.
#pragma once

#include <cstddef>
#include <cstdint>

namespace broker {

struct Config {
  // Largest packet accepted from a client, fixed header included.
  size_t max_packet_size = 268'435'460;
  // Devices talk only to gRPC users, never to each other.
  bool non_broker = false;
  // Bytes waiting to be written to one connection before QoS 0 messages to it
  // are dropped (and counted) instead of queued.
  size_t max_outgoing_bytes = 16u << 20;
  // QoS 1/2 messages in flight to one client (sent, not yet acknowledged).
  uint32_t max_inflight = 20;
  // QoS 1/2 messages queued for one session beyond the inflight window,
  // including while it is offline; the oldest is dropped beyond this.
  uint32_t max_queued = 1000;
  // Connections open at once; more are closed right after accept.
  uint32_t max_connections = 100'000;
  // Seconds a new connection may take to send a complete CONNECT.
  uint32_t connect_timeout_s = 10;
  // MQTT 5: highest Topic Alias a client may use towards us (announced in
  // CONNACK), and most aliases we use towards one client; 0 turns them off.
  uint16_t topic_alias_max = 10;
  // MQTT 5: the longest keep-alive accepted; a client asking for more (or for
  // none) is told this one as Server Keep Alive. 0: the client's value.
  uint16_t max_keep_alive = 0;
};

}  // namespace broker
