// Unit tests for the shared helpers in src/util/.
#include <gtest/gtest.h>

#include "util/host_port.hpp"
#include "util/text.hpp"

namespace {

TEST(HostPort, AcceptsWhatTheListeningFlagsDocument) {
  auto v4 = util::split_host_port("127.0.0.1:8883");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, "8883");
  auto v6 = util::split_host_port("[::1]:10000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "10000");
  auto any = util::split_host_port(":1883");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->host, "");
  EXPECT_TRUE(util::split_host_port("localhost:0"));
  EXPECT_TRUE(util::split_host_port("h:65535"));
}

TEST(HostPort, RefusesWhatIsNotHostAndPort) {
  for (const char* bad : {"", "nowhere", "127.0.0.1", "127.0.0.1:", "h:65536", "h:123456", "h:12a",
                          "[::1]", "[::1]10000", "[::1:10000", "h:-1"}) {
    EXPECT_FALSE(util::split_host_port(bad)) << bad;
  }
}

TEST(Text, TrimRemovesAsciiWhiteSpaceAtBothEnds) {
  EXPECT_EQ(util::trim("  a b \t\r\n"), "a b");
  EXPECT_EQ(util::trim(""), "");
  EXPECT_EQ(util::trim(" \t "), "");
  EXPECT_EQ(util::trim("x"), "x");
}

}  // namespace
