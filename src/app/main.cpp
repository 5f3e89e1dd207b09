// mqtt-server: command line, logging, signals; wires the parts together.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/grpc_server.hpp"
#include "api/util.hpp"
#include "app/options.hpp"
#include "app/store_factory.hpp"
#include "app/systemd_notify.hpp"
#include "auth/passwd.hpp"
#include "broker/sys_topics.hpp"
#include "cluster/node.hpp"
#include "net/server.hpp"
#include "ops/http_server.hpp"
#include "ops/json_log.hpp"
#include "ops/metrics.hpp"

namespace {

std::string counted(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// SIGHUP: reads the password and ACL files again. Only when both load does the
// new policy replace the current one, and then only for new connections
// (connected clients keep what they were given at CONNECT). On any problem the
// current policy stays, whatever it is: a bad edit never opens the broker up.
void reload_auth(const auth::AuthOptions& options, broker::Broker& broker) {
  if (options.password_file.empty() && options.acl_file.empty()) {
    spdlog::info("received SIGHUP: no --password-file or --acl-file to reload");
    return;
  }
  auto loaded = auth::Policy::load(options);
  if (!loaded) {
    // One problem per line: "<file>:<line>: <reason>" or "<file>: <system error>".
    std::istringstream problems(loaded.error().message);
    for (std::string line; std::getline(problems, line);) {
      spdlog::error("reload after SIGHUP: {}", line);
    }
    spdlog::error(
        "reload after SIGHUP failed: still using the password file and ACL file loaded before");
    return;
  }
  std::shared_ptr<const auth::Policy> next = std::move(loaded).value();
  broker.set_auth_policy(next);
  std::string what;
  if (next->has_password_file()) {
    what = "password file (" + counted(next->user_count(), "user") + ")";
  }
  if (next->has_acl()) {
    if (!what.empty()) what += " and ";
    what += "ACL file (" + counted(next->acl_rule_count(), "rule") + ")";
  }
  spdlog::info("received SIGHUP: reloaded {}; new connections use it", what);
}

// SIGHUP: loads each TLS listener's certificate, key (and CA file) again, so a
// renewed certificate needs no restart. Connections already open keep the
// context they were accepted with; a listener whose files do not load keeps
// its current context.
void reload_tls(const net::Server& server) {
  for (const auto& l : server.listeners()) {
    if (!l->tls()) continue;
    if (auto reloaded = l->reload_tls()) {
      spdlog::info(
          "received SIGHUP: reloaded certificate '{}' of listener {}; new connections use it",
          l->config().cert_file, l->bound_address());
    } else {
      spdlog::error(
          "reload after SIGHUP failed for listener {}: {}; still using the certificate "
          "loaded before",
          l->bound_address(), reloaded.error().message);
    }
  }
}

// What /metrics and /healthz read; called on the HTTP server's threads.
ops::HttpHandlers ops_handlers(broker::Broker& broker, const store::Store& store,
                               const api::GrpcServer& grpc) {
  ops::HttpHandlers h;
  h.metrics = [&broker, &store, &grpc] {
    ops::MetricsInput in;
    in.broker = broker.stats_now();
    const store::StoreHealth health = store.health();
    in.store_up = health.up;
    in.store_pending = health.pending;
    in.store_write_errors = health.write_errors;
    in.grpc_streams = grpc.stream_count();
    in.grpc_stream_dropped = grpc.stream_dropped_total();
    in.process = ops::read_process_stats();
    return ops::render_metrics(in);
  };
  h.health_problem = [&store] {
    const store::StoreHealth health = store.health();
    return health.up ? std::string() : "store unavailable: " + health.problem;
  };
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "passwd") {
    return auth::passwd_main(argc - 1, argv + 1);
  }
  app::Options opts;
  if (int rc = app::parse_options(argc, argv, opts); rc >= 0) return rc;

  // JSON lines go to log shippers, never to a terminal: no colour codes.
  auto logger = opts.log_json ? spdlog::stderr_logger_mt("mqtt-server")
                              : spdlog::stderr_color_mt("mqtt-server");
  spdlog::set_default_logger(logger);
  if (opts.log_json) {
    spdlog::set_formatter(std::make_unique<ops::JsonLogFormatter>());
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_level(opts.trace   ? spdlog::level::trace
                    : opts.debug ? spdlog::level::debug
                                 : spdlog::level::info);
  if (!opts.config_note.empty()) spdlog::info("config: {}", opts.config_note);

  // Signals are taken by one thread with sigwait; block them before any
  // worker thread exists so none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // reload the password and ACL files
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Everything that can fail at start-up is checked before anything runs.
  // Each failure is one line (or one per bad file line) on stderr.
  auto fail = [](const util::Error& error) {
    std::fprintf(stderr, "mqtt-server: %s\n", error.message.c_str());
    return 1;
  };
  auto loaded = auth::Policy::load(opts.auth);
  if (!loaded) return fail(loaded.error());
  std::shared_ptr<const auth::Policy> policy = std::move(loaded).value();
  if (!opts.grpc_token_file.empty()) {
    std::ifstream f(opts.grpc_token_file);
    std::string token;
    if (!f || !std::getline(f, token) || token.empty()) {
      std::fprintf(stderr, "mqtt-server: cannot read a token from --grpc-token-file '%s'\n",
                   opts.grpc_token_file.c_str());
      return 1;
    }
    api::required_token() = token;
  }
  net::Server server;
  if (auto opened = server.open(opts.server); !opened) return fail(opened.error());
  auto made = app::make_store(opts);
  if (!made) return fail(made.error());
  std::unique_ptr<store::Store> store = std::move(made).value();
  if (auto started = store->start(); !started) return fail(started.error());
  for (const std::string& w : policy->warnings()) spdlog::warn("auth: {}", w);
  spdlog::info("auth: {}", policy->describe());
  server.broker().set_auth_policy(policy);
  // Joins the cluster before the stored sessions come back, so that their
  // subscriptions become this node's interest in NATS too.
  std::unique_ptr<cluster::Node> node;
  if (!opts.cluster.empty()) {
    cluster::Options co;
    co.servers = app::split_list(opts.cluster);
    co.node_id = opts.node_id.empty() ? app::default_node_id(opts.server.addr) : opts.node_id;
    co.shared_store = !opts.db_addr.empty();
    node = std::make_unique<cluster::Node>(server.broker(), std::move(co));
    server.broker().set_peers(node.get());
    if (auto joined = node->start(); !joined) return fail(joined.error());
  }
  store->restore_into(server.broker());
  server.broker().add_observer(store.get());
  auto grpc_started = api::GrpcServer::start(
      {opts.grpc_addr, opts.grpc_cert, opts.grpc_key, opts.grpc_stream_queue}, server.broker(),
      opts.no_store ? nullptr : store.get());
  if (!grpc_started) return fail(grpc_started.error());
  // Destroyed first: after server.stop().
  std::unique_ptr<api::GrpcServer> grpc = std::move(grpc_started).value();
  std::unique_ptr<ops::HttpServer> http;
  if (!opts.http_addr.empty()) {
    auto http_started =
        ops::HttpServer::start(opts.http_addr, ops_handlers(server.broker(), *store, *grpc));
    if (!http_started) return fail(http_started.error());
    http = std::move(http_started).value();
  }
  server.start();
  std::string listening;
  for (const auto& l : server.listeners()) {
    listening += (listening.empty() ? "" : ", ") + l->describe();
  }
  spdlog::info("mqtt-server {} listening on {} ({} worker threads{})", MQTT_SERVER_VERSION,
               listening, server.threads(),
               opts.server.broker.non_broker ? ", non-broker mode" : "");
  app::notify_ready("listening on " + listening);
  if (http) spdlog::info("metrics on http://{}/metrics, health on /healthz", http->address());
  std::unique_ptr<broker::SysTopics> sys;
  if (opts.sys_interval_s > 0) {
    sys = std::make_unique<broker::SysTopics>(
        server.broker(), std::string("mqtt-server version ") + MQTT_SERVER_VERSION,
        opts.sys_interval_s);
    sys->start();
  }

  // The main thread waits for a signal (SIGHUP reloads the password and ACL
  // files and the TLS certificates, SIGINT and SIGTERM stop) and, meanwhile,
  // logs what the broker did in each interval (when it did anything) and
  // tells a systemd watchdog it is alive.
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::seconds(opts.stats_interval_s);
  auto next_stats = Clock::now() + interval;
  const auto watchdog = app::watchdog_interval();
  auto next_watchdog = Clock::now() + watchdog;
  int sig = 0;
  broker::StatsSnapshot last{};
  for (;;) {
    if (opts.stats_interval_s == 0 && watchdog.count() == 0) {
      if (sigwait(&signals, &sig) != 0) continue;
    } else {
      auto until = opts.stats_interval_s == 0 ? Clock::time_point::max() : next_stats;
      if (watchdog.count() != 0) until = std::min(until, next_watchdog);
      const auto left = std::max(Clock::duration::zero(), until - Clock::now());
      const auto whole = std::chrono::duration_cast<std::chrono::seconds>(left);
      timespec wait{static_cast<time_t>(whole.count()),
                    static_cast<long>(std::chrono::nanoseconds(left - whole).count())};
      sig = sigtimedwait(&signals, nullptr, &wait);
    }
    if (sig == SIGHUP) {
      reload_auth(opts.auth, server.broker());
      reload_tls(server);
      continue;
    }
    if (sig > 0) break;
    if (watchdog.count() != 0 && Clock::now() >= next_watchdog) {
      app::notify_watchdog();
      next_watchdog = Clock::now() + watchdog;
    }
    if (opts.stats_interval_s == 0 || Clock::now() < next_stats) continue;  // EINTR, watchdog
    next_stats = Clock::now() + interval;
    broker::StatsSnapshot now = server.broker().stats_now();
    if (now.messages_in != last.messages_in || now.messages_out != last.messages_out ||
        now.open_connections != last.open_connections) {
      spdlog::info(
          "stats: {} connections, {} sessions, {} subscriptions, {} retained; last {} s: {} "
          "messages in, {} out, {} QoS 0 dropped (slow readers), {} queued dropped (full queues)",
          now.open_connections, now.sessions, now.subscriptions, now.retained,
          opts.stats_interval_s, now.messages_in - last.messages_in,
          now.messages_out - last.messages_out, now.dropped_qos0 - last.dropped_qos0,
          now.dropped_queued - last.dropped_queued);
    }
    last = now;
  }
  spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  app::notify_stopping();
  sys.reset();   // publishes through the workers: stop it first
  http.reset();  // reads the broker, the store and gRPC
  server.stop();
  server.broker().save_sessions_now();
  if (node) {
    node->stop();
    server.broker().set_peers(nullptr);
  }
  store->stop();  // after the workers, so the last publishes are kept
  spdlog::info("stopped");
  return 0;
}
