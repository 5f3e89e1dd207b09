#include "api/broker_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <optional>

#include "api/stream_reactor.hpp"
#include "api/util.hpp"
#include "mqtt/topic.hpp"

namespace api {

namespace {

// Waits for the answer of work posted to the MQTT workers: nothing on
// time-out, or when the work was dropped unrun (the workers are stopping: a
// broken promise).
template <class T>
std::optional<T> wait_answer(std::future<T>& f) {
  if (f.wait_for(BrokerService::kShardTimeout) != std::future_status::ready) return std::nullopt;
  try {
    return f.get();
  } catch (const std::future_error&) {
    return std::nullopt;
  }
}

}  // namespace

grpc::ServerUnaryReactor* BrokerService::Publish(grpc::CallbackServerContext* ctx,
                                                 const v1::PublishRequest* req,
                                                 v1::PublishResponse* /*resp*/) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (grpc::Status denied = authorize(*ctx); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  grpc::Status bad = check_publish(req->topic(), req->qos());
  if (!bad.ok()) {
    reactor->Finish(bad);
    return reactor;
  }
  std::string props;
  broker::MessageMeta meta;
  if (grpc::Status bad_props = v5_properties(*req, props, meta); !bad_props.ok()) {
    reactor->Finish(bad_props);
    return reactor;
  }
  auto msg = std::make_shared<const broker::Message>(
      req->topic(), req->payload(), static_cast<uint8_t>(req->qos()), req->retain(),
      std::string_view{}, wall_clock_ms(), meta);
  broker_.publish(msg);
  hub_.on_api_publish(msg);
  spdlog::debug("gRPC {}: published {} bytes on {} (QoS {}{})", ctx->peer(), req->payload().size(),
                req->topic(), req->qos(), req->retain() ? ", retained" : "");
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::Message>* BrokerService::Subscribe(grpc::CallbackServerContext* ctx,
                                                                const v1::SubscribeRequest* req) {
  if (grpc::Status denied = authorize(*ctx); !denied.ok()) {
    return new FailedStream<v1::Message>(denied);
  }
  if (!mqtt::valid_topic_filter(req->topic_filter())) {
    return new FailedStream<v1::Message>(
        {grpc::StatusCode::INVALID_ARGUMENT,
         req->topic_filter().empty()
             ? std::string("topic_filter is empty (use '#' for every topic)")
             : "topic_filter is not a valid MQTT topic filter: " + req->topic_filter()});
  }
  StreamFilter f;
  f.topic_filter = req->topic_filter();
  if (req->has_device_id()) f.device_id = req->device_id();
  f.api_messages = true;
  return new StreamReactor<v1::Message>(hub_, std::move(f), ctx->peer(), "Subscribe");
}

grpc::Status BrokerService::ListDevices(grpc::ServerContext* ctx,
                                        const v1::ListDevicesRequest* /*req*/,
                                        v1::ListDevicesResponse* resp) {
  if (grpc::Status denied = authorize(*ctx); !denied.ok()) return denied;
  std::future<std::vector<broker::ConnectedClient>> listed = broker_.list_clients();
  std::optional<std::vector<broker::ConnectedClient>> clients = wait_answer(listed);
  if (!clients) {
    return {grpc::StatusCode::UNAVAILABLE, "the MQTT workers did not answer in time"};
  }
  // A cluster lists every node's devices (those whose node answers in time).
  for (broker::ConnectedClient& c : broker_.remote_clients()) clients->push_back(std::move(c));
  std::sort(clients->begin(), clients->end(),
            [](const broker::ConnectedClient& a, const broker::ConnectedClient& b) {
              return a.client_id < b.client_id;
            });
  for (broker::ConnectedClient& c : *clients) {
    v1::Device& d = *resp->add_devices();
    d.set_device_id(std::move(c.client_id));
    d.set_remote_address(std::move(c.remote));
    d.set_protocol_level(c.protocol_level);
    d.set_connected_since_unix_ms(c.connected_since_ms);
    d.set_node(std::move(c.node));
  }
  return grpc::Status::OK;
}

grpc::Status BrokerService::DisconnectDevice(grpc::ServerContext* ctx,
                                             const v1::DisconnectDeviceRequest* req,
                                             v1::DisconnectDeviceResponse* /*resp*/) {
  if (grpc::Status denied = authorize(*ctx); !denied.ok()) return denied;
  const std::string& id = req->device_id();
  if (id.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "device_id is empty"};
  std::future<bool> closed = broker_.disconnect(id);
  const std::optional<bool> was_connected = wait_answer(closed);
  if (!was_connected) {
    return {grpc::StatusCode::UNAVAILABLE, "the MQTT workers did not answer in time"};
  }
  if (!*was_connected && !broker_.disconnect_remote(id)) {
    return {grpc::StatusCode::NOT_FOUND, "device " + id + " is not connected"};
  }
  spdlog::info("gRPC {}: disconnected device {}", ctx->peer(), id);
  return grpc::Status::OK;
}

grpc::Status BrokerService::GetLatest(grpc::ServerContext* ctx, const v1::GetLatestRequest* req,
                                      v1::GetLatestResponse* resp) {
  if (grpc::Status denied = authorize(*ctx); !denied.ok()) return denied;
  if (req->device_id().empty() || req->topic().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "device_id and topic are both required"};
  }
  if (store_ == nullptr) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "this server runs without a latest-payload store"};
  }
  store::Record r;
  switch (store_->latest(req->device_id(), req->topic(), r)) {
    case store::ReadStatus::Found:
      break;
    case store::ReadStatus::NotFound:
      return {grpc::StatusCode::NOT_FOUND,
              "no payload stored for device " + req->device_id() + " on " + req->topic()};
    case store::ReadStatus::Unavailable:
      return {grpc::StatusCode::UNAVAILABLE, "the latest-payload store cannot be read now"};
  }
  resp->set_device_id(req->device_id());
  resp->set_topic(req->topic());
  resp->set_payload(std::move(r.payload));
  resp->set_updated_unix_ms(r.updated_ms);
  return grpc::Status::OK;
}

}  // namespace api
