// One message on its way to one subscriber. Routing decides it (the QoS
// granted, whether the retain flag stays, the Subscription Identifier the
// subscription carries) and the value travels unchanged through the
// cross-shard inbox, the session's queue, the inflight window and session
// snapshots to the out-queue, so what a delivery carries is said once.
#pragma once

#include <cstdint>

#include "broker/message.hpp"

namespace broker {

struct Delivery {
  MessagePtr msg;
  // The lower of the published and the granted QoS [MQTT-3.8.4-6].
  uint8_t qos = 0;
  // Cleared on normal forwarding [MQTT-3.3.1-9]; set for retained messages sent
  // because of a new subscription [MQTT-3.3.1-8] and for Retain As Published.
  bool retain = false;
  // The matched subscription's Subscription Identifier (MQTT 5); 0: none.
  uint32_t sub_id = 0;
};

}  // namespace broker
