// The gRPC API: rpcserver.PublishedPacketService (the original service),
// mqttserver.v1.BrokerService, server reflection and the standard health
// service, on gRPC's own threads. See docs/grpc.md.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "broker/broker.hpp"
#include "store/store.hpp"
#include "util/result.hpp"

namespace grpc {
class Server;
}
namespace broker {
class ApiFacade;
}

namespace api {

class StreamHub;
class PublishedPacketService;
class BrokerService;

struct GrpcOptions {
  std::string addr = "[::1]:10000";  // host:port; port 0 picks a free one
  std::string cert_file;             // PEM; with key_file: TLS, else plain
  std::string key_file;
  size_t stream_queue = 65536;  // messages one stream may have waiting before it drops
};

class GrpcServer {
 public:
  // Starts listening and registers the streams as observers of `broker`: call
  // before the MQTT workers start. `store` may be null (GetLatest then answers
  // FAILED_PRECONDITION). A one-line error when it cannot listen (address in
  // use, not local, bad certificate...).
  static util::Result<std::unique_ptr<GrpcServer>> start(const GrpcOptions& opts,
                                                         broker::Broker& broker,
                                                         store::Store* store);
  // Ends every call and stops. Destroy it after the MQTT workers have stopped:
  // they call into the streams until then.
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The address it listens on, with the port it got.
  const std::string& address() const { return address_; }
  // Open device-message streams, and messages they dropped since start
  // (any thread; for /metrics).
  size_t stream_count() const;
  uint64_t stream_dropped_total() const;

 private:
  GrpcServer() = default;

  std::string address_;
  std::unique_ptr<broker::ApiFacade> facade_;  // what the services may do to the broker
  std::unique_ptr<StreamHub> hub_;
  std::unique_ptr<PublishedPacketService> published_;
  std::unique_ptr<BrokerService> v1_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace api
