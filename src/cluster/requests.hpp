// What nodes ask each other directly (NATS request/reply on the subject
// "c.n.<node>.<verb>", design note B.2): the byte format of each request and
// its reply. Small and versioned by a leading byte; strictly checked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/api_facade.hpp"
#include "broker/persistence.hpp"

namespace cluster {

// The subject on which node `node` answers `verb`.
std::string node_subject(std::string_view node, std::string_view verb);

// "takeover": a CONNECT on the asking node claimed `client_id` (claim
// `revision`); the reply carries the session when it goes on there.
struct TakeoverRequest {
  std::string client_id;
  bool clean_start = false;
  uint64_t revision = 0;
};
std::string encode(const TakeoverRequest& r);
std::optional<TakeoverRequest> decode_takeover(std::string_view bytes);
std::string encode_takeover_reply(const std::optional<broker::SessionSnapshot>& session);
// nullopt: malformed; an empty inner optional: no session handed over.
std::optional<std::optional<broker::SessionSnapshot>> decode_takeover_reply(
    std::string_view client_id, std::string_view bytes);

// "send": the gRPC API of the asking node sends one message to `client_id`.
struct SendRequest {
  std::string client_id;
  uint8_t qos = 0;
  std::string envelope;  // the message, as cluster/envelope.hpp encodes it
};
std::string encode(const SendRequest& r);
std::optional<SendRequest> decode_send(std::string_view bytes);

// "disconnect": close `client_id`'s connection (reply: 1 when there was one).
// "list": the connected clients (reply: encode_clients).
std::string encode_clients(const std::vector<broker::ConnectedClient>& clients);
std::optional<std::vector<broker::ConnectedClient>> decode_clients(std::string_view bytes);

}  // namespace cluster
