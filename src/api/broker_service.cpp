#include "api/broker_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <optional>

#include "api/stream_reactor.hpp"
#include "api/util.hpp"
#include "broker/client.hpp"
#include "broker/session.hpp"
#include "broker/shard.hpp"
#include "mqtt/topic.hpp"

namespace api {

namespace {

// Closes the connection attached to `s` on the shard that owns the session,
// following the session if it moves meanwhile; `done` gets whether there was
// one to close.
void close_on_owner(broker::Broker& b, std::shared_ptr<broker::Session> s,
                    std::shared_ptr<std::promise<bool>> done, int hops) {
  const int owner = s->owner.load(std::memory_order_acquire);
  b.run_on_shard(owner, [&b, s, done, owner, hops] {
    if (s->owner.load(std::memory_order_acquire) != owner) {  // handed over meanwhile
      if (hops < 8) {
        close_on_owner(b, s, done, hops + 1);
      } else {
        done->set_value(false);
      }
      return;
    }
    broker::Client* c = s->client;
    if (c == nullptr || c->closing()) {
      done->set_value(false);
      return;
    }
    c->close("disconnected through the gRPC API", true, mqtt::ReasonCode::AdministrativeAction);
    done->set_value(true);
  });
}

// Waits for the answer of work posted to a shard: nothing on time-out, or
// when the work was dropped unrun (the workers are stopping: a broken promise).
std::optional<bool> wait_answer(std::future<bool>& f) {
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
  broker_.publish_from_api(msg);
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
  // Each shard lists its own clients on its own thread.
  struct Gather {
    std::mutex mu;
    std::vector<v1::Device> devices;
    int left = 0;
    std::promise<bool> done;
  };
  auto g = std::make_shared<Gather>();
  const int n = broker_.shard_count();
  g->left = n;
  std::future<bool> all = g->done.get_future();
  for (int i = 0; i < n; ++i) {
    broker_.run_on_shard(i, [g, &shard = broker_.shard(i)] {
      // Connection times are on the shard's monotonic clock.
      const int64_t to_wall = wall_clock_ms() - broker::monotonic_ms();
      std::vector<v1::Device> mine;
      for (const auto& [conn_id, c] : shard.clients()) {
        if (!c->connected() || c->closing()) continue;
        v1::Device& d = mine.emplace_back();
        d.set_device_id(c->client_id());
        d.set_remote_address(c->remote());
        d.set_protocol_level(c->protocol_level());
        d.set_connected_since_unix_ms(c->created_ms() + to_wall);
      }
      std::lock_guard lock(g->mu);
      for (auto& d : mine) g->devices.push_back(std::move(d));
      if (--g->left == 0) g->done.set_value(true);
    });
  }
  if (!wait_answer(all)) {
    return {grpc::StatusCode::UNAVAILABLE, "the MQTT workers did not answer in time"};
  }
  std::sort(g->devices.begin(), g->devices.end(),
            [](const v1::Device& a, const v1::Device& b) { return a.device_id() < b.device_id(); });
  for (auto& d : g->devices) *resp->add_devices() = std::move(d);
  return grpc::Status::OK;
}

grpc::Status BrokerService::DisconnectDevice(grpc::ServerContext* ctx,
                                             const v1::DisconnectDeviceRequest* req,
                                             v1::DisconnectDeviceResponse* /*resp*/) {
  if (grpc::Status denied = authorize(*ctx); !denied.ok()) return denied;
  const std::string& id = req->device_id();
  if (id.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "device_id is empty"};
  std::shared_ptr<broker::Session> s = broker_.find_session(id);
  if (!s || !s->online.load(std::memory_order_relaxed)) {
    return {grpc::StatusCode::NOT_FOUND, "device " + id + " is not connected"};
  }
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> closed = done->get_future();
  close_on_owner(broker_, std::move(s), std::move(done), 0);
  const std::optional<bool> was_connected = wait_answer(closed);
  if (!was_connected) {
    return {grpc::StatusCode::UNAVAILABLE, "the MQTT workers did not answer in time"};
  }
  if (!*was_connected) return {grpc::StatusCode::NOT_FOUND, "device " + id + " is not connected"};
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
