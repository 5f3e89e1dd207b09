// The seam between the broker and the network layer: what a Client needs from
// the connection it speaks through. The broker owns this interface and the
// network layer implements it (net::Connection; a recording one in the unit
// tests), so the broker never sees sockets, workers or their lists.
#pragma once

namespace broker {

class Transport {
 public:
  // The client's OutQueue gained bytes: write them by the end of this loop
  // turn. Called once per message, so it must be cheap and idempotent within
  // a turn (a flag and the worker's pending list: one branch, no allocation).
  virtual void wants_write() = 0;
  // The client closed itself (protocol error, DISCONNECT, takeover,
  // keep-alive, server shutdown): end the connection at the end of the turn,
  // after writing what is queued. Called at most once per client.
  virtual void close_requested() = 0;

 protected:
  // Not deleted through this interface: the network layer owns its connections.
  ~Transport() = default;
};

}  // namespace broker
