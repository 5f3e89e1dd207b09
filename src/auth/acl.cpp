// ACL file parsing and per-client rule checks (see acl.hpp).
#include "auth/acl.hpp"

#include <utility>

#include "auth/password_file.hpp"
#include "auth/text.hpp"
#include "mqtt/topic.hpp"

namespace auth {

namespace {

// Walks the '/'-separated levels of a non-empty filter without allocating.
class Levels {
 public:
  explicit Levels(std::string_view s) : s_(s) {}
  // The next level in `out`; false once every level has been returned.
  bool next(std::string_view& out) {
    if (done_) return false;
    const size_t slash = s_.find('/', pos_);
    if (slash == std::string_view::npos) {
      out = s_.substr(pos_);
      done_ = true;
    } else {
      out = s_.substr(pos_, slash - pos_);
      pos_ = slash + 1;
    }
    return true;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  bool done_ = false;
};

bool any_matches(const std::vector<std::string>& filters, std::string_view topic) {
  for (const std::string& f : filters) {
    if (mqtt::topic_matches(f, topic)) return true;
  }
  return false;
}

bool any_covers(const std::vector<std::string>& filters, std::string_view filter) {
  for (const std::string& f : filters) {
    if (filter_covers(f, filter)) return true;
  }
  return false;
}

// `pattern` with %c and %u replaced, or nullopt when the pattern does not
// apply to `who` (see AclFile::rules_for). Other '%' characters stay as they are.
std::optional<std::string> substitute(std::string_view pattern, const ClientIdentity& who) {
  std::string out;
  out.reserve(pattern.size() + who.client_id.size());
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    const char next = i + 1 < pattern.size() ? pattern[i + 1] : '\0';
    if (c != '%' || (next != 'c' && next != 'u')) {
      out += c;
      continue;
    }
    std::string_view value;
    if (next == 'c') {
      value = who.client_id;
    } else if (who.username) {
      value = *who.username;
    }
    if (value.empty()) return std::nullopt;
    // An identity must not carry wildcards or level separators into a rule...
    if (value.find_first_of("+#/") != std::string_view::npos) return std::nullopt;
    // ...nor turn it into a '$' topic (e.g. a client named "$SYS" and "%c/#").
    if (out.empty() && value.front() == '$') return std::nullopt;
    out += value;
    ++i;
  }
  if (!mqtt::valid_topic_filter(out)) return std::nullopt;
  return out;
}

std::optional<Access> parse_access(std::string_view word) {
  if (word == "read") return Access::Read;
  if (word == "write") return Access::Write;
  if (word == "readwrite") return Access::ReadWrite;
  if (word == "deny") return Access::Deny;
  return std::nullopt;
}

// Splits "<word><blanks><rest>" into word and trimmed rest.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  size_t end = 0;
  while (end < s.size() && !detail::is_blank(s[end])) ++end;
  return {s.substr(0, end), detail::trim(s.substr(end))};
}

}  // namespace

bool filter_covers(std::string_view rule, std::string_view filter) {
  Levels r(rule);
  Levels f(filter);
  std::string_view first;  // the filter's first level
  for (size_t i = 0;; ++i) {
    std::string_view rl;
    std::string_view fl;
    const bool has_r = r.next(rl);
    const bool has_f = f.next(fl);
    if (i == 0) first = fl;
    // The rule ends here: it matches only topics with exactly i levels, so the
    // filter must end here too.
    if (!has_r) return !has_f;
    if (rl == "#") {
      // Everything from here down (the parent level included), except that a
      // leading wildcard does not reach '$' topics. [MQTT-4.7.2-1]
      return !(i == 0 && has_f && fl.starts_with('$'));
    }
    // The filter ends here but the rule needs at least one more level.
    if (!has_f) return false;
    if (fl == "#") {
      // The filter takes every continuation, including the parent topic (its
      // first i levels), which a rule level other than '#' never matches. So
      // the rule can only cover it as "+/#" where there is no parent topic: at
      // the top ("#": a topic has at least one level, so "+/#" and "#" match
      // the same topics), and under one empty level ("/#": the parent would be
      // the empty topic, which is not a valid topic name).
      const bool no_parent = i == 0 || (i == 1 && first.empty());
      if (no_parent && rl == "+") {
        std::string_view rest;
        return r.next(rest) && rest == "#";
      }
      return false;
    }
    if (fl == "+") {
      if (rl != "+") return false;  // a fixed level cannot cover every value
    } else if (rl == "+") {
      if (i == 0 && fl.starts_with('$')) return false;  // [MQTT-4.7.2-1]
    } else if (rl != fl) {
      return false;
    }
  }
}

// ------------------------------------------------------------------ ClientRules

std::shared_ptr<const ClientRules> ClientRules::allow_all() {
  static const std::shared_ptr<const ClientRules> all = [] {
    auto r = std::make_shared<ClientRules>();
    r->all_ = true;
    return std::shared_ptr<const ClientRules>(std::move(r));
  }();
  return all;
}

bool ClientRules::may_publish(std::string_view topic) const {
  if (all_) return true;
  if (any_matches(deny_, topic) || (base_ && any_matches(base_->deny_, topic))) return false;
  return any_matches(write_, topic) || (base_ && any_matches(base_->write_, topic));
}

bool ClientRules::may_subscribe(std::string_view filter) const {
  if (all_) return true;
  if (any_covers(deny_, filter) || (base_ && any_covers(base_->deny_, filter))) return false;
  return any_covers(read_, filter) || (base_ && any_covers(base_->read_, filter));
}

bool ClientRules::may_receive(std::string_view topic) const {
  if (all_) return true;
  if (any_matches(deny_, topic) || (base_ && any_matches(base_->deny_, topic))) return false;
  return any_matches(read_, topic) || (base_ && any_matches(base_->read_, topic));
}

namespace {

std::vector<std::string> joined(const std::vector<std::string>* base,
                                const std::vector<std::string>& own) {
  std::vector<std::string> out;
  if (base) out = *base;
  out.insert(out.end(), own.begin(), own.end());
  return out;
}

}  // namespace

std::vector<std::string> ClientRules::read_filters() const {
  return joined(base_ ? &base_->read_ : nullptr, read_);
}

std::vector<std::string> ClientRules::write_filters() const {
  return joined(base_ ? &base_->write_ : nullptr, write_);
}

std::vector<std::string> ClientRules::deny_filters() const {
  return joined(base_ ? &base_->deny_ : nullptr, deny_);
}

// ------------------------------------------------------------------ AclFile

void AclFile::add(ClientRules& to, Access access, std::string filter) {
  switch (access) {
    case Access::Read:
      to.read_.push_back(std::move(filter));
      break;
    case Access::Write:
      to.write_.push_back(std::move(filter));
      break;
    case Access::ReadWrite:
      to.read_.push_back(filter);
      to.write_.push_back(std::move(filter));
      break;
    case Access::Deny:
      to.deny_.push_back(std::move(filter));
      break;
  }
}

util::Status AclFile::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) {
    *this = AclFile{};
    return std::move(text).error();
  }
  return parse(*text, path);
}

util::Status AclFile::parse(std::string_view text, std::string_view source) {
  std::vector<Rule> anonymous;
  std::map<std::string, std::vector<Rule>, std::less<>> users;
  std::vector<Rule> static_patterns;   // the same for every client
  std::vector<Rule> dynamic_patterns;  // with %c or %u
  size_t rule_lines = 0;               // topic and pattern lines
  std::string errors;
  std::vector<Rule>* block = &anonymous;  // "topic" lines go here
  detail::for_each_line(text, [&](size_t number, std::string_view line) {
    if (detail::is_ignorable(line)) return;
    auto fail = [&](const std::string& reason) {
      detail::add_error(errors, source, number, reason);
    };
    auto [keyword, rest] = split_word(detail::trim(line));
    if (keyword == "user") {
      if (rest.empty()) return fail("'user' needs a user name");
      if (!mqtt::valid_utf8(rest)) return fail("the user name is not valid UTF-8");
      block = &users[std::string(rest)];  // a repeated block adds to the first
      return;
    }
    if (keyword != "topic" && keyword != "pattern") {
      return fail("unknown keyword " + detail::quoted(keyword) +
                  ": expected 'user', 'topic' or 'pattern'");
    }
    if (rest.empty()) return fail("'" + std::string(keyword) + "' needs a topic filter");
    Access access = Access::ReadWrite;
    std::string_view filter = rest;
    auto [word, after] = split_word(rest);
    if (auto a = parse_access(word)) {
      if (after.empty()) {
        return fail("'" + std::string(keyword) + " " + std::string(word) +
                    "' needs a topic filter after the access");
      }
      access = *a;
      filter = after;
    }
    if (!mqtt::valid_topic_filter(filter)) {
      return fail("invalid topic filter " + detail::quoted(filter) +
                  " ('+' and '#' must be whole levels, '#' only the last)");
    }
    Rule rule{access, std::string(filter)};
    ++rule_lines;
    if (keyword == "topic") {
      block->push_back(std::move(rule));
    } else if (filter.find("%c") != std::string_view::npos ||
               filter.find("%u") != std::string_view::npos) {
      dynamic_patterns.push_back(std::move(rule));
    } else {
      static_patterns.push_back(std::move(rule));
    }
  });
  if (!errors.empty()) {
    *this = AclFile{};
    return util::Error{std::move(errors)};
  }
  auto build = [&](const std::vector<Rule>* own) {
    auto r = std::make_shared<ClientRules>();
    if (own) {
      for (const Rule& rule : *own) add(*r, rule.access, rule.filter);
    }
    for (const Rule& rule : static_patterns) add(*r, rule.access, rule.filter);
    return std::shared_ptr<const ClientRules>(std::move(r));
  };
  AclFile acl;
  acl.anonymous_ = build(&anonymous);
  acl.no_block_ = build(nullptr);
  for (const auto& [name, rules] : users) acl.users_.emplace(name, build(&rules));
  acl.patterns_ = std::move(dynamic_patterns);
  acl.rule_count_ = rule_lines;
  *this = std::move(acl);
  return {};
}

std::shared_ptr<const ClientRules> AclFile::rules_for(const ClientIdentity& who) const {
  std::shared_ptr<const ClientRules> base = anonymous_;
  if (who.username) {
    auto it = users_.find(*who.username);
    base = it == users_.end() ? no_block_ : it->second;
  }
  if (patterns_.empty()) return base;
  auto rules = std::make_shared<ClientRules>();
  for (const Rule& p : patterns_) {
    if (auto filter = substitute(p.filter, who)) add(*rules, p.access, std::move(*filter));
  }
  if (rules->read_.empty() && rules->write_.empty() && rules->deny_.empty()) return base;
  rules->base_ = std::move(base);
  return rules;
}

}  // namespace auth
