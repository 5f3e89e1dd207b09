// Unit tests for topic names, filters and matching (src/mqtt/topic.hpp).
#include "mqtt/topic.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace mqtt {
namespace {

// ------------------------------------------------------------------ UTF-8

struct Utf8Case {
  std::string bytes;
  bool valid;
  const char* what;
};

// [MQTT-1.5.3-1]: well-formed, no surrogates; [MQTT-1.5.3-2]: no U+0000.
TEST(Utf8, Table_MQTT_1_5_3_1_and_2) {
  using namespace std::string_literals;
  const Utf8Case cases[] = {
      {"", true, "empty"},
      {"hello/world", true, "ascii"},
      {"\x01\x1F\x7F", true, "control characters are allowed"},
      {"\xC3\xA9", true, "U+00E9"},
      {"\xC2\x80", true, "U+0080, smallest 2-byte"},
      {"\xDF\xBF", true, "U+07FF"},
      {"\xE0\xA0\x80", true, "U+0800, smallest 3-byte"},
      {"\xE2\x82\xAC", true, "euro sign"},
      {"\xED\x9F\xBF", true, "U+D7FF, just below surrogates"},
      {"\xEE\x80\x80", true, "U+E000, just above surrogates"},
      {"\xEF\xBB\xBF", true, "BOM U+FEFF [MQTT-1.5.3-3]"},
      {"\xEF\xBF\xBF", true, "U+FFFF non-character is allowed"},
      {"\xF0\x90\x80\x80", true, "U+10000, smallest 4-byte"},
      {"\xF0\x9D\x84\x9E", true, "U+1D11E"},
      {"\xF4\x8F\xBF\xBF", true, "U+10FFFF"},
      {"\0"s, false, "U+0000"},
      {"abc\0def"s, false, "embedded U+0000"},
      {"\xC0\x80", false, "overlong U+0000"},
      {"\xC0\xAF", false, "overlong '/'"},
      {"\xC1\xBF", false, "overlong U+007F"},
      {"\xE0\x80\xAF", false, "overlong 3-byte '/'"},
      {"\xE0\x9F\xBF", false, "overlong U+07FF"},
      {"\xF0\x80\x80\xAF", false, "overlong 4-byte '/'"},
      {"\xF0\x8F\xBF\xBF", false, "overlong U+FFFF"},
      {"\xED\xA0\x80", false, "U+D800 high surrogate"},
      {"\xED\xAD\xBF", false, "U+DB7F"},
      {"\xED\xB0\x80", false, "U+DC00 low surrogate"},
      {"\xED\xBF\xBF", false, "U+DFFF"},
      {"\xED\xA0\xBD\xED\xB8\x80", false, "CESU-8 surrogate pair"},
      {"\xF4\x90\x80\x80", false, "U+110000"},
      {"\xF5\x80\x80\x80", false, "lead F5"},
      {"\xF8\x88\x80\x80\x80", false, "5-byte form"},
      {"\xFC\x84\x80\x80\x80\x80", false, "6-byte form"},
      {"\xFE", false, "FE"},
      {"\xFF", false, "FF"},
      {"\x80", false, "lone continuation"},
      {"a\xBF", false, "continuation after ascii"},
      {"\xC3", false, "truncated 2-byte"},
      {"\xE2\x82", false, "truncated 3-byte"},
      {"\xF0\x9D\x84", false, "truncated 4-byte"},
      {"\xC3\x28", false, "bad continuation 2-byte"},
      {"\xE2\x28\xA1", false, "bad second byte 3-byte"},
      {"\xE2\x82\x28", false, "bad third byte 3-byte"},
      {"\xF0\x9D\x84\x28", false, "bad fourth byte 4-byte"},
      {"\xC3\xA9\xC3", false, "valid then truncated"},
  };
  for (const Utf8Case& c : cases) {
    EXPECT_EQ(valid_utf8(c.bytes), c.valid) << c.what;
  }
}

// The 8-byte ASCII fast path must notice a NUL or a non-ASCII byte anywhere.
TEST(Utf8, EveryPositionOfLongStrings) {
  const std::string base = "abcdefghijklmnopqrstuvwxyz0123456789";
  ASSERT_TRUE(valid_utf8(base));
  for (size_t i = 0; i < base.size(); ++i) {
    std::string nul = base;
    nul[i] = '\0';
    EXPECT_FALSE(valid_utf8(nul)) << "NUL at " << i;
    std::string high = base;
    high[i] = '\x80';
    EXPECT_FALSE(valid_utf8(high)) << "0x80 at " << i;
    std::string two = base;
    two.replace(i, 1, "\xC3\xA9");
    EXPECT_TRUE(valid_utf8(two)) << "U+00E9 at " << i;
    std::string surrogate = base;
    surrogate.replace(i, 1, "\xED\xA0\x80");
    EXPECT_FALSE(valid_utf8(surrogate)) << "surrogate at " << i;
    EXPECT_FALSE(valid_utf8(base.substr(0, i) + "\xF0\x9F\x98"));  // truncated at end
  }
}

TEST(Utf8, ExhaustiveTwoAndThreeByteSequences) {
  // Every 2-byte lead/continuation pair: valid iff lead C2..DF and cont 80..BF.
  for (int a = 0x80; a < 0x100; ++a) {
    for (int b = 0; b < 0x100; ++b) {
      const std::string s{static_cast<char>(a), static_cast<char>(b)};
      const bool expect = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
      ASSERT_EQ(valid_utf8(s), expect) << std::hex << a << " " << b;
    }
  }
  // Every 3-byte sequence with a valid third byte: decode and compare.
  for (int a = 0xE0; a <= 0xEF; ++a) {
    for (int b = 0x80; b <= 0xBF; ++b) {
      const int cp = ((a & 0x0F) << 12) | ((b & 0x3F) << 6);
      const bool expect = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
      const std::string s{static_cast<char>(a), static_cast<char>(b), '\x80'};
      ASSERT_EQ(valid_utf8(s), expect) << std::hex << a << " " << b;
    }
  }
}

// ------------------------------------------------------------- validation

struct ValidCase {
  std::string topic;
  bool valid;
};

// [MQTT-4.7.3-1] at least one character; [MQTT-3.3.2-2], [MQTT-4.7.1-1] no wildcards.
TEST(TopicName, Table_MQTT_4_7_3_1_and_3_3_2_2) {
  using namespace std::string_literals;
  const ValidCase cases[] = {
      {"a", true},
      {"/", true},
      {"//", true},
      {"a//b", true},
      {"/finance", true},
      {"sport/tennis/player1", true},
      {"$SYS/broker/uptime", true},
      {"$", true},
      {" ", true},
      {"ü/é", true},
      {"", false},
      {"+", false},
      {"#", false},
      {"a/+", false},
      {"a/#", false},
      {"a+b", false},
      {"a#", false},
      {"a\0b"s, false},     // [MQTT-4.7.3-2]
      {"\xC0\xAF", false},  // [MQTT-1.5.3-1]
  };
  for (const ValidCase& c : cases) {
    EXPECT_EQ(valid_topic_name(c.topic), c.valid) << '"' << c.topic << '"';
  }
}

// [MQTT-4.7.3-3]: at most 65535 bytes.
TEST(TopicName, LengthLimit_MQTT_4_7_3_3) {
  EXPECT_TRUE(valid_topic_name(std::string(65535, 'a')));
  EXPECT_FALSE(valid_topic_name(std::string(65536, 'a')));
  EXPECT_TRUE(valid_topic_filter(std::string(65533, 'a') + "/#"));
  EXPECT_FALSE(valid_topic_filter(std::string(65534, 'a') + "/#"));
}

// [MQTT-4.7.1-2] '#' alone as the last level; [MQTT-4.7.1-3] '+' as a whole level.
TEST(TopicFilter, Table_MQTT_4_7_1_2_and_3) {
  using namespace std::string_literals;
  const ValidCase cases[] = {
      {"#", true},
      {"+", true},
      {"/", true},
      {"/#", true},
      {"+/+", true},
      {"+/#", true},
      {"/+", true},
      {"+/", true},
      {"a//b", true},
      {"sport/#", true},
      {"sport/tennis/#", true},
      {"sport/+/player1", true},
      {"+/tennis/#", true},
      {"$SYS/#", true},
      {"$SYS/+/x", true},
      {"a/b/c", true},
      {"ü/+", true},
      {"", false},
      {"sport/tennis#", false},
      {"sport/tennis/#/ranking", false},
      {"#/", false},
      {"##", false},
      {"a#", false},
      {"#a", false},
      {"sport+", false},
      {"+sport", false},
      {"sport/+player1", false},
      {"++", false},
      {"a/++/b", false},
      {"+#", false},
      {"a\0b"s, false},
      {"\xED\xA0\x80/#", false},
  };
  for (const ValidCase& c : cases) {
    EXPECT_EQ(valid_topic_filter(c.topic), c.valid) << '"' << c.topic << '"';
  }
}

// --------------------------------------------------------------- matching

struct MatchCase {
  const char* filter;
  const char* name;
  bool match;
};

TEST(TopicMatches, Table) {
  const MatchCase cases[] = {
      // Exact.
      {"a", "a", true},
      {"a", "b", false},
      {"a", "ab", false},
      {"ab", "a", false},
      {"a/b", "a/b", true},
      {"a/b", "a/bc", false},
      {"a/b", "a", false},
      {"a", "a/b", false},
      {"a/b", "ab/b", false},
      {"/", "/", true},
      {"a/", "a/", true},
      {"a/", "a", false},
      {"a", "a/", false},
      // Multi-level wildcard (4.7.1.2).
      {"#", "a", true},
      {"#", "a/b/c", true},
      {"#", "/", true},
      {"#", "/a", true},
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},  // '#' includes the parent level
      {"sport/#", "sport/", true},
      {"sport/#", "sports", false},
      {"sport/#", "spor", false},
      {"/#", "/", true},
      {"/#", "/a/b", true},
      {"/#", "a", false},
      {"/#", "a/b", false},
      {"a/#", "a//", true},
      // Single-level wildcard (4.7.1.3).
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player2", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},  // '+' matches an empty level
      {"+", "a", true},
      {"+", "/", false},
      {"+", "a/b", false},
      {"+/+", "/", true},
      {"+/+", "a/b", true},
      {"+/+", "a", false},
      {"+/+", "a/b/c", false},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"+/+", "/finance", true},
      {"/+", "/", true},
      {"+/", "a/", true},
      {"+/", "a", false},
      {"a/+/c", "a/b/c", true},
      {"a/+/c", "a//c", true},
      {"a/+/c", "a/b/d", false},
      {"a/+/+", "a/b", false},
      {"+/+/+", "a//", true},
      {"+/#", "a", true},
      {"+/#", "a/b/c", true},
      {"+/#", "/", true},
      {"+/b/#", "a/b", true},
      {"+/b/#", "a/c", false},
      // Empty levels.
      {"a//b", "a//b", true},
      {"a//b", "a/b", false},
      {"a/b", "a//b", false},
      {"a/+/b", "a//b", true},
      {"a/#", "a//b", true},
      {"//", "//", true},
      {"+/+/+", "//", true},
      // '$' topics [MQTT-4.7.2-1].
      {"#", "$SYS/broker/uptime", false},
      {"#", "$SYS", false},
      {"+/broker/uptime", "$SYS/broker/uptime", false},
      {"+/#", "$SYS/x", false},
      {"+", "$SYS", false},
      {"$SYS/#", "$SYS/broker/uptime", true},
      {"$SYS/#", "$SYS", true},
      {"$SYS/+/uptime", "$SYS/broker/uptime", true},
      {"$SYS", "$SYS", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"a/#", "a/$SYS", true},  // '$' only special at the first level
      {"+/$x", "a/$x", true},
      {"#", "a$", true},
      // Case and bytes.
      {"A", "a", false},
      {"ü/+", "ü/x", true},
      {"ü", "ü/x", false},
  };
  for (const MatchCase& c : cases) {
    ASSERT_TRUE(valid_topic_filter(c.filter)) << c.filter;
    ASSERT_TRUE(valid_topic_name(c.name)) << c.name;
    EXPECT_EQ(topic_matches(c.filter, c.name), c.match)
        << "filter \"" << c.filter << "\" name \"" << c.name << '"';
  }
}

// A straightforward split-into-levels reference for an exhaustive comparison.
std::vector<std::string_view> levels(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

bool reference_matches(std::string_view filter, std::string_view name) {
  if (!name.empty() && name[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
  const auto f = levels(filter);
  const auto n = levels(name);
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // also when n has exactly i levels (parent)
    if (i >= n.size()) return false;
    if (f[i] != "+" && f[i] != n[i]) return false;
  }
  return f.size() == n.size();
}

void all_strings(const std::string& alphabet, size_t max_len, std::string& cur,
                 std::vector<std::string>& out) {
  if (!cur.empty()) out.push_back(cur);
  if (cur.size() == max_len) return;
  for (char c : alphabet) {
    cur.push_back(c);
    all_strings(alphabet, max_len, cur, out);
    cur.pop_back();
  }
}

TEST(TopicMatches, AgreesWithReferenceExhaustively) {
  std::vector<std::string> filters;
  std::vector<std::string> names;
  std::string cur;
  all_strings("a/+#$", 5, cur, filters);
  all_strings("ab/$", 5, cur, names);
  size_t compared = 0;
  for (const std::string& f : filters) {
    if (!valid_topic_filter(f)) continue;
    for (const std::string& n : names) {
      ASSERT_EQ(topic_matches(f, n), reference_matches(f, n))
          << "filter \"" << f << "\" name \"" << n << '"';
      ++compared;
    }
  }
  EXPECT_GT(compared, 100'000u);
}

}  // namespace
}  // namespace mqtt
