// mqttserver.v1.BrokerService (proto/mqttserver/v1/broker.proto).
//
// Publish and Subscribe use the callback API (they never wait). ListDevices,
// DisconnectDevice and GetLatest wait briefly (for the MQTT workers or the
// store), so they are synchronous methods and wait on gRPC's sync-server
// threads, never on a callback thread or an MQTT worker.
#pragma once

#include <chrono>

#include "api/stream_hub.hpp"
#include "broker/api_facade.hpp"
#include "mqttserver/v1/broker.grpc.pb.h"
#include "store/store.hpp"

namespace api {

namespace v1 = mqttserver::v1;

class BrokerService final
    : public v1::BrokerService::WithCallbackMethod_Publish<
          v1::BrokerService::WithCallbackMethod_Subscribe<v1::BrokerService::Service>> {
 public:
  // `store` may be null (no latest-payload store): GetLatest then answers
  // FAILED_PRECONDITION.
  BrokerService(broker::ApiFacade& broker, StreamHub& hub, store::Store* store)
      : broker_(broker), hub_(hub), store_(store) {}

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* ctx, const v1::PublishRequest* req,
                                    v1::PublishResponse* resp) override;
  grpc::ServerWriteReactor<v1::Message>* Subscribe(grpc::CallbackServerContext* ctx,
                                                   const v1::SubscribeRequest* req) override;
  grpc::Status ListDevices(grpc::ServerContext* ctx, const v1::ListDevicesRequest* req,
                           v1::ListDevicesResponse* resp) override;
  grpc::Status DisconnectDevice(grpc::ServerContext* ctx, const v1::DisconnectDeviceRequest* req,
                                v1::DisconnectDeviceResponse* resp) override;
  grpc::Status GetLatest(grpc::ServerContext* ctx, const v1::GetLatestRequest* req,
                         v1::GetLatestResponse* resp) override;

  // How long a call waits for the MQTT workers to answer.
  static constexpr std::chrono::milliseconds kShardTimeout{3000};

 private:
  broker::ApiFacade& broker_;
  StreamHub& hub_;
  store::Store* store_;
};

}  // namespace api
