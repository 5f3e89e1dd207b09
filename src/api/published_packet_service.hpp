// rpcserver.PublishedPacketService: the original mqtt-server's gRPC service,
// wire-compatible, with the fields this server adds (proto/published_packet.proto).
#pragma once

#include "api/stream_hub.hpp"
#include "broker/api_facade.hpp"
#include "published_packet.grpc.pb.h"

namespace api {

class PublishedPacketService final : public rpcserver::PublishedPacketService::CallbackService {
 public:
  PublishedPacketService(broker::ApiFacade& broker, StreamHub& hub) : broker_(broker), hub_(hub) {}

  grpc::ServerWriteReactor<rpcserver::PublishedPacket>* StreamPublishedPayload(
      grpc::CallbackServerContext* ctx, const rpcserver::PublishedPacketRequest* req) override;
  grpc::ServerUnaryReactor* PublishPayloadToDevice(grpc::CallbackServerContext* ctx,
                                                   const rpcserver::PublishRequest* req,
                                                   rpcserver::PublishResponse* resp) override;

 private:
  broker::ApiFacade& broker_;
  StreamHub& hub_;
};

}  // namespace api
