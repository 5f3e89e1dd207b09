#include "api/published_packet_service.hpp"

#include <spdlog/spdlog.h>

#include "api/stream_reactor.hpp"
#include "api/util.hpp"
#include "mqtt/topic.hpp"

namespace api {

grpc::ServerWriteReactor<rpcserver::PublishedPacket>*
PublishedPacketService::StreamPublishedPayload(grpc::CallbackServerContext* ctx,
                                               const rpcserver::PublishedPacketRequest* req) {
  if (grpc::Status denied = authorize(*ctx); !denied.ok()) {
    return new FailedStream<rpcserver::PublishedPacket>(denied);
  }
  StreamFilter f;
  // An empty device id matches no device (ids are never empty): take it as "any".
  if (req->has_device_id()) f.device_id = req->device_id();
  if (req->has_topic_filter()) {
    if (!mqtt::valid_topic_filter(req->topic_filter())) {
      return new FailedStream<rpcserver::PublishedPacket>(
          {grpc::StatusCode::INVALID_ARGUMENT,
           "topic_filter is not a valid MQTT topic filter: " + req->topic_filter()});
    }
    f.topic_filter = req->topic_filter();
  }
  return new StreamReactor<rpcserver::PublishedPacket>(hub_, std::move(f), ctx->peer(),
                                                       "StreamPublishedPayload");
}

grpc::ServerUnaryReactor* PublishedPacketService::PublishPayloadToDevice(
    grpc::CallbackServerContext* ctx, const rpcserver::PublishRequest* req,
    rpcserver::PublishResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (grpc::Status denied = authorize(*ctx); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  const std::string& device = req->device_id();
  // The original server used the device id as the topic; use the request's
  // topic, and the device id only when it is empty.
  const std::string& topic = req->topic().empty() ? device : req->topic();
  const uint32_t qos = req->has_qos() ? req->qos() : 0;
  grpc::Status bad = check_publish(topic, qos);
  if (device.empty()) bad = {grpc::StatusCode::INVALID_ARGUMENT, "device_id is empty"};
  if (!bad.ok()) {
    reactor->Finish(bad);
    return reactor;
  }
  auto msg =
      std::make_shared<const broker::Message>(topic, req->payload(), static_cast<uint8_t>(qos),
                                              req->retain(), std::string_view{}, wall_clock_ms());
  switch (broker_.send_to_client(device, msg, static_cast<uint8_t>(qos))) {
    case broker::ApiFacade::SendResult::Sent:
      resp->set_code("Success");
      break;
    case broker::ApiFacade::SendResult::Queued:
      resp->set_code("Queued");
      break;
    case broker::ApiFacade::SendResult::NotFound:
      reactor->Finish(
          {grpc::StatusCode::NOT_FOUND,
           qos == 0 ? "device " + device + " is not connected"
                    : "device " + device + " is not connected and has no persistent session"});
      return reactor;
  }
  spdlog::debug("gRPC {}: {} bytes to device {} on {} (QoS {}): {}", ctx->peer(),
                req->payload().size(), device, topic, qos, resp->code());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace api
