// Unit tests for the MQTT <-> NATS subject mapping (src/cluster/subject.hpp,
// design note cluster-design.md section B.2).
#include "cluster/subject.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace cluster {
namespace {

using namespace std::string_literals;
using Subjects = std::vector<std::string>;

struct Case {
  std::string topic;
  std::string subject;
  const char* what;
};

// Every escape of B.2, each with its expected subject.
const Case kTopics[] = {
    {"sensors/cold-1/temp", "m.sensors.cold-1.temp", "plain levels pass through"},
    {"a", "m.a", "one level"},
    {"/", "m.%.%", "two empty levels"},
    {"/sensors", "m.%.sensors", "leading empty level"},
    {"a//b", "m.a.%.b", "empty middle level"},
    {"a/", "m.a.%", "trailing empty level"},
    {"spBv1.0/plant1", "m.spBv1%2E0.plant1", "'.' is NATS' token separator"},
    {".", "m.%2E", "a level that is only '.'"},
    {"a b/c", "m.a%20b.c", "space"},
    {"a/*/c", "m.a.%2A.c", "literal '*' level is no wildcard"},
    {"a/>", "m.a.%3E", "literal '>' level is no wildcard"},
    {"x*y>z", "m.x%2Ay%3Ez", "'*' and '>' inside a level"},
    {"%", "m.%25", "a level that is only '%' is not the empty level"},
    {"50%/off", "m.50%25.off", "'%' inside a level"},
    {"%25", "m.%2525", "an escape-looking level is escaped again"},
    {"tab\there", "m.tab%09here", "tab"},
    {"cr\r/lf\n", "m.cr%0D.lf%0A", "CR and LF"},
    {"\x01\x1f", "m.%01%1F", "control bytes, upper-case hex"},
    {"del\x7f", "m.del%7F", "DEL"},
    {"$SYS/broker/load", "m$.$SYS.broker.load", "'$' first level: own namespace"},
    {"$SYS", "m$.$SYS", "'$SYS' alone"},
    {"$", "m$.$", "'$' alone"},
    {"a/$b", "m.a.$b", "'$' below the first level changes nothing"},
    {"caf\xC3\xA9/\xE2\x82\xAC/\xF0\x9D\x84\x9E", "m.caf\xC3\xA9.\xE2\x82\xAC.\xF0\x9D\x84\x9E",
     "UTF-8 as is"},
    {"a+b/c#d", "m.a+b.c#d", "'+' and '#' inside a name level as is"},
};

TEST(ClusterSubject, TopicEscapes_B2) {
  for (const auto& c : kTopics) {
    EXPECT_EQ(topic_subject(c.topic), c.subject) << c.what;
  }
}

TEST(ClusterSubject, RoundTrip) {
  for (const auto& c : kTopics) {
    const auto back = subject_to_topic(topic_subject(c.topic));
    ASSERT_TRUE(back.has_value()) << c.what;
    EXPECT_EQ(*back, c.topic) << c.what;
  }
  // Every single byte 0x01..0xff alone, and between two letters.
  for (int b = 1; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    for (const std::string& t : {one, "a" + one + "b", "x/" + one + "/y"}) {
      const auto back = subject_to_topic(topic_subject(t));
      ASSERT_TRUE(back.has_value()) << "byte " << b;
      EXPECT_EQ(*back, t) << "byte " << b;
    }
  }
}

// '*' matches exactly one token, so a non-empty level must never encode to the
// empty level's "%" token, and no token may contain a separator or wildcard.
TEST(ClusterSubject, NoNonEmptyLevelEncodesToTheEmptyToken) {
  for (int b = 1; b < 256; ++b) {
    if (b == '/') continue;  // the level separator is not part of a level
    for (const std::string& level : {std::string(1, static_cast<char>(b)), "%"s, "%%"s, "a%"s}) {
      const std::string s = topic_subject("x/" + level);
      ASSERT_TRUE(s.starts_with("m.x.")) << s;
      const std::string token = s.substr(4);
      EXPECT_NE(token, "%") << "byte " << b;
      EXPECT_EQ(token.find_first_of(".*> "), std::string::npos) << "byte " << b;
    }
  }
}

TEST(ClusterSubject, ReusesTheBufferAndClearsIt) {
  std::string out = "left over";
  out.reserve(256);
  const char* data = out.data();
  topic_subject("a/b", out);
  EXPECT_EQ(out, "m.a.b");
  topic_subject("$SYS/x", out);
  EXPECT_EQ(out, "m$.$SYS.x");
  EXPECT_EQ(out.data(), data) << "no reallocation while capacity suffices";
}

TEST(ClusterSubject, FilterWildcards_MQTT_4_7) {
  EXPECT_EQ(filter_subjects("a/b"), (Subjects{"m.a.b"}));
  EXPECT_EQ(filter_subjects("+"), (Subjects{"m.*"}));
  EXPECT_EQ(filter_subjects("+/temp"), (Subjects{"m.*.temp"}));
  EXPECT_EQ(filter_subjects("a/+/c"), (Subjects{"m.a.*.c"}));
  EXPECT_EQ(filter_subjects("a/+"), (Subjects{"m.a.*"}));
  // '#' matches its parent level too [MQTT-4.7.1-2]; NATS '>' needs one token.
  EXPECT_EQ(filter_subjects("a/#"), (Subjects{"m.a", "m.a.>"}));
  EXPECT_EQ(filter_subjects("a/+/#"), (Subjects{"m.a.*", "m.a.*.>"}));
  EXPECT_EQ(filter_subjects("+/#"), (Subjects{"m.*", "m.*.>"}));
  EXPECT_EQ(filter_subjects("#"), (Subjects{"m.>"}));
  // A wildcard first level never reaches the "m$." namespace [MQTT-4.7.2-1].
  EXPECT_EQ(filter_subjects("$SYS/#"), (Subjects{"m$.$SYS", "m$.$SYS.>"}));
  EXPECT_EQ(filter_subjects("$SYS/+/load"), (Subjects{"m$.$SYS.*.load"}));
  // Empty levels, and characters that are wildcards in NATS but not in MQTT.
  EXPECT_EQ(filter_subjects("/#"), (Subjects{"m.%", "m.%.>"}));
  EXPECT_EQ(filter_subjects("a//+"), (Subjects{"m.a.%.*"}));
  EXPECT_EQ(filter_subjects("a/*/>"), (Subjects{"m.a.%2A.%3E"}));
  EXPECT_EQ(filter_subjects("a+/b"), (Subjects{"m.a+.b"})) << "'+' inside a level is no wildcard";
  EXPECT_EQ(filter_subjects("v1.0/#"), (Subjects{"m.v1%2E0", "m.v1%2E0.>"}));
}

TEST(ClusterSubject, FilterSubjectsMapBack) {
  EXPECT_EQ(subject_to_topic("m.*.temp"), "+/temp");
  EXPECT_EQ(subject_to_topic("m.a.>"), "a/#");
  EXPECT_EQ(subject_to_topic("m.>"), "#");
  EXPECT_EQ(subject_to_topic("m$.$SYS.>"), "$SYS/#");
  for (const char* f : {"a/b", "+", "a/+/c", "a//+", "a/*/>"}) {
    const auto s = filter_subjects(f);
    ASSERT_EQ(s.size(), 1u) << f;
    EXPECT_EQ(subject_to_topic(s[0]), f);
  }
  for (const char* f : {"a/#", "+/#", "$SYS/#", "/#"}) {
    const auto s = filter_subjects(f);
    ASSERT_EQ(s.size(), 2u) << f;
    EXPECT_EQ(subject_to_topic(s[1]), f);
  }
}

TEST(ClusterSubject, RejectsSubjectsThatAreNotOurs) {
  const std::string bad[] = {
      "",       "m",      "m.",      "x.a",        "ma.b", "m..a",  "m.a.",   "m.a..b",
      "m.>.a",  "m.a>",   "m.a*",    "m.a b",      "m.a%", "m.a%2", "m.a%2e", "m.%41",
      "m.a%ZZ", "m.%%",   "m.$SYS",  "m$.SYS",     "m$.*", "m$.>",  "m$.%",   "m$",
      "m$.",    "m.a\tb", "m.a\x7f", "c.hb.node1", "m.%2", "m.%-1",
  };
  for (const auto& s : bad) EXPECT_FALSE(subject_to_topic(s).has_value()) << "'" << s << "'";
}

TEST(ClusterSubject, QueueNameIsStableAndSeparatesGroupFromFilter) {
  // group "" and filter "": FNV-1a 64 of the single byte 0 (checked by hand).
  EXPECT_EQ(queue_name("", ""), "s.af63bd4c8601b7df");
  const std::string q = queue_name("workers", "jobs/+");
  EXPECT_EQ(q.size(), 18u);
  EXPECT_TRUE(q.starts_with("s."));
  EXPECT_EQ(q.find_first_not_of("0123456789abcdef", 2), std::string::npos);
  EXPECT_EQ(q, queue_name("workers", "jobs/+"));
  EXPECT_NE(q, queue_name("workers", "jobs/#"));
  EXPECT_NE(q, queue_name("worker", "jobs/+"));
  EXPECT_NE(queue_name("a", "b/c"), queue_name("a/b", "c"));
  EXPECT_NE(queue_name("ab", "c"), queue_name("a", "bc"));
}

}  // namespace
}  // namespace cluster
