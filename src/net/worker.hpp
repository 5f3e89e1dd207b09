// One event-loop thread: accepts connections from the shared listeners, reads
// and parses, writes once per loop turn, and drains its shard's inbox. A
// connection lives its whole life on one worker.
#pragma once

#include <openssl/ssl.h>

#include <sys/types.h>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/connection.hpp"
#include "net/stream_io.hpp"

namespace broker {
class Shard;
class Client;
}  // namespace broker

namespace net {

inline constexpr size_t kMaxIov = 64;
inline constexpr size_t kTlsStage = 64 * 1024;

class Listener;

class Worker {
 public:
  // Every worker waits on all `listeners` (owned by the server, outliving it).
  Worker(int index, std::vector<Listener*> listeners);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void set_shard(broker::Shard* shard) { shard_ = shard; }
  // Thread-safe: makes the loop drain its inbox (or notice stop()).
  void wake();
  // Runs the loop until stop().
  void run();
  // Thread-safe.
  void stop();
  // After run() returned, on the stopping thread: delivers what other shards
  // posted here and writes what is queued. Returns whether anything was done.
  bool settle_for_shutdown();
  // Closes every connection (after run() returned), without wills.
  void close_all();

 private:
  void accept_ready(Listener& listener);
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  // One handshake step through the connection's StreamIo: true once done.
  bool continue_handshake(Connection& c);
  // Parses what waits in c.partial (an incomplete packet plus newer bytes).
  void parse_partial(Connection& c);
  void flush(Connection& c);
  // Writes as much of `views` as the connection's StreamIo takes (TLS: one
  // record's worth): the bytes written, 0 when it would block (EPOLLOUT is
  // then armed), or -1 after an error (the client is then closing).
  ssize_t write_views(Connection& c, const std::string_view* views, size_t n);
  bool write_pending(const Connection& c) const;
  // WebSocket (transport_websocket.cpp), framing over either StreamIo: the handshake and frames of
  // one read, leaving the MQTT bytes at the front of `buf`; returns their count.
  size_t websocket_input(Connection& c, char* buf, size_t n);
  // Writes the out-queue as binary frames, with control frames between them.
  void flush_websocket(Connection& c);
  // Before a WebSocket connection closes: a close frame, when one can go.
  void websocket_goodbye(Connection& c);
  void set_want_write(Connection& c, bool want);
  void end_of_turn();
  // Frees the client; its socket closes at once, or (`linger`, when the server
  // ends the connection) after the client read what we wrote (see drain).
  void destroy(Connection* c, bool linger = true);
  void finish_close(Connection& c);
  void drain(Connection& c);
  void sweep_draining(bool all);
  void tick();

  int index_;
  std::vector<Listener*> listeners_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::atomic<bool> stopping_{false};
  broker::Shard* shard_ = nullptr;
  uint64_t next_conn_seq_ = 0;
  int64_t last_tick_ms_ = 0;
  std::vector<char> read_buf_;  // shared by this worker's connections
  // How bytes move, one of each kind shared by this worker's connections.
  std::unique_ptr<StreamIo> plain_io_ = make_plain_io();
  std::unique_ptr<StreamIo> tls_io_ = make_tls_io();
  std::vector<broker::Client*> batch_;
  TurnLists turn_;                    // what the clients asked for this turn
  std::vector<Connection*> swapped_;  // one of turn_'s lists while it is handled
  // Connections the server closed, half-closed and read until the client
  // closes too or the time (monotonic ms) passes.
  std::vector<std::pair<Connection*, int64_t>> draining_;
};

}  // namespace net
