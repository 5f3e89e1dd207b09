// The command line: the original server's flags plus ours.
#pragma once

#include <string>
#include <vector>

#include "auth/authenticator.hpp"
#include "net/server.hpp"

namespace app {

struct Options {
  net::ServerOptions server;
  std::string config_file;          // --config: TOML, see docs/config.md
  std::string config_note;          // something about the file worth a log line at start
  std::string db_addr;              // Cassandra contact points; empty: embedded store
  std::string cluster;              // NATS URLs, comma-separated; empty: a single server
  std::string node_id;              // empty: default_node_id()
  std::string data_dir = "./data";  // the embedded store
  bool no_store = false;            // keep nothing on disk (pure broker)
  unsigned flush_interval_ms = 50;  // how often the store writes its batch
  std::string grpc_addr = "[::1]:10000";
  std::string grpc_cert, grpc_key;
  std::string
      grpc_token_file;  // non-empty: gRPC calls need this bearer token   // both: TLS for gRPC
  size_t grpc_stream_queue = 65536;  // messages a gRPC stream may lag before it drops
  auth::AuthOptions auth;
  std::string db_keyspace = "retain_kv";
  std::string db_replication;  // empty: SimpleStrategy, replication_factor 1
  std::string db_consistency = "LOCAL_QUORUM";
  unsigned stats_interval_s = 60;  // 0: no periodic stats line
  std::string http_addr;           // IP:PORT of /metrics and /healthz; empty: off
  unsigned sys_interval_s = 10;    // $SYS/broker/... every N seconds; 0: off
  bool log_json = false;           // --log-format json
  bool debug = false;
  bool trace = false;
};

// Parses argv, then the --config file if any (the command line wins). Returns
// -1 to go on, or an exit code (0 after --help/--version, non-zero after a bad
// flag or setting, with one line on stderr).
int parse_options(int argc, char** argv, Options& out);

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& list);
// A node id is one NATS subject token of letters, digits, '-' and '_'.
bool valid_node_id(const std::string& id);
// The host name (dots as '-') and the MQTT port: "box-1-8883".
std::string default_node_id(const std::string& mqtt_addr);

}  // namespace app
