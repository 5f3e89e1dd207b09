// cql::Connection against a scripted fake server on 127.0.0.1: handshake, auth,
// pipelining with out-of-order answers, per-request timeouts, drops, stream
// exhaustion, Unprepared handling, large frames. The real server is exercised by
// tests/cassandra/live_check.py.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cql/connection.hpp"

namespace {

using Bytes = std::vector<uint8_t>;
using std::chrono::milliseconds;

void put_i32(Bytes& b, int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(u >> s));
}
void put_string(Bytes& b, const std::string& s) {
  b.push_back(static_cast<uint8_t>(s.size() >> 8));
  b.push_back(static_cast<uint8_t>(s.size()));
  b.insert(b.end(), s.begin(), s.end());
}

Bytes frame(cql::Opcode op, int16_t stream, const Bytes& body, uint8_t version = 0x84) {
  Bytes f(9);
  cql::FrameHeader h{version, 0, stream, op, static_cast<uint32_t>(body.size())};
  cql::encode_header(h, std::span<uint8_t, 9>(f.data(), 9));
  f.insert(f.end(), body.begin(), body.end());
  return f;
}
Bytes ready(int16_t s) {
  return frame(cql::Opcode::Ready, s, {});
}
Bytes void_result(int16_t s) {
  Bytes b;
  put_i32(b, 1);
  return frame(cql::Opcode::Result, s, b);
}
Bytes error(int16_t s, int32_t code, const std::string& msg, const std::string& id = "") {
  Bytes b;
  put_i32(b, code);
  put_string(b, msg);
  if (code == 0x2500) put_string(b, id);
  return frame(cql::Opcode::Error, s, b);
}
Bytes prepared(int16_t s, const std::string& id) {
  Bytes b;
  put_i32(b, 4);
  put_string(b, id);
  for (int32_t v : {0, 0, 0, 4, 0}) put_i32(b, v);  // no bind markers; No_metadata result
  return frame(cql::Opcode::Result, s, b);
}
Bytes one_cell_rows(int16_t s, const std::string& cell) {
  Bytes b;
  for (int32_t v : {2, 4, 1, 1}) put_i32(b, v);  // Rows, No_metadata, 1 column, 1 row
  put_i32(b, static_cast<int32_t>(cell.size()));
  b.insert(b.end(), cell.begin(), cell.end());
  return frame(cql::Opcode::Result, s, b);
}

// The query text of a QUERY or PREPARE body ([long string] first).
std::string query_text(const Bytes& body) {
  if (body.size() < 4) return {};
  const uint32_t n =
      (uint32_t{body[0]} << 24) | (uint32_t{body[1]} << 16) | (uint32_t{body[2]} << 8) | body[3];
  return n > body.size() - 4 ? std::string() : std::string(body.begin() + 4, body.begin() + 4 + n);
}

// Accepts one connection and calls the handler for every request frame, on its
// own thread. The handler answers with send() (now or later) or close_client().
class FakeServer {
 public:
  using Handler = std::function<void(FakeServer&, const cql::FrameHeader&, const Bytes&)>;

  explicit FakeServer(Handler h) : handler_(std::move(h)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    if (client_fd_ >= 0) ::close(client_fd_);
    ::close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  void send(const Bytes& f) {
    size_t off = 0;
    while (client_fd_ >= 0 && off < f.size()) {
      const ssize_t n = ::send(client_fd_, f.data() + off, f.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  void close_client() {
    if (client_fd_ >= 0) ::close(client_fd_);
    client_fd_ = -1;
  }
  std::atomic<int> requests{0};

 private:
  void run() {
    while (!stop_ && client_fd_ < 0) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) client_fd_ = ::accept(listen_fd_, nullptr, nullptr);
    }
    Bytes in;
    uint8_t buf[65536];
    while (!stop_ && client_fd_ >= 0) {
      pollfd p{client_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::recv(client_fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.insert(in.end(), buf, buf + n);
      while (in.size() >= 9 && client_fd_ >= 0) {
        auto h = cql::decode_header(in, cql::kRequestVersion);
        ASSERT_TRUE(h.ok()) << h.error().to_string();
        if (in.size() - 9 < h->length) break;
        const Bytes body(in.begin() + 9, in.begin() + 9 + h->length);
        in.erase(in.begin(), in.begin() + 9 + h->length);
        ++requests;
        handler_(*this, *h, body);
      }
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int client_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// READY to STARTUP, Void to everything else unless `more` handled it.
FakeServer::Handler simple(
    std::function<bool(FakeServer&, const cql::FrameHeader&, const Bytes&)> more = nullptr) {
  return [more](FakeServer& s, const cql::FrameHeader& h, const Bytes& body) {
    if (h.opcode == cql::Opcode::Startup) return s.send(ready(h.stream));
    if (more && more(s, h, body)) return;
    s.send(void_result(h.stream));
  };
}

cql::ConnectOptions options_for(const FakeServer& s) {
  cql::ConnectOptions o;
  o.port = s.port();
  o.connect_timeout = milliseconds(2000);
  o.request_timeout = milliseconds(2000);
  return o;
}

// Polls until `n` completions arrived or 5 s passed.
std::vector<cql::Completion> collect(cql::Connection& c, size_t n) {
  std::vector<cql::Completion> out;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (out.size() < n && std::chrono::steady_clock::now() < until) c.poll(milliseconds(50), out);
  return out;
}

TEST(CqlConnection, HandshakeThenQuery) {
  std::string startup_body;
  FakeServer server([&](FakeServer& s, const cql::FrameHeader& h, const Bytes& body) {
    if (h.opcode == cql::Opcode::Startup) {
      startup_body.assign(body.begin(), body.end());
      return s.send(ready(h.stream));
    }
    EXPECT_EQ(h.opcode, cql::Opcode::Query);
    EXPECT_EQ(query_text(body), "SELECT now() FROM system.local");
    s.send(void_result(h.stream));
  });
  auto c = cql::Connection::open(options_for(server));
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_NE(startup_body.find("CQL_VERSION"), std::string::npos);
  auto r = (*c)->query("SELECT now() FROM system.local");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(std::holds_alternative<cql::VoidResult>(*r));
  EXPECT_TRUE((*c)->is_open());
}

TEST(CqlConnection, PipelinedAnswersOutOfOrderAreMatchedByStream) {
  std::vector<int16_t> held;
  FakeServer server(simple([&](FakeServer& s, const cql::FrameHeader& h, const Bytes&) {
    if (h.opcode == cql::Opcode::Prepare) {
      s.send(prepared(h.stream, "ID01"));
      return true;
    }
    held.push_back(h.stream);
    if (held.size() == 100) {
      // Answer all at once, last first; every 10th received (tags 9, 19, ...) fails.
      Bytes all;
      for (size_t i = held.size(); i-- > 0;) {
        auto f = (i % 10 == 9) ? error(held[i], 0x1100, "write timeout") : void_result(held[i]);
        all.insert(all.end(), f.begin(), f.end());
      }
      s.send(all);
      held.clear();
    }
    return true;
  }));
  auto c = cql::Connection::open(options_for(server));
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  auto p = (*c)->prepare("UPDATE t SET v = ? WHERE k = ?");
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ((*p)->id, "ID01");
  for (uint64_t tag = 0; tag < 100; ++tag) {
    ASSERT_TRUE((*c)->submit_execute(**p, {}, tag).ok());
  }
  EXPECT_EQ((*c)->in_flight(), 100u);
  auto done = collect(**c, 100);
  ASSERT_EQ(done.size(), 100u);
  std::vector<int> seen(100, 0);
  for (const auto& d : done) {
    ASSERT_LT(d.tag, 100u);
    ++seen[d.tag];
    if (d.tag % 10 == 9) {
      ASSERT_FALSE(d.result.ok()) << d.tag;
      EXPECT_EQ(d.result.error().server_code, cql::server_error::kWriteTimeout);
      EXPECT_TRUE(d.result.error().retryable());
    } else {
      EXPECT_TRUE(d.result.ok()) << d.tag;
    }
  }
  for (int n : seen) EXPECT_EQ(n, 1);
  EXPECT_EQ(done.front().tag, 99u);  // answered last first
  EXPECT_EQ((*c)->in_flight(), 0u);
  EXPECT_EQ((*c)->free_streams(), 1024u);
}

TEST(CqlConnection, TimeoutThenLateAnswerIsDropped) {
  int16_t slow_stream = -1;
  FakeServer server(simple([&](FakeServer& s, const cql::FrameHeader& h, const Bytes& body) {
    const std::string q = query_text(body);
    if (q == "SLOW") {
      slow_stream = h.stream;
      return true;  // held
    }
    if (q == "PING" && slow_stream >= 0) {
      s.send(one_cell_rows(slow_stream, "late"));  // the late answer first
      s.send(one_cell_rows(h.stream, "pong"));
      return true;
    }
    return false;
  }));
  auto o = options_for(server);
  o.request_timeout = milliseconds(200);
  o.max_in_flight = 8;
  auto c = cql::Connection::open(o);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_TRUE((*c)->submit_query("SLOW", {}, 42).ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto done = collect(**c, 1);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tag, 42u);
  ASSERT_FALSE(done[0].result.ok());
  EXPECT_EQ(done[0].result.error().code, cql::Errc::Timeout);
  EXPECT_GE(waited, milliseconds(150));
  EXPECT_LT(waited, milliseconds(2000));
  EXPECT_EQ((*c)->in_flight(), 0u);
  EXPECT_EQ((*c)->free_streams(), 7u);  // the timed-out id stays reserved...
  auto rows = cql::as_rows((*c)->query("PING"));
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(rows->at(0, 0), std::optional<std::string>("pong"));  // not "late"
  EXPECT_EQ((*c)->free_streams(), 8u);                            // ...until its late answer came
  done.clear();
  (*c)->poll(milliseconds(0), done);
  EXPECT_TRUE(done.empty());
}

TEST(CqlConnection, DropCompletesEveryRequestAsDisconnected) {
  FakeServer server(simple([&](FakeServer& s, const cql::FrameHeader&, const Bytes&) {
    if (s.requests == 6) s.close_client();  // STARTUP + 5 queries
    return true;
  }));
  auto c = cql::Connection::open(options_for(server));
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  for (uint64_t tag = 0; tag < 5; ++tag) ASSERT_TRUE((*c)->submit_query("Q", {}, tag).ok());
  auto done = collect(**c, 5);
  ASSERT_EQ(done.size(), 5u);
  for (const auto& d : done) {
    ASSERT_FALSE(d.result.ok());
    EXPECT_EQ(d.result.error().code, cql::Errc::Disconnected);
    EXPECT_TRUE(d.result.error().retryable());
  }
  EXPECT_FALSE((*c)->is_open());
  EXPECT_EQ((*c)->close_reason().code, cql::Errc::Disconnected);
  auto st = (*c)->submit_query("Q", {}, 9);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, cql::Errc::Disconnected);
  EXPECT_EQ((*c)->query("Q").error().code, cql::Errc::Disconnected);
}

TEST(CqlConnection, ConnectRefusedAndHandshakeTimeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), len), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);  // nobody listens there now
  cql::ConnectOptions o;
  o.port = ntohs(a.sin_port);
  auto r = cql::Connection::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, cql::Errc::ConnectFailed);
  EXPECT_NE(r.error().message.find("refused"), std::string::npos) << r.error().message;

  FakeServer mute([](FakeServer&, const cql::FrameHeader&, const Bytes&) {});
  auto mo = options_for(mute);
  mo.connect_timeout = milliseconds(300);
  auto m = cql::Connection::open(mo);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, cql::Errc::Timeout);
}

TEST(CqlConnection, WrongProtocolVersionIsReported) {
  FakeServer v3([](FakeServer& s, const cql::FrameHeader& h, const Bytes&) {
    s.send(frame(cql::Opcode::Error, h.stream, {0, 0, 0, 0x0A, 0, 0}, 0x83));
  });
  auto r = cql::Connection::open(options_for(v3));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("version"), std::string::npos) << r.error().to_string();
}

TEST(CqlConnection, PasswordAuthentication) {
  std::string token;
  auto handler = [&](FakeServer& s, const cql::FrameHeader& h, const Bytes& body) {
    if (h.opcode == cql::Opcode::Startup) {
      Bytes b;
      put_string(b, "org.apache.cassandra.auth.PasswordAuthenticator");
      return s.send(frame(cql::Opcode::Authenticate, h.stream, b));
    }
    if (h.opcode == cql::Opcode::AuthResponse) {
      token.assign(body.begin() + 4, body.end());
      return s.send(frame(cql::Opcode::AuthSuccess, h.stream, {0xFF, 0xFF, 0xFF, 0xFF}));
    }
    s.send(void_result(h.stream));
  };
  {
    FakeServer server(handler);
    auto r = cql::Connection::open(options_for(server));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, cql::Errc::UnsupportedAuth);
    EXPECT_NE(r.error().message.find("PasswordAuthenticator"), std::string::npos);
  }
  FakeServer server(handler);
  auto o = options_for(server);
  o.username = "u";
  o.password = "pw";
  auto r = cql::Connection::open(o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(token, std::string("\0u\0pw", 5));
  EXPECT_TRUE((*r)->query("SELECT 1").ok());
}

TEST(CqlConnection, BusyWhenEveryStreamIsInFlight) {
  FakeServer server(simple([](FakeServer&, const cql::FrameHeader&, const Bytes&) {
    return true;  // never answers
  }));
  auto o = options_for(server);
  o.max_in_flight = 4;
  auto c = cql::Connection::open(o);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  for (uint64_t tag = 0; tag < 4; ++tag) ASSERT_TRUE((*c)->submit_query("Q", {}, tag).ok());
  EXPECT_EQ((*c)->free_streams(), 0u);
  auto st = (*c)->submit_query("Q", {}, 4);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, cql::Errc::Busy);
}

TEST(CqlConnection, UnpreparedDropsTheCacheEntry) {
  std::atomic<int> prepares{0};
  FakeServer server(simple([&](FakeServer& s, const cql::FrameHeader& h, const Bytes&) {
    if (h.opcode == cql::Opcode::Prepare) {
      ++prepares;
      s.send(prepared(h.stream, "ID" + std::to_string(prepares.load())));
      return true;
    }
    if (h.opcode == cql::Opcode::Execute && prepares == 1) {
      s.send(error(h.stream, 0x2500, "unknown prepared id", "ID1"));
      return true;
    }
    return false;
  }));
  auto c = cql::Connection::open(options_for(server));
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  auto p1 = (*c)->prepare("INSERT");
  ASSERT_TRUE(p1.ok());
  ASSERT_TRUE((*c)->prepare("INSERT").ok());
  EXPECT_EQ(prepares, 1);  // cached
  auto e = (*c)->execute(**p1, {});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().server_code, cql::server_error::kUnprepared);
  auto p2 = (*c)->prepare("INSERT");
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(prepares, 2);  // prepared again
  EXPECT_EQ((*p2)->id, "ID2");
  EXPECT_TRUE((*c)->execute(**p2, {}).ok());
}

TEST(CqlConnection, ServerErrorKeepsTheConnection) {
  FakeServer server(simple([](FakeServer& s, const cql::FrameHeader& h, const Bytes& body) {
    if (query_text(body) == "SELEKT") {
      s.send(error(h.stream, 0x2000, "line 1:0 no viable alternative"));
      return true;
    }
    return false;
  }));
  auto c = cql::Connection::open(options_for(server));
  ASSERT_TRUE(c.ok());
  auto r = (*c)->query("SELEKT");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, cql::Errc::Server);
  EXPECT_EQ(r.error().server_code, cql::server_error::kSyntaxError);
  EXPECT_TRUE((*c)->is_open());
  EXPECT_TRUE((*c)->query("SELECT").ok());
}

TEST(CqlConnection, LargeFramesAcrossManyReads) {
  const std::string big(300 * 1024, 'z');
  FakeServer server(simple([&](FakeServer& s, const cql::FrameHeader& h, const Bytes&) {
    s.send(one_cell_rows(h.stream, big));
    return true;
  }));
  auto c = cql::Connection::open(options_for(server));
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 3; ++i) {
    auto rows = cql::as_rows((*c)->query("BIG"));
    ASSERT_TRUE(rows.ok()) << rows.error().to_string();
    EXPECT_EQ(rows->at(0, 0)->size(), big.size());
  }
}

}  // namespace
