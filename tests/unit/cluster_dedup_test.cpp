// Unit tests for de-duplication of copies between cluster nodes
// (src/cluster/dedup.hpp, design note cluster-design.md section B.3).
#include "cluster/dedup.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace cluster {
namespace {

TEST(ClusterDedup, InOrderIsFirstTime) {
  Dedup d;
  for (uint64_t s = 0; s < 200; ++s) EXPECT_TRUE(d.first_time("a", 1, s)) << s;
  EXPECT_EQ(d.origins(), 1u);
}

TEST(ClusterDedup, DuplicatesAreDropped) {
  Dedup d;
  EXPECT_TRUE(d.first_time("a", 1, 10));
  EXPECT_FALSE(d.first_time("a", 1, 10)) << "second subscription's copy";
  EXPECT_FALSE(d.first_time("a", 1, 10)) << "third copy";
  EXPECT_TRUE(d.first_time("a", 1, 11));
  EXPECT_FALSE(d.first_time("a", 1, 11));
  EXPECT_FALSE(d.first_time("a", 1, 10)) << "an older copy after a newer message";
}

TEST(ClusterDedup, ReorderWithinTheWindow) {
  Dedup d;
  EXPECT_TRUE(d.first_time("a", 1, 100));
  EXPECT_TRUE(d.first_time("a", 1, 105));  // 101..104 not seen yet
  EXPECT_TRUE(d.first_time("a", 1, 103));
  EXPECT_FALSE(d.first_time("a", 1, 103));
  EXPECT_TRUE(d.first_time("a", 1, 101));
  EXPECT_TRUE(d.first_time("a", 1, 104));
  EXPECT_TRUE(d.first_time("a", 1, 102));
  for (uint64_t s = 100; s <= 105; ++s) EXPECT_FALSE(d.first_time("a", 1, s)) << s;
  // The oldest seq still inside the window: 63 below the highest.
  EXPECT_TRUE(d.first_time("a", 1, 200));
  EXPECT_TRUE(d.first_time("a", 1, 137));
  EXPECT_FALSE(d.first_time("a", 1, 137));
}

TEST(ClusterDedup, OlderThanTheWindowCountsAsSeen) {
  Dedup d;
  EXPECT_TRUE(d.first_time("a", 1, 1000));
  EXPECT_FALSE(d.first_time("a", 1, 1000 - 64)) << "just below the window";
  EXPECT_FALSE(d.first_time("a", 1, 0));
  EXPECT_TRUE(d.first_time("a", 1, 1000 - 63)) << "the window's last slot";
  // A jump of 64 or more empties the window: nothing of the old one is kept.
  EXPECT_TRUE(d.first_time("a", 1, 5000));
  EXPECT_TRUE(d.first_time("a", 1, 4999));
  EXPECT_FALSE(d.first_time("a", 1, 1000)) << "far below the window";
}

TEST(ClusterDedup, WindowBitsMoveWithTheHighest) {
  Dedup d;
  EXPECT_TRUE(d.first_time("a", 1, 10));
  EXPECT_TRUE(d.first_time("a", 1, 12));
  EXPECT_TRUE(d.first_time("a", 1, 40));  // shift by 28 keeps 10 and 12 marked
  EXPECT_FALSE(d.first_time("a", 1, 10));
  EXPECT_FALSE(d.first_time("a", 1, 12));
  EXPECT_TRUE(d.first_time("a", 1, 11));
}

TEST(ClusterDedup, EpochChange) {
  Dedup d;
  EXPECT_TRUE(d.first_time("a", 1, 500));
  // The origin reconnected: its sequence starts again in the new epoch.
  EXPECT_TRUE(d.first_time("a", 2, 0));
  EXPECT_TRUE(d.first_time("a", 2, 1));
  EXPECT_FALSE(d.first_time("a", 2, 1));
  EXPECT_FALSE(d.first_time("a", 1, 501)) << "late message from the older epoch";
  EXPECT_FALSE(d.first_time("a", 1, 0));
  EXPECT_TRUE(d.first_time("a", 2, 2));
  EXPECT_TRUE(d.first_time("a", 9, 1'000'000)) << "epochs may skip";
  EXPECT_FALSE(d.first_time("a", 2, 3));
  EXPECT_EQ(d.origins(), 1u);
}

TEST(ClusterDedup, TwoOriginsAreIndependent) {
  Dedup d;
  EXPECT_TRUE(d.first_time("a", 1, 7));
  EXPECT_TRUE(d.first_time("b", 1, 7)) << "same (epoch, seq) from another node";
  EXPECT_FALSE(d.first_time("a", 1, 7));
  EXPECT_FALSE(d.first_time("b", 1, 7));
  EXPECT_TRUE(d.first_time("b", 5, 0));
  EXPECT_TRUE(d.first_time("a", 1, 8)) << "b's epoch change leaves a alone";
  EXPECT_TRUE(d.first_time("a", 1, 6)) << "and a's window";
  EXPECT_EQ(d.origins(), 2u);
  // A node id that is a prefix of another is still another origin.
  const std::string ab = "ab";
  EXPECT_TRUE(d.first_time(std::string_view(ab).substr(0, 1), 1, 9));
  EXPECT_TRUE(d.first_time(ab, 1, 9));
  EXPECT_EQ(d.origins(), 3u);
}

}  // namespace
}  // namespace cluster
