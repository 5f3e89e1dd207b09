// One subscription's options: the granted QoS, and the MQTT 5 Subscription
// Options and Subscription Identifier (a 3.1.1 subscription has only the QoS).
#pragma once

#include <cstdint>

namespace broker {

struct SubOptions {
  uint8_t qos = 0;
  bool no_local = false;             // not sent messages its own client published
  bool retain_as_published = false;  // forwarded messages keep their retain flag
  uint8_t retain_handling = 0;       // 0 send retained, 1 only if new, 2 never
  uint32_t id = 0;                   // Subscription Identifier; 0: none
};

}  // namespace broker
