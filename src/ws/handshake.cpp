#include "ws/handshake.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cctype>

#include "util/text.hpp"

namespace ws {

namespace {

using util::trim;

// RFC 6455 section 1.3.
constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Calls `f` with each comma-separated token of a header value, trimmed.
template <typename F>
void for_each_token(std::string_view value, F&& f) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view token = trim(value.substr(0, comma));
    if (!token.empty()) f(token);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool has_token(std::string_view value, std::string_view wanted) {
  bool found = false;
  for_each_token(value, [&](std::string_view t) { found |= iequals(t, wanted); });
  return found;
}

// A token as RFC 7230 defines it (header names, methods).
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 32 || c >= 127 ||
        std::string_view("\"(),/:;<=>?@[\\]{}").find(ch) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

Upgrade refuse(int status, std::string reason, std::string_view extra_headers = {}) {
  static constexpr std::pair<int, const char*> kStatusText[] = {
      {400, "Bad Request"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {426, "Upgrade Required"},
      {431, "Request Header Fields Too Large"},
  };
  const char* text = "Bad Request";
  for (const auto& [code, t] : kStatusText) {
    if (code == status) text = t;
  }
  Upgrade u;
  u.state = Upgrade::State::Refused;
  u.status = status;
  u.reason = std::move(reason);
  std::string body = u.reason + "\n";
  u.response = "HTTP/1.1 " + std::to_string(status) + " " + text +
               "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n" + body;
  return u;
}

// The Sec-WebSocket-Key must be the base64 of 16 bytes (section 4.1): 24
// characters, the last two "==".
bool valid_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return false;
  }
  return true;
}

}  // namespace

std::string accept_key(std::string_view client_key) {
  std::string input(client_key);
  input += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

Upgrade parse_upgrade(std::string_view request, std::string_view path) {
  const size_t end = request.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (request.size() > kMaxRequestBytes) {
      return refuse(431,
                    "request header larger than " + std::to_string(kMaxRequestBytes) + " bytes");
    }
    return {};
  }
  if (end + 4 > kMaxRequestBytes) {
    return refuse(431, "request header larger than " + std::to_string(kMaxRequestBytes) + " bytes");
  }
  std::string_view head = request.substr(0, end);

  // Request line: METHOD SP request-target SP HTTP-version.
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return refuse(400, "malformed HTTP request line");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || version.substr(0, 5) != "HTTP/") {
    return refuse(400, "malformed HTTP request line");
  }
  // Section 4.2.1: an HTTP/1.1 (or later) GET.
  if (version != "HTTP/1.1" && !(version.size() == 8 && version[5] >= '2')) {
    return refuse(400, "WebSocket needs HTTP/1.1, not " + std::string(version));
  }
  if (method != "GET") {
    return refuse(405, "only GET can open a WebSocket, not " + std::string(method),
                  "Allow: GET\r\n");
  }
  // Absolute form (http://host/path) is allowed in requests too; compare the path.
  if (size_t scheme = target.find("://");
      scheme != std::string_view::npos && target.front() != '/') {
    size_t slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  std::string_view target_path = target.substr(0, target.find('?'));
  if (target_path != path) {
    return refuse(404, "no WebSocket endpoint at '" + std::string(target_path) +
                           "' (this one is '" + std::string(path) + "')");
  }

  // Header fields; repeated ones are joined with commas (RFC 7230 section 3.2.2).
  std::string host, upgrade, connection, key, ws_version, protocols;
  bool saw_host = false, saw_key = false;
  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view field = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
    if (field.empty()) continue;
    if (field.front() == ' ' || field.front() == '\t') {
      return refuse(400, "obsolete header line folding is not accepted");
    }
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon))) {
      return refuse(400, "malformed header line");
    }
    std::string_view name = field.substr(0, colon);
    std::string_view value = trim(field.substr(colon + 1));
    auto join = [&](std::string& into) {
      if (!into.empty()) into += ", ";
      into += value;
    };
    if (iequals(name, "Host")) {
      join(host);
      saw_host = true;
    } else if (iequals(name, "Upgrade")) {
      join(upgrade);
    } else if (iequals(name, "Connection")) {
      join(connection);
    } else if (iequals(name, "Sec-WebSocket-Key")) {
      if (saw_key) return refuse(400, "more than one Sec-WebSocket-Key");
      key = value;
      saw_key = true;
    } else if (iequals(name, "Sec-WebSocket-Version")) {
      join(ws_version);
    } else if (iequals(name, "Sec-WebSocket-Protocol")) {
      join(protocols);
    }
  }
  if (!saw_host) return refuse(400, "missing Host header");
  if (!has_token(upgrade, "websocket")) {
    return refuse(426, "not a WebSocket upgrade (needs 'Upgrade: websocket')",
                  "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
  }
  if (!has_token(connection, "upgrade")) {
    return refuse(400, "missing 'Connection: Upgrade'");
  }
  if (trim(ws_version) != "13") {
    // Section 4.4: say which version is supported.
    return refuse(426, "unsupported Sec-WebSocket-Version '" + ws_version + "' (13 is supported)",
                  "Sec-WebSocket-Version: 13\r\n");
  }
  if (!valid_key(key)) {
    return refuse(400, saw_key ? "malformed Sec-WebSocket-Key" : "missing Sec-WebSocket-Key");
  }
  // MQTT section 6: the client offers "mqtt" (3.1.1 and 5.0) or "mqttv3.1"
  // (3.1). A client that offers none is still served (some libraries send no
  // subprotocol), but one that offers only others would not understand us.
  std::string chosen;
  bool offered = false;
  for_each_token(protocols, [&](std::string_view p) {
    offered = true;
    if (chosen.empty() && (iequals(p, "mqtt") || iequals(p, "mqttv3.1"))) chosen = p;
  });
  if (offered && chosen.empty()) {
    return refuse(400, "none of the offered subprotocols '" + protocols +
                           "' is MQTT (expected 'mqtt' or 'mqttv3.1')");
  }

  Upgrade u;
  u.state = Upgrade::State::Accepted;
  u.consumed = end + 4;
  u.subprotocol = chosen;
  u.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      accept_key(key) + "\r\n";
  if (!chosen.empty()) u.response += "Sec-WebSocket-Protocol: " + chosen + "\r\n";
  u.response += "\r\n";
  return u;
}

}  // namespace ws
