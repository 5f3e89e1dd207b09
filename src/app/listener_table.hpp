// One [[listener]] table of the config file, checked and turned into a
// net::ListenerConfig.
#pragma once

// toml++ is used header-only (TOML_HEADER_ONLY=1, set by CMakeLists.txt): the
// binary then needs no libtomlplusplus at run time.
#include <toml++/toml.h>

#include <string>

#include "net/server.hpp"
#include "util/result.hpp"

namespace app {

// Protocols: "tcp" and "tls"; "ws" and "wss" are refused as "not supported
// yet" until the WebSocket transport exists. `server` gives the defaults a listener inherits
// (cafile, require_certificate). On failure the error is "FILE:LINE: key 'x': why".
util::Result<net::ListenerConfig> parse_listener_table(const toml::table& table,
                                                       const std::string& path,
                                                       const net::ServerOptions& server);

}  // namespace app
