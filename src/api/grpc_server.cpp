#include "api/grpc_server.hpp"

#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "api/broker_service.hpp"
#include "api/published_packet_service.hpp"
#include "api/stream_hub.hpp"
#include "util/host_port.hpp"

namespace api {

namespace {

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return static_cast<bool>(in) || in.eof();
}

// gRPC says only that it could not listen; find out why with a bind of our own.
std::string why_not_listening(const std::string& addr) {
  const std::optional<util::HostPort> hp = util::split_host_port(addr);
  if (!hp) return "expected HOST:PORT, e.g. [::1]:10000";
  const std::string& host = hp->host;
  const std::string& port = hp->port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return gai_strerror(rc);
  }
  std::string why = "gRPC could not listen there";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) why = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(res);
  return why;
}

// gRPC's own log goes through spdlog, in our format. While the server binds,
// its errors are only details of the one-line message start() returns.
std::atomic<bool> g_binding{false};

void log_to_spdlog(gpr_log_func_args* args) {
  const bool error = args->severity == GPR_LOG_SEVERITY_ERROR;
  const auto level = error && !g_binding.load(std::memory_order_relaxed) ? spdlog::level::warn
                                                                         : spdlog::level::debug;
  spdlog::log(level, "gRPC: {} ({}:{})", args->message, args->file, args->line);
}

// `addr` with its port replaced by `port` (for "host:0").
std::string with_port(const std::string& addr, int port) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return addr;
  return addr.substr(0, colon + 1) + std::to_string(port);
}

}  // namespace

util::Result<std::unique_ptr<GrpcServer>> GrpcServer::start(const GrpcOptions& opts,
                                                            broker::Broker& broker,
                                                            store::Store* store) {
  std::shared_ptr<grpc::ServerCredentials> creds;
  const bool tls = !opts.cert_file.empty() || !opts.key_file.empty();
  if (tls) {
    if (opts.cert_file.empty() || opts.key_file.empty()) {
      return util::Error{"--grpc-cert and --grpc-key go together (TLS for gRPC needs both)"};
    }
    grpc::SslServerCredentialsOptions ssl;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (!read_file(opts.cert_file, pair.cert_chain)) {
      return util::Error{"cannot read --grpc-cert " + opts.cert_file + ": " + std::strerror(errno)};
    }
    if (!read_file(opts.key_file, pair.private_key)) {
      return util::Error{"cannot read --grpc-key " + opts.key_file + ": " + std::strerror(errno)};
    }
    ssl.pem_key_cert_pairs.push_back(std::move(pair));
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }

  std::unique_ptr<GrpcServer> self(new GrpcServer());
  self->facade_ = std::make_unique<broker::ApiFacade>(broker);
  self->hub_ = std::make_unique<StreamHub>(opts.stream_queue);
  self->hub_->set_on_active(
      [facade = self->facade_.get()](bool on) { facade->want_everything(on); });
  self->published_ = std::make_unique<PublishedPacketService>(*self->facade_, *self->hub_);
  self->v1_ = std::make_unique<BrokerService>(*self->facade_, *self->hub_, store);

  gpr_set_log_function(log_to_spdlog);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(opts.addr, creds, &port);
  // A second server on the same port is an error, not a silent split of the
  // clients between two servers (gRPC sets SO_REUSEPORT by default).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Find clients that vanished without closing, so their streams end.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A payload for a device may be as large as an MQTT packet may be.
  const size_t max_msg = std::max<size_t>(self->facade_->max_packet_size(), 4u << 20);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(max_msg, INT_MAX)));
  builder.RegisterService(self->published_.get());
  builder.RegisterService(self->v1_.get());
  g_binding = true;
  self->server_ = builder.BuildAndStart();
  g_binding = false;
  if (!self->server_ || port == 0) {
    util::Error error{"cannot listen for gRPC on " + opts.addr + ": " +
                      why_not_listening(opts.addr) + " (see --grpc-addr)"};
    if (self->server_) self->server_->Shutdown();
    self->hub_->stop();
    return error;
  }
  if (auto* health = self->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus("rpcserver.PublishedPacketService", true);
    health->SetServingStatus("mqttserver.v1.BrokerService", true);
  }
  self->facade_->add_observer(self->hub_.get());
  self->address_ = with_port(opts.addr, port);
  spdlog::info(
      "gRPC API listening on {} ({}; rpcserver.PublishedPacketService, "
      "mqttserver.v1.BrokerService, reflection, health)",
      self->address_, tls ? "TLS" : "plain");
  return self;
}

GrpcServer::~GrpcServer() {
  if (server_) {
    if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
    // Ends every stream (their reactors finish on the hub's dispatcher or on
    // gRPC's threads), then waits for the calls to be done.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  if (hub_) hub_->stop();
  server_.reset();
}

size_t GrpcServer::stream_count() const {
  return hub_->stream_count();
}

uint64_t GrpcServer::stream_dropped_total() const {
  return hub_->dropped_total();
}

}  // namespace api
