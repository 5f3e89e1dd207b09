// Live check of src/cql against a real Cassandra (started by cassandra_server.py;
// tests/cassandra/live_check.py runs all of this). Build by hand:
//
//   g++ -std=c++20 -O2 -Wall -Wextra -Werror -Isrc src/cql/*.cpp
//       tests/cassandra/cql_live_check.cpp -o build/cql_live_check   (one line)
//
// Modes:
//   cql_live_check --port P [--rows N] [--in-flight K]
//       creates retain_kv.device_data, pipelines N prepared UPDATEs (device_id
//       "dev-<i/100>", topic "t/<i%100>", payload "payload-<i>", updatetime
//       base+i), reads one row back, runs a BATCH and an invalid query, prints
//       timings, exits 0 when every check passed.
//   cql_live_check --port P --resilience SECONDS [--rows N]
//       writes N rows in rounds for up to SECONDS, reconnecting with back-off when
//       the node goes away (the driver script stops and starts it meanwhile);
//       exits 0 once every row was acknowledged.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cql/backoff.hpp"
#include "cql/connection.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  (ok ? g_passed : g_failed)++;
}

const char* kCreateKeyspace =
    "CREATE KEYSPACE IF NOT EXISTS retain_kv WITH replication = "
    "{'class': 'SimpleStrategy', 'replication_factor': 1}";
const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS retain_kv.device_data (device_id text, topic text, "
    "payload blob, updatetime timestamp, PRIMARY KEY (device_id, topic))";
const char* kUpdate =
    "UPDATE retain_kv.device_data SET payload = ?, updatetime = ? "
    "WHERE device_id = ? AND topic = ?";
const char* kSelect =
    "SELECT payload, updatetime FROM retain_kv.device_data WHERE device_id = ? AND topic = ?";

struct Row {
  std::string device, topic, payload, time;
};

Row make_row(int i, int64_t base_ms) {
  return Row{"dev-" + std::to_string(i / 100), "t/" + std::to_string(i % 100),
             "payload-" + std::to_string(i), cql::encode_bigint(base_ms + i)};
}

struct Args {
  uint16_t port = 9042;
  int rows = 10000;
  int in_flight = 1024;
  int resilience_seconds = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (k == "--port") a.port = static_cast<uint16_t>(v);
    if (k == "--rows") a.rows = v;
    if (k == "--in-flight") a.in_flight = v;
    if (k == "--resilience") a.resilience_seconds = v;
  }
  return a;
}

// Writes rows [0, n) not yet acknowledged (acked[i] false) over `conn`, keeping
// up to in-flight requests outstanding. Returns how many failed this round.
int write_pipelined(cql::Connection& conn, const cql::Prepared& upd, int n, int64_t base_ms,
                    std::vector<char>& acked, std::string* first_error) {
  std::vector<cql::Completion> done;
  int failed = 0;
  auto drain = [&](milliseconds wait) {
    done.clear();
    conn.poll(wait, done);
    for (auto& c : done) {
      if (c.result) {
        acked[c.tag] = 1;
      } else {
        ++failed;
        if (first_error->empty()) *first_error = c.result.error().to_string();
      }
    }
  };
  for (int i = 0; i < n && conn.is_open(); ++i) {
    if (acked[static_cast<size_t>(i)]) continue;
    while (conn.free_streams() == 0 && conn.is_open()) drain(milliseconds(100));
    const Row r = make_row(i, base_ms);
    const cql::Value values[] = {cql::Value::of(r.payload), cql::Value::of(r.time),
                                 cql::Value::of(r.device), cql::Value::of(r.topic)};
    cql::QueryParams p;
    p.consistency = cql::Consistency::One;
    p.values = values;
    if (auto st = conn.submit_execute(upd, p, static_cast<uint64_t>(i)); !st) {
      ++failed;
      if (first_error->empty()) *first_error = st.error().to_string();
    }
    // Let responses come back while we keep writing, without blocking.
    if ((i & 255) == 255) drain(milliseconds(0));
  }
  while (conn.in_flight() > 0 && conn.is_open()) drain(milliseconds(100));
  drain(milliseconds(0));  // Disconnected completions, if the connection dropped
  return failed;
}

int run_checks(const Args& a) {
  cql::ConnectOptions opt;
  opt.port = a.port;
  opt.max_in_flight = a.in_flight;
  auto t0 = Clock::now();
  auto conn_r = cql::Connection::open(opt);
  if (!conn_r) {
    std::printf("FAIL connect: %s\n", conn_r.error().to_string().c_str());
    return 1;
  }
  auto& conn = *conn_r.value();
  std::printf("connect + STARTUP/READY: %.2f ms\n", ms_since(t0));

  auto sup = conn.options();
  check(sup.ok(), "OPTIONS -> SUPPORTED");
  if (sup) {
    for (auto& [k, v] : sup->options) {
      if (k == "PROTOCOL_VERSIONS" || k == "CQL_VERSION") {
        std::string vals;
        for (auto& s : v) vals += s + " ";
        std::printf("     %s: %s\n", k.c_str(), vals.c_str());
      }
    }
  }

  t0 = Clock::now();
  auto ks = conn.query(kCreateKeyspace);
  check(ks.ok(), "CREATE KEYSPACE retain_kv" + (ks ? "" : ": " + ks.error().to_string()));
  auto tb = conn.query(kCreateTable);
  check(tb.ok(), "CREATE TABLE device_data" + (tb ? "" : ": " + tb.error().to_string()));
  std::printf("schema: %.2f ms\n", ms_since(t0));

  t0 = Clock::now();
  auto upd = conn.prepare(kUpdate);
  check(upd.ok(), "PREPARE UPDATE" + (upd ? "" : ": " + upd.error().to_string()));
  if (!upd) return 1;
  check((*upd)->metadata.columns.size() == 4, "UPDATE has 4 bind markers");
  std::printf("prepare: %.2f ms\n", ms_since(t0));
  auto again = conn.prepare(kUpdate);
  check(again.ok() && again->get() == upd->get(), "prepare cache returns the same statement");

  // Pipelined writes.
  const int64_t base_ms = 1'700'000'000'000;
  std::vector<char> acked(static_cast<size_t>(a.rows), 0);
  std::string first_error;
  t0 = Clock::now();
  const int failed = write_pipelined(conn, **upd, a.rows, base_ms, acked, &first_error);
  const double write_ms = ms_since(t0);
  int ok_count = 0;
  for (char c : acked) ok_count += c;
  std::printf(
      "pipelined %d prepared UPDATEs (max %d in flight): %.1f ms, %.0f writes/s, "
      "%d acknowledged, %d failed%s%s\n",
      a.rows, a.in_flight, write_ms, a.rows / (write_ms / 1000.0), ok_count, failed,
      first_error.empty() ? "" : ", first error: ", first_error.c_str());
  check(ok_count == a.rows && failed == 0, "every pipelined write acknowledged");

  // Sequential writes, for comparison.
  {
    const int n = 500;
    t0 = Clock::now();
    int seq_ok = 0;
    for (int i = 0; i < n; ++i) {
      const Row r = make_row(i, base_ms);
      const cql::Value values[] = {cql::Value::of(r.payload), cql::Value::of(r.time),
                                   cql::Value::of(r.device), cql::Value::of(r.topic)};
      cql::QueryParams p;
      p.values = values;
      seq_ok += conn.execute(**upd, p).ok() ? 1 : 0;
    }
    const double seq_ms = ms_since(t0);
    std::printf("sequential %d UPDATEs (one in flight): %.1f ms, %.0f writes/s\n", n, seq_ms,
                n / (seq_ms / 1000.0));
    check(seq_ok == n, "every sequential write acknowledged");
  }

  // Read one row back.
  t0 = Clock::now();
  auto sel = conn.prepare(kSelect);
  check(sel.ok(), "PREPARE SELECT");
  if (!sel) return 1;
  const int probe = a.rows > 4242 ? 4242 : a.rows - 1;
  const Row want = make_row(probe, base_ms);
  const cql::Value keys[] = {cql::Value::of(want.device), cql::Value::of(want.topic)};
  cql::QueryParams sp;
  sp.values = keys;
  auto rows = cql::as_rows(conn.execute(**sel, sp));
  std::printf("read one row: %.2f ms\n", ms_since(t0));
  check(rows.ok() && rows->row_count == 1, "SELECT returns one row");
  if (rows && rows->row_count == 1) {
    check(rows->metadata.columns.size() == 2 && rows->metadata.columns[0].name == "payload" &&
              rows->metadata.columns[0].type.id == cql::DataType::kBlob &&
              rows->metadata.columns[1].type.id == cql::DataType::kTimestamp,
          "row metadata: payload blob, updatetime timestamp");
    check(rows->at(0, 0) && *rows->at(0, 0) == want.payload,
          "payload reads back as written (" + want.payload + ")");
    auto ts = rows->at(0, 1) ? cql::decode_bigint(*rows->at(0, 1)) : std::nullopt;
    check(ts && *ts == base_ms + probe, "updatetime reads back as written");
  }

  // A missing row: zero rows, not an error.
  const cql::Value none[] = {cql::Value::of("no-such-device"), cql::Value::of("x")};
  sp.values = none;
  auto empty = cql::as_rows(conn.execute(**sel, sp));
  check(empty.ok() && empty->row_count == 0, "SELECT of a missing key returns zero rows");

  // BATCH of prepared UPDATEs (unlogged), overwriting rows 0..9 with new payloads.
  {
    std::vector<Row> rs;
    for (int i = 0; i < 10; ++i) {
      rs.push_back(make_row(i, base_ms + 1000));
      rs.back().payload = "batched-" + std::to_string(i);
    }
    std::vector<std::array<cql::Value, 4>> vals;
    for (auto& r : rs) {
      vals.push_back({cql::Value::of(r.payload), cql::Value::of(r.time), cql::Value::of(r.device),
                      cql::Value::of(r.topic)});
    }
    std::vector<cql::BatchStatement> stmts;
    for (auto& v : vals) stmts.push_back(cql::BatchStatement{true, (*upd)->id, v});
    cql::BatchParams bp;
    t0 = Clock::now();
    std::vector<cql::Completion> done;
    auto st = conn.submit_batch(stmts, bp, 7);
    while (st && done.empty() && conn.is_open()) conn.poll(milliseconds(1000), done);
    std::printf("BATCH of 10 prepared UPDATEs: %.2f ms\n", ms_since(t0));
    check(st.ok() && done.size() == 1 && done[0].tag == 7 && done[0].result.ok(),
          "BATCH acknowledged");
  }

  // Server errors come back as errors with their code, and the connection stays up.
  auto bad = conn.query("SELECT * FROM retain_kv.no_such_table");
  check(!bad.ok() && bad.error().code == cql::Errc::Server &&
            bad.error().server_code == cql::server_error::kInvalid,
        "query of a missing table -> server error 0x2200 (" +
            (bad ? std::string("no error") : bad.error().to_string()) + ")");
  auto syntax = conn.query("SELEKT 1");
  check(!syntax.ok() && syntax.error().server_code == cql::server_error::kSyntaxError,
        "bad syntax -> server error 0x2000");
  check(conn.is_open(), "connection still open after server errors");

  auto local = cql::as_rows(conn.query("SELECT release_version FROM system.local"));
  if (local && local->row_count == 1 && local->at(0, 0)) {
    std::printf("server release_version: %s\n", local->at(0, 0)->c_str());
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

// Keeps writing until every row is acknowledged or time runs out, reconnecting
// with back-off whenever the connection drops.
int run_resilience(const Args& a) {
  cql::ConnectOptions opt;
  opt.port = a.port;
  opt.max_in_flight = a.in_flight;
  opt.connect_timeout = milliseconds(2000);
  opt.request_timeout = milliseconds(5000);
  const auto stop_at = Clock::now() + std::chrono::seconds(a.resilience_seconds);
  const int64_t base_ms = 1'800'000'000'000;
  std::vector<char> acked(static_cast<size_t>(a.rows), 0);
  cql::Backoff backoff(milliseconds(100), milliseconds(2000));
  int connects = 0, drops = 0, failures = 0, rounds = 0;
  std::unique_ptr<cql::Connection> conn;
  std::string last_error;
  auto all_acked = [&] {
    for (char c : acked) {
      if (!c) return false;
    }
    return true;
  };
  while (Clock::now() < stop_at && !all_acked()) {
    if (!conn || !conn->is_open()) {
      if (conn) {
        ++drops;
        std::printf("connection lost: %s\n", conn->close_reason().to_string().c_str());
      }
      conn.reset();
      auto c = cql::Connection::open(opt);
      if (!c) {
        last_error = c.error().to_string();
        std::this_thread::sleep_for(backoff.next());
        continue;
      }
      conn = std::move(c).value();
      ++connects;
      backoff.reset();
      std::printf("connected (#%d)\n", connects);
      fflush(stdout);
    }
    auto upd = conn->prepare(kUpdate);
    if (!upd) {
      last_error = upd.error().to_string();
      std::this_thread::sleep_for(backoff.next());
      continue;
    }
    // Rounds of 1000 unacknowledged rows, paced so the run spans the restart.
    std::vector<char> round_acked = acked;
    int budget = 1000;
    for (size_t i = 0; i < round_acked.size(); ++i) {
      if (!round_acked[i]) {
        if (budget-- <= 0) round_acked[i] = 1;  // leave for a later round
      }
    }
    std::string err;
    const std::vector<char> before = round_acked;
    failures += write_pipelined(*conn, **upd, a.rows, base_ms, round_acked, &err);
    for (size_t i = 0; i < acked.size(); ++i) {
      if (round_acked[i] && !before[i]) acked[i] = 1;
    }
    if (!err.empty()) last_error = err;
    ++rounds;
    std::this_thread::sleep_for(milliseconds(200));
  }
  int ok_count = 0;
  for (char c : acked) ok_count += c;
  std::printf(
      "resilience: %d/%d rows acknowledged, %d rounds, %d connects, %d drops, "
      "%d failed requests (retried), last error: %s\n",
      ok_count, a.rows, rounds, connects, drops, failures,
      last_error.empty() ? "none" : last_error.c_str());
  const bool ok = ok_count == a.rows;
  std::printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  return a.resilience_seconds > 0 ? run_resilience(a) : run_checks(a);
}
