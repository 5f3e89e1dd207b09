#include "net/tls.hpp"

#include <openssl/err.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace net {

std::string openssl_error_text(const char* if_none) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return if_none ? if_none : std::strerror(errno);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

namespace {
util::Status readable(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f)
    return util::Error{std::string("cannot read ") + what + " '" + path +
                       "': " + std::strerror(errno)};
  return {};
}
}  // namespace

TlsContext::~TlsContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

util::Status TlsContext::load(const std::string& cert_file, const std::string& key_file) {
  if (auto r = readable(cert_file, "certificate"); !r) return r;
  if (auto r = readable(key_file, "private key"); !r) return r;
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (!ctx_) {
    return util::Error{"cannot create TLS context: " + openssl_error_text("unknown error")};
  }
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx_, cert_file.c_str()) != 1) {
    return util::Error{"cannot load certificate '" + cert_file +
                       "': " + openssl_error_text("unknown error")};
  }
  if (SSL_CTX_use_PrivateKey_file(ctx_, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return util::Error{"cannot load private key '" + key_file +
                       "': " + openssl_error_text("unknown error")};
  }
  if (SSL_CTX_check_private_key(ctx_) != 1) {
    return util::Error{"private key '" + key_file + "' does not match certificate '" + cert_file +
                       "'"};
  }
  return {};
}

util::Status TlsContext::verify_clients(const std::string& ca_file, bool require) {
  if (auto r = readable(ca_file, "CA file"); !r) return r;
  if (SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
    return util::Error{"cannot load CA file '" + ca_file +
                       "': " + openssl_error_text("unknown error")};
  }
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_file.c_str())) {
    SSL_CTX_set_client_CA_list(ctx_, names);
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                     nullptr);
  return {};
}

}  // namespace net
