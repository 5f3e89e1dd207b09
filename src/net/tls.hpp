// Server-side TLS context: TLS 1.2 and 1.3, PEM certificate chain and key.
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "util/result.hpp"

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

  // Loads the certificate chain and private key; the error is one line naming
  // the file and the cause.
  util::Status load(const std::string& cert_file, const std::string& key_file);
  // Asks clients for a certificate and verifies it against `ca_file`; with
  // `require`, a client without a valid one fails the handshake.
  util::Status verify_clients(const std::string& ca_file, bool require);
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_ = nullptr;
};

}  // namespace net
