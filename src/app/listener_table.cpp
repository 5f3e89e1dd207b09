#include "app/listener_table.hpp"

#include "net/listener.hpp"

namespace app {

namespace {

constexpr const char* kProtocols = "\"tcp\", \"tls\", \"ws\" or \"wss\"";

std::string line_of(const std::string& path, const toml::source_region& where) {
  return path + ":" + std::to_string(where.begin.line) + ": ";
}

}  // namespace

util::Result<net::ListenerConfig> parse_listener_table(const toml::table& table,
                                                       const std::string& path,
                                                       const net::ServerOptions& server) {
  net::ListenerConfig out;
  const std::string table_at = line_of(path, table.source()) + "[[listener]]: ";
  std::string protocol;
  bool has_cert = false, has_key = false, has_ca = false, has_require = false, has_path = false;
  out.ws_path = server.ws_path;
  out.origin = path + ":" + std::to_string(table.source().begin.line);
  out.ca_file = server.ca_file;
  out.require_certificate = server.require_certificate;

  for (auto&& [k, v] : table) {
    const std::string key(k.str());
    std::string name = key;
    for (char& c : name) {
      if (c == '-') c = '_';
    }
    const std::string here = line_of(path, k.source()) + "key '" + key + "': ";
    // The lambdas below capture this reference, not the binding: C++20 allows
    // capturing a structured binding, but clang before 16 rejects it.
    auto& value = v;
    auto text = [&](std::string& into) -> util::Status {
      if (auto s = value.value_exact<std::string>()) {
        into = *s;
        return {};
      }
      return util::Error{here + "expected a string (in quotes)"};
    };
    if (name == "protocol") {
      if (auto r = text(protocol); !r) return std::move(r).error();
      if (protocol == "tcp") {
        out.protocol = net::ListenerConfig::Protocol::Tcp;
      } else if (protocol == "tls") {
        out.protocol = net::ListenerConfig::Protocol::Tls;
      } else if (protocol == "ws") {
        out.protocol = net::ListenerConfig::Protocol::Ws;
      } else if (protocol == "wss") {
        out.protocol = net::ListenerConfig::Protocol::Wss;
      } else {
        return util::Error{here + "unknown protocol '" + protocol + "': expected " + kProtocols};
      }
    } else if (name == "address") {
      if (auto r = text(out.address); !r) return std::move(r).error();
      if (auto checked = net::check_address(out.address); !checked) {
        return util::Error{here + checked.error().message};
      }
    } else if (name == "certificate") {
      if (auto r = text(out.cert_file); !r) return std::move(r).error();
      has_cert = true;
    } else if (name == "key") {
      if (auto r = text(out.key_file); !r) return std::move(r).error();
      has_key = true;
    } else if (name == "cafile") {
      if (auto r = text(out.ca_file); !r) return std::move(r).error();
      has_ca = true;
    } else if (name == "require_certificate") {
      auto b = v.value_exact<bool>();
      if (!b) {
        return util::Error{here + "expected a boolean (true or false)"};
      }
      out.require_certificate = *b;
      has_require = true;
    } else if (name == "path") {
      if (auto r = text(out.ws_path); !r) return std::move(r).error();
      if (out.ws_path.empty() || out.ws_path.front() != '/') {
        return util::Error{here + "expected an HTTP path starting with '/', e.g. \"/mqtt\""};
      }
      has_path = true;
    } else if (name == "max_connections") {
      auto n = v.value_exact<int64_t>();
      if (!n || *n < 0) {
        return util::Error{here + "expected a whole number, 0 (no limit of its own) or more"};
      }
      out.max_connections = static_cast<size_t>(*n);
    } else {
      return util::Error{
          here +
          "unknown listener setting (expected protocol, address, certificate, key, cafile, "
          "require_certificate, path, max_connections)"};
    }
  }

  if (protocol.empty()) {
    return util::Error{table_at + "missing key 'protocol' (" + kProtocols + ")"};
  }
  if (out.address.empty()) {
    return util::Error{table_at + "missing key 'address' (IP:PORT)"};
  }
  const bool tls = out.protocol == net::ListenerConfig::Protocol::Tls ||
                   out.protocol == net::ListenerConfig::Protocol::Wss;
  const bool websocket = out.protocol == net::ListenerConfig::Protocol::Ws ||
                         out.protocol == net::ListenerConfig::Protocol::Wss;
  if (tls && (!has_cert || !has_key)) {
    return util::Error{table_at + "missing key '" + std::string(has_cert ? "key" : "certificate") +
                       "': a " + protocol + " listener needs certificate and key (PEM files)"};
  }
  if (has_path && !websocket) {
    return util::Error{table_at + "key 'path': only for protocol \"ws\" or \"wss\""};
  }
  if (!tls && (has_cert || has_key || has_ca || has_require)) {
    const char* which = has_cert  ? "certificate"
                        : has_key ? "key"
                        : has_ca  ? "cafile"
                                  : "require_certificate";
    return util::Error{table_at + "key '" + which + "': only for protocol \"tls\" or \"wss\""};
  }
  if (!tls) {
    out.ca_file.clear();  // inherited defaults mean nothing without TLS
    out.require_certificate = false;
  }
  if (out.require_certificate && out.ca_file.empty()) {
    return util::Error{table_at +
                       "key 'require_certificate': needs cafile (here or at the top level)"};
  }
  return out;
}

}  // namespace app
