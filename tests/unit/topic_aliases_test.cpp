// broker::TopicAliases (src/broker/topic_aliases.hpp): the MQTT 5 alias tables
// of one connection, inbound (client -> server) and outbound.
#include "broker/topic_aliases.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace {

using broker::TopicAliases;

TEST(TopicAliases, AnInboundAliasIsDefinedByATopicAndThenStandsForIt) {
  TopicAliases a;
  std::string_view topic = "sensors/1/temp";
  EXPECT_EQ(a.resolve(3, topic), TopicAliases::Inbound::Ok);
  EXPECT_EQ(topic, "sensors/1/temp");
  std::string_view empty;
  EXPECT_EQ(a.resolve(3, empty), TopicAliases::Inbound::Ok);
  EXPECT_EQ(empty, "sensors/1/temp");  // [MQTT-3.3.2-12]
}

TEST(TopicAliases, AnInboundAliasUsedBeforeItWasSetIsRefused) {
  TopicAliases a;
  std::string_view empty;
  EXPECT_EQ(a.resolve(1, empty), TopicAliases::Inbound::Unset);
  std::string_view t = "x";
  EXPECT_EQ(a.resolve(2, t), TopicAliases::Inbound::Ok);
  EXPECT_EQ(a.resolve(1, empty), TopicAliases::Inbound::Unset);  // alias 2 is not alias 1
}

TEST(TopicAliases, AnInboundAliasCanBeRedefined) {
  TopicAliases a;
  std::string_view t = "a";
  ASSERT_EQ(a.resolve(1, t), TopicAliases::Inbound::Ok);
  std::string_view u = "b/c";
  ASSERT_EQ(a.resolve(1, u), TopicAliases::Inbound::Ok);
  std::string_view empty;
  ASSERT_EQ(a.resolve(1, empty), TopicAliases::Inbound::Ok);
  EXPECT_EQ(empty, "b/c");
}

TEST(TopicAliases, OutboundAliasesAreAssignedInOrderUpToTheLimitAndThenReused) {
  TopicAliases a;
  auto first = a.outbound("t/1", 2);
  EXPECT_EQ(first.alias, 1);
  EXPECT_FALSE(first.omit_topic);  // the first use carries the topic
  a.defined("t/1", first.alias);
  auto again = a.outbound("t/1", 2);
  EXPECT_EQ(again.alias, 1);
  EXPECT_TRUE(again.omit_topic);

  auto second = a.outbound("t/2", 2);
  EXPECT_EQ(second.alias, 2);
  a.defined("t/2", second.alias);
  auto third = a.outbound("t/3", 2);  // the client accepts two
  EXPECT_EQ(third.alias, 0);
  EXPECT_FALSE(third.omit_topic);
}

TEST(TopicAliases, AnOutboundAliasNotRecordedIsOfferedAgain) {
  // A PUBLISH dropped before it was written (too large for the client) must not
  // leave the client an alias it never heard of.
  TopicAliases a;
  EXPECT_EQ(a.outbound("big", 5).alias, 1);
  auto next = a.outbound("big", 5);
  EXPECT_EQ(next.alias, 1);
  EXPECT_FALSE(next.omit_topic);
}

}  // namespace
