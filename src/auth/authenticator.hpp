// The façade the broker calls: who may connect (password file, anonymous
// clients, TLS client certificates) and what they may publish and subscribe to
// (ACL file). Off by default: with no files configured everyone may connect
// and do anything.
//
// Threads: a Policy is immutable once loaded, so any number of threads may
// call it at once. Authenticator holds the current Policy and swaps in a new
// one atomically on reload; callers keep the shared_ptr they were given, so a
// reload never changes a decision half-way.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/acl.hpp"
#include "auth/password_file.hpp"
#include "mqtt/packet.hpp"

namespace auth {

struct AuthOptions {
  std::string password_file;  // empty: no password file
  std::string acl_file;       // empty: no ACL, everything allowed
  // Whether clients without a user name may connect. Unset: true without a
  // password file, false with one.
  std::optional<bool> allow_anonymous;
  // Take the user name from the verified TLS client certificate's Common Name
  // (ignoring the CONNECT user name and password, and the password file);
  // connections without a verified certificate are refused with 0x05.
  bool cert_cn_as_username = false;
};

enum class ConnectDecision : uint8_t {
  Accept,
  BadCredentials,  // CONNACK 0x04: bad user name or password
  NotAuthorized,   // CONNACK 0x05: not authorized
};

// The CONNACK return code (MQTT 3.1 / 3.1.1) for a decision.
mqtt::ConnackCode connack_code(ConnectDecision d);

struct ConnectResult {
  ConnectDecision decision = ConnectDecision::Accept;
  // On Accept: the user name to authorize with (ClientIdentity::username);
  // the certificate's CN in cert_cn_as_username mode, else the CONNECT user
  // name (nullopt: anonymous).
  std::optional<std::string> username;
  // On refusal: why, for the log (never sent to the client). Static text.
  const char* reason = "";
};

class Policy {
 public:
  // Reads the configured files. An error (every problem, one per line,
  // "<file>:<line>: <reason>") when a file is unreadable or bad; never nullptr.
  static util::Result<std::shared_ptr<const Policy>> load(const AuthOptions& options);
  // No files: everyone may connect and do anything.
  static std::shared_ptr<const Policy> open();

  // Decides a CONNECT. `username`/`password` as in the packet (nullopt when
  // the flag is clear); `tls_client_cert_verified` true only when the peer
  // sent a certificate that passed verification; `cert_common_name` its CN.
  // Costs one PBKDF2 derivation (see kDefaultIterations) when a user name is
  // checked against the password file.
  ConnectResult check_connect(std::optional<std::string_view> username,
                              std::optional<std::string_view> password,
                              bool tls_client_cert_verified,
                              std::string_view cert_common_name) const;

  // One client's rules, computed once per connection (after an accepted
  // CONNECT, with the effective user name from ConnectResult). Without an ACL
  // file this is ClientRules::allow_all() (no allocation).
  std::shared_ptr<const ClientRules> rules_for(const ClientIdentity& who) const;

  // One-off checks (build the rules each time; prefer rules_for for a connection).
  bool may_publish(const ClientIdentity& who, std::string_view topic) const;
  bool may_subscribe(const ClientIdentity& who, std::string_view filter) const;

  const AuthOptions& options() const { return options_; }
  bool allow_anonymous() const { return allow_anonymous_; }
  bool has_password_file() const { return passwords_ != nullptr; }
  bool has_acl() const { return acl_ != nullptr; }
  // Users in the password file and rules (topic and pattern lines) in the
  // ACL file; 0 when that file is not configured. For logs.
  size_t user_count() const;
  size_t acl_rule_count() const;
  // Configurations that work but are probably not what was meant (e.g. an
  // ACL with unverified user names). Log them at start-up.
  const std::vector<std::string>& warnings() const { return warnings_; }
  // A one-line description for the start-up log.
  std::string describe() const;

 private:
  AuthOptions options_;
  bool allow_anonymous_ = true;
  std::shared_ptr<const PasswordFile> passwords_;  // null: none configured
  std::shared_ptr<const AclFile> acl_;             // null: everything allowed
  std::vector<std::string> warnings_;
};

// The current Policy, replaceable at run time (e.g. on SIGHUP).
class Authenticator {
 public:
  explicit Authenticator(std::shared_ptr<const Policy> initial = Policy::open());

  // The policy to use for one decision or one connection. Cheap (a mutex held
  // for a shared_ptr copy), but meant for once per CONNECT, not per PUBLISH:
  // keep the ClientRules instead.
  std::shared_ptr<const Policy> policy() const;
  // Increments on every replace(); a connection can compare it with the value
  // it saw at CONNECT to notice a reload and refresh its ClientRules.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  void replace(std::shared_ptr<const Policy> next);
  // Loads `options` and, only if that succeeds, makes it current. On failure
  // the current policy stays and the error says why.
  util::Status reload(const AuthOptions& options);

 private:
  // A mutex rather than std::atomic<std::shared_ptr>: GCC 12's version is
  // reported as racy by ThreadSanitizer, and this is not a hot path.
  mutable std::mutex mutex_;
  std::shared_ptr<const Policy> policy_;  // guarded by mutex_
  std::atomic<uint64_t> generation_{0};
};

}  // namespace auth
