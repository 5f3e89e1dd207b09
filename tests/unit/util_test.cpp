// Unit tests for the shared helpers in src/util/.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "util/clock.hpp"
#include "util/host_port.hpp"
#include "util/result.hpp"
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

TEST(HostPort, SplitAtPortLeavesBothPartsUnchecked) {
  auto v6 = util::split_at_port("[::1]:x");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "x");
  auto last = util::split_at_port("a:b:80");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->host, "a:b");
  EXPECT_EQ(last->port, "80");
  EXPECT_FALSE(util::split_at_port("nocolon"));
  EXPECT_FALSE(util::split_at_port("[::1]80"));
}

util::Result<int> half(int n) {
  if (n % 2 != 0) return util::errorf("{} is odd", n);
  return n / 2;
}

util::Status check_positive(int n) {
  if (n <= 0) return util::Error{"not positive"};
  return {};
}

TEST(Result, HoldsTheValueOrTheError) {
  util::Result<int> good = half(8);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(good.value(), 4);
  EXPECT_EQ(*good, 4);

  util::Result<int> bad = half(7);
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "7 is odd");
}

TEST(Result, StatusSucceedsByDefault) {
  util::Status ok = check_positive(1);
  EXPECT_TRUE(ok);
  util::Status failed = check_positive(0);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "not positive");
  EXPECT_TRUE(util::Status{});
}

TEST(Result, MovesOutMoveOnlyValuesAndErrors) {
  util::Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  ASSERT_TRUE(r);
  EXPECT_EQ(**r, 5);
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);

  util::Result<std::string> e = util::Error{std::string(100, 'x')};
  std::string message = std::move(e).error().message;
  EXPECT_EQ(message.size(), 100u);
}

TEST(Result, ArrowReachesTheValue) {
  util::Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
}

TEST(Result, ErrorTypeIsAParameter) {
  struct Coded {
    int code = 0;
  };
  util::Result<int, Coded> r = Coded{42};
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 42);
  util::Result<void, Coded> s = Coded{7};
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, 7);
}

TEST(Result, IsNoDiscardAndNotConstructibleFromAString) {
  // A plain string must not turn silently into an Error (or a value of
  // another type): Result<int> from "text" does not compile.
  static_assert(!std::is_constructible_v<util::Result<int>, const char*>);
  static_assert(!std::is_convertible_v<std::string, util::Error>);
  static_assert(std::is_nothrow_move_constructible_v<util::Result<std::string>>);
  static_assert(std::is_nothrow_move_constructible_v<util::Status>);
}

TEST(Clock, WallAndMonotonicAdvance) {
  const int64_t wall = util::wall_clock_ms();
  EXPECT_GT(wall, 1'600'000'000'000);  // after September 2020
  const int64_t a = util::monotonic_ms();
  EXPECT_LE(a, util::monotonic_ms());
}

}  // namespace
