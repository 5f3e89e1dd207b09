#include "broker/topic_index.hpp"

#include <algorithm>
#include <mutex>

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

struct TopicIndex::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
  std::unique_ptr<Node> plus;
  std::vector<Subscriber> exact;  // filters that end at this node
  std::vector<Subscriber> hash;   // filters that end with '#' below this node

  bool empty() const { return children.empty() && !plus && exact.empty() && hash.empty(); }
};

TopicIndex::TopicIndex() : root_(std::make_unique<Node>()) {}
TopicIndex::~TopicIndex() = default;

// The subscriber list of `filter`: the '#' list of the node above a trailing
// "#", else the exact list of the node the filter ends at. With `create`,
// missing nodes are added; without, null when the path does not exist.
std::vector<Subscriber>* TopicIndex::list_for(std::string_view filter, bool create) {
  Node* n = root_.get();
  std::string_view rest = filter;
  for (bool more = true; more;) {
    std::string_view level = next_level(rest, more);
    if (level == "#") return &n->hash;
    std::unique_ptr<Node>* child;
    if (level == "+") {
      child = &n->plus;
    } else {
      auto it = n->children.find(level);
      if (it == n->children.end()) {
        if (!create) return nullptr;
        it = n->children.emplace(std::string(level), nullptr).first;
      }
      child = &it->second;
    }
    if (!*child) {
      if (!create) return nullptr;
      *child = std::make_unique<Node>();
    }
    n = child->get();
  }
  return &n->exact;
}

bool TopicIndex::subscribe(std::string_view filter, const std::shared_ptr<Session>& s,
                           uint8_t qos) {
  std::unique_lock lock(mu_);
  std::vector<Subscriber>* list = list_for(filter, /*create=*/true);
  for (auto& sub : *list) {
    if (sub.session == s) {
      sub.qos = qos;
      return true;
    }
  }
  list->push_back({s, qos});
  ++count_;
  return false;
}

bool TopicIndex::unsubscribe(std::string_view filter, const Session* s) {
  std::unique_lock lock(mu_);
  std::vector<Subscriber>* list = list_for(filter, /*create=*/false);
  if (!list) return false;
  auto it = std::find_if(list->begin(), list->end(),
                         [s](const Subscriber& sub) { return sub.session.get() == s; });
  if (it == list->end()) return false;
  *it = std::move(list->back());
  list->pop_back();
  --count_;
  prune(*root_, filter);
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
  if (!dollar) out.insert(out.end(), root->hash.begin(), root->hash.end());
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
    out.insert(out.end(), n->hash.begin(), n->hash.end());  // "a/#" matches "a"
    if (f.at_end) {
      out.insert(out.end(), n->exact.begin(), n->exact.end());
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

  // One delivery per session, at the highest QoS among its matching filters.
  if (out.size() - start > 1) {
    auto first = out.begin() + static_cast<std::ptrdiff_t>(start);
    std::sort(first, out.end(), [](const Subscriber& a, const Subscriber& b) {
      return a.session.get() < b.session.get() ||
             (a.session.get() == b.session.get() && a.qos > b.qos);
    });
    auto last = std::unique(first, out.end(), [](const Subscriber& a, const Subscriber& b) {
      return a.session.get() == b.session.get();
    });
    out.erase(last, out.end());
  }
}

size_t TopicIndex::subscription_count() const {
  std::shared_lock lock(mu_);
  return count_;
}

}  // namespace broker
