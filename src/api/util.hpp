// Small helpers shared by the gRPC services.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

#include "broker/clock.hpp"
#include "broker/message.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/properties.hpp"
#include "mqtt/topic.hpp"

namespace api {

// The bearer token every call must carry ("authorization: Bearer <token>"),
// or empty for none. Set once before the server starts (--grpc-token-file),
// read-only afterwards, so no lock.
inline std::string& required_token() {
  static std::string token;
  return token;
}

// OK when no token is required or the call carries the right one; otherwise
// UNAUTHENTICATED. The comparison takes the same time wherever it differs.
inline grpc::Status authorize(const grpc::ServerContextBase& ctx) {
  const std::string& token = required_token();
  if (token.empty()) return grpc::Status::OK;
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it != md.end()) {
    std::string_view v(it->second.data(), it->second.size());
    constexpr std::string_view kBearer = "Bearer ";
    if (v.substr(0, kBearer.size()) == kBearer) {
      v.remove_prefix(kBearer.size());
      unsigned diff = v.size() == token.size() ? 0u : 1u;
      for (size_t i = 0; i < v.size() && i < token.size(); ++i) {
        diff |= static_cast<unsigned>(v[i] ^ token[i]);
      }
      if (diff == 0) return grpc::Status::OK;
    }
  }
  return {grpc::StatusCode::UNAUTHENTICATED,
          "this server requires 'authorization: Bearer <token>' metadata"};
}

using broker::wall_clock_ms;

// Checks what a publish through the API needs: a valid topic name and QoS 0-2.
inline grpc::Status check_publish(const std::string& topic, uint32_t qos) {
  if (!mqtt::valid_topic_name(topic)) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            topic.empty() ? std::string("topic is empty")
                          : "not a valid MQTT topic name (no '+' or '#', valid UTF-8): " + topic};
  }
  if (qos > 2) return {grpc::StatusCode::INVALID_ARGUMENT, "qos must be 0, 1 or 2"};
  return grpc::Status::OK;
}

// The MQTT 5 properties of an API publish (user properties, content type,
// response topic, correlation data, payload format, expiry) as the forwarded
// property block of a broker::Message; `props` holds the bytes `meta` views.
template <class Request>
grpc::Status v5_properties(const Request& req, std::string& props, broker::MessageMeta& meta) {
  mqtt::PropertyWriter w(props);
  if (req.has_payload_utf8() && req.payload_utf8()) {
    if (!mqtt::valid_payload_format(1, req.payload())) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "payload_utf8 is set but the payload is not UTF-8"};
    }
    w.add_byte(mqtt::PropertyId::PayloadFormatIndicator, 1);
  }
  if (req.has_content_type()) w.add_string(mqtt::PropertyId::ContentType, req.content_type());
  if (req.has_response_topic()) {
    if (!mqtt::valid_topic_name(req.response_topic())) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "response_topic is not a valid MQTT topic name: " + req.response_topic()};
    }
    w.add_string(mqtt::PropertyId::ResponseTopic, req.response_topic());
  }
  if (req.has_correlation_data()) {
    w.add_string(mqtt::PropertyId::CorrelationData, req.correlation_data());
  }
  for (const auto& u : req.user_properties()) w.add_user_property(u.key(), u.value());
  if (!w.ok()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "a property is longer than 65,535 bytes"};
  }
  meta.properties = props;
  meta.has_expiry = req.has_message_expiry_interval();
  meta.expiry_interval_s = req.message_expiry_interval();
  return grpc::Status::OK;
}

}  // namespace api
