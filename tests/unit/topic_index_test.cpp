#include "broker/topic_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "broker/session.hpp"

namespace {

using broker::Session;

std::vector<std::string> matched(const broker::TopicIndex& idx, std::string_view topic) {
  std::vector<broker::Subscriber> out;
  idx.match(topic, out);
  std::vector<std::string> ids;
  for (const auto& s : out) ids.push_back(s.session->client_id() + ":" + std::to_string(s.qos));
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(TopicIndex, MatchesWildcardsLikeTheSpec) {
  broker::TopicIndex idx;
  auto a = std::make_shared<Session>("a", 0);
  auto b = std::make_shared<Session>("b", 0);
  auto c = std::make_shared<Session>("c", 0);
  auto d = std::make_shared<Session>("d", 0);
  idx.subscribe("sport/#", a, 0);
  idx.subscribe("sport/+/player1", b, 1);
  idx.subscribe("#", c, 2);
  idx.subscribe("$SYS/#", d, 0);
  EXPECT_EQ(matched(idx, "sport"), (std::vector<std::string>{"a:0", "c:2"}));
  EXPECT_EQ(matched(idx, "sport/tennis/player1"), (std::vector<std::string>{"a:0", "b:1", "c:2"}));
  // [MQTT-4.7.2-1]: '#' at the first level does not match $-topics.
  EXPECT_EQ(matched(idx, "$SYS/uptime"), (std::vector<std::string>{"d:0"}));
  EXPECT_EQ(matched(idx, "/leading"), (std::vector<std::string>{"c:2"}));
}

TEST(TopicIndex, EmptyLevelsAndPlus) {
  broker::TopicIndex idx;
  auto a = std::make_shared<Session>("a", 0);
  auto b = std::make_shared<Session>("b", 0);
  idx.subscribe("+/+", a, 0);
  idx.subscribe("a//b", b, 0);
  EXPECT_EQ(matched(idx, "/"), (std::vector<std::string>{"a:0"}));
  EXPECT_EQ(matched(idx, "x/y"), (std::vector<std::string>{"a:0"}));
  EXPECT_TRUE(matched(idx, "x").empty());
  EXPECT_EQ(matched(idx, "a//b"), (std::vector<std::string>{"b:0"}));
  EXPECT_TRUE(matched(idx, "$x/y").empty());
}

TEST(TopicIndex, OneEntryPerSessionAtTheHighestQos) {
  broker::TopicIndex idx;
  auto a = std::make_shared<Session>("a", 0);
  idx.subscribe("t/#", a, 0);
  idx.subscribe("t/+", a, 2);
  idx.subscribe("t/x", a, 1);
  EXPECT_EQ(matched(idx, "t/x"), (std::vector<std::string>{"a:2"}));
}

TEST(TopicIndex, ResubscribeReplacesAndUnsubscribePrunes) {
  broker::TopicIndex idx;
  auto a = std::make_shared<Session>("a", 0);
  EXPECT_FALSE(idx.subscribe("a/b/c", a, 0));
  EXPECT_TRUE(idx.subscribe("a/b/c", a, 1));  // [MQTT-3.8.4-3]
  EXPECT_EQ(idx.subscription_count(), 1u);
  EXPECT_EQ(matched(idx, "a/b/c"), (std::vector<std::string>{"a:1"}));
  EXPECT_TRUE(idx.unsubscribe("a/b/c", a.get()));
  EXPECT_FALSE(idx.unsubscribe("a/b/c", a.get()));
  EXPECT_EQ(idx.subscription_count(), 0u);
  EXPECT_TRUE(matched(idx, "a/b/c").empty());
}

TEST(TopicIndex, DeepTopicsBeyondTheInlineStack) {
  broker::TopicIndex idx;
  auto a = std::make_shared<Session>("a", 0);
  std::string filter, topic;
  for (int i = 0; i < 200; ++i) {
    filter += (i ? "/+" : "+");
    topic += (i ? "/x" : "x");
  }
  idx.subscribe(filter, a, 0);
  EXPECT_EQ(matched(idx, topic), (std::vector<std::string>{"a:0"}));
}

}  // namespace
