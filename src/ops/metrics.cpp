#include "ops/metrics.hpp"

#include "ops/exposition.hpp"

namespace ops {

std::string render_metrics(const MetricsInput& in) {
  const broker::StatsSnapshot& b = in.broker;
  Exposition e;
  e.gauge("mqtt_connections", "MQTT clients connected now (past CONNACK)", b.connected);
  e.gauge("mqtt_sockets", "TCP connections open now, including those not yet past CONNECT",
          b.open_connections);
  e.counter("mqtt_connections_total", "MQTT connections accepted (CONNACK success) since start",
            b.connections_total);

  static const char* const kQos[3] = {"0", "1", "2"};
  e.family("mqtt_messages_received_total", "counter",
           "PUBLISH messages accepted from clients (and wills), by QoS");
  for (int q = 0; q < 3; ++q) {
    e.sample("mqtt_messages_received_total", b.messages_in_qos[q], {{"qos", kQos[q]}});
  }
  e.family("mqtt_messages_sent_total", "counter", "PUBLISH messages written to clients, by QoS");
  for (int q = 0; q < 3; ++q) {
    e.sample("mqtt_messages_sent_total", b.messages_out_qos[q], {{"qos", kQos[q]}});
  }
  e.family("mqtt_messages_dropped_total", "counter",
           "messages the broker did not deliver or accept, by reason");
  e.sample("mqtt_messages_dropped_total", b.dropped_qos0, {{"reason", "qos0_out_queue_full"}});
  e.sample("mqtt_messages_dropped_total", b.dropped_queued, {{"reason", "session_queue_full"}});
  e.sample("mqtt_messages_dropped_total", b.dropped_not_authorized, {{"reason", "not_authorized"}});
  e.sample("mqtt_messages_dropped_total", b.dropped_too_large, {{"reason", "packet_too_large"}});
  e.sample("mqtt_messages_dropped_total", b.dropped_expired, {{"reason", "expired"}});

  e.counter("mqtt_bytes_received_total", "bytes of MQTT packets read from clients", b.bytes_in);
  e.counter("mqtt_bytes_sent_total", "bytes of MQTT packets written to clients", b.bytes_out);
  e.gauge("mqtt_subscriptions", "subscriptions of all sessions", b.subscriptions);
  e.gauge("mqtt_retained_messages", "retained messages held, $SYS ones included", b.retained);
  e.family("mqtt_sessions", "gauge", "sessions, by whether their client is connected");
  e.sample("mqtt_sessions", b.connected, {{"state", "online"}});
  e.sample("mqtt_sessions", b.sessions_offline(), {{"state", "offline"}});

  e.gauge("mqtt_store_up", "1 while the store backend accepts writes, 0 while it fails",
          in.store_up ? 1 : 0);
  e.gauge("mqtt_store_pending", "values waiting to be written to the store", in.store_pending);
  e.counter("mqtt_store_write_errors_total", "failed write attempts to the store backend",
            in.store_write_errors);
  e.gauge("grpc_streams", "open gRPC streams of device messages", in.grpc_streams);
  e.counter("grpc_stream_dropped_total",
            "device messages gRPC streams dropped because they fell behind",
            in.grpc_stream_dropped);

  const ProcessStats& p = in.process;
  if (p.ok) {
    e.family("process_cpu_seconds_total", "counter", "user and system CPU time spent in seconds");
    e.sample("process_cpu_seconds_total", p.cpu_seconds);
    e.gauge("process_resident_memory_bytes", "resident memory size in bytes", p.resident_bytes);
    e.gauge("process_virtual_memory_bytes", "virtual memory size in bytes", p.virtual_bytes);
    e.family("process_start_time_seconds", "gauge",
             "start time of the process since the Unix epoch in seconds");
    e.sample("process_start_time_seconds", p.start_time_seconds);
  }
  e.gauge("process_open_fds", "open file descriptors", p.open_fds);
  e.gauge("process_max_fds", "maximum number of open file descriptors", p.max_fds);
  return e.text();
}

}  // namespace ops
