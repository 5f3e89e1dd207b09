// The server side of the WebSocket opening handshake (RFC 6455 section 4.2)
// for MQTT over WebSocket (MQTT 3.1.1 section 6, MQTT 5.0 section 6): an HTTP/1.1
// GET with Upgrade: websocket, answered with 101 and the subprotocol "mqtt"
// (or "mqttv3.1", which MQTT 3.1 clients offer), or with an HTTP error whose
// body says what was wrong. No sockets here: bytes in, bytes out.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ws {

// A request header larger than this is refused (431) before it ends.
inline constexpr size_t kMaxRequestBytes = 8192;

struct Upgrade {
  enum class State { NeedMore, Accepted, Refused };
  State state = State::NeedMore;
  // Accepted: the 101 response. Refused: an HTTP error response (Connection: close).
  std::string response;
  size_t consumed = 0;      // Accepted: bytes of the request; what follows is frames
  std::string subprotocol;  // Accepted: the one chosen, or empty when none was offered
  std::string reason;       // Refused: why, for the log (also the response body)
  int status = 0;           // Refused: the HTTP status sent
};

// Parses the request gathered so far. `path` is the listener's (e.g. "/mqtt");
// the request target must equal it (a query string is ignored).
Upgrade parse_upgrade(std::string_view request, std::string_view path);

// base64(SHA-1(key + the RFC's GUID)): the Sec-WebSocket-Accept value.
std::string accept_key(std::string_view client_key);

}  // namespace ws
