#include "cluster/requests.hpp"

#include "store/session_codec.hpp"

namespace cluster {

namespace {
constexpr uint8_t kVersion = 1;

void put_u64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}
void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

// Reads from the front of `in`; every read checks what is left.
struct Reader {
  std::string_view in;
  bool ok = true;
  uint8_t u8() {
    if (in.empty()) return ok = false, 0;
    uint8_t v = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return v;
  }
  uint64_t u64() {
    if (in.size() < 8) return ok = false, 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
    in.remove_prefix(8);
    return v;
  }
  std::string_view str() {
    uint64_t n = u64();
    if (!ok || n > in.size()) return ok = false, std::string_view();
    std::string_view v = in.substr(0, n);
    in.remove_prefix(n);
    return v;
  }
  bool version() { return u8() == kVersion && ok; }
};
}  // namespace

std::string node_subject(std::string_view node, std::string_view verb) {
  std::string s = "c.n.";
  s.append(node);
  s.push_back('.');
  s.append(verb);
  return s;
}

std::string encode(const TakeoverRequest& r) {
  std::string out(1, static_cast<char>(kVersion));
  out.push_back(r.clean_start ? 1 : 0);
  put_u64(out, r.revision);
  put_str(out, r.client_id);
  return out;
}

std::optional<TakeoverRequest> decode_takeover(std::string_view bytes) {
  Reader rd{bytes};
  if (!rd.version()) return std::nullopt;
  TakeoverRequest r;
  r.clean_start = rd.u8() != 0;
  r.revision = rd.u64();
  r.client_id = std::string(rd.str());
  if (!rd.ok || !rd.in.empty()) return std::nullopt;
  return r;
}

std::string encode_takeover_reply(const std::optional<broker::SessionSnapshot>& session) {
  std::string out(1, static_cast<char>(kVersion));
  out.push_back(session ? 1 : 0);
  if (session) out += store::encode_session(*session);
  return out;
}

std::optional<std::optional<broker::SessionSnapshot>> decode_takeover_reply(
    std::string_view client_id, std::string_view bytes) {
  Reader rd{bytes};
  if (!rd.version()) return std::nullopt;
  const bool has = rd.u8() != 0;
  if (!rd.ok) return std::nullopt;
  if (!has) return std::optional<broker::SessionSnapshot>();
  broker::SessionSnapshot snap;
  if (!store::decode_session(client_id, rd.in, snap)) return std::nullopt;
  snap.client_id = std::string(client_id);
  return std::optional<broker::SessionSnapshot>(std::move(snap));
}

std::string encode(const SendRequest& r) {
  std::string out(1, static_cast<char>(kVersion));
  out.push_back(static_cast<char>(r.qos));
  put_str(out, r.client_id);
  put_str(out, r.envelope);
  return out;
}

std::optional<SendRequest> decode_send(std::string_view bytes) {
  Reader rd{bytes};
  if (!rd.version()) return std::nullopt;
  SendRequest r;
  r.qos = rd.u8();
  r.client_id = std::string(rd.str());
  r.envelope = std::string(rd.str());
  if (!rd.ok || !rd.in.empty() || r.qos > 2) return std::nullopt;
  return r;
}

std::string encode_clients(const std::vector<broker::ConnectedClient>& clients) {
  std::string out(1, static_cast<char>(kVersion));
  put_u64(out, clients.size());
  for (const auto& c : clients) {
    put_str(out, c.client_id);
    put_str(out, c.remote);
    out.push_back(static_cast<char>(c.protocol_level));
    put_u64(out, static_cast<uint64_t>(c.connected_since_ms));
    put_str(out, c.node);
  }
  return out;
}

std::optional<std::vector<broker::ConnectedClient>> decode_clients(std::string_view bytes) {
  Reader rd{bytes};
  if (!rd.version()) return std::nullopt;
  const uint64_t n = rd.u64();
  std::vector<broker::ConnectedClient> out;
  for (uint64_t i = 0; rd.ok && i < n; ++i) {
    broker::ConnectedClient c;
    c.client_id = std::string(rd.str());
    c.remote = std::string(rd.str());
    c.protocol_level = rd.u8();
    c.connected_since_ms = static_cast<int64_t>(rd.u64());
    c.node = std::string(rd.str());
    out.push_back(std::move(c));
  }
  if (!rd.ok || !rd.in.empty()) return std::nullopt;
  return out;
}

}  // namespace cluster
