#include "broker/topic_index.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <tuple>

#include "broker/peers.hpp"
#include "broker/session.hpp"
#include "mqtt/topic.hpp"

namespace broker {

namespace {
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Splits off the first level of `rest`; `rest` becomes what follows the '/',
// and `more` tells whether there was a '/' at all.
std::string_view next_level(std::string_view& rest, bool& more) {
  size_t slash = rest.find('/');
  std::string_view level = rest.substr(0, slash);
  more = slash != std::string_view::npos;
  rest = more ? rest.substr(slash + 1) : std::string_view{};
  return level;
}
}  // namespace

struct TopicIndex::SharedGroup {
  std::string name;
  std::vector<Subscriber> members;
  // Round-robin position; advanced by readers under the shared lock.
  mutable std::atomic<uint32_t> next{0};
};

struct TopicIndex::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
  std::unique_ptr<Node> plus;
  std::vector<Subscriber> exact;  // filters that end at this node
  std::vector<Subscriber> hash;   // filters that end with '#' below this node
  std::vector<std::unique_ptr<SharedGroup>> shared_exact, shared_hash;

  bool empty() const {
    return children.empty() && !plus && exact.empty() && hash.empty() && shared_exact.empty() &&
           shared_hash.empty();
  }
};

// Where one filter's subscribers live: its plain list and its groups.
struct TopicIndex::Lists {
  std::vector<Subscriber>* plain = nullptr;
  std::vector<std::unique_ptr<SharedGroup>>* groups = nullptr;
};

TopicIndex::TopicIndex() : root_(std::make_unique<Node>()) {}
TopicIndex::~TopicIndex() = default;

// The lists of `filter`: those of the node above a trailing "#" ('#' lists),
// else those of the node the filter ends at. With `create`, missing nodes are
// added; without, null lists when the path does not exist.
TopicIndex::Lists TopicIndex::lists_for(std::string_view filter, bool create) {
  Node* n = root_.get();
  std::string_view rest = filter;
  for (bool more = true; more;) {
    std::string_view level = next_level(rest, more);
    if (level == "#") return {&n->hash, &n->shared_hash};
    std::unique_ptr<Node>* child;
    if (level == "+") {
      child = &n->plus;
    } else {
      auto it = n->children.find(level);
      if (it == n->children.end()) {
        if (!create) return {};
        it = n->children.emplace(std::string(level), nullptr).first;
      }
      child = &it->second;
    }
    if (!*child) {
      if (!create) return {};
      *child = std::make_unique<Node>();
    }
    n = child->get();
  }
  return {&n->exact, &n->shared_exact};
}

namespace {
// Adds or replaces `s`'s entry in `list`; true when it replaced one.
bool upsert(std::vector<Subscriber>& list, const std::shared_ptr<Session>& s, const SubOptions& o) {
  Subscriber entry{s, o.qos, o.no_local, o.retain_as_published, o.id};
  for (auto& sub : list) {
    if (sub.session == s) {
      sub = std::move(entry);
      return true;
    }
  }
  list.push_back(std::move(entry));
  return false;
}

bool erase_session(std::vector<Subscriber>& list, const Session* s) {
  auto it = std::find_if(list.begin(), list.end(),
                         [s](const Subscriber& sub) { return sub.session.get() == s; });
  if (it == list.end()) return false;
  *it = std::move(list.back());
  list.pop_back();
  return true;
}
}  // namespace

bool TopicIndex::subscribe(std::string_view filter, const std::shared_ptr<Session>& s,
                           const SubOptions& o) {
  std::string_view group, inner = filter;
  const bool shared = mqtt::parse_shared_subscription(filter, group, inner);
  std::unique_lock lock(mu_);
  Lists lists = lists_for(inner, /*create=*/true);
  bool replaced, first;
  if (!shared) {
    replaced = upsert(*lists.plain, s, o);
    first = !replaced && lists.plain->size() == 1;
  } else {
    auto& groups = *lists.groups;
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g->name == group; });
    if (it == groups.end()) {
      groups.push_back(std::make_unique<SharedGroup>());
      groups.back()->name = group;
      it = groups.end() - 1;
    }
    replaced = upsert((*it)->members, s, o);
    first = !replaced && (*it)->members.size() == 1;
  }
  if (!replaced) ++count_;
  // The cluster subscribes this node to the filter on its first subscriber,
  // in index order (under the lock), so an unsubscribe cannot overtake it.
  if (first && peers_) peers_->interest_added(filter);
  return replaced;
}

bool TopicIndex::unsubscribe(std::string_view filter, const Session* s) {
  std::string_view group, inner = filter;
  const bool shared = mqtt::parse_shared_subscription(filter, group, inner);
  std::unique_lock lock(mu_);
  Lists lists = lists_for(inner, /*create=*/false);
  if (!lists.plain) return false;
  bool last;
  if (!shared) {
    if (!erase_session(*lists.plain, s)) return false;
    last = lists.plain->empty();
  } else {
    auto& groups = *lists.groups;
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g->name == group; });
    if (it == groups.end() || !erase_session((*it)->members, s)) return false;
    last = (*it)->members.empty();
    if (last) groups.erase(it);
  }
  --count_;
  if (last && peers_) peers_->interest_removed(filter);
  prune(*root_, inner);
  return true;
}

// Removes empty nodes along `filter`'s path, bottom-up, so the trie does not
// keep every topic ever subscribed.
void TopicIndex::prune(Node& n, std::string_view filter) {
  bool more;
  std::string_view rest = filter;
  std::string_view level = next_level(rest, more);
  if (level == "#") return;
  if (level == "+") {
    if (!n.plus) return;
    if (more) prune(*n.plus, rest);
    if (n.plus->empty()) n.plus.reset();
    return;
  }
  auto it = n.children.find(level);
  if (it == n.children.end()) return;
  if (more) prune(*it->second, rest);
  if (it->second->empty()) n.children.erase(it);
}

void TopicIndex::match(std::string_view topic, std::vector<Subscriber>& out) const {
  size_t start = out.size();
  std::shared_lock lock(mu_);
  // Depth-first walk; a small explicit stack avoids recursion on deep topics.
  struct Frame {
    const Node* node;
    std::string_view rest;
    bool at_end;  // the whole topic has been consumed when reaching `node`
  };
  Frame stack[64];
  std::vector<Frame> overflow;
  size_t depth = 0;
  auto push = [&](const Node* node, std::string_view rest, bool at_end) {
    if (depth < std::size(stack)) {
      stack[depth++] = {node, rest, at_end};
    } else {
      overflow.push_back({node, rest, at_end});
    }
  };
  // A topic starting with '$' is not matched by a first-level wildcard [MQTT-4.7.2-1].
  const bool dollar = !topic.empty() && topic.front() == '$';
  const Node* root = root_.get();
  if (!dollar) add_matches(root->hash, root->shared_hash, out);
  {
    std::string_view rest = topic;
    bool more;
    std::string_view level = next_level(rest, more);
    if (auto it = root->children.find(level); it != root->children.end())
      push(it->second.get(), rest, !more);
    if (root->plus && !dollar) push(root->plus.get(), rest, !more);
  }
  while (depth > 0 || !overflow.empty()) {
    Frame f;
    if (!overflow.empty()) {
      f = overflow.back();
      overflow.pop_back();
    } else {
      f = stack[--depth];
    }
    const Node* n = f.node;
    add_matches(n->hash, n->shared_hash, out);  // "a/#" matches "a"
    if (f.at_end) {
      add_matches(n->exact, n->shared_exact, out);
      continue;
    }
    std::string_view rest = f.rest;
    bool more;
    std::string_view level = next_level(rest, more);
    if (auto it = n->children.find(level); it != n->children.end())
      push(it->second.get(), rest, !more);
    if (n->plus) push(n->plus.get(), rest, !more);
  }
  lock.unlock();

  // One delivery per session (and Subscription Identifier), at the highest QoS
  // among its matching filters; sent without its own messages only when every
  // one of those filters says No Local, and with the retain flag when any says
  // Retain As Published.
  if (out.size() - start > 1) {
    auto first = out.begin() + static_cast<std::ptrdiff_t>(start);
    auto key = [](const Subscriber& x) { return std::tuple(x.session.get(), x.group, x.sub_id); };
    std::sort(first, out.end(), [&](const Subscriber& a, const Subscriber& b) {
      return key(a) < key(b) || (key(a) == key(b) && a.qos > b.qos);
    });
    auto keep = first;
    for (auto it = first + 1; it != out.end(); ++it) {
      if (key(*it) == key(*keep)) {
        keep->no_local = keep->no_local && it->no_local;
        keep->retain_as_published = keep->retain_as_published || it->retain_as_published;
      } else {
        *++keep = std::move(*it);
      }
    }
    out.erase(keep + 1, out.end());
  }
}

void TopicIndex::add_matches(const std::vector<Subscriber>& list,
                             const std::vector<std::unique_ptr<SharedGroup>>& groups,
                             std::vector<Subscriber>& out) {
  out.insert(out.end(), list.begin(), list.end());
  for (const auto& g : groups) out.push_back(pick(*g));
}

Subscriber TopicIndex::pick(const SharedGroup& g) {
  const size_t n = g.members.size();
  const size_t start = g.next.load(std::memory_order_relaxed) % n;
  // The next member that is online; an offline one (with a persistent
  // session) only when no member is online, so its messages wait for it.
  size_t chosen = start;
  for (size_t i = 0; i < n; ++i) {
    size_t k = (start + i) % n;
    if (g.members[k].session->online.load(std::memory_order_relaxed)) {
      chosen = k;
      break;
    }
  }
  // Racing publishers may both pick the same member now and then; no harm.
  g.next.store(static_cast<uint32_t>(chosen + 1), std::memory_order_relaxed);
  Subscriber s = g.members[chosen];
  s.group = &g;
  return s;
}

bool TopicIndex::pick_member(std::string_view share_filter, Subscriber& out) const {
  std::string_view group, inner = share_filter;
  if (!mqtt::parse_shared_subscription(share_filter, group, inner)) return false;
  std::shared_lock lock(mu_);
  // lists_for(create = false) only walks: safe under the shared lock.
  Lists lists = const_cast<TopicIndex*>(this)->lists_for(inner, /*create=*/false);
  if (!lists.groups) return false;
  for (const auto& g : *lists.groups) {
    if (g->name == group && !g->members.empty()) {
      out = pick(*g);
      return true;
    }
  }
  return false;
}

size_t TopicIndex::subscription_count() const {
  std::shared_lock lock(mu_);
  return count_;
}

}  // namespace broker
