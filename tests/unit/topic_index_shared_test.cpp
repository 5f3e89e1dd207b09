// The subscription index's MQTT 5 parts: shared subscriptions
// "$share/{ShareName}/{filter}" (section 4.8.2 of the MQTT 5.0 standard) and
// the per-(session, Subscription Identifier) merging of overlapping
// subscriptions (3.3.4).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/session.hpp"
#include "broker/sub_options.hpp"
#include "broker/topic_index.hpp"

namespace {

using broker::Session;
using broker::SubOptions;
using broker::Subscriber;
using broker::TopicIndex;

std::shared_ptr<Session> session(const std::string& id, bool online = true) {
  auto s = std::make_shared<Session>(id, 0);
  s->online.store(online);
  return s;
}

std::vector<Subscriber> match(const TopicIndex& idx, std::string_view topic) {
  std::vector<Subscriber> out;
  idx.match(topic, out);
  return out;
}

// The client ids a match delivers to, sorted.
std::vector<std::string> ids(const TopicIndex& idx, std::string_view topic) {
  std::vector<std::string> out;
  for (const auto& s : match(idx, topic)) out.push_back(s.session->client_id());
  std::sort(out.begin(), out.end());
  return out;
}

SubOptions opts(uint8_t qos, uint32_t id = 0) {
  SubOptions o;
  o.qos = qos;
  o.id = id;
  return o;
}

// 4.8.2: each message matching a shared subscription goes to one member of
// the group; members take turns.
TEST(TopicIndexShared, OneMemberPerMessageRoundRobin) {
  TopicIndex idx;
  auto a = session("a"), b = session("b"), c = session("c");
  idx.subscribe("$share/g/jobs/+", a, 1);
  idx.subscribe("$share/g/jobs/+", b, 1);
  idx.subscribe("$share/g/jobs/+", c, 1);
  EXPECT_EQ(idx.subscription_count(), 3u);
  std::map<std::string, int> got;
  std::vector<std::string> order;
  for (int i = 0; i < 9; ++i) {
    auto m = ids(idx, "jobs/x");
    ASSERT_EQ(m.size(), 1u);
    ++got[m[0]];
    order.push_back(m[0]);
  }
  EXPECT_EQ(got, (std::map<std::string, int>{{"a", 3}, {"b", 3}, {"c", 3}}));
  // Turns, not just a fair total: no member twice in a row.
  for (size_t i = 1; i < order.size(); ++i) EXPECT_NE(order[i], order[i - 1]);
}

// 4.8.2: the group's filter is the part after the ShareName; the shared
// prefix itself is not a topic level to match ("$share/g/t" is not matched
// literally) and wildcards work as in any filter.
TEST(TopicIndexShared, MatchesTheInnerFilter) {
  TopicIndex idx;
  auto a = session("a"), b = session("b");
  idx.subscribe("$share/g/sensors/#", a, 0);
  idx.subscribe("$share/h/+/temp", b, 0);
  EXPECT_EQ(ids(idx, "sensors"), std::vector<std::string>{"a"});
  EXPECT_EQ(ids(idx, "sensors/1/temp"), std::vector<std::string>{"a"});
  EXPECT_EQ(ids(idx, "room/temp"), std::vector<std::string>{"b"});
  EXPECT_TRUE(ids(idx, "$share/g/sensors").empty());
  EXPECT_TRUE(ids(idx, "other").empty());
}

// [MQTT-4.7.2-1] holds for shared subscriptions too: "$share/g/#" does not
// match a topic starting with '$'.
TEST(TopicIndexShared, WildcardDoesNotMatchDollarTopics) {
  TopicIndex idx;
  auto a = session("a");
  idx.subscribe("$share/g/#", a, 0);
  EXPECT_EQ(ids(idx, "x/y"), std::vector<std::string>{"a"});
  EXPECT_TRUE(ids(idx, "$SYS/x").empty());
}

// 4.8.2: every group matching a message gets its own copy, and so does every
// non-shared subscriber.
TEST(TopicIndexShared, EachGroupAndEachPlainSubscriberGetsACopy) {
  TopicIndex idx;
  auto a = session("a"), b = session("b"), c = session("c"), p = session("p");
  idx.subscribe("$share/g1/t", a, 0);
  idx.subscribe("$share/g1/t", b, 0);
  idx.subscribe("$share/g2/t", c, 0);
  idx.subscribe("t", p, 0);
  for (int i = 0; i < 4; ++i) {
    auto m = ids(idx, "t");
    ASSERT_EQ(m.size(), 3u);
    EXPECT_TRUE(std::count(m.begin(), m.end(), "a") + std::count(m.begin(), m.end(), "b") == 1);
    EXPECT_EQ(std::count(m.begin(), m.end(), "c"), 1);
    EXPECT_EQ(std::count(m.begin(), m.end(), "p"), 1);
  }
}

// The same group on different filters is a different shared subscription
// (4.8.2: a Shared Subscription is the ShareName and the filter).
TEST(TopicIndexShared, SameGroupNameOnDifferentFiltersIsIndependent) {
  TopicIndex idx;
  auto a = session("a"), b = session("b");
  idx.subscribe("$share/g/t/+", a, 0);
  idx.subscribe("$share/g/t/#", b, 0);
  EXPECT_EQ(ids(idx, "t/x"), (std::vector<std::string>{"a", "b"}));
}

// Members that are online are preferred; when none is, an offline one
// (with a persistent session) still gets the message, to be queued.
TEST(TopicIndexShared, PrefersOnlineMembers) {
  TopicIndex idx;
  auto a = session("a", /*online=*/false), b = session("b"), c = session("c", false);
  idx.subscribe("$share/g/t", a, 1);
  idx.subscribe("$share/g/t", b, 1);
  idx.subscribe("$share/g/t", c, 1);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ids(idx, "t"), std::vector<std::string>{"b"});
  b->online.store(false);
  std::map<std::string, int> got;
  for (int i = 0; i < 6; ++i) {
    auto m = ids(idx, "t");
    ASSERT_EQ(m.size(), 1u);
    ++got[m[0]];
  }
  EXPECT_EQ(got.size(), 3u);  // still round robin among the offline ones
  a->online.store(true);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ids(idx, "t"), std::vector<std::string>{"a"});
}

// A member's own options (granted QoS, Subscription Identifier) come with it.
TEST(TopicIndexShared, MemberOptionsTravelWithTheMatch) {
  TopicIndex idx;
  auto a = session("a"), b = session("b");
  idx.subscribe("$share/g/t", a, opts(2, 5));
  idx.subscribe("$share/g/t", b, opts(0, 6));
  std::map<std::string, std::pair<int, uint32_t>> seen;
  for (int i = 0; i < 2; ++i) {
    auto m = match(idx, "t");
    ASSERT_EQ(m.size(), 1u);
    seen[m[0].session->client_id()] = {m[0].qos, m[0].sub_id};
  }
  EXPECT_EQ(seen["a"], (std::pair<int, uint32_t>{2, 5}));
  EXPECT_EQ(seen["b"], (std::pair<int, uint32_t>{0, 6}));
}

// Subscribing again to the same shared subscription replaces it; another
// group or the plain filter is a new subscription.
TEST(TopicIndexShared, ResubscribeReplacesWithinTheGroup) {
  TopicIndex idx;
  auto a = session("a");
  EXPECT_FALSE(idx.subscribe("$share/g/t", a, opts(0, 1)));
  EXPECT_TRUE(idx.subscribe("$share/g/t", a, opts(1, 2)));
  EXPECT_FALSE(idx.subscribe("$share/h/t", a, opts(0, 7)));
  EXPECT_FALSE(idx.subscribe("t", a, opts(0, 9)));
  EXPECT_EQ(idx.subscription_count(), 3u);
  auto m = match(idx, "t");
  ASSERT_EQ(m.size(), 3u);
  std::sort(m.begin(), m.end(),
            [](const Subscriber& x, const Subscriber& y) { return x.sub_id < y.sub_id; });
  EXPECT_EQ(m[0].sub_id, 2u);  // the replacement's identifier and QoS
  EXPECT_EQ(m[0].qos, 1);
  EXPECT_EQ(m[1].sub_id, 7u);
  EXPECT_EQ(m[2].sub_id, 9u);
}

// Unsubscribing a member removes it from its group only; the last member
// takes the group with it, and the index forgets the empty path.
TEST(TopicIndexShared, UnsubscribeRemovesTheMember) {
  TopicIndex idx;
  auto a = session("a"), b = session("b");
  idx.subscribe("$share/g/t/x", a, 0);
  idx.subscribe("$share/g/t/x", b, 0);
  idx.subscribe("$share/h/t/x", a, 0);
  EXPECT_FALSE(idx.unsubscribe("$share/other/t/x", a.get()));
  EXPECT_FALSE(idx.unsubscribe("t/x", a.get()));  // not a plain subscriber
  EXPECT_TRUE(idx.unsubscribe("$share/g/t/x", a.get()));
  EXPECT_FALSE(idx.unsubscribe("$share/g/t/x", a.get()));
  EXPECT_EQ(idx.subscription_count(), 2u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(ids(idx, "t/x"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(idx.unsubscribe("$share/g/t/x", b.get()));
  EXPECT_TRUE(idx.unsubscribe("$share/h/t/x", a.get()));
  EXPECT_EQ(idx.subscription_count(), 0u);
  EXPECT_TRUE(ids(idx, "t/x").empty());
  // The group can be formed again afterwards.
  idx.subscribe("$share/g/t/x", b, 0);
  EXPECT_EQ(ids(idx, "t/x"), std::vector<std::string>{"b"});
}

// Leaving a group while the round robin points past the end is safe.
TEST(TopicIndexShared, RoundRobinSurvivesAMemberLeaving) {
  TopicIndex idx;
  auto a = session("a"), b = session("b"), c = session("c");
  idx.subscribe("$share/g/t", a, 0);
  idx.subscribe("$share/g/t", b, 0);
  idx.subscribe("$share/g/t", c, 0);
  match(idx, "t");
  match(idx, "t");
  match(idx, "t");  // the next turn is past c
  idx.unsubscribe("$share/g/t", c.get());
  std::map<std::string, int> got;
  for (int i = 0; i < 4; ++i) {
    auto m = ids(idx, "t");
    ASSERT_EQ(m.size(), 1u);
    ++got[m[0]];
  }
  EXPECT_EQ(got, (std::map<std::string, int>{{"a", 2}, {"b", 2}}));
}

// ---------------------------------------------------------------- sub-id merging

// [MQTT-3.3.4-2], [MQTT-3.3.4-3]: overlapping subscriptions of one session with
// the same (or no) Subscription Identifier give one delivery at the highest
// granted QoS.
TEST(TopicIndexShared, OverlappingSubscriptionsWithOneIdentifierMerge) {
  TopicIndex idx;
  auto a = session("a");
  idx.subscribe("t/+", a, opts(0, 4));
  idx.subscribe("t/#", a, opts(2, 4));
  idx.subscribe("t/x", a, opts(1, 4));
  auto m = match(idx, "t/x");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].sub_id, 4u);
  EXPECT_EQ(m[0].qos, 2);
}

// [MQTT-3.3.4-5]: with different identifiers the server may send one copy per
// subscription, each carrying its own identifier; that is what the index asks
// for (one entry per identifier, each at the highest QoS among its filters).
TEST(TopicIndexShared, DifferentIdentifiersGiveOneEntryEach) {
  TopicIndex idx;
  auto a = session("a"), b = session("b");
  idx.subscribe("t/+", a, opts(0, 1));
  idx.subscribe("t/#", a, opts(1, 2));
  idx.subscribe("#", a, opts(2, 2));
  idx.subscribe("t/x", a, opts(1));  // no identifier
  idx.subscribe("t/x", b, opts(0, 1));
  auto m = match(idx, "t/x");
  std::map<std::pair<std::string, uint32_t>, int> got;
  for (const auto& s : m) {
    auto [it, inserted] = got.emplace(std::pair(s.session->client_id(), s.sub_id), s.qos);
    EXPECT_TRUE(inserted) << "two entries for " << s.session->client_id() << " id " << s.sub_id;
  }
  const std::map<std::pair<std::string, uint32_t>, int> want{
      {{"a", 0}, 1}, {{"a", 1}, 0}, {{"a", 2}, 2}, {{"b", 1}, 0}};
  EXPECT_EQ(got, want);
  // "t/y" matches neither "t/x" subscription.
  EXPECT_EQ(match(idx, "t/y").size(), 2u);
}

// Merged entries: No Local only when every merged filter says so (each
// subscription's own [MQTT-3.8.3-3]); Retain As Published when any does.
TEST(TopicIndexShared, MergedOptions) {
  TopicIndex idx;
  auto a = session("a");
  SubOptions nl = opts(0, 3);
  nl.no_local = true;
  SubOptions rap = opts(0, 3);
  rap.retain_as_published = true;
  idx.subscribe("t", a, nl);
  idx.subscribe("t/#", a, rap);
  auto m = match(idx, "t");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_FALSE(m[0].no_local);
  EXPECT_TRUE(m[0].retain_as_published);

  TopicIndex idx2;
  idx2.subscribe("t", a, nl);
  idx2.subscribe("+", a, SubOptions{nl.qos, true, false, 0, 3});
  m = match(idx2, "t");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].no_local);
  EXPECT_FALSE(m[0].retain_as_published);
}

// Merging happens per match, not across matches: the output vector may hold
// earlier entries that must be left alone.
TEST(TopicIndexShared, MatchAppendsWithoutTouchingEarlierEntries) {
  TopicIndex idx;
  auto a = session("a");
  idx.subscribe("t/+", a, opts(0, 1));
  idx.subscribe("t/#", a, opts(1, 1));
  std::vector<Subscriber> out;
  idx.match("t/x", out);
  idx.match("t/y", out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].qos, 1);
  EXPECT_EQ(out[1].qos, 1);
}

// 4.8.2: "If a Client has a Shared Subscription and a Non-shared Subscription
// and a message matches both of them, the Client will receive a copy of the
// message by virtue of it having the Non-shared Subscription. A second copy of
// the message will be delivered to one of the subscribers to the Shared
// Subscription, and this could result in a second copy being sent to this
// Client." Likewise each group delivers its own copy, even to the same member.
TEST(TopicIndexShared, SharedAndNonSharedSubscriptionGiveTwoCopies) {
  TopicIndex idx;
  auto a = session("a");
  idx.subscribe("t", a, opts(1));
  idx.subscribe("$share/g/t", a, opts(1));
  EXPECT_EQ(match(idx, "t").size(), 2u);

  TopicIndex idx2;
  idx2.subscribe("$share/g1/t", a, opts(1));
  idx2.subscribe("$share/g2/t", a, opts(1));
  EXPECT_EQ(match(idx2, "t").size(), 2u);
}

}  // namespace
