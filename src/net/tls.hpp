// Server-side TLS context: TLS 1.2 and 1.3, PEM certificate chain and key.
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace net {

// The calling thread's first OpenSSL error as text (the queue is cleared), or
// `if_none` when OpenSSL recorded none (then errno's text when not given).
std::string openssl_error_text(const char* if_none = nullptr);

class TlsContext {
 public:
  TlsContext() = default;
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Loads the certificate chain and private key; on failure returns false and
  // sets `error` to one line naming the file and the cause.
  bool load(const std::string& cert_file, const std::string& key_file, std::string& error);
  // Asks clients for a certificate and verifies it against `ca_file`; with
  // `require`, a client without a valid one fails the handshake.
  bool verify_clients(const std::string& ca_file, bool require, std::string& error);
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_ = nullptr;
};

}  // namespace net
