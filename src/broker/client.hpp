// One MQTT connection's protocol state machine (3.1 and 3.1.1). It consumes
// bytes and produces bytes in its OutQueue; the network layer owns the socket.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/authenticator.hpp"
#include "broker/out_queue.hpp"
#include "mqtt/codec.hpp"

namespace broker {

class Session;
class Shard;

struct StoredWill {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
};

class Client {
 public:
  Client(Shard& shard, uint64_t conn_id, std::string remote);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Handles every complete packet at the front of `in`; returns the bytes used.
  // Stops early while the session is being handed over from another shard.
  size_t on_bytes(std::string_view in);

  // The connection ended (socket error, EOF, protocol error, keep-alive, takeover,
  // server shutdown). Publishes the will unless the client sent DISCONNECT,
  // and detaches the session. Safe to call once.
  void on_closed(std::string_view reason);

  // Called a few times a second: enforces the keep-alive and the CONNECT timeout.
  void tick(int64_t now_ms);

  // Shard-side operations.
  void attach(const std::shared_ptr<Session>& s, bool session_present);
  void send(const MessagePtr& msg, uint8_t qos, bool retain);
  // Closes this connection from the server side with `reason` logged.
  void close(std::string_view reason, bool publish_will = true);

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
  bool dirty = false;  // queued in the shard's dirty list
  void* io = nullptr;  // the network layer's connection
  // Common Name of a verified TLS client certificate, set by the network layer.
  std::optional<std::string> tls_common_name;
  // Completes a CONNECT once authentication decided (possibly off-thread).
  void finish_connect(auth::ConnectResult r);

 private:
  enum class State : uint8_t { AwaitConnect, Attaching, Connected, Closed };

  void handle(const mqtt::Frame& f);
  void handle_connect(const mqtt::Frame& f);
  void authenticate(const mqtt::Connect& c);
  void handle_publish(const mqtt::Frame& f);
  void handle_subscribe(const mqtt::Frame& f);
  void handle_unsubscribe(const mqtt::Frame& f);
  void handle_ack(const mqtt::Frame& f);
  void protocol_error(std::string_view reason);
  void write(std::string_view bytes);
  void send_connack(bool present, mqtt::ConnackCode code);
  void pump_queue();
  void resend_inflight();
  void send_retained(std::string_view filter, uint8_t granted);

  Shard& shard_;
  uint64_t conn_id_;
  std::string remote_;
  std::string client_id_;
  std::shared_ptr<Session> session_;
  std::optional<StoredWill> will_;
  std::optional<std::string> username_;
  std::shared_ptr<const auth::ClientRules> rules_ = auth::ClientRules::allow_all();
  uint64_t refused_publishes_ = 0;
  OutQueue out_;
  std::string scratch_;  // small outgoing packets are encoded here first
  State state_ = State::AwaitConnect;
  uint8_t level_ = 0;
  bool clean_ = true;
  bool closing_ = false;
  bool graceful_ = false;  // DISCONNECT received: no will
  uint16_t keep_alive_s_ = 0;
  int64_t created_ms_ = 0;
  int64_t last_rx_ms_ = 0;
  std::string close_reason_;
};

}  // namespace broker
