// Connect decisions and the swappable policy (see authenticator.hpp).
#include "auth/authenticator.hpp"

#include <utility>

#include "mqtt/topic.hpp"

namespace auth {

mqtt::ConnackCode connack_code(ConnectDecision d) {
  switch (d) {
    case ConnectDecision::Accept:
      return mqtt::ConnackCode::Accepted;
    case ConnectDecision::BadCredentials:
      return mqtt::ConnackCode::BadUsernameOrPassword;
    case ConnectDecision::NotAuthorized:
      return mqtt::ConnackCode::NotAuthorized;
  }
  return mqtt::ConnackCode::NotAuthorized;
}

util::Result<std::shared_ptr<const Policy>> Policy::load(const AuthOptions& options) {
  auto p = std::make_shared<Policy>();
  p->options_ = options;
  std::string errors;
  if (!options.password_file.empty()) {
    auto file = std::make_shared<PasswordFile>();
    if (auto loaded = file->load(options.password_file)) {
      p->passwords_ = std::move(file);
    } else {
      errors = std::move(loaded).error().message;
    }
  }
  if (!options.acl_file.empty()) {
    auto file = std::make_shared<AclFile>();
    if (auto loaded = file->load(options.acl_file)) {
      p->acl_ = std::move(file);
    } else {
      if (!errors.empty()) errors += '\n';
      errors += loaded.error().message;
    }
  }
  if (!errors.empty()) return util::Error{std::move(errors)};
  const bool has_passwords = !options.password_file.empty();
  p->allow_anonymous_ = options.allow_anonymous.value_or(!has_passwords);

  if (options.cert_cn_as_username) {
    if (has_passwords) {
      p->warnings_.push_back(
          "the password file is not used: user names come from TLS client "
          "certificates");
    }
  } else {
    if (!options.acl_file.empty() && !has_passwords) {
      p->warnings_.push_back(
          "an ACL file without a password file: user names are not "
          "verified, so a client can claim any user's rules");
    }
    if (!has_passwords && !p->allow_anonymous_) {
      p->warnings_.push_back(
          "anonymous clients are refused and there is no password file: "
          "every connection will be refused");
    }
  }
  return std::shared_ptr<const Policy>(std::move(p));
}

std::shared_ptr<const Policy> Policy::open() {
  static const std::shared_ptr<const Policy> open = std::make_shared<const Policy>();
  return open;
}

ConnectResult Policy::check_connect(std::optional<std::string_view> username,
                                    std::optional<std::string_view> password,
                                    bool tls_client_cert_verified,
                                    std::string_view cert_common_name) const {
  ConnectResult r;
  auto refuse = [&](ConnectDecision d, const char* why) {
    r.decision = d;
    r.reason = why;
    return r;
  };
  if (options_.cert_cn_as_username) {
    if (!tls_client_cert_verified) {
      return refuse(ConnectDecision::NotAuthorized, "no verified TLS client certificate");
    }
    if (cert_common_name.empty()) {
      return refuse(ConnectDecision::NotAuthorized, "the client certificate has no Common Name");
    }
    if (cert_common_name.size() > kMaxCredentialBytes || !mqtt::valid_utf8(cert_common_name)) {
      return refuse(ConnectDecision::NotAuthorized,
                    "the client certificate's Common Name is not a valid user name");
    }
    r.username.emplace(cert_common_name);
    return r;
  }
  if (!username) {
    // MQTT 3.1.1 makes this a protocol error [MQTT-3.1.2-22]; refuse if it gets here.
    if (password) return refuse(ConnectDecision::BadCredentials, "a password without a user name");
    if (!allow_anonymous_) {
      return refuse(ConnectDecision::NotAuthorized, "anonymous clients are not allowed");
    }
    return r;
  }
  if (!passwords_) {
    // Nothing to check the name against: the client is as good as anonymous.
    if (!allow_anonymous_) {
      return refuse(ConnectDecision::NotAuthorized,
                    "no password file to check the user name against, and anonymous clients "
                    "are not allowed");
    }
    r.username.emplace(*username);
    return r;
  }
  if (!password) return refuse(ConnectDecision::BadCredentials, "no password");
  if (!passwords_->check(*username, *password)) {
    return refuse(ConnectDecision::BadCredentials, "unknown user name or wrong password");
  }
  r.username.emplace(*username);
  return r;
}

std::shared_ptr<const ClientRules> Policy::rules_for(const ClientIdentity& who) const {
  if (!acl_) return ClientRules::allow_all();
  return acl_->rules_for(who);
}

bool Policy::may_publish(const ClientIdentity& who, std::string_view topic) const {
  return !acl_ || rules_for(who)->may_publish(topic);
}

bool Policy::may_subscribe(const ClientIdentity& who, std::string_view filter) const {
  return !acl_ || rules_for(who)->may_subscribe(filter);
}

size_t Policy::user_count() const {
  return passwords_ ? passwords_->size() : 0;
}

size_t Policy::acl_rule_count() const {
  return acl_ ? acl_->rule_count() : 0;
}

std::string Policy::describe() const {
  if (!passwords_ && !acl_ && !options_.cert_cn_as_username && allow_anonymous_) {
    return "authentication and authorization off";
  }
  std::string s;
  if (options_.cert_cn_as_username) {
    s = "user names from TLS client certificates";
  } else if (passwords_) {
    s = "password file " + options_.password_file + " (" + std::to_string(passwords_->size()) +
        (passwords_->size() == 1 ? " user)" : " users)");
  } else {
    s = "no password file";
  }
  if (!options_.cert_cn_as_username) {
    s += allow_anonymous_ ? ", anonymous clients allowed" : ", anonymous clients refused";
  }
  s += acl_ ? ", ACL file " + options_.acl_file : ", no ACL (everything allowed)";
  return s;
}

Authenticator::Authenticator(std::shared_ptr<const Policy> initial)
    : policy_(initial ? std::move(initial) : Policy::open()) {}

std::shared_ptr<const Policy> Authenticator::policy() const {
  std::lock_guard lock(mutex_);
  return policy_;
}

void Authenticator::replace(std::shared_ptr<const Policy> next) {
  if (!next) next = Policy::open();
  {
    std::lock_guard lock(mutex_);
    policy_.swap(next);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  // The old policy (now in `next`) is released here, outside the lock.
}

util::Status Authenticator::reload(const AuthOptions& options) {
  auto next = Policy::load(options);
  if (!next) return std::move(next).error();
  replace(std::move(next).value());
  return {};
}

}  // namespace auth
