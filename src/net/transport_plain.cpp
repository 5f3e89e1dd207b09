// Plain TCP: recv and writev on the socket, nothing in between.
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "net/connection.hpp"
#include "net/stream_io.hpp"
#include "net/worker.hpp"

namespace net {

namespace {

class PlainIo final : public StreamIo {
 public:
  void start(Connection&, Listener&) override {}
  bool handshake(Connection& c, bool&) override {
    c.handshaking = false;
    return true;
  }

  ssize_t read(Connection& c, char* buf, size_t n, bool&) override {
    for (;;) {
      ssize_t got = ::recv(c.fd, buf, n, 0);
      if (got > 0) return got;
      if (got == 0) {
        c.peer_gone = true;
        c.client->close("connection closed by peer");
        return -1;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) continue;
      c.peer_gone = true;
      c.client->close(std::string("read error: ") + std::strerror(errno));
      return -1;
    }
  }

  ssize_t write(Connection& c, const std::string_view* views, size_t n, bool& want_write) override {
    iovec iov[kMaxIov];
    for (size_t i = 0; i < n; ++i) {
      iov[i].iov_base = const_cast<char*>(views[i].data());
      iov[i].iov_len = views[i].size();
    }
    for (;;) {
      ssize_t w = ::writev(c.fd, iov, static_cast<int>(n));
      if (w > 0) return w;
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        want_write = true;
        return 0;
      }
      c.peer_gone = true;
      c.client->close(std::string("write error: ") + std::strerror(errno));
      return -1;
    }
  }

  // The socket is level-triggered and nothing sits above it: a short read
  // means it was emptied.
  bool buffers_input() const override { return false; }
  void goodbye(Connection&) override {}
};

}  // namespace

std::unique_ptr<StreamIo> make_plain_io() {
  return std::make_unique<PlainIo>();
}

}  // namespace net
