#include "store/cassandra_backend.hpp"
#include "util/clock.hpp"
#include "util/text.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace store {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// ---- options --------------------------------------------------------------------------------

namespace {

// Start of the schema statement that adds the MQTT 5 columns to an older retained table.
constexpr std::string_view kAddRetainedV5Columns = "ALTER TABLE ";

using util::trim;

bool parse_port(std::string_view s, uint16_t& port) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

struct ConsistencyName {
  const char* name;
  cql::Consistency value;
};

constexpr ConsistencyName kConsistencies[] = {
    {"ANY", cql::Consistency::Any},
    {"ONE", cql::Consistency::One},
    {"TWO", cql::Consistency::Two},
    {"THREE", cql::Consistency::Three},
    {"QUORUM", cql::Consistency::Quorum},
    {"ALL", cql::Consistency::All},
    {"LOCAL_QUORUM", cql::Consistency::LocalQuorum},
    {"EACH_QUORUM", cql::Consistency::EachQuorum},
    {"SERIAL", cql::Consistency::Serial},
    {"LOCAL_SERIAL", cql::Consistency::LocalSerial},
    {"LOCAL_ONE", cql::Consistency::LocalOne},
};

// An error that retrying the same value cannot cure: Cassandra refuses the
// value itself (a key over 64 KiB, a mutation over its size limit) or the
// request cannot even be encoded. Missing schema is not one of these: it is
// re-created on the next connect.
bool schema_missing(const cql::Error& e) {
  if (e.code != cql::Errc::Server || e.server_code != cql::server_error::kInvalid) return false;
  const std::string& m = e.message;
  return m.find("unconfigured table") != std::string::npos ||
         m.find("does not exist") != std::string::npos;
}

bool permanent(const cql::Error& e) {
  if (e.code == cql::Errc::TooLarge) return true;
  return e.code == cql::Errc::Server && e.server_code == cql::server_error::kInvalid &&
         !schema_missing(e);
}

bool unprepared(const cql::Error& e) {
  return e.code == cql::Errc::Server && e.server_code == cql::server_error::kUnprepared;
}

std::string host_port(const ContactPoint& p) {
  const bool v6 = p.host.find(':') != std::string::npos;
  return (v6 ? "[" + p.host + "]" : p.host) + ":" + std::to_string(p.port);
}

}  // namespace

util::Result<std::vector<ContactPoint>> parse_contact_points(std::string_view text) {
  std::vector<ContactPoint> out;
  while (true) {
    const size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    ContactPoint p;
    std::string_view host = item, port;
    if (item.starts_with('[')) {  // [v6]:port or [v6]
      const size_t close = item.find(']');
      if (close == std::string_view::npos) {
        return util::Error{"bad Cassandra address '" + std::string(item) + "': missing ']'"};
      }
      host = item.substr(1, close - 1);
      std::string_view rest = item.substr(close + 1);
      if (!rest.empty()) {
        if (rest.front() != ':') {
          return util::Error{"bad Cassandra address '" + std::string(item) + "'"};
        }
        port = rest.substr(1);
      }
    } else if (const size_t colon = item.rfind(':');
               colon != std::string_view::npos && item.find(':') == colon) {
      host = item.substr(0, colon);  // host:port (a bare IPv6 address keeps all its colons)
      port = item.substr(colon + 1);
    }
    if (host.empty()) {
      return util::Error{"bad Cassandra address '" + std::string(item) +
                         "': no host (want host:port)"};
    }
    if (!port.empty() || (item.ends_with(':'))) {
      if (!parse_port(port, p.port)) {
        return util::Error{"bad Cassandra address '" + std::string(item) +
                           "': port must be 1-65535"};
      }
    }
    p.host = std::string(host);
    out.push_back(std::move(p));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<cql::Consistency> parse_consistency(std::string_view name) {
  std::string up;
  for (char c : trim(name)) {
    up.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  for (const auto& c : kConsistencies) {
    if (up == c.name) return c.value;
  }
  return std::nullopt;
}

const char* consistency_name(cql::Consistency c) {
  for (const auto& n : kConsistencies) {
    if (n.value == c) return n.name;
  }
  return "UNKNOWN";
}

util::Status validate(const CassandraOptions& o) {
  if (o.hosts.empty()) {
    return util::Error{"no Cassandra contact point (-d host:port[,host:port...])"};
  }
  const bool ks_ok = !o.keyspace.empty() && o.keyspace.size() <= 48 &&
                     std::all_of(o.keyspace.begin(), o.keyspace.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                     });
  if (!ks_ok) {
    return util::Error{"bad Cassandra keyspace '" + o.keyspace + "': 1-48 letters, digits or '_'"};
  }
  const std::string_view r = trim(o.replication);
  if (r.size() < 2 || r.front() != '{' || r.back() != '}' ||
      r.find(';') != std::string_view::npos) {
    return util::Error{
        "bad Cassandra replication '" + o.replication +
        "': want a CQL map such as {'class': 'SimpleStrategy', 'replication_factor': 1}"};
  }
  if (o.connect_timeout.count() <= 0 || o.request_timeout.count() <= 0 ||
      o.read_timeout.count() <= 0) {
    return util::Error{"Cassandra timeouts must be positive"};
  }
  if (o.max_in_flight < 1 || o.max_in_flight > 32768) {
    return util::Error{"Cassandra in-flight requests must be 1-32768"};
  }
  return {};
}

// ---- life cycle -----------------------------------------------------------------------------

CassandraBackend::CassandraBackend(CassandraOptions options)
    : options_(std::move(options)), table_prefix_(options_.keyspace + ".") {}

CassandraBackend::~CassandraBackend() {
  close();
}

std::string CassandraBackend::describe() const {
  std::string hosts;
  for (const auto& p : options_.hosts) {
    if (!hosts.empty()) hosts += ',';
    hosts += host_port(p);
  }
  return "Cassandra at " + hosts + " (keyspace " + options_.keyspace + ", " +
         consistency_name(options_.consistency) + ")";
}

util::Status CassandraBackend::open() {
  // Nothing to connect yet: an unreachable Cassandra must not hold up the broker.
  return validate(options_);
}

void CassandraBackend::close() {
  writer_.reset();
  stmts_valid_ = false;
  std::lock_guard lock(read_mu_);
  reader_.reset();
  select_latest_.reset();
}

std::vector<std::string> CassandraBackend::schema_statements() const {
  const std::string& ks = options_.keyspace;
  return {
      "CREATE KEYSPACE IF NOT EXISTS " + ks +
          " WITH replication = " + std::string(trim(options_.replication)),
      "CREATE TABLE IF NOT EXISTS " + ks +
          ".device_data (device_id text, topic text, payload blob, updatetime timestamp, "
          "PRIMARY KEY (device_id, topic))",
      "CREATE TABLE IF NOT EXISTS " + ks +
          ".retained (topic text PRIMARY KEY, qos int, payload blob, updatetime timestamp, "
          "properties blob, expiry int)",
      "CREATE TABLE IF NOT EXISTS " + ks +
          ".sessions (client_id text PRIMARY KEY, snapshot blob, updatetime timestamp)",
      // A retained table made before MQTT 5 lacks the two columns; on a newer one this
      // fails with Invalid ("already exists"), which create_schema accepts.
      std::string(kAddRetainedV5Columns) + ks + ".retained ADD (properties blob, expiry int)",
  };
}

util::Result<CassandraBackend::ConnPtr> CassandraBackend::connect_any(milliseconds connect_timeout,
                                                                      milliseconds request_timeout,
                                                                      size_t& next) {
  std::string failures;
  const size_t n = options_.hosts.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (next + k) % n;
    const ContactPoint& p = options_.hosts[i];
    cql::ConnectOptions co;
    co.host = p.host;
    co.port = p.port;
    co.connect_timeout = connect_timeout;
    co.request_timeout = request_timeout;
    co.username = options_.username;
    co.password = options_.password;
    co.max_in_flight = options_.max_in_flight;
    auto r = cql::Connection::open(co);
    if (r) {
      next = i;
      return std::move(r).value();
    }
    if (!failures.empty()) failures += "; ";
    // A failed connect names its address already; anything later in the handshake does not.
    failures += r.error().code == cql::Errc::ConnectFailed
                    ? r.error().message
                    : host_port(p) + ": " + r.error().to_string();
  }
  return util::Error{"cannot connect (" + failures + ")"};
}

util::Status CassandraBackend::create_schema(cql::Connection& conn) {
  for (const std::string& stmt : schema_statements()) {
    auto r = conn.query(stmt);
    if (!r && stmt.starts_with(kAddRetainedV5Columns) && r.error().code == cql::Errc::Server &&
        r.error().server_code == cql::server_error::kInvalid) {
      continue;  // the columns are there already
    }
    if (!r) {
      return util::Error{"cannot create the schema (" + stmt.substr(0, stmt.find(" (")) +
                         "): " + r.error().to_string()};
    }
  }
  return {};
}

// ---- writes (store thread) --------------------------------------------------------------------

int64_t CassandraBackend::next_timestamp_us() {
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  last_timestamp_us_ = std::max(now, last_timestamp_us_ + 1);
  return last_timestamp_us_;
}

util::Status CassandraBackend::prepare_writes() {
  const std::string& t = table_prefix_;
  const std::pair<cql::Connection::PreparedPtr*, std::string> wanted[] = {
      {&stmts_.put_latest, "INSERT INTO " + t +
                               "device_data (device_id, topic, payload, updatetime) "
                               "VALUES (?, ?, ?, ?)"},
      {&stmts_.put_retained, "INSERT INTO " + t +
                                 "retained (topic, qos, payload, updatetime, properties, expiry) "
                                 "VALUES (?, ?, ?, ?, ?, ?)"},
      {&stmts_.del_retained, "DELETE FROM " + t + "retained WHERE topic = ?"},
      {&stmts_.put_session,
       "INSERT INTO " + t + "sessions (client_id, snapshot, updatetime) VALUES (?, ?, ?)"},
      {&stmts_.del_session, "DELETE FROM " + t + "sessions WHERE client_id = ?"},
  };
  for (const auto& [slot, cql_text] : wanted) {
    auto r = writer_->prepare(cql_text);
    if (!r) {
      stmts_valid_ = false;
      return util::Error{"cannot prepare '" + cql_text + "': " + r.error().to_string()};
    }
    *slot = *r;
  }
  stmts_valid_ = true;
  return {};
}

util::Status CassandraBackend::ensure_writer() {
  if (writer_ && writer_->is_open()) {
    if (stmts_valid_) return {};
    util::Status prepared = prepare_writes();
    if (prepared) return {};
    writer_.reset();  // the next try reconnects and re-creates the schema
    return prepared;
  }
  writer_.reset();
  stmts_valid_ = false;
  auto conn = connect_any(options_.connect_timeout, options_.request_timeout, writer_next_host_);
  if (!conn) return std::move(conn).error();
  if (auto schema = create_schema(**conn); !schema) return schema;
  writer_ = std::move(conn).value();
  if (auto prepared = prepare_writes(); !prepared) {
    writer_.reset();
    return prepared;
  }
  spdlog::debug("store: writing to {} via {}", options_.keyspace,
                host_port(options_.hosts[writer_next_host_]));
  return {};
}

util::Status CassandraBackend::write(WriteSet& ws) {
  if (ws.empty()) return {};

  // One operation per entry; the tag of a request is its index here.
  std::vector<Batch::iterator> latest;
  std::vector<decltype(ws.retained)::iterator> retained;
  std::vector<decltype(ws.sessions)::iterator> sessions;
  latest.reserve(ws.latest.size());
  for (auto it = ws.latest.begin(); it != ws.latest.end(); ++it) latest.push_back(it);
  for (auto it = ws.retained.begin(); it != ws.retained.end(); ++it) retained.push_back(it);
  for (auto it = ws.sessions.begin(); it != ws.sessions.end(); ++it) sessions.push_back(it);
  const size_t n_latest = latest.size(), n_retained = retained.size();
  const size_t total = n_latest + n_retained + sessions.size();

  enum State : uint8_t { kPending, kWritten, kFailed, kDropped };
  std::vector<uint8_t> state(total, kPending);
  size_t dropped = 0;
  std::string first_error, first_dropped;
  bool reconnect = false;

  auto describe_op = [&](size_t i) -> std::string {
    if (i < n_latest) {
      return "latest payload of (" + std::string(latest[i]->first.device_id) + ", " +
             std::string(latest[i]->first.topic) + ")";
    }
    if (i < n_latest + n_retained) return "retained message of " + retained[i - n_latest]->first;
    return "session of " + sessions[i - n_latest - n_retained]->first;
  };
  auto settle = [&](size_t i, const cql::Result<cql::ResultBody>& r) {
    if (i >= total || state[i] != kPending) return;
    if (r) {
      state[i] = kWritten;
      return;
    }
    const cql::Error& e = r.error();
    if (permanent(e)) {
      state[i] = kDropped;
      ++dropped;
      if (first_dropped.empty()) first_dropped = describe_op(i) + ": " + e.to_string();
      return;
    }
    state[i] = kFailed;
    if (first_error.empty()) first_error = e.to_string();
    if (unprepared(e)) stmts_valid_ = false;  // the cache entry is gone: prepare again
    if (schema_missing(e)) reconnect = true;
  };

  auto submit = [&](cql::Connection& conn, size_t i) -> cql::Status {
    cql::QueryParams p;
    p.consistency = options_.consistency;
    p.default_timestamp_us = next_timestamp_us();
    if (i < n_latest) {
      const broker::MessagePtr& m = latest[i]->second;
      const std::string ts = cql::encode_bigint(m->received_ms());
      const cql::Value v[] = {cql::Value::of(latest[i]->first.device_id),
                              cql::Value::of(latest[i]->first.topic), cql::Value::of(m->payload()),
                              cql::Value::of(ts)};
      p.values = v;
      return conn.submit_execute(*stmts_.put_latest, p, i);
    }
    if (i < n_latest + n_retained) {
      const auto& [topic, m] = *retained[i - n_latest];
      if (m->payload().empty()) {
        const cql::Value v[] = {cql::Value::of(topic)};
        p.values = v;
        return conn.submit_execute(*stmts_.del_retained, p, i);
      }
      const std::string qos = cql::encode_int(m->qos());
      const std::string ts = cql::encode_bigint(m->received_ms());
      const std::string expiry = cql::encode_int(static_cast<int32_t>(m->expiry_interval_s()));
      const cql::Value v[] = {cql::Value::of(topic),
                              cql::Value::of(qos),
                              cql::Value::of(m->payload()),
                              cql::Value::of(ts),
                              cql::Value::of(m->properties()),
                              m->has_expiry() ? cql::Value::of(expiry) : cql::Value::null()};
      p.values = v;
      return conn.submit_execute(*stmts_.put_retained, p, i);
    }
    const auto& [client_id, snapshot] = *sessions[i - n_latest - n_retained];
    if (!snapshot) {
      const cql::Value v[] = {cql::Value::of(client_id)};
      p.values = v;
      return conn.submit_execute(*stmts_.del_session, p, i);
    }
    const int64_t now_ms = util::wall_clock_ms();
    const std::string ts = cql::encode_bigint(now_ms);
    const cql::Value v[] = {cql::Value::of(client_id), cql::Value::of(*snapshot),
                            cql::Value::of(ts)};
    p.values = v;
    return conn.submit_execute(*stmts_.put_session, p, i);
  };

  // A connection kept since the last flush may have died meanwhile (the node
  // restarted): then one more pass on a new connection before reporting.
  for (int pass = 0; pass < 2; ++pass) {
    const bool reused = writer_ && writer_->is_open();
    if (auto writer = ensure_writer(); !writer) {
      first_error = std::move(writer).error().message;
      break;
    }
    cql::Connection& conn = *writer_;
    std::vector<cql::Completion> done;
    auto drain = [&](milliseconds wait) {
      done.clear();
      conn.poll(wait, done);
      for (auto& c : done) settle(static_cast<size_t>(c.tag), c.result);
    };
    size_t sent = 0;
    for (size_t i = 0; i < total && conn.is_open(); ++i) {
      if (state[i] != kPending) continue;
      while (conn.free_streams() == 0 && conn.is_open()) drain(milliseconds(100));
      if (!conn.is_open()) break;
      if (auto st = submit(conn, i); !st) {
        if (st.error().code == cql::Errc::Disconnected) break;
        settle(i, st.error());
      }
      // Collect what has come back while the rest is sent, without blocking.
      if ((++sent & 255) == 0) drain(milliseconds(0));
    }
    while (conn.in_flight() > 0 && conn.is_open()) drain(milliseconds(100));
    drain(milliseconds(0));  // Disconnected completions, when the connection dropped

    const bool dropped_conn = !conn.is_open();
    if (dropped_conn || reconnect) {
      if (first_error.empty()) first_error = conn.close_reason().to_string();
      writer_.reset();
      stmts_valid_ = false;
    }
    if (!(dropped_conn && reused && pass == 0)) break;
    for (auto& s : state) {
      if (s == kFailed) s = kPending;
    }
    first_error.clear();
  }

  // Erase what is done; what failed (or was never sent) stays for the next try.
  size_t left = 0;
  for (size_t i = 0; i < total; ++i) {
    if (state[i] != kWritten && state[i] != kDropped) {
      ++left;
      continue;
    }
    if (i < n_latest) {
      ws.latest.erase(latest[i]);
    } else if (i < n_latest + n_retained) {
      ws.retained.erase(retained[i - n_latest]);
    } else {
      ws.sessions.erase(sessions[i - n_latest - n_retained]);
    }
  }
  if (dropped > 0) {
    spdlog::error("store: {} refused {} values for good; dropped them (first: {})", describe(),
                  dropped, first_dropped);
  }
  if (left == 0) return {};
  return util::Error{std::to_string(left) + " of " + std::to_string(total) +
                     " writes failed: " + (first_error.empty() ? "connection lost" : first_error)};
}

// ---- reads (API threads) ----------------------------------------------------------------------

ReadStatus CassandraBackend::read(std::string_view device_id, std::string_view topic, Record& out) {
  std::lock_guard lock(read_mu_);
  const std::string select = "SELECT payload, updatetime FROM " + table_prefix_ +
                             "device_data WHERE device_id = ? AND topic = ?";
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!reader_ || !reader_->is_open()) {
      reader_.reset();
      select_latest_.reset();
      // While Cassandra is down, callers get Unavailable at once, not after a
      // connect timeout each.
      if (Clock::now() < reader_retry_at_) return ReadStatus::Unavailable;
      auto conn = connect_any(std::min(options_.connect_timeout, options_.read_timeout),
                              options_.read_timeout, reader_next_host_);
      if (!conn) {
        reader_retry_at_ = Clock::now() + milliseconds(1000);
        spdlog::debug("store: read from Cassandra: {}", conn.error().message);
        return ReadStatus::Unavailable;
      }
      reader_ = std::move(conn).value();
    }
    if (!select_latest_) {
      auto p = reader_->prepare(select);
      if (!p) {
        spdlog::debug("store: read from Cassandra: {}", p.error().to_string());
        // No table yet (nothing was ever written): no value for any key.
        if (schema_missing(p.error())) return ReadStatus::NotFound;
        if (reader_->is_open()) return ReadStatus::Unavailable;
        continue;  // the connection was stale: one more try on a new one
      }
      select_latest_ = *p;
    }
    const cql::Value v[] = {cql::Value::of(device_id), cql::Value::of(topic)};
    cql::QueryParams params;
    params.consistency = options_.consistency;
    params.values = v;
    auto rows = cql::as_rows(reader_->execute(*select_latest_, params));
    if (!rows) {
      spdlog::debug("store: read from Cassandra: {}", rows.error().to_string());
      if (unprepared(rows.error())) {
        select_latest_.reset();
        continue;
      }
      if (!reader_->is_open()) continue;
      return ReadStatus::Unavailable;
    }
    if (rows->row_count == 0 || rows->columns() < 2) return ReadStatus::NotFound;
    out.device_id = device_id;
    out.topic = topic;
    out.payload = rows->at(0, 0).value_or(std::string());
    out.updated_ms = 0;
    if (const auto& ts = rows->at(0, 1)) out.updated_ms = cql::decode_bigint(*ts).value_or(0);
    return ReadStatus::Found;
  }
  return ReadStatus::Unavailable;
}

// ---- start-up loads ---------------------------------------------------------------------------

util::Result<CassandraBackend::ConnPtr> CassandraBackend::open_loader() {
  size_t next = 0;
  auto conn = connect_any(options_.connect_timeout, options_.request_timeout, next);
  if (!conn) return conn;
  // A first start on a fresh cluster finds no tables: create them now.
  if (auto schema = create_schema(**conn); !schema) return std::move(schema).error();
  return conn;
}

util::Status CassandraBackend::scan(std::string_view cql_text, int32_t page_size,
                                    const std::function<void(const cql::Rows&, size_t row)>& fn) {
  auto loader = open_loader();
  if (!loader) return std::move(loader).error();
  ConnPtr conn = std::move(loader).value();
  std::string paging;
  while (true) {
    cql::QueryParams p;
    p.consistency = options_.consistency;
    p.page_size = page_size;
    if (!paging.empty()) p.paging_state = paging;
    auto rows = cql::as_rows(conn->query(cql_text, p));
    if (!rows) {
      return util::Error{rows.error().to_string()};
    }
    for (size_t r = 0; r < static_cast<size_t>(rows->row_count); ++r) fn(*rows, r);
    const auto& md = rows->metadata;
    if (!(md.flags & cql::rows_flag::kHasMorePages) || !md.paging_state ||
        md.paging_state->empty()) {
      return {};
    }
    paging = *md.paging_state;
  }
}

util::Status CassandraBackend::load_retained(const std::function<void(const StoredRetained&)>& fn) {
  return scan("SELECT topic, qos, payload, updatetime, properties, expiry FROM " + table_prefix_ +
                  "retained",
              1000, [&](const cql::Rows& rows, size_t r) {
                if (rows.columns() < 6) return;
                const auto& topic = rows.at(r, 0);
                const auto& payload = rows.at(r, 2);
                if (!topic || !payload || payload->empty()) return;
                StoredRetained s{*topic, *payload, 0, 0, {}};
                if (const auto& q = rows.at(r, 1)) {
                  s.qos = static_cast<uint8_t>(std::clamp(cql::decode_int(*q).value_or(0), 0, 2));
                }
                if (const auto& ts = rows.at(r, 3))
                  s.updated_ms = cql::decode_bigint(*ts).value_or(0);
                if (const auto& props = rows.at(r, 4)) s.meta.properties = *props;
                if (const auto& expiry = rows.at(r, 5)) {
                  s.meta.has_expiry = true;
                  s.meta.expiry_interval_s =
                      static_cast<uint32_t>(cql::decode_int(*expiry).value_or(0));
                }
                fn(s);
              });
}

util::Status CassandraBackend::load_sessions(
    const std::function<void(std::string_view, std::string_view)>& fn) {
  // Snapshots carry queued messages: smaller pages.
  return scan("SELECT client_id, snapshot FROM " + table_prefix_ + "sessions", 100,
              [&](const cql::Rows& rows, size_t r) {
                if (rows.columns() < 2) return;
                const auto& id = rows.at(r, 0);
                const auto& snap = rows.at(r, 1);
                if (id && snap) fn(*id, *snap);
              });
}

}  // namespace store
