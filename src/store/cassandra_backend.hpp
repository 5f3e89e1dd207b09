// The Cassandra backend (-d/--db_addr): the latest payloads, retained messages
// and persistent sessions in one keyspace (default `retain_kv`):
//
//   device_data (device_id text, topic text, payload blob, updatetime timestamp,
//                PRIMARY KEY (device_id, topic))           the original's table, as it was
//   retained    (topic text PRIMARY KEY, qos int, payload blob, updatetime timestamp)
//   sessions    (client_id text PRIMARY KEY, snapshot blob, updatetime timestamp)
//
// created IF NOT EXISTS on every (re)connect. Three kinds of connection, each
// to the first contact point that answers:
//   * the writer, used only by write() on the store thread: prepared INSERTs
//     and DELETEs pipelined on up to max_in_flight stream ids. Opened lazily,
//     so an unreachable Cassandra never fails or delays start-up; write()
//     returns false and the store retries with back-off.
//   * the reader, for read() from API threads: one connection under a mutex,
//     opened lazily with short timeouts; Unavailable while Cassandra is down.
//   * a short-lived loader for load_retained()/load_sessions() at start.
// Every write carries a client timestamp that grows strictly, so a late retry
// of an older value can never overwrite a newer one.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cql/connection.hpp"
#include "store/backend.hpp"

namespace store {

struct ContactPoint {
  std::string host;
  uint16_t port = 9042;
};

// Everything the Cassandra mode can be told. The factory fills it from the
// command line (and, for now, the environment).
struct CassandraOptions {
  std::vector<ContactPoint> hosts;  // tried in turn; at least one
  std::string keyspace = "retain_kv";
  // The replication map of CREATE KEYSPACE (used only when the keyspace is missing).
  std::string replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
  cql::Consistency consistency = cql::Consistency::LocalQuorum;  // reads and writes
  std::chrono::milliseconds connect_timeout{2000};  // TCP connect + STARTUP, per contact point
  std::chrono::milliseconds request_timeout{5000};  // writes, schema, start-up loads
  std::chrono::milliseconds read_timeout{2000};     // read() (gRPC callers wait for it)
  int max_in_flight = 1024;                         // pipelined writes per flush
  std::string username, password;                   // PasswordAuthenticator, when set
};

// "host:port[,host:port...]"; the port defaults to 9042; IPv6 as "[::1]:9042".
util::Result<std::vector<ContactPoint>> parse_contact_points(std::string_view text);
// "ONE", "local_quorum", "LOCAL-QUORUM", ... (case and '-'/'_' do not matter).
std::optional<cql::Consistency> parse_consistency(std::string_view name);
const char* consistency_name(cql::Consistency c);
// Checks the keyspace name, the replication map and the timeouts.
util::Status validate(const CassandraOptions& options);

class CassandraBackend : public Backend {
 public:
  explicit CassandraBackend(CassandraOptions options);
  ~CassandraBackend() override;

  std::string describe() const override;
  // Checks the options only; never connects (see write()).
  util::Status open() override;
  util::Status write(WriteSet& ws) override;
  ReadStatus read(std::string_view device_id, std::string_view topic, Record& out) override;
  util::Status load_retained(const std::function<void(const StoredRetained&)>& fn) override;
  util::Status load_sessions(const std::function<void(std::string_view client_id,
                                                      std::string_view snapshot)>& fn) override;
  void close() override;

  // The CQL statements, for tests and docs.
  std::vector<std::string> schema_statements() const;

 private:
  using ConnPtr = std::unique_ptr<cql::Connection>;
  struct Statements {
    cql::Connection::PreparedPtr put_latest, put_retained, del_retained, put_session, del_session;
  };

  // Tries the contact points in turn from `next` (left at the one that
  // answered); the error names every failure.
  util::Result<ConnPtr> connect_any(std::chrono::milliseconds connect_timeout,
                                    std::chrono::milliseconds request_timeout, size_t& next);
  util::Status create_schema(cql::Connection& conn);
  util::Status ensure_writer();
  util::Status prepare_writes();
  int64_t next_timestamp_us();
  // A loader connection (schema created), or why not.
  util::Result<ConnPtr> open_loader();
  util::Status scan(std::string_view cql, int32_t page_size,
                    const std::function<void(const cql::Rows&, size_t row)>& fn);

  CassandraOptions options_;
  std::string table_prefix_;  // "keyspace."

  // Store thread only.
  ConnPtr writer_;
  Statements stmts_;
  bool stmts_valid_ = false;
  size_t writer_next_host_ = 0;
  int64_t last_timestamp_us_ = 0;

  // API threads (read) and start-up loads.
  std::mutex read_mu_;
  ConnPtr reader_;
  cql::Connection::PreparedPtr select_latest_;
  size_t reader_next_host_ = 0;
  std::chrono::steady_clock::time_point reader_retry_at_{};
};

}  // namespace store
