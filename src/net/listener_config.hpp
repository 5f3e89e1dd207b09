// What one listening socket is: its protocol, address, TLS files and limit.
// Filled from the command line (one listener) or from [[listener]] tables in
// the config file (any number); kept apart from the socket code so that the
// config parser needs no sockets or OpenSSL.
#pragma once

#include <cstddef>
#include <string>

namespace net {

struct ListenerConfig {
  // Ws and Wss: MQTT over WebSocket (RFC 6455), plain or over TLS.
  enum class Protocol { Tcp, Tls, Ws, Wss };
  Protocol protocol = Protocol::Tcp;
  std::string address;  // IP:PORT or [IPv6]:PORT
  std::string cert_file, key_file;
  std::string ca_file;  // non-empty: ask TLS clients for a certificate and verify it
  bool require_certificate = false;
  std::string ws_path = "/mqtt";  // Ws, Wss: the HTTP path of the WebSocket endpoint
  size_t max_connections = 0;     // 0: only the server-wide --max-connections applies
  // Where it was defined, for error messages: "FILE:LINE" of its [[listener]]
  // table, or empty for the command line's single listener.
  std::string origin;
};

}  // namespace net
