// Common Names of TLS client certificates (see tls_identity.hpp).
#include "auth/tls_identity.hpp"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>

namespace auth {

std::optional<std::string> certificate_common_name(const X509* cert) {
  if (!cert) return std::nullopt;
  const X509_NAME* name = X509_get_subject_name(cert);
  if (!name) return std::nullopt;
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return std::nullopt;
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return std::nullopt;
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  if (cn.empty() || cn.find('\0') != std::string::npos) return std::nullopt;
  return cn;
}

std::optional<std::string> verified_peer_common_name(const SSL* ssl) {
  if (!ssl) return std::nullopt;
  const X509* cert = SSL_get0_peer_certificate(ssl);
  // X509_V_OK is also the result when no certificate was sent: check both.
  if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  return certificate_common_name(cert);
}

}  // namespace auth
