// The Cassandra backend: option parsing, behaviour with Cassandra unreachable,
// and (when MQTT_TEST_CASSANDRA=host:port names a running node, e.g. one from
// tests/cassandra/cassandra_server.py --serve) writes, reads, deletes, loads and
// the pipelined write rate against the real thing.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "result_helpers.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "store/cassandra_backend.hpp"
#include "store/coalescer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

broker::MessagePtr msg(std::string device, std::string topic, std::string payload, int64_t t = 1000,
                       uint8_t qos = 0) {
  return std::make_shared<const broker::Message>(topic, payload, qos, false, device, t);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A port on 127.0.0.1 that nothing listens on (bound, then released).
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(CassandraOptions, ParsesContactPoints) {
  std::vector<store::ContactPoint> p;
  std::string error;
  ASSERT_TRUE(test_util::ok_into(
      store::parse_contact_points("10.0.0.1:9043, db2 ,[::1]:9000,[fe80::1],::1"), p, error))
      << error;
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].host, "10.0.0.1");
  EXPECT_EQ(p[0].port, 9043);
  EXPECT_EQ(p[1].host, "db2");
  EXPECT_EQ(p[1].port, 9042);
  EXPECT_EQ(p[2].host, "::1");
  EXPECT_EQ(p[2].port, 9000);
  EXPECT_EQ(p[3].host, "fe80::1");
  EXPECT_EQ(p[3].port, 9042);
  EXPECT_EQ(p[4].host, "::1");  // a bare IPv6 address: the default port
  EXPECT_EQ(p[4].port, 9042);

  for (const char* bad :
       {"", "host:0", "host:65536", "host:x", ":9042", "a:1,,b:2", "[::1", "[::1]x", "host:"}) {
    EXPECT_FALSE(test_util::ok_into(store::parse_contact_points(bad), p, error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

TEST(CassandraOptions, ParsesConsistencyNames) {
  EXPECT_EQ(store::parse_consistency("ONE"), cql::Consistency::One);
  EXPECT_EQ(store::parse_consistency("local_quorum"), cql::Consistency::LocalQuorum);
  EXPECT_EQ(store::parse_consistency("Local-One"), cql::Consistency::LocalOne);
  EXPECT_EQ(store::parse_consistency(" quorum "), cql::Consistency::Quorum);
  EXPECT_EQ(store::parse_consistency("each_quorum"), cql::Consistency::EachQuorum);
  EXPECT_FALSE(store::parse_consistency("most"));
  EXPECT_STREQ(store::consistency_name(cql::Consistency::LocalQuorum), "LOCAL_QUORUM");
}

TEST(CassandraOptions, Validates) {
  store::CassandraOptions o;
  std::string error;
  EXPECT_FALSE(test_util::ok(store::validate(o), error));  // no host
  o.hosts = {{"127.0.0.1", 9042}};
  EXPECT_TRUE(test_util::ok(store::validate(o), error)) << error;
  o.keyspace = "bad-name";
  EXPECT_FALSE(test_util::ok(store::validate(o), error));
  o.keyspace = "ks; DROP";
  EXPECT_FALSE(test_util::ok(store::validate(o), error));
  o.keyspace = "My_ks2";
  EXPECT_TRUE(test_util::ok(store::validate(o), error)) << error;
  o.replication = "{'class': 'NetworkTopologyStrategy', 'dc1': 3}";
  EXPECT_TRUE(test_util::ok(store::validate(o), error)) << error;
  o.replication = "'class': 'SimpleStrategy'";
  EXPECT_FALSE(test_util::ok(store::validate(o), error));
  o.replication = "{}; DROP KEYSPACE x; {}";
  EXPECT_FALSE(test_util::ok(store::validate(o), error));
}

TEST(CassandraBackend, DescribesItselfAndItsSchema) {
  store::CassandraOptions o;
  o.hosts = {{"10.0.0.1", 9042}, {"::1", 9043}};
  store::CassandraBackend b(o);
  EXPECT_EQ(b.describe(),
            "Cassandra at 10.0.0.1:9042,[::1]:9043 (keyspace retain_kv, LOCAL_QUORUM)");
  auto s = b.schema_statements();
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[1],
            "CREATE TABLE IF NOT EXISTS retain_kv.device_data (device_id text, topic text, "
            "payload blob, updatetime timestamp, PRIMARY KEY (device_id, topic))");
  // MQTT 5 columns of retained messages, also added to a table an older server made.
  EXPECT_EQ(s[2],
            "CREATE TABLE IF NOT EXISTS retain_kv.retained (topic text PRIMARY KEY, qos int, "
            "payload blob, updatetime timestamp, properties blob, expiry int)");
  EXPECT_EQ(s[4], "ALTER TABLE retain_kv.retained ADD (properties blob, expiry int)");
}

// Cassandra down: open() succeeds at once, writes fail quickly and keep
// everything, reads are Unavailable (the second one without a new connect),
// loads fail with an error that says why.
TEST(CassandraBackend, UnreachableIsNotFatalAndLosesNothing) {
  store::CassandraOptions o;
  o.hosts = {{"127.0.0.1", closed_port()}, {"127.0.0.1", closed_port()}};
  store::CassandraBackend b(o);
  std::string error;
  const auto t0 = Clock::now();
  ASSERT_TRUE(test_util::ok(b.open(), error)) << error;

  store::Coalescer c;
  c.put(msg("d1", "t1", "v1"));
  c.put(msg("d2", "t2", "v2"));
  store::WriteSet ws;
  c.take(ws.latest);
  ws.retained.emplace("r", msg("", "r", "x"));
  ws.sessions.emplace("s", std::nullopt);
  EXPECT_FALSE(test_util::ok(b.write(ws), error));
  EXPECT_NE(error.find("cannot connect"), std::string::npos) << error;
  EXPECT_NE(error.find(std::to_string(o.hosts[1].port)), std::string::npos) << error;
  EXPECT_EQ(ws.size(), 4u);

  store::Record r;
  EXPECT_EQ(b.read("d1", "t1", r), store::ReadStatus::Unavailable);
  EXPECT_EQ(b.read("d1", "t1", r), store::ReadStatus::Unavailable);

  error.clear();
  EXPECT_FALSE(test_util::ok(b.load_retained([](const store::StoredRetained&) {}), error));
  EXPECT_NE(error.find("cannot connect"), std::string::npos) << error;
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
}

// ---- against a real node ------------------------------------------------------------------------

class CassandraLive : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* addr = std::getenv("MQTT_TEST_CASSANDRA");
    if (addr == nullptr || *addr == '\0') {
      GTEST_SKIP() << "set MQTT_TEST_CASSANDRA=host:port to run against a real Cassandra";
    }
    std::string error;
    ASSERT_TRUE(test_util::ok_into(store::parse_contact_points(addr), options_.hosts, error))
        << error;
    options_.keyspace = "mqtt_unit_test";
    options_.consistency = cql::Consistency::One;
  }

  store::CassandraOptions options_;
};

TEST_F(CassandraLive, WritesReadsDeletesAndLoads) {
  store::CassandraBackend b(options_);
  std::string error;
  ASSERT_TRUE(test_util::ok(b.open(), error)) << error;
  const int64_t t = now_ms();
  store::Coalescer c;
  c.put(msg("dev-1", "a/b", std::string("\0bin\xff", 5), t));
  c.put(msg("dev-1", "a/c", "", t + 1));
  store::WriteSet ws;
  c.take(ws.latest);
  ws.retained.emplace("keep/1", msg("", "keep/1", "r1", t, 1));
  ws.retained.emplace("gone/1", msg("", "gone/1", "r2", t, 2));
  ws.sessions.emplace("client-a", std::string("snap\0a", 6));
  ws.sessions.emplace("client-b", std::string("snap-b"));
  ASSERT_TRUE(test_util::ok(b.write(ws), error)) << error;
  EXPECT_TRUE(ws.empty());

  store::Record r;
  ASSERT_EQ(b.read("dev-1", "a/b", r), store::ReadStatus::Found);
  EXPECT_EQ(r.payload, std::string("\0bin\xff", 5));
  EXPECT_EQ(r.updated_ms, t);
  ASSERT_EQ(b.read("dev-1", "a/c", r), store::ReadStatus::Found);
  EXPECT_EQ(r.payload, "");
  EXPECT_EQ(b.read("dev-1", "nothing", r), store::ReadStatus::NotFound);

  // Delete markers.
  ws.retained.emplace("gone/1", msg("", "gone/1", "", t + 2));
  ws.sessions.emplace("client-b", std::nullopt);
  ASSERT_TRUE(test_util::ok(b.write(ws), error)) << error;

  std::map<std::string, std::pair<std::string, int>> retained;
  ASSERT_TRUE(test_util::ok(b.load_retained([&](const store::StoredRetained& s) {
    retained[std::string(s.topic)] = {std::string(s.payload), s.qos};
    EXPECT_EQ(s.updated_ms, t);
  }),
                            error))
      << error;
  EXPECT_EQ(retained.size(), 1u);
  EXPECT_EQ(retained["keep/1"], (std::pair<std::string, int>{"r1", 1}));

  std::map<std::string, std::string> sessions;
  ASSERT_TRUE(test_util::ok(b.load_sessions([&](std::string_view id, std::string_view snap) {
    sessions[std::string(id)] = snap;
  }),
                            error))
      << error;
  EXPECT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions["client-a"], std::string("snap\0a", 6));

  // Clean up for the next run.
  ws.retained.emplace("keep/1", msg("", "keep/1", "", t + 3));
  ws.sessions.emplace("client-a", std::nullopt);
  ASSERT_TRUE(test_util::ok(b.write(ws), error)) << error;
}

// A keyspace that was never created (Cassandra came up after a start without
// it, nothing written yet) holds no value: NotFound, not Unavailable.
TEST_F(CassandraLive, ReadWithoutSchemaIsNotFound) {
  options_.keyspace = "mqtt_unit_never_created";
  store::CassandraBackend b(options_);
  store::Record r;
  EXPECT_EQ(b.read("dev", "t", r), store::ReadStatus::NotFound);
}

// Values over Cassandra's limits (a mutation over half commitlog_segment_size,
// a request over native_transport_max_frame_size) are refused for good: they
// are dropped (and logged), the rest of the batch is written, and write()
// reports success rather than an outage that retrying could never end.
TEST_F(CassandraLive, DropsAValueCassandraRefusesForGood) {
  store::CassandraBackend b(options_);
  std::string error;
  ASSERT_TRUE(test_util::ok(b.open(), error)) << error;
  store::Coalescer c;
  // Over 4 MiB, half of the test node's 8 MiB commit log segments.
  c.put(msg("dev-big", "5mb", std::string(5 << 20, 'x')));
  c.put(msg("dev-big", "20mb", std::string(20 << 20, 'x')));
  c.put(msg("dev-big", "ok", "y"));
  store::WriteSet ws;
  c.take(ws.latest);
  EXPECT_TRUE(test_util::ok(b.write(ws), error)) << error;
  EXPECT_TRUE(ws.empty());
  store::Record r;
  EXPECT_EQ(b.read("dev-big", "ok", r), store::ReadStatus::Found);
  EXPECT_EQ(b.read("dev-big", "5mb", r), store::ReadStatus::NotFound);
}

TEST_F(CassandraLive, PipelinedWriteRate) {
  store::CassandraBackend b(options_);
  std::string error;
  ASSERT_TRUE(test_util::ok(b.open(), error)) << error;
  const char* rows = std::getenv("MQTT_TEST_CASSANDRA_ROWS");
  const int n = rows != nullptr ? std::atoi(rows) : 50000;
  {  // connect and create the schema outside the timing
    store::Coalescer c;
    c.put(msg("dev-warm", "t", "w"));
    store::WriteSet ws;
    c.take(ws.latest);
    ASSERT_TRUE(test_util::ok(b.write(ws), error)) << error;
  }
  for (int round = 0; round < 2; ++round) {
    store::Coalescer c;
    const int64_t t = now_ms();
    for (int i = 0; i < n; ++i) {
      c.put(msg("dev-" + std::to_string(i / 100), "rate/" + std::to_string(i % 100),
                "payload-" + std::to_string(round) + "-" + std::to_string(i), t));
    }
    store::WriteSet ws;
    c.take(ws.latest);
    const auto t0 = Clock::now();
    ASSERT_TRUE(test_util::ok(b.write(ws), error)) << error;
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("round %d: %d rows in %.2f s = %.0f writes/s\n", round, n, s, n / s);
    EXPECT_TRUE(ws.empty());
  }
  store::Record r;
  ASSERT_EQ(b.read("dev-0", "rate/7", r), store::ReadStatus::Found);
  EXPECT_EQ(r.payload, "payload-1-7");
}

}  // namespace
