// Small helpers shared by the gRPC services.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "mqtt/topic.hpp"

namespace api {

inline int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

}  // namespace api
