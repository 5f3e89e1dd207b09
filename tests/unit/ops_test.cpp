// Unit tests for the Prometheus page (src/ops/exposition, metrics) and the
// $SYS values and load averages (src/broker/sys_topics).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "broker/sys_topics.hpp"
#include "ops/exposition.hpp"
#include "ops/metrics.hpp"

namespace {

TEST(Exposition, EscapesLabelValuesAndHelp) {
  // Text format 0.0.4: label values escape \ " and newline; HELP escapes \ and newline.
  EXPECT_EQ(ops::Exposition::escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(ops::Exposition::escape_help("x\\y\n\"z\""), "x\\\\y\\n\"z\"");
}

TEST(Exposition, FormatsValuesAsPrometheusClientsDo) {
  EXPECT_EQ(ops::Exposition::format_value(0), "0");
  EXPECT_EQ(ops::Exposition::format_value(1.5), "1.5");
  EXPECT_EQ(ops::Exposition::format_value(1e21), "1e+21");
  EXPECT_EQ(ops::Exposition::format_value(std::nan("")), "NaN");
  EXPECT_EQ(ops::Exposition::format_value(INFINITY), "+Inf");
  EXPECT_EQ(ops::Exposition::format_value(-INFINITY), "-Inf");
}

TEST(Exposition, FamilyThenSamples) {
  ops::Exposition e;
  e.family("m_total", "counter", "things");
  e.sample("m_total", uint64_t{3}, {{"qos", "1"}, {"why", "a\"b"}});
  e.gauge("g", "a gauge", 7);
  EXPECT_EQ(e.text(),
            "# HELP m_total things\n# TYPE m_total counter\nm_total{qos=\"1\",why=\"a\\\"b\"} 3\n"
            "# HELP g a gauge\n# TYPE g gauge\ng 7\n");
}

TEST(Metrics, EveryRequiredFamilyWithItsValue) {
  ops::MetricsInput in;
  in.broker.connected = 4;
  in.broker.connections_total = 9;
  in.broker.messages_in_qos[1] = 11;
  in.broker.messages_out_qos[2] = 12;
  in.broker.dropped_queued = 13;
  in.broker.bytes_in = 14;
  in.broker.bytes_out = 15;
  in.broker.subscriptions = 16;
  in.broker.retained = 17;
  in.broker.sessions = 6;  // 4 online, 2 offline
  in.store_up = false;
  in.store_pending = 18;
  in.store_write_errors = 19;
  in.grpc_streams = 2;
  in.grpc_stream_dropped = 20;
  const std::string page = ops::render_metrics(in);
  for (const char* line : {
           "mqtt_connections 4\n",
           "mqtt_connections_total 9\n",
           "mqtt_messages_received_total{qos=\"1\"} 11\n",
           "mqtt_messages_sent_total{qos=\"2\"} 12\n",
           "mqtt_messages_dropped_total{reason=\"session_queue_full\"} 13\n",
           "mqtt_bytes_received_total 14\n",
           "mqtt_bytes_sent_total 15\n",
           "mqtt_subscriptions 16\n",
           "mqtt_retained_messages 17\n",
           "mqtt_sessions{state=\"online\"} 4\n",
           "mqtt_sessions{state=\"offline\"} 2\n",
           "mqtt_store_up 0\n",
           "mqtt_store_pending 18\n",
           "mqtt_store_write_errors_total 19\n",
           "grpc_streams 2\n",
           "grpc_stream_dropped_total 20\n",
       }) {
    EXPECT_NE(page.find(line), std::string::npos) << line;
  }
}

TEST(LoadAverage, ConvergesToTheRatePerMinute) {
  broker::LoadAverage one_minute(60);
  for (int i = 0; i < 600; ++i) one_minute.update(100, 1);  // 100 per second for 10 minutes
  EXPECT_NEAR(one_minute.value(), 6000, 1);
  // One interval moves it by 1 - exp(-dt/window) of the way, as Mosquitto's does.
  broker::LoadAverage fresh(60);
  fresh.update(10, 10);  // 60 per minute over 10 s
  EXPECT_NEAR(fresh.value(), 60 * (1 - std::exp(-10.0 / 60)), 1e-9);
  fresh.update(0, 0);  // no time passed: unchanged
  EXPECT_NEAR(fresh.value(), 60 * (1 - std::exp(-10.0 / 60)), 1e-9);
}

TEST(SysValues, MosquittoNamesAndFormats) {
  broker::StatsSnapshot s;
  s.connected = 3;
  s.messages_in = 10;
  s.messages_out = 20;
  auto v = broker::sys_values(s, "mqtt-server 0.1.0", 42);
  EXPECT_EQ(v["$SYS/broker/version"], "mqtt-server 0.1.0");
  EXPECT_EQ(v["$SYS/broker/uptime"], "42 seconds");
  EXPECT_EQ(v["$SYS/broker/clients/connected"], "3");
  EXPECT_EQ(v["$SYS/broker/messages/received"], "10");
  EXPECT_EQ(v["$SYS/broker/messages/sent"], "20");
}

}  // namespace
