#include "net/worker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/shard.hpp"
#include "mqtt/reason_code.hpp"
#include "net/connection.hpp"
#include "net/listeners.hpp"

namespace net {

namespace {
// epoll data of the non-connection descriptors: the eventfd, and listener i
// as kListenBase + i. Connections carry their pointer, never this small.
constexpr uint64_t kEventTag = 2;
constexpr uint64_t kListenBase = 16;
constexpr uint64_t kFirstPointer = 4096;
constexpr size_t kReadBufSize = 256 * 1024;
constexpr size_t kReadBudget = 1 << 20;  // bytes read from one connection per turn
// Keep-alive and CONNECT deadlines are checked this often: a 1 s keep-alive
// then ends within 1.5 s + 0.25 s, not 2 s.
constexpr int kTickMs = 250;
// How long a connection the server closed keeps reading (and discarding) what
// the client still sends, so that the client reads our last packets.
constexpr int64_t kDrainMs = 1000;

std::string peer_name(const sockaddr_storage& ss) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
  return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a->sin6_port));
}

}  // namespace

Worker::Worker(int index, std::vector<Listener*> listeners)
    : index_(index), listeners_(std::move(listeners)), read_buf_(kReadBufSize) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kEventTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev);
  // Every worker waits on every listener; EPOLLEXCLUSIVE wakes one of them
  // per connection instead of all.
  for (size_t i = 0; i < listeners_.size() && kListenBase + i < kFirstPointer; ++i) {
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = kListenBase + i;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listeners_[i]->fd(), &ev);
  }
}

Worker::~Worker() {
  close_all();
  if (event_fd_ >= 0) ::close(event_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void Worker::wake() {
  uint64_t one = 1;
  ssize_t r = ::write(event_fd_, &one, sizeof one);
  (void)r;  // EAGAIN means a wake-up is already pending
}

void Worker::stop() {
  stopping_.store(true, std::memory_order_release);
  wake();
}

void Worker::run() {
  // What this thread sends to other shards is batched per loop turn.
  broker::Shard::OnThisThread on_this_thread(*shard_);
  epoll_event events[256];
  shard_->set_now_ms(broker::monotonic_ms());
  last_tick_ms_ = shard_->now_ms();
  while (!stopping_.load(std::memory_order_acquire)) {
    int n = epoll_wait(epoll_fd_, events, 256, kTickMs);
    if (n < 0 && errno != EINTR) {
      spdlog::error("worker {}: epoll_wait: {}", index_, std::strerror(errno));
      break;
    }
    shard_->set_now_ms(broker::monotonic_ms());
    for (int i = 0; i < n; ++i) {
      const epoll_event& ev = events[i];
      if (ev.data.u64 < kFirstPointer) {
        if (ev.data.u64 == kEventTag) {
          uint64_t v;
          ssize_t r = ::read(event_fd_, &v, sizeof v);
          (void)r;
          shard_->drain_inbox();
        } else {
          accept_ready(*listeners_[ev.data.u64 - kListenBase]);
        }
      } else {
        auto* c = static_cast<Connection*>(ev.data.ptr);
        if (!c->client) {
          drain(*c);
          continue;
        }
        if (c->client->closing()) continue;
        if (ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(*c);
        if ((ev.events & EPOLLOUT) && !c->client->closing()) on_writable(*c);
      }
    }
    if (shard_->now_ms() - last_tick_ms_ >= kTickMs) tick();
    end_of_turn();
  }
}

void Worker::accept_ready(Listener& listener) {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = accept4(listener.fd(), reinterpret_cast<sockaddr*>(&ss), &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == EMFILE || errno == ENFILE) {
        spdlog::warn("cannot accept a connection: {} (raise the open-file limit)",
                     std::strerror(errno));
        return;
      }
      spdlog::debug("accept: {}", std::strerror(errno));
      continue;
    }
    broker::Stats& stats = shard_->broker().stats();
    if (stats.open_connections.fetch_add(1, std::memory_order_relaxed) >=
        shard_->broker().config().max_connections) {
      stats.open_connections.fetch_sub(1, std::memory_order_relaxed);
      uint64_t refused = stats.refused_connections.fetch_add(1, std::memory_order_relaxed) + 1;
      if ((refused & (refused - 1)) == 0) {  // the first, then every power of two
        spdlog::warn("refused a connection from {}: --max-connections {} reached ({} refused)",
                     peer_name(ss), shard_->broker().config().max_connections, refused);
      }
      ::close(fd);
      continue;
    }
    if (!listener.admit()) {
      stats.open_connections.fetch_sub(1, std::memory_order_relaxed);
      uint64_t refused = stats.refused_connections.fetch_add(1, std::memory_order_relaxed) + 1;
      if ((refused & (refused - 1)) == 0) {
        spdlog::warn(
            "refused a connection from {} on {}: its max_connections {} reached ({} refused)",
            peer_name(ss), listener.bound_address(), listener.config().max_connections, refused);
      }
      ::close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto conn = std::make_unique<Connection>(turn_);
    conn->fd = fd;
    conn->listener = &listener;
    conn->io = listener.tls() ? tls_io_.get() : plain_io_.get();
    if (listener.websocket()) conn->ws = std::make_unique<WebSocketState>();
    // Connection ids are unique across workers: the worker index in the low bits.
    uint64_t id = (++next_conn_seq_ << 8) | static_cast<uint64_t>(index_);
    conn->client = std::make_unique<broker::Client>(*shard_, *conn, id, peer_name(ss));
    conn->io->start(*conn, listener);
    Connection* raw = conn.release();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = raw;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    spdlog::debug("accepted {} on worker {}", raw->client->remote(), index_);
  }
}

bool Worker::continue_handshake(Connection& c) {
  bool want_write = false;
  bool done = c.io->handshake(c, want_write);
  if (want_write) set_want_write(c, true);
  return done;
}

void Worker::on_readable(Connection& c) {
  if (c.handshaking && !continue_handshake(c)) return;
  size_t budget = kReadBudget;
  while (!c.client->closing()) {
    bool want_write = false;
    ssize_t n = c.io->read(c, read_buf_.data(), read_buf_.size(), want_write);
    if (n <= 0) {
      if (want_write) set_want_write(c, true);
      return;
    }
    const auto got = static_cast<size_t>(n);
    broker::ShardCounters::add(shard_->counters().bytes_in, got);
    // WebSocket: the handshake, then frames, leave the MQTT bytes at the
    // front of the buffer.
    const size_t mqtt_bytes = c.ws ? websocket_input(c, read_buf_.data(), got) : got;
    if (mqtt_bytes == 0) {
      // Nothing for MQTT in this read.
    } else if (c.partial.empty()) {
      // The common case: parse straight from the worker's buffer, keep only
      // the tail of an incomplete packet.
      std::string_view data(read_buf_.data(), mqtt_bytes);
      size_t used = c.client->on_bytes(data);
      if (used < mqtt_bytes && !c.client->closing()) c.partial.assign(data.substr(used));
    } else {
      c.partial.append(read_buf_.data(), mqtt_bytes);
      parse_partial(c);
    }
    if (c.ws && !c.ws->close_reason.empty()) {
      c.client->close(c.ws->close_reason);
      return;
    }
    // Plain sockets are level-triggered: what is left is read next turn, and a
    // short read means the socket was emptied, so another recv would only say
    // EAGAIN (one system call per packet saved for devices that send one
    // packet and wait). TLS may hold decrypted bytes the socket no longer
    // signals, so read those now.
    if (!c.io->buffers_input() && (got < read_buf_.size() || got > budget)) return;
    budget -= std::min(budget, got);
  }
}

void Worker::parse_partial(Connection& c) {
  size_t used = c.client->on_bytes(c.partial);
  c.partial.erase(0, used);
  if (c.partial.empty()) std::string().swap(c.partial);  // idle connections hold no buffer
}

void Worker::on_writable(Connection& c) {
  if (c.handshaking) {
    if (!continue_handshake(c)) return;
    on_readable(c);
  }
  flush(c);
  if (!write_pending(c)) set_want_write(c, false);
}

bool Worker::write_pending(const Connection& c) const {
  if (!c.client->out().empty()) return true;
  return c.ws && (!c.ws->prefix.empty() || !c.ws->control.empty());
}

void Worker::set_want_write(Connection& c, bool want) {
  if (c.want_write == want) return;
  c.want_write = want;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void Worker::flush(Connection& c) {
  if (c.handshaking) return;  // written once the handshake is done
  if (c.ws) {
    flush_websocket(c);
    return;
  }
  broker::OutQueue& out = c.client->out();
  std::string_view views[kMaxIov];
  while (!out.empty()) {
    size_t n = out.gather(views, kMaxIov);
    ssize_t w = write_views(c, views, n);
    if (w <= 0) return;
    out.consume(static_cast<size_t>(w));
  }
}

ssize_t Worker::write_views(Connection& c, const std::string_view* views, size_t n) {
  bool want_write = false;
  ssize_t w = c.io->write(c, views, n, want_write);
  if (w > 0) {
    broker::ShardCounters::add(shard_->counters().bytes_out, static_cast<size_t>(w));
  } else if (want_write) {
    set_want_write(c, true);
  }
  return w;
}

void Worker::end_of_turn() {
  // Delivering can produce more work (a will routed on close, an attach that
  // lets buffered packets be parsed), so repeat until quiet, with a bound.
  for (int round = 0; round < 16; ++round) {
    shard_->flush_outboxes();
    swapped_.clear();
    swapped_.swap(turn_.writes);
    for (Connection* c : swapped_) {
      c->write_queued = false;
      // Packets that waited while a session was handed over.
      if (!c->partial.empty() && !c->client->closing()) parse_partial(*c);
      flush(*c);
    }
    bool did_work = !swapped_.empty();
    swapped_.clear();
    swapped_.swap(turn_.closing);
    for (Connection* c : swapped_) destroy(c);
    did_work |= !swapped_.empty();
    swapped_.clear();
    if (!did_work && shard_->outboxes_empty()) break;
  }
}

void Worker::destroy(Connection* c, bool linger) {
  if (c->ws) websocket_goodbye(*c);
  c->client.reset();
  // A client that closed while being flushed this turn is listed for writing
  // again (its DISCONNECT): it must not be reached once freed.
  if (c->write_queued) {
    std::erase(turn_.writes, c);
    c->write_queued = false;
  }
  std::erase(turn_.closing, c);
  c->io->goodbye(*c);  // TLS: close_notify, then the session is freed
  if (linger && !c->peer_gone) {
    // The server ends this connection (a DISCONNECT with a reason, a protocol
    // error, keep-alive, a takeover) while the client may still be sending.
    // close() with unread input makes the kernel answer with a reset, which
    // can reach the client before the last packets we wrote and destroy them
    // in its receive buffer: it would see ECONNRESET instead of the reason.
    // So: FIN after what was written, then read and discard until the client
    // closes too, for at most kDrainMs (MQTT 5 section 4.13, RFC 1122 4.2.2.13).
    ::shutdown(c->fd, SHUT_WR);
    c->ws.reset();
    std::string().swap(c->partial);
    set_want_write(*c, false);
    draining_.push_back({c, shard_->now_ms() + kDrainMs});
    return;
  }
  finish_close(*c);
  delete c;
}

void Worker::finish_close(Connection& c) {
  if (c.fd < 0) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  c.fd = -1;
  c.listener->release();
  shard_->broker().stats().open_connections.fetch_sub(1, std::memory_order_relaxed);
}

void Worker::drain(Connection& c) {
  size_t budget = kReadBudget;  // per turn, as for reading: the other connections go on
  while (c.fd >= 0 && budget > 0) {
    ssize_t n = ::recv(c.fd, read_buf_.data(), read_buf_.size(), 0);
    if (n > 0) {
      budget -= std::min(budget, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    finish_close(c);  // the client closed too (or failed): done
  }
}

void Worker::sweep_draining(bool all) {
  size_t kept = 0;
  for (auto& [c, until] : draining_) {
    if (all || c->fd < 0 || shard_->now_ms() >= until) {
      finish_close(*c);
      delete c;
    } else {
      draining_[kept++] = {c, until};
    }
  }
  draining_.resize(kept);
}

void Worker::tick() {
  last_tick_ms_ = shard_->now_ms();
  sweep_draining(false);
  batch_.clear();
  for (const auto& [id, client] : shard_->clients()) batch_.push_back(client);
  for (broker::Client* client : batch_) client->tick(last_tick_ms_);
  batch_.clear();
  shard_->expire_sessions();
}

bool Worker::settle_for_shutdown() {
  if (!shard_) return false;
  shard_->drain_inbox();
  bool work = !shard_->outboxes_empty() || !turn_.writes.empty();
  shard_->flush_outboxes();
  swapped_.clear();
  swapped_.swap(turn_.writes);
  for (Connection* c : swapped_) {
    c->write_queued = false;
    flush(*c);
  }
  swapped_.clear();
  return work;
}

void Worker::close_all() {
  if (!shard_) return;
  batch_.clear();
  for (const auto& [id, client] : shard_->clients()) batch_.push_back(client);
  for (broker::Client* client : batch_) {
    client->close("server shutting down", /*publish_will=*/false,
                  mqtt::ReasonCode::ServerShuttingDown);
  }
  batch_.clear();
  // Every client is closing now, so every connection is on the closing list
  // (those that closed before, too): the list reaches them without a way back
  // from a Client to its connection.
  swapped_.clear();
  swapped_.swap(turn_.closing);
  for (Connection* c : swapped_) flush(*c);
  for (Connection* c : swapped_) destroy(c, /*linger=*/false);
  swapped_.clear();
  sweep_draining(/*all=*/true);
  for (Connection* c : turn_.writes) c->write_queued = false;
  turn_.writes.clear();
  turn_.closing.clear();
}

}  // namespace net
