// The identity a TLS client certificate gives, for cert_cn_as_username.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <optional>
#include <string>

namespace auth {

// The subject Common Name of `cert` as UTF-8 (the first CN if there are
// several, as Mosquitto takes it). nullopt when there is none, or it cannot be
// converted to UTF-8, is empty or contains U+0000.
std::optional<std::string> certificate_common_name(const X509* cert);

// The Common Name of the peer certificate of a finished handshake on `ssl`,
// only if the peer sent one and it passed verification (SSL_get_verify_result
// is X509_V_OK). The server must have asked for it (SSL_VERIFY_PEER with a CA);
// otherwise there is never a verified certificate.
std::optional<std::string> verified_peer_common_name(const SSL* ssl);

}  // namespace auth
