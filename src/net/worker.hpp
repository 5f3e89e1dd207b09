// One event-loop thread: accepts connections from the shared listeners, reads
// and parses, writes once per loop turn, and drains its shard's inbox. A
// connection lives its whole life on one worker.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace broker {
class Shard;
class Client;
}  // namespace broker

namespace net {

struct Connection;
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
  bool continue_handshake(Connection& c);
  void parse(Connection& c, std::string_view data);
  void flush(Connection& c);
  void set_want_write(Connection& c, bool want);
  void end_of_turn();
  void destroy(broker::Client* client);
  void tick();

  int index_;
  std::vector<Listener*> listeners_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::atomic<bool> stopping_{false};
  broker::Shard* shard_ = nullptr;
  uint64_t next_conn_seq_ = 0;
  int64_t last_tick_ms_ = 0;
  std::vector<char> read_buf_;   // shared by this worker's connections
  std::vector<char> tls_stage_;  // plaintext gathered for one SSL_write
  std::vector<broker::Client*> batch_;
};

}  // namespace net
