// MQTT control packets as plain values. Decoded packets hold views into the
// connection's read buffer (no copies); they are valid only until that buffer
// is consumed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace mqtt {

enum class PacketType : uint8_t {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Pubrec = 5,
  Pubrel = 6,
  Pubcomp = 7,
  Subscribe = 8,
  Suback = 9,
  Unsubscribe = 10,
  Unsuback = 11,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
  Auth = 15,
};

// Protocol levels carried in CONNECT.
inline constexpr uint8_t kLevel31 = 3;   // protocol name "MQIsdp"
inline constexpr uint8_t kLevel311 = 4;  // protocol name "MQTT"
inline constexpr uint8_t kLevel5 = 5;    // protocol name "MQTT"

// Largest value the 4-byte variable-length "remaining length" can carry.
inline constexpr uint32_t kMaxRemainingLength = 268'435'455;

// CONNACK return codes of MQTT 3.1 / 3.1.1.
enum class ConnackCode : uint8_t {
  Accepted = 0,
  UnacceptableProtocolVersion = 1,
  IdentifierRejected = 2,
  ServerUnavailable = 3,
  BadUsernameOrPassword = 4,
  NotAuthorized = 5,
};

inline constexpr uint8_t kSubackFailure = 0x80;

struct Will {
  std::string_view topic;
  std::string_view payload;
  uint8_t qos = 0;
  bool retain = false;
};

struct Connect {
  std::string_view protocol_name;  // "MQTT" or "MQIsdp"
  uint8_t protocol_level = 0;
  bool clean_session = false;
  uint16_t keep_alive = 0;  // seconds
  std::string_view client_id;
  std::optional<Will> will;
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;
};

struct Publish {
  std::string_view topic;
  std::string_view payload;
  uint16_t packet_id = 0;  // 0 when qos == 0
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
};

struct TopicRequest {  // one entry of SUBSCRIBE
  std::string_view filter;
  uint8_t qos = 0;
};

struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<TopicRequest> topics;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  std::vector<std::string_view> filters;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a packet id and nothing else (3.1.1).
struct Ack {
  PacketType type = PacketType::Puback;
  uint16_t packet_id = 0;
};

}  // namespace mqtt
