#include "app/options.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>

#include "app/config_file.hpp"

namespace app {

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

namespace {
// What a node id may hold: one NATS subject token, and readable in logs.
bool node_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}
}  // namespace

bool valid_node_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), node_id_char);
}

std::string default_node_id(const std::string& mqtt_addr) {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "node");
  std::string id;
  // The dots of a host name (and anything else a token cannot hold) become '-'.
  for (const char* p = host; *p; ++p) id.push_back(node_id_char(*p) ? *p : '-');
  const size_t colon = mqtt_addr.rfind(':');
  id += "-" + (colon == std::string::npos ? std::string("1883") : mqtt_addr.substr(colon + 1));
  return id.substr(0, 64);
}

int parse_options(int argc, char** argv, Options& o) {
  CLI::App cli{"MQTT broker and device gateway: devices speak MQTT, back-end users speak gRPC.",
               "mqtt-server"};
  cli.set_version_flag("-V,--version", std::string("mqtt-server ") + MQTT_SERVER_VERSION);
  auto& s = o.server;
  cli.add_option("--config", o.config_file,
                 "TOML file of settings: any long flag below as a key (e.g. max_inflight = 20), "
                 "plus [[listener]] tables; flags given here override it (see docs/config.md)")
      ->type_name("<FILE>")
      ->configurable(false);
  cli.add_option("-a,--addr", s.addr, "server's address, IP:PORT")
      ->default_val(s.addr)
      ->type_name("<IPADDR>");
  cli.add_option("-d,--db_addr", o.db_addr,
                 "Cassandra address(es) host:port[,host:port...] for the latest payloads; "
                 "without it the embedded store is used")
      ->type_name("<CASSANDRA IPADDR>");
  cli.add_flag("--no-store", o.no_store,
               "keep nothing: no latest payloads, retained messages and sessions in memory only");
  cli.add_option("--data-dir", o.data_dir, "folder of the embedded store (without -d)")
      ->default_val(o.data_dir)
      ->type_name("<DIR>");
  cli.add_option("--flush-interval-ms", o.flush_interval_ms,
                 "how often the latest payloads are written to the store, in ms")
      ->default_val(o.flush_interval_ms)
      ->check(CLI::Range(1u, 60000u));
  cli.add_option("--ws-addr", s.ws_addr,
                 "also serve MQTT over WebSocket (plain) on IP:PORT, e.g. 0.0.0.0:8080 (default: "
                 "off)")
      ->type_name("<IP:PORT>");
  cli.add_option("--wss-addr", s.wss_addr,
                 "also serve MQTT over WebSocket over TLS on IP:PORT, with --cert and --key "
                 "(default: off)")
      ->type_name("<IP:PORT>");
  cli.add_option("--ws-path", s.ws_path, "HTTP path of the WebSocket listeners")
      ->default_val(s.ws_path)
      ->type_name("<PATH>");
  cli.add_option("-c,--cert", s.cert_file, "server certificate chain, PEM")
      ->default_val(s.cert_file)
      ->type_name("<FILEPATH>");
  cli.add_option("-k,--key", s.key_file, "server private key, PEM")
      ->default_val(s.key_file)
      ->type_name("<FILEPATH>");
  bool non_broker = false, non_tls = false;
  cli.add_flag("-n,--non-broker", non_broker,
               "devices talk only to gRPC users, never to each other");
  cli.add_flag("--non-tls", non_tls, "plain TCP instead of TLS");
  cli.add_option("--stats-interval", o.stats_interval_s,
                 "seconds between stats lines in the log (only when something happened; 0: off)")
      ->default_val(o.stats_interval_s);
  cli.add_option("--http-addr", o.http_addr,
                 "serve Prometheus metrics (GET /metrics) and GET /healthz on IP:PORT (default: "
                 "off)")
      ->type_name("<IP:PORT>");
  cli.add_option("--sys-interval", o.sys_interval_s,
                 "seconds between updates of the retained $SYS/broker/... topics (0: none)")
      ->default_val(o.sys_interval_s)
      ->check(CLI::Range(0u, 86400u));
  std::string log_format = "text";
  cli.add_option("--log-format", log_format, "log lines as text, or as one JSON object each")
      ->default_val(log_format)
      ->check(CLI::IsMember({"text", "json"}));
  cli.add_flag("--debug", o.debug, "log at debug level");
  cli.add_flag("--trace", o.trace, "log at trace level");
  cli.add_option("--threads", s.threads, "worker threads (default: number of cores)")
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--grpc-addr", o.grpc_addr, "gRPC API address, HOST:PORT")
      ->default_val(o.grpc_addr);
  cli.add_option("--grpc-cert", o.grpc_cert, "gRPC server certificate chain, PEM (with --grpc-key)")
      ->type_name("<FILEPATH>");
  cli.add_option("--grpc-token-file", o.grpc_token_file,
                 "require 'authorization: Bearer <token>' on every gRPC call; the token is the "
                 "file's first line")
      ->type_name("<FILE>");
  cli.add_option("--grpc-key", o.grpc_key, "gRPC server private key, PEM (with --grpc-cert)")
      ->type_name("<FILEPATH>");
  cli.add_option("--grpc-stream-queue", o.grpc_stream_queue,
                 "messages one gRPC stream may fall behind before it drops (and counts) them")
      ->default_val(o.grpc_stream_queue)
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cli.add_option("--cluster", o.cluster,
                 "join a cluster through NATS: nats://HOST:PORT[,nats://HOST:PORT...], the local "
                 "NATS server first (see docs/cluster.md; default: a single server)")
      ->type_name("<NATS URLS>");
  cli.add_option("--node-id", o.node_id,
                 "this node's name in the cluster: letters, digits, '-' and '_' (default: host "
                 "name and MQTT port)")
      ->type_name("<NAME>");
  cli.add_option("--db-keyspace", o.db_keyspace, "Cassandra keyspace (created if missing)")
      ->default_val(o.db_keyspace);
  cli.add_option("--db-replication", o.db_replication,
                 "replication map for a new keyspace, e.g. \"{'class': 'NetworkTopologyStrategy', "
                 "'dc1': 3}\" (default SimpleStrategy, factor 1)");
  cli.add_option("--db-consistency", o.db_consistency,
                 "Cassandra consistency level: ONE, QUORUM, LOCAL_QUORUM, LOCAL_ONE, ALL ...")
      ->default_val(o.db_consistency);
  cli.add_option("--password-file", o.auth.password_file,
                 "users and salted PBKDF2 hashes (mqtt-server passwd FILE USER adds one); "
                 "clients must then log in unless --allow-anonymous true")
      ->type_name("<FILE>");
  cli.add_option("--acl-file", o.auth.acl_file, "topic access rules per user and pattern")
      ->type_name("<FILE>");
  cli.add_option("--allow-anonymous", o.auth.allow_anonymous,
                 "accept clients without a user name (default: true without a password file)");
  cli.add_flag("--cert-cn-as-username", o.auth.cert_cn_as_username,
               "use a verified TLS client certificate's Common Name as the user name");
  cli.add_option("--cafile", s.ca_file, "CA bundle to verify TLS client certificates")
      ->type_name("<FILE>");
  cli.add_flag("--require-certificate", s.require_certificate,
               "refuse TLS clients without a valid certificate (needs --cafile)");
  cli.add_option("--max-connections", s.broker.max_connections,
                 "connections open at once; more are closed right after accept")
      ->default_val(s.broker.max_connections);
  cli.add_option("--max-packet-size", s.broker.max_packet_size,
                 "largest MQTT packet accepted from a client, in bytes")
      ->default_val(s.broker.max_packet_size)
      ->check(CLI::Range(size_t{16}, size_t{268'435'460}));
  cli.add_option("--max-inflight", s.broker.max_inflight,
                 "QoS 1/2 messages in flight to one client (also the MQTT 5 Receive Maximum "
                 "announced to clients)")
      ->default_val(s.broker.max_inflight)
      ->check(CLI::Range(1u, 65535u));
  cli.add_option("--max-queued", s.broker.max_queued,
                 "QoS 1/2 messages queued per session beyond the inflight window")
      ->default_val(s.broker.max_queued);
  cli.add_option("--connect-timeout", s.broker.connect_timeout_s,
                 "seconds a new connection has to send CONNECT")
      ->default_val(s.broker.connect_timeout_s)
      ->check(CLI::Range(1u, 3600u));
  cli.add_option("--topic-alias-max", s.broker.topic_alias_max,
                 "MQTT 5 topic aliases per connection, each direction (0: none)")
      ->default_val(s.broker.topic_alias_max);
  cli.add_option("--max-keep-alive", s.broker.max_keep_alive,
                 "longest keep-alive an MQTT 5 client gets, in seconds; a longer one (or 0) is "
                 "replaced by this as Server Keep Alive (0: accept the client's)")
      ->default_val(s.broker.max_keep_alive);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mqtt-server: %s (see --help)\n", e.what());
    return 2;
  }
  if (!o.config_file.empty()) {
    if (auto applied = apply_config_file(cli, o.config_file, s, o.config_note); !applied) {
      std::fprintf(stderr, "%s\n", applied.error().message.c_str());
      return 2;
    }
  }
  s.tls = !non_tls;
  if (s.ws_path.empty() || s.ws_path.front() != '/') {
    std::fprintf(stderr, "mqtt-server: --ws-path '%s': expected an HTTP path starting with '/'\n",
                 s.ws_path.c_str());
    return 2;
  }
  o.log_json = log_format == "json";
  if (s.require_certificate && s.ca_file.empty() && s.listeners.empty()) {
    std::fprintf(stderr, "mqtt-server: --require-certificate needs --cafile (see --help)\n");
    return 2;
  }
  s.broker.non_broker = non_broker;
  if (!o.node_id.empty() && o.cluster.empty()) {
    std::fprintf(stderr, "mqtt-server: --node-id needs --cluster (see --help)\n");
    return 2;
  }
  if (!o.cluster.empty()) {
    for (const std::string& url : split_list(o.cluster)) {
      if (url.rfind("nats://", 0) != 0 || url.size() <= 7) {
        std::fprintf(
            stderr,
            "mqtt-server: --cluster '%s': expected nats://HOST:PORT[,nats://HOST:PORT...]\n",
            o.cluster.c_str());
        return 2;
      }
    }
    if (!valid_node_id(o.node_id.empty() ? default_node_id(s.addr) : o.node_id)) {
      std::fprintf(stderr,
                   "mqtt-server: --node-id '%s': use letters, digits, '-' and '_' only (at most "
                   "64)\n",
                   o.node_id.c_str());
      return 2;
    }
  }
  return -1;
}

}  // namespace app
