// One CQL connection to one Cassandra node, for ONE thread (the store thread):
// non-blocking socket + poll(), many requests in flight on distinct stream ids.
//
//   auto conn = cql::Connection::open({.host = "127.0.0.1", .port = 9042});
//   if (!conn) { log(conn.error().to_string()); back off and retry; }
//   auto upd = (*conn)->prepare("UPDATE ks.t SET v = ? WHERE k = ?");
//   for (i...) {                               // pipelined writes, tagged by the caller
//     while ((*conn)->free_streams() == 0) (*conn)->poll(100ms, done);
//     (*conn)->submit_execute(**upd, params_for(i), /*tag=*/i);
//   }
//   while ((*conn)->in_flight() > 0 && (*conn)->is_open()) (*conn)->poll(100ms, done);
//   for (auto& c : done) if (!c.result) retry_later(c.tag, c.result.error());
//
// Every request ends in exactly one Completion: its RESULT, its server ERROR,
// Errc::Timeout after ConnectOptions::request_timeout, or Errc::Disconnected
// when the connection drops (then is_open() is false and the caller opens a new
// Connection, with Backoff between tries). Nothing here throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cql/frame.hpp"
#include "cql/response.hpp"
#include "cql/result.hpp"

namespace cql {

struct ConnectOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 9042;
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect + STARTUP handshake
  std::chrono::milliseconds request_timeout{10000};
  std::string username;  // non-empty: answer AUTHENTICATE as PasswordAuthenticator
  std::string password;
  std::string keyspace;      // non-empty: USE it after the handshake
  int max_in_flight = 1024;  // stream ids in use at once, 1..32768
};

// The end of one submitted request. `tag` is the caller's own number for it.
struct Completion {
  uint64_t tag = 0;
  Result<ResultBody> result;
};

class Connection {
 public:
  using PreparedPtr = std::shared_ptr<const Prepared>;

  // Connects, sends STARTUP (and credentials, and USE, when configured) and
  // waits for READY, all within connect_timeout.
  static Result<std::unique_ptr<Connection>> open(const ConnectOptions& options);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool is_open() const { return fd_ >= 0; }
  // Why the connection is closed (Errc::Disconnected, Errc::Io, ...).
  const Error& close_reason() const { return close_reason_; }
  // Closes the socket; every request still in flight completes as Disconnected.
  void close();

  // ---- pipelined requests: queue now, learn the outcome from poll() ----------------------
  // Errc::Busy when every stream id is taken (poll first), Errc::Disconnected
  // when closed, Errc::TooLarge when the request cannot be encoded. The frame is
  // only queued; poll() (or any blocking call) writes it.
  Status submit_query(std::string_view cql, const QueryParams& params, uint64_t tag);
  Status submit_execute(const Prepared& prepared, const QueryParams& params, uint64_t tag);
  Status submit_batch(std::span<const BatchStatement> statements, const BatchParams& params,
                      uint64_t tag);

  // Writes queued frames, then waits up to `timeout` for at least one request to
  // complete and appends every completed one to `out` (without blocking further).
  // Returns how many were appended. A zero timeout never blocks.
  size_t poll(std::chrono::milliseconds timeout, std::vector<Completion>& out);

  size_t in_flight() const { return in_flight_; }
  size_t free_streams() const { return free_.size(); }

  // ---- blocking conveniences (pipelined requests keep flowing meanwhile) -----------------
  Result<ResultBody> query(std::string_view cql, const QueryParams& params = {});
  Result<ResultBody> execute(const Prepared& prepared, const QueryParams& params);
  // PREPARE, cached by query text for this connection. An Unprepared error on
  // EXECUTE drops the entry, so calling prepare() again re-prepares.
  Result<PreparedPtr> prepare(std::string_view cql);
  // OPTIONS -> SUPPORTED (e.g. CQL_VERSION and PROTOCOL_VERSIONS of the server).
  Result<Supported> options();

 private:
  struct Slot {
    bool busy = false;
    bool orphaned = false;  // timed out: freed when (if) the late response comes
    bool internal = false;  // a blocking call waits for it
    uint64_t tag = 0;
    uint32_t generation = 0;
    std::string prepared_id;  // EXECUTE: to drop the cache entry on Unprepared
  };
  struct Deadline {
    std::chrono::steady_clock::time_point when;
    int16_t stream;
    uint32_t generation;
  };

  Connection(int fd, const ConnectOptions& options);

  Result<int16_t> acquire(uint64_t tag, bool internal);
  void release(int16_t stream);
  Status end_request(Status encoded, int16_t stream);
  Result<Response> wait_internal(int16_t stream, std::chrono::steady_clock::time_point deadline);
  Result<Response> roundtrip_internal(Opcode op, std::chrono::milliseconds timeout,
                                      std::string_view text, const QueryParams* params,
                                      const Prepared* prepared);
  Status handshake(const ConnectOptions& options);

  // One turn of I/O: write, wait for readability up to `wait`, read, dispatch.
  void pump(std::chrono::milliseconds wait);
  void flush();
  void read_available();
  void dispatch(std::span<const uint8_t> frame_bytes, const FrameHeader& header);
  void complete(int16_t stream, Result<Response> response);
  void expire_timeouts();
  void fail(Error reason);

  int fd_ = -1;
  ConnectOptions options_;
  Error close_reason_;
  std::vector<Slot> slots_;
  std::vector<int16_t> free_;
  size_t in_flight_ = 0;
  std::deque<Deadline> deadlines_;
  std::vector<uint8_t> out_;
  size_t out_sent_ = 0;
  std::vector<uint8_t> in_;
  size_t in_len_ = 0;
  std::vector<Completion> ready_;  // completed, not yet handed out by poll()
  int16_t internal_stream_ = -1;
  std::optional<Result<Response>> internal_result_;
  std::unordered_map<std::string, PreparedPtr> prepared_;
};

// Conversions from a completed request's RESULT.
Result<Rows> as_rows(Result<ResultBody> r);

}  // namespace cql
