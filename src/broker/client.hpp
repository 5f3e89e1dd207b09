// One MQTT connection's protocol state machine (3.1, 3.1.1 and 5.0, chosen by
// the CONNECT). It consumes bytes and produces bytes in its OutQueue; the
// network layer owns the socket.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.hpp"
#include "broker/out_queue.hpp"
#include "broker/peers.hpp"
#include "broker/session.hpp"
#include "broker/topic_aliases.hpp"
#include "broker/transport.hpp"
#include "mqtt/codec.hpp"

namespace broker {

class Session;
class Shard;

class Client {
 public:
  // `transport` is the connection this client speaks through; it outlives the
  // client (the network layer owns both).
  Client(Shard& shard, Transport& transport, uint64_t conn_id, std::string remote);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Handles every complete packet at the front of `in`; returns the bytes used.
  // Stops early while the session is being handed over from another shard.
  size_t on_bytes(std::string_view in);

  // Called a few times a second: enforces the keep-alive and the CONNECT timeout.
  void tick(int64_t now_ms);

  // Shard-side operations.
  void attach(const std::shared_ptr<Session>& s, bool session_present);
  void send(const Delivery& d);
  // Closes this connection from the server side with `reason` logged. An MQTT 5
  // client that completed CONNECT is sent DISCONNECT with `code` first, if given.
  void close(std::string_view reason, bool publish_will = true,
             std::optional<mqtt::ReasonCode> code = std::nullopt);

  OutQueue& out() { return out_; }
  uint64_t conn_id() const { return conn_id_; }
  const std::string& remote() const { return remote_; }
  const std::string& client_id() const { return client_id_; }
  uint8_t protocol_level() const { return level_; }
  // CONNECT accepted and the session attached (for the API's device list).
  bool connected() const { return state_ == State::Connected; }
  // When the connection was accepted, on the shard's monotonic clock (ms).
  int64_t created_ms() const { return created_ms_; }
  bool closing() const { return closing_; }
  const std::string& close_reason() const { return close_reason_; }
  // Common Name of a verified TLS client certificate, set by the network layer.
  std::optional<std::string> tls_common_name;
  // Completes a CONNECT once authentication decided (possibly off-thread),
  // taking the ACL rules from the same `policy` that checked the password (a
  // SIGHUP reload between the two must not mix files).
  void finish_connect(auth::ConnectResult r, const std::shared_ptr<const auth::Policy>& policy);
  // Cluster: the claim of this client id across the nodes came back.
  void claimed_in_cluster(ClaimOutcome outcome);

 private:
  enum class State : uint8_t { AwaitConnect, Attaching, Connected, Closed };

  bool v5() const { return level_ == mqtt::kLevel5; }
  // The connection ended (socket error, EOF, protocol error, keep-alive, takeover,
  // server shutdown). Publishes the will unless the client sent DISCONNECT,
  // and detaches the session. Safe to call more than once. Private: close()
  // and the destructor are the only ways in, so the network layer cannot end
  // a client without the transport hearing of it.
  void on_closed(std::string_view reason);
  // client.cpp: dispatch and the connection's end.
  void handle(const mqtt::Frame& f);
  void handle_disconnect(const mqtt::Frame& f);
  void protocol_error(std::string_view reason,
                      mqtt::ReasonCode code = mqtt::ReasonCode::ProtocolError);
  void fail(const mqtt::DecodeResult& r);
  void write(std::string_view bytes);
  // PUBACK/PUBREC/PUBREL/PUBCOMP; the reason code goes to v5 clients only.
  void send_ack(mqtt::PacketType type, uint16_t packet_id,
                mqtt::ReasonCode code = mqtt::ReasonCode::Success);

  // client_connect.cpp: CONNECT, authentication, CONNACK.
  void handle_connect(const mqtt::Frame& f);
  // The v5 CONNECT properties; false when the connection was refused.
  bool accept_connect_properties(const mqtt::Connect& c);
  void authenticate(const mqtt::Connect& c);
  // The session claim on this node (after the cluster's, if any): attach at
  // once, or take the session over from the shard that holds it.
  void claim_locally();
  // CONNACK with `code` (a 3.x client gets the return code it maps to).
  void send_connack(bool present, mqtt::ReasonCode code);
  // Refuses the CONNECT with `code` (the v5 reason, mapped for 3.x) and closes.
  void refuse(mqtt::ReasonCode code, std::string_view reason);

  // client_inbound.cpp: the client's PUBLISHes and its acks of ours.
  void handle_publish(const mqtt::Frame& f);
  // Resolves a v5 Topic Alias into p.topic; false (connection closed) when invalid.
  bool resolve_topic_alias(mqtt::Publish& p);
  void handle_ack(const mqtt::Frame& f);

  // client_subscribe.cpp
  void handle_subscribe(const mqtt::Frame& f);
  void handle_unsubscribe(const mqtt::Frame& f);
  void send_retained(std::string_view filter, uint8_t granted, uint32_t sub_id);

  // client_outbound.cpp: the QoS 1/2 window towards the client over Session.
  // Writes one PUBLISH of `d` to this client; false when it must not go out
  // (expired before delivery started, or above the client's Maximum Packet Size).
  bool write_publish(const Delivery& d, uint16_t packet_id, bool dup, bool check_expiry = true);
  uint32_t send_window() const;
  void pump_queue();
  // Resends flights held back after a resume while the window has room.
  void send_held_back(uint32_t window);
  void resend_inflight();

  Shard& shard_;
  // The only way out to the network layer (wants_write, close_requested): no
  // pointer back to the connection and no shard-wide lists.
  Transport* transport_;
  uint64_t conn_id_;
  std::string remote_;
  std::string client_id_;
  std::shared_ptr<Session> session_;
  std::unique_ptr<StoredWill> will_;  // until the connection ends
  std::optional<std::string> username_;
  std::shared_ptr<const auth::ClientRules> rules_ = auth::ClientRules::allow_all();
  uint64_t refused_publishes_ = 0;
  OutQueue out_;
  State state_ = State::AwaitConnect;
  uint8_t level_ = 0;
  bool clean_ = true;
  bool closing_ = false;
  bool graceful_ = false;  // DISCONNECT received: no will
  uint16_t keep_alive_s_ = 0;
  // MQTT 5 connection parameters (defaults are the 3.1.1 behaviour).
  uint32_t session_expiry_s_ = 0;
  uint16_t client_receive_max_ = 65535;    // QoS 1/2 PUBLISH unacknowledged towards it
  uint32_t client_max_packet_ = 0;         // largest packet it accepts; 0: no limit
  uint16_t out_alias_limit_ = 0;           // topic aliases we may use towards it
  bool assigned_id_ = false;               // we chose its client id
  bool server_keep_alive_ = false;         // we overrode its keep-alive
  std::unique_ptr<TopicAliases> aliases_;  // MQTT 5, allocated on first use
  int64_t created_ms_ = 0;
  int64_t last_rx_ms_ = 0;
  uint64_t cluster_revision_ = 0;  // this connection's claim of its id in the cluster
  std::string close_reason_;
};

}  // namespace broker
