// How bytes move on one kind of connection (plain TCP, TLS): the network
// layer's own interface, one implementation per file (transport_plain.cpp,
// transport_tls.cpp). The worker owns one instance of each and a Connection
// points at its kind, so a new transport is a new file and costs a virtual
// call per read or write, no allocation. WebSocket framing sits above either
// (transport_websocket.cpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string_view>

namespace net {

struct Connection;
class Listener;

class StreamIo {
 public:
  virtual ~StreamIo() = default;

  // A connection was accepted on `listener` (c.fd is set): per-connection setup.
  virtual void start(Connection& c, Listener& listener) = 0;
  // One handshake step while c.handshaking: true once done (c.handshaking is
  // then false), false to wait for the socket (`want_write` set when it must
  // become writable) or after a failure (the client is then closing).
  virtual bool handshake(Connection& c, bool& want_write) = 0;
  // Reads into `buf`: the bytes read, 0 when it would block (`want_write` set
  // when the socket must become writable first), or -1 when the peer closed or
  // the read failed (c.peer_gone set, the client closing with the reason).
  virtual ssize_t read(Connection& c, char* buf, size_t n, bool& want_write) = 0;
  // Writes as much of `views` as the socket takes: the bytes written, 0 when it
  // would block (`want_write` set), or -1 after an error (as for read).
  virtual ssize_t write(Connection& c, const std::string_view* views, size_t n,
                        bool& want_write) = 0;
  // Whether input may be buffered above the socket (TLS records), so that a
  // short read does not mean the socket is empty and reading goes on until it
  // would block.
  virtual bool buffers_input() const = 0;
  // Before the socket is shut down or closed: ends the session on the wire
  // (TLS close_notify) and frees its state. The socket itself stays open.
  virtual void goodbye(Connection& c) = 0;
};

std::unique_ptr<StreamIo> make_plain_io();
std::unique_ptr<StreamIo> make_tls_io();

}  // namespace net
