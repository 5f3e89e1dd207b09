// TLS (OpenSSL) over the socket: the handshake, SSL_read, and SSL_write of
// what a flush gathers staged into one record-sized buffer.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "auth/tls_identity.hpp"
#include "net/connection.hpp"
#include "net/listeners.hpp"
#include "net/stream_io.hpp"
#include "net/tls.hpp"
#include "net/worker.hpp"

namespace net {

namespace {

// ERR_clear_error() before each call: OpenSSL keeps one error queue per
// thread, and SSL_get_error reports SSL_ERROR_SSL whenever that queue is not
// empty, whatever the call that just returned did. A worker serves many TLS
// connections, so an error left by one (a close_notify to a peer that already
// hung up) made the next healthy connection's SSL_read look failed and closed
// it ("shutdown while in init"). Every TLS call whose result goes to
// SSL_get_error starts with an empty queue (a thread-local reset, no system call).

class TlsIo final : public StreamIo {
 public:
  void start(Connection& c, Listener& listener) override {
    // Held until SSL_new has taken its own reference to the SSL_CTX: a
    // SIGHUP reload may replace the listener's context meanwhile.
    std::shared_ptr<const TlsContext> tls = listener.tls_context();
    c.ssl = SSL_new(tls->get());
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_accept_state(c.ssl);
    c.handshaking = true;
  }

  bool handshake(Connection& c, bool& want_write) override {
    ERR_clear_error();
    int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
      c.handshaking = false;
      c.client->tls_common_name = auth::verified_peer_common_name(c.ssl);
      return true;
    }
    int err = SSL_get_error(c.ssl, r);
    if (err == SSL_ERROR_WANT_READ) return false;
    if (err == SSL_ERROR_WANT_WRITE) {
      want_write = true;
      return false;
    }
    std::string why = openssl_error_text();
    spdlog::info("TLS handshake with {} failed: {}", c.client->remote(), why);
    c.client->close("TLS handshake failed: " + why, false);
    return false;
  }

  ssize_t read(Connection& c, char* buf, size_t n, bool& want_write) override {
    ERR_clear_error();
    int got = SSL_read(c.ssl, buf, static_cast<int>(n));
    if (got > 0) return got;
    int err = SSL_get_error(c.ssl, got);
    if (err == SSL_ERROR_WANT_READ) return 0;
    if (err == SSL_ERROR_WANT_WRITE) {
      want_write = true;
      return 0;
    }
    c.peer_gone = true;
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
      c.client->close("connection closed by peer");
    } else {
      c.client->close("TLS read error: " + openssl_error_text());
    }
    return -1;
  }

  ssize_t write(Connection& c, const std::string_view* views, size_t n, bool& want_write) override {
    // TLS encrypts anyway: gather into one record-sized buffer.
    stage_.clear();
    for (size_t i = 0; i < n && stage_.size() < kTlsStage; ++i) {
      size_t take = std::min(views[i].size(), kTlsStage - stage_.size());
      stage_.insert(stage_.end(), views[i].data(), views[i].data() + take);
    }
    ERR_clear_error();
    int r = SSL_write(c.ssl, stage_.data(), static_cast<int>(stage_.size()));
    if (r > 0) return r;
    int err = SSL_get_error(c.ssl, r);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      want_write = true;
      return 0;
    }
    c.peer_gone = true;
    c.client->close("TLS write error: " + openssl_error_text());
    return -1;
  }

  // Decrypted bytes may wait in OpenSSL that the socket no longer signals.
  bool buffers_input() const override { return true; }

  void goodbye(Connection& c) override {
    if (!c.ssl) return;
    if (!c.handshaking) SSL_shutdown(c.ssl);
    ERR_clear_error();  // a failed close_notify must not reach the next connection
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }

 private:
  std::vector<char>
      stage_;  // plaintext gathered for one SSL_write, shared by the worker's connections
};

}  // namespace

std::unique_ptr<StreamIo> make_tls_io() {
  return std::make_unique<TlsIo>();
}

}  // namespace net
