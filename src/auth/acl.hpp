// ACL files, modelled on Mosquitto's acl_file:
//
//   # comment
//   topic read public/#              <- before any "user" line: anonymous clients
//   user alice                       <- starts alice's block
//   topic readwrite alice/#
//   topic deny alice/secret
//   pattern write devices/%c/out     <- any position: every client, %c/%u replaced
//
// `topic [read|write|readwrite|deny] <filter>` and `pattern ...` take the rest
// of the line as the filter (it may contain blanks); without an access word
// the access is readwrite. A deny rule refuses both reading and writing and
// wins over any grant, whatever the order of the lines.
//
// Decisions for one client are precomputed once (rules_for, at CONNECT) into
// an immutable ClientRules whose checks do not allocate.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace auth {

// Who a client is for authorization. The views need only live for the call.
struct ClientIdentity {
  std::string_view client_id;
  std::optional<std::string_view> username;  // nullopt: anonymous
};

enum class Access : uint8_t { Read = 1, Write = 2, ReadWrite = 3, Deny = 4 };

// Whether every topic name matched by `filter` is also matched by `rule`,
// i.e. the subscription `filter` can never receive anything `rule` does not
// allow. Both must be valid topic filters. Follows mqtt::topic_matches,
// including [MQTT-4.7.2-1]: a rule starting with '+' or '#' does not cover a
// filter whose first level starts with '$'.
//   filter_covers("a/#", "a/+/b") == true
//   filter_covers("a/+", "a/b")   == true
//   filter_covers("a/+", "a/#")   == false
bool filter_covers(std::string_view rule, std::string_view filter);

// The rules that apply to one client, with %c/%u already substituted.
// Immutable; share it as std::shared_ptr<const ClientRules>.
class ClientRules {
 public:
  // Rules that allow everything (no ACL file configured).
  static std::shared_ptr<const ClientRules> allow_all();

  // PUBLISH to `topic` (a valid topic name): some write rule matches it and
  // no deny rule does.
  bool may_publish(std::string_view topic) const;
  // SUBSCRIBE to `filter` (a valid topic filter): some read rule covers it
  // (filter_covers) and no deny rule covers it. A deny rule that only
  // overlaps the filter (deny a/secret, subscribe a/#) does not refuse the
  // subscription: deliveries must then be checked with may_receive.
  bool may_subscribe(std::string_view filter) const;
  // Delivery of a message on `topic` to this client: some read rule matches
  // it and no deny rule does.
  bool may_receive(std::string_view topic) const;
  // Whether deliveries need may_receive at all: false when there is no deny
  // rule, because then may_subscribe has already proved every topic a granted
  // subscription can match readable.
  bool has_deny() const { return !deny_.empty() || (base_ && base_->has_deny()); }
  bool allows_everything() const { return all_; }

  // The rules in force (substituted), for logs and tests.
  std::vector<std::string> read_filters() const;
  std::vector<std::string> write_filters() const;
  std::vector<std::string> deny_filters() const;

 private:
  friend class AclFile;
  bool all_ = false;
  // Rules shared by every client with the same user block (null: none); this
  // object's own lists hold only the substituted patterns.
  std::shared_ptr<const ClientRules> base_;
  std::vector<std::string> read_, write_, deny_;
};

// A parsed ACL file; immutable after load/parse.
class AclFile {
 public:
  // Reads and parses `path`. On failure the error lists every bad line as
  // "<path>:<line>: <reason>", one per line, and the object is left empty.
  util::Status load(const std::string& path);
  // Same over text already in memory; `source` names it in errors.
  util::Status parse(std::string_view text, std::string_view source);

  // The rules of one client: those of its user block (or the anonymous ones
  // when it has no user name) plus every pattern that applies to it. A
  // pattern does not apply when it uses %u and the client has no (or an
  // empty) user name, uses %c with an empty client id, or when a substituted
  // value contains '+', '#' or '/' or would make the filter start with '$'
  // (so an identity cannot widen a rule or reach $SYS).
  // When no %c/%u pattern applies to the client this allocates nothing:
  // clients with the same user block then share one ClientRules.
  std::shared_ptr<const ClientRules> rules_for(const ClientIdentity& who) const;

  // How many `topic` and `pattern` lines the file has (for logs).
  size_t rule_count() const { return rule_count_; }

 private:
  struct Rule {
    Access access;
    std::string filter;
  };
  static void add(ClientRules& to, Access access, std::string filter);

  // Each block's rules plus the patterns without %c/%u, built once at parse.
  std::shared_ptr<const ClientRules> anonymous_ = std::make_shared<const ClientRules>();
  std::shared_ptr<const ClientRules> no_block_ = std::make_shared<const ClientRules>();
  std::map<std::string, std::shared_ptr<const ClientRules>, std::less<>> users_;
  std::vector<Rule> patterns_;  // those with %c or %u, substituted per client
  size_t rule_count_ = 0;
};

}  // namespace auth
