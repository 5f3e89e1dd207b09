// --config FILE: a TOML file holding any command-line setting under its long
// flag name, plus [[listener]] tables. See docs/config.md.
#pragma once

#include <string>

#include "util/result.hpp"

namespace CLI {
class App;
}
namespace net {
struct ServerOptions;
}

namespace app {

// Applies the TOML file at `path` to `cli`, which has already parsed argv.
// Each top-level key is looked up among cli's options by long name (so a new
// flag is a new key with no further code), with '-' and '_' interchangeable;
// an option given on the command line keeps its command-line value. The
// [[listener]] tables go to server.listeners, unless the command line gives a
// listener flag (-a, -c, -k, --non-tls): then `note` says they were replaced.
// On failure the error is one line: "FILE:LINE: key 'x': why" (or "FILE: why"
// when the file cannot be read).
util::Status apply_config_file(CLI::App& cli, const std::string& path, net::ServerOptions& server,
                               std::string& note);

}  // namespace app
