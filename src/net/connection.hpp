// What the worker keeps per connection: the socket, how bytes move on it (its
// StreamIo, its TLS session), its WebSocket state, the bytes of an incomplete
// packet, and the broker's Client, to which it is the broker::Transport.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/client.hpp"
#include "broker/transport.hpp"
#include "ws/frames.hpp"

namespace net {

class Listener;

// A WebSocket connection's state (ws and wss listeners only; plain MQTT
// connections carry a null pointer, so they pay 8 bytes for it).
struct WebSocketState {
  bool upgraded = false;    // the 101 response is queued: frames from here on
  bool close_sent = false;  // our close frame (or the HTTP refusal) is queued: nothing more
  std::string request;      // the HTTP request so far, until it is complete
  ws::FrameDecoder decoder;
  // Bytes due before any more payload: the handshake response, control frames,
  // and what is left of the header of the data frame being written.
  std::string prefix;
  std::string control;      // control frames waiting for the data frame being written to end
  uint64_t frame_left = 0;  // payload bytes of that data frame not written yet
  // Set when a close frame or a framing error arrived: the connection closes
  // with this reason once the MQTT bytes before it are handled.
  std::string close_reason;
};

struct Connection;
class StreamIo;

// The worker's lists of one loop turn, filled through broker::Transport and
// drained in Worker::end_of_turn: writes first, then closings.
struct TurnLists {
  std::vector<Connection*> writes;   // output queued this turn
  std::vector<Connection*> closing;  // the client closed itself
};

// The broker's Client reaches its connection only through broker::Transport.
struct Connection final : broker::Transport {
  explicit Connection(TurnLists& lists) : turn(&lists) {}

  void wants_write() override {
    if (write_queued) return;
    write_queued = true;
    turn->writes.push_back(this);
  }
  void close_requested() override { turn->closing.push_back(this); }

  TurnLists* turn;
  bool write_queued = false;  // listed in turn->writes
  int fd = -1;
  StreamIo* io = nullptr;  // plain or TLS, the worker's (stream_io.hpp)
  SSL* ssl = nullptr;      // TLS connections only (transport_tls.cpp)
  bool handshaking = false;
  bool want_write = false;
  bool peer_gone = false;  // the client closed or the socket failed: no draining
  std::string partial;     // bytes of an incomplete packet, kept between reads
  std::unique_ptr<broker::Client> client;
  std::unique_ptr<WebSocketState> ws;
  Listener* listener = nullptr;  // where it was accepted: its connection count
};

}  // namespace net
