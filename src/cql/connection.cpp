#include "cql/connection.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace cql {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kShrinkAbove = 4 * 1024 * 1024;

std::string errno_text(int err) {
  return std::strerror(err);
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// Non-blocking connect to the first address of host:port that answers in time.
Result<int> connect_tcp(const std::string& host, uint16_t port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string where = host + ":" + std::to_string(port);
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    return make_error(Errc::ConnectFailed, where + ": " + ::gai_strerror(rc));
  }
  std::string last = "no address";
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = errno_text(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int rc;
        do {
          rc = ::poll(&p, 1, remaining_ms(deadline));
        } while (rc < 0 && errno == EINTR);
        if (rc == 0) {
          err = ETIMEDOUT;
        } else if (rc < 0) {
          err = errno;
        } else {
          socklen_t len = sizeof err;
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
    }
    if (err == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      ::freeaddrinfo(list);
      return fd;
    }
    last = errno_text(err);
    ::close(fd);
    if (Clock::now() >= deadline) break;
  }
  ::freeaddrinfo(list);
  return make_error(Errc::ConnectFailed, where + ": " + last);
}

Result<ResultBody> to_result_body(Result<Response> r) {
  if (!r) return r.error();
  auto& body = r->body;
  if (auto* res = std::get_if<ResultBody>(&body)) return std::move(*res);
  if (auto* err = std::get_if<ErrorBody>(&body)) return to_error(*err);
  return make_error(Errc::Unexpected,
                    std::string("expected RESULT, got ") + opcode_name(r->header.opcode));
}

}  // namespace

// ---- life cycle -----------------------------------------------------------------------------

Result<std::unique_ptr<Connection>> Connection::open(const ConnectOptions& options) {
  const auto deadline = Clock::now() + options.connect_timeout;
  auto fd = connect_tcp(options.host, options.port, deadline);
  if (!fd) return fd.error();
  std::unique_ptr<Connection> conn(new Connection(*fd, options));
  if (auto st = conn->handshake(options); !st) return st.error();
  return conn;
}

Connection::Connection(int fd, const ConnectOptions& options)
    : fd_(fd), options_(options), close_reason_{Errc::Disconnected, 0, "not closed"} {
  const int streams = std::clamp(options.max_in_flight, 1, int{kMaxStreams} + 1);
  slots_.resize(static_cast<size_t>(streams));
  free_.reserve(slots_.size());
  for (int s = streams - 1; s >= 0; --s) free_.push_back(static_cast<int16_t>(s));
  in_.resize(kReadChunk);
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::close() {
  fail(make_error(Errc::Disconnected, "closed by the client"));
}

void Connection::fail(Error reason) {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  close_reason_ = std::move(reason);
  for (auto& slot : slots_) {
    if (slot.busy && !slot.orphaned) {
      if (slot.internal) {
        internal_result_ = close_reason_;
      } else {
        ready_.push_back(Completion{slot.tag, close_reason_});
      }
    }
    slot = Slot{};
  }
  in_flight_ = 0;
  free_.clear();
  deadlines_.clear();
  out_.clear();
  out_sent_ = 0;
  in_len_ = 0;
}

Status Connection::handshake(const ConnectOptions& options) {
  const auto deadline = Clock::now() + options.connect_timeout;
  auto stream = acquire(0, true);
  if (!stream) return stream.error();
  if (auto st = encode_startup(out_, *stream); !st) return st;
  auto resp = wait_internal(*stream, deadline);
  if (!resp) return resp.error();

  if (auto* auth = std::get_if<Authenticate>(&resp->body)) {
    if (options.username.empty()) {
      return make_error(Errc::UnsupportedAuth, "server requires authentication (" +
                                                   auth->authenticator +
                                                   "); set a username and password");
    }
    stream = acquire(0, true);
    if (!stream) return stream.error();
    if (auto st = encode_auth_response(out_, *stream,
                                       plain_auth_token(options.username, options.password));
        !st) {
      return st;
    }
    resp = wait_internal(*stream, deadline);
    if (!resp) return resp.error();
    if (std::holds_alternative<AuthChallenge>(resp->body)) {
      return make_error(Errc::UnsupportedAuth,
                        "server sent a SASL challenge; only PasswordAuthenticator is supported");
    }
    if (!std::holds_alternative<AuthSuccess>(resp->body) &&
        !std::holds_alternative<ErrorBody>(resp->body)) {
      return make_error(Errc::Unexpected,
                        std::string("after AUTH_RESPONSE: ") + opcode_name(resp->header.opcode));
    }
  }
  if (auto* err = std::get_if<ErrorBody>(&resp->body)) return to_error(*err);
  if (!std::holds_alternative<Ready>(resp->body) &&
      !std::holds_alternative<AuthSuccess>(resp->body)) {
    return make_error(Errc::Unexpected,
                      std::string("after STARTUP: ") + opcode_name(resp->header.opcode));
  }
  if (!options.keyspace.empty()) {
    auto r = query("USE " + options.keyspace);
    if (!r) return r.error();
  }
  return {};
}

// ---- stream ids -------------------------------------------------------------------------

Result<int16_t> Connection::acquire(uint64_t tag, bool internal) {
  if (fd_ < 0) return close_reason_;
  if (free_.empty()) return make_error(Errc::Busy, "all stream ids in flight");
  const int16_t stream = free_.back();
  free_.pop_back();
  Slot& slot = slots_[static_cast<size_t>(stream)];
  slot.busy = true;
  slot.orphaned = false;
  slot.internal = internal;
  slot.tag = tag;
  ++slot.generation;
  ++in_flight_;
  deadlines_.push_back(Deadline{Clock::now() + options_.request_timeout, stream, slot.generation});
  return stream;
}

void Connection::release(int16_t stream) {
  Slot& slot = slots_[static_cast<size_t>(stream)];
  slot.busy = false;
  slot.orphaned = false;
  slot.internal = false;
  free_.push_back(stream);
}

Status Connection::end_request(Status encoded, int16_t stream) {
  if (!encoded) {
    // The encoder rolled its partial frame back; give the id back too.
    --in_flight_;
    release(stream);
  }
  return encoded;
}

// ---- pipelined requests -------------------------------------------------------------------

Status Connection::submit_query(std::string_view cql, const QueryParams& params, uint64_t tag) {
  auto stream = acquire(tag, false);
  if (!stream) return stream.error();
  return end_request(encode_query(out_, *stream, cql, params), *stream);
}

Status Connection::submit_execute(const Prepared& prepared, const QueryParams& params,
                                  uint64_t tag) {
  auto stream = acquire(tag, false);
  if (!stream) return stream.error();
  return end_request(encode_execute(out_, *stream, prepared.id, params), *stream);
}

Status Connection::submit_batch(std::span<const BatchStatement> statements,
                                const BatchParams& params, uint64_t tag) {
  auto stream = acquire(tag, false);
  if (!stream) return stream.error();
  return end_request(encode_batch(out_, *stream, statements, params), *stream);
}

size_t Connection::poll(milliseconds timeout, std::vector<Completion>& out) {
  const auto deadline = Clock::now() + timeout;
  pump(milliseconds(0));
  while (ready_.empty() && in_flight_ > 0 && fd_ >= 0) {
    const int left = remaining_ms(deadline);
    if (left == 0) break;
    pump(milliseconds(left));
  }
  const size_t n = ready_.size();
  for (auto& c : ready_) out.push_back(std::move(c));
  ready_.clear();
  return n;
}

// ---- blocking requests --------------------------------------------------------------------

Result<Response> Connection::wait_internal(int16_t stream, Clock::time_point deadline) {
  internal_stream_ = stream;
  internal_result_.reset();
  while (!internal_result_) {
    if (fd_ < 0) return close_reason_;
    const int left = remaining_ms(deadline);
    if (left == 0) {
      // Past the caller's deadline (the handshake's): the request is abandoned.
      Slot& slot = slots_[static_cast<size_t>(stream)];
      if (slot.busy && !slot.orphaned) {
        slot.orphaned = true;
        --in_flight_;
      }
      internal_stream_ = -1;
      return make_error(Errc::Timeout, "no response in time");
    }
    pump(milliseconds(left));
  }
  internal_stream_ = -1;
  auto r = std::move(*internal_result_);
  internal_result_.reset();
  return r;
}

Result<Response> Connection::roundtrip_internal(Opcode op, milliseconds timeout,
                                                std::string_view text, const QueryParams* params,
                                                const Prepared* prepared) {
  auto stream = acquire(0, true);
  if (!stream) return stream.error();
  Status st;
  switch (op) {
    case Opcode::Query:
      st = encode_query(out_, *stream, text, *params);
      break;
    case Opcode::Prepare:
      st = encode_prepare(out_, *stream, text);
      break;
    case Opcode::Execute:
      st = encode_execute(out_, *stream, prepared->id, *params);
      break;
    case Opcode::Options:
      st = encode_options(out_, *stream);
      break;
    default:
      st = make_error(Errc::Unexpected, "not a blocking request");
      break;
  }
  if (auto e = end_request(std::move(st), *stream); !e) return e.error();
  // The slot's own request_timeout fires first; the extra second is a backstop.
  return wait_internal(*stream, Clock::now() + timeout + milliseconds(1000));
}

Result<ResultBody> Connection::query(std::string_view cql, const QueryParams& params) {
  return to_result_body(
      roundtrip_internal(Opcode::Query, options_.request_timeout, cql, &params, nullptr));
}

Result<ResultBody> Connection::execute(const Prepared& prepared, const QueryParams& params) {
  return to_result_body(
      roundtrip_internal(Opcode::Execute, options_.request_timeout, {}, &params, &prepared));
}

Result<Connection::PreparedPtr> Connection::prepare(std::string_view cql) {
  std::string key(cql);
  if (auto it = prepared_.find(key); it != prepared_.end()) return it->second;
  auto r = to_result_body(
      roundtrip_internal(Opcode::Prepare, options_.request_timeout, cql, nullptr, nullptr));
  if (!r) return r.error();
  auto* p = std::get_if<Prepared>(&r.value());
  if (p == nullptr) return make_error(Errc::Unexpected, "PREPARE did not return a Prepared result");
  auto ptr = std::make_shared<const Prepared>(std::move(*p));
  prepared_.emplace(std::move(key), ptr);
  return ptr;
}

Result<Supported> Connection::options() {
  auto r = roundtrip_internal(Opcode::Options, options_.request_timeout, {}, nullptr, nullptr);
  if (!r) return r.error();
  if (auto* s = std::get_if<Supported>(&r->body)) return std::move(*s);
  if (auto* e = std::get_if<ErrorBody>(&r->body)) return to_error(*e);
  return make_error(Errc::Unexpected, "OPTIONS did not return SUPPORTED");
}

// ---- I/O ----------------------------------------------------------------------------------

void Connection::pump(milliseconds wait) {
  if (fd_ < 0) return;
  flush();
  if (fd_ < 0) return;
  expire_timeouts();
  int timeout = static_cast<int>(std::min<int64_t>(wait.count(), 1 << 30));
  if (!ready_.empty() || (internal_stream_ >= 0 && internal_result_)) timeout = 0;
  if (!deadlines_.empty()) {
    timeout = std::min(timeout, remaining_ms(deadlines_.front().when));
  }
  pollfd p{fd_, static_cast<short>(POLLIN | (out_sent_ < out_.size() ? POLLOUT : 0)), 0};
  const int rc = ::poll(&p, 1, timeout);
  if (rc < 0) {
    if (errno != EINTR) fail(make_error(Errc::Io, "poll: " + errno_text(errno)));
    return;
  }
  if (rc > 0) {
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) read_available();
    if (fd_ >= 0 && (p.revents & POLLOUT)) flush();
  }
  if (fd_ >= 0) expire_timeouts();
}

void Connection::flush() {
  while (out_sent_ < out_.size()) {
    const ssize_t n =
        ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    const int err = errno;
    fail(make_error(err == EPIPE || err == ECONNRESET ? Errc::Disconnected : Errc::Io,
                    "send: " + errno_text(err)));
    return;
  }
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  } else if (out_sent_ > kShrinkAbove) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_sent_));
    out_sent_ = 0;
  }
}

void Connection::read_available() {
  for (int reads = 0; reads < 64 && fd_ >= 0; ++reads) {
    if (in_.size() - in_len_ < kReadChunk) in_.resize(in_len_ + kReadChunk);
    const ssize_t n = ::recv(fd_, in_.data() + in_len_, in_.size() - in_len_, MSG_DONTWAIT);
    if (n == 0) {
      fail(make_error(Errc::Disconnected, "server closed the connection"));
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      const int err = errno;
      fail(make_error(err == ECONNRESET ? Errc::Disconnected : Errc::Io,
                      "recv: " + errno_text(err)));
      return;
    }
    in_len_ += static_cast<size_t>(n);

    // Hand out every whole frame, keep the tail.
    size_t pos = 0;
    while (fd_ >= 0 && in_len_ - pos >= kHeaderSize) {
      const std::span<const uint8_t> avail(in_.data() + pos, in_len_ - pos);
      auto h = decode_header(avail);
      if (!h) {
        fail(Error{Errc::Disconnected, 0, "bad frame from server: " + h.error().to_string()});
        return;
      }
      if (avail.size() - kHeaderSize < h->length) {
        // Make room for the whole frame so the next recv can complete it.
        if (in_.size() < in_len_ + (kHeaderSize + h->length - avail.size())) {
          in_.resize(pos + kHeaderSize + h->length + kReadChunk);
        }
        break;
      }
      dispatch(avail.subspan(kHeaderSize, h->length), *h);
      pos += kHeaderSize + h->length;
    }
    if (fd_ < 0) return;
    if (pos > 0) {
      std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
      in_len_ -= pos;
    }
    if (in_len_ == 0 && in_.size() > kShrinkAbove) {
      in_.resize(kReadChunk);
      in_.shrink_to_fit();
    }
  }
}

void Connection::dispatch(std::span<const uint8_t> body, const FrameHeader& header) {
  if (header.stream < 0) return;  // EVENT pushed by the server; not registered for here
  const auto idx = static_cast<size_t>(header.stream);
  if (idx >= slots_.size() || !slots_[idx].busy) return;  // not ours: ignore
  if (slots_[idx].orphaned) {
    release(header.stream);  // the late answer to a timed-out request
    return;
  }
  complete(header.stream, decode_response(header, body));
}

void Connection::complete(int16_t stream, Result<Response> response) {
  Slot& slot = slots_[static_cast<size_t>(stream)];
  const bool internal = slot.internal;
  const uint64_t tag = slot.tag;
  --in_flight_;
  release(stream);
  if (response) {
    if (auto* err = std::get_if<ErrorBody>(&response->body);
        err != nullptr && err->code == server_error::kUnprepared) {
      std::erase_if(prepared_, [&](const auto& kv) { return kv.second->id == err->unprepared_id; });
    }
  }
  if (internal) {
    if (stream == internal_stream_) internal_result_ = std::move(response);
    return;
  }
  ready_.push_back(Completion{tag, to_result_body(std::move(response))});
}

void Connection::expire_timeouts() {
  const auto now = Clock::now();
  size_t orphans = 0;
  while (!deadlines_.empty()) {
    const Deadline d = deadlines_.front();
    Slot& slot = slots_[static_cast<size_t>(d.stream)];
    const bool live = slot.busy && !slot.orphaned && slot.generation == d.generation;
    if (live && d.when > now) break;
    deadlines_.pop_front();
    if (!live) continue;
    slot.orphaned = true;
    --in_flight_;
    ++orphans;
    Error timeout = make_error(Errc::Timeout, "no response within the request timeout");
    if (slot.internal) {
      if (d.stream == internal_stream_) internal_result_ = std::move(timeout);
    } else {
      ready_.push_back(Completion{slot.tag, std::move(timeout)});
    }
  }
  if (orphans == 0) return;
  // A server that leaves most streams unanswered is gone in all but name.
  size_t total = 0;
  for (const auto& s : slots_) total += s.orphaned ? 1 : 0;
  if (total * 2 >= slots_.size()) {
    fail(make_error(Errc::Timeout, "most requests timed out; connection presumed dead"));
  }
}

Result<Rows> as_rows(Result<ResultBody> r) {
  if (!r) return r.error();
  if (auto* rows = std::get_if<Rows>(&r.value())) return std::move(*rows);
  return make_error(Errc::Unexpected, "expected a Rows result");
}

}  // namespace cql
