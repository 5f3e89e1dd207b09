// broker::Ring<T> (src/broker/ring.hpp): a FIFO on a growable circular buffer
// that holds no memory while empty. Checked against std::deque as the model,
// with interleavings that wrap the buffer many times and grow it mid-wrap, and
// with element types whose constructions and destructions are counted.
#include "broker/ring.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>

namespace {

using broker::Ring;

// Counts live objects: every construction adds one, every destruction takes
// one away, and destroying an object twice or one never built is caught.
struct Counted {
  static inline int live = 0;
  static inline int bad = 0;  // destructions of an object not alive
  static constexpr int kAlive = 0x5a5a5a5a;

  explicit Counted(int v) : value(v), state(kAlive) { ++live; }
  Counted(const Counted& o) : value(o.value), state(kAlive) { ++live; }
  Counted(Counted&& o) noexcept : value(o.value), state(kAlive) {
    o.value = -1;
    ++live;
  }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
  ~Counted() {
    if (state != kAlive) ++bad;
    state = 0;
    --live;
  }
  int value;
  int state;
};

class RingCounted : public ::testing::Test {
 protected:
  void SetUp() override {
    Counted::live = 0;
    Counted::bad = 0;
  }
  void TearDown() override {
    EXPECT_EQ(Counted::live, 0);
    EXPECT_EQ(Counted::bad, 0);
  }
};

// Compares every element of `r` with the model.
template <typename T>
void expect_same(const Ring<T>& r, const std::deque<T>& model) {
  ASSERT_EQ(r.size(), model.size());
  ASSERT_EQ(r.empty(), model.empty());
  for (size_t i = 0; i < model.size(); ++i) EXPECT_EQ(r[i], model[i]) << "index " << i;
}

TEST(Ring, StartsEmpty) {
  Ring<int> r;
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.size(), 0u);
}

TEST(Ring, PushAndPopInFifoOrder) {
  Ring<int> r;
  for (int i = 0; i < 100; ++i) r.push_back(i);
  EXPECT_EQ(r.size(), 100u);
  EXPECT_EQ(r.front(), 0);
  EXPECT_EQ(r.back(), 99);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(r.front(), i);
    r.pop_front();
  }
  EXPECT_TRUE(r.empty());
}

TEST(Ring, FrontBackAndIndexSeeTheQueueNotTheBuffer) {
  Ring<int> r;
  for (int i = 0; i < 4; ++i) r.push_back(i);  // full at the first capacity
  r.pop_front();
  r.pop_front();
  r.push_back(4);
  r.push_back(5);  // wrapped: 4 and 5 sit at the start of the buffer
  EXPECT_EQ(r.front(), 2);
  EXPECT_EQ(r.back(), 5);
  EXPECT_EQ(r[0], 2);
  EXPECT_EQ(r[1], 3);
  EXPECT_EQ(r[2], 4);
  EXPECT_EQ(r[3], 5);
  r[2] = 40;
  r.front() = 20;
  r.back() = 50;
  const Ring<int>& cr = r;
  EXPECT_EQ(cr.front(), 20);
  EXPECT_EQ(cr[2], 40);
  EXPECT_EQ(cr[3], 50);
}

// Steady state: the queue stays short while the head goes round the buffer
// many times, at every fill level up to a few capacities.
TEST(Ring, WrapsAroundManyTimesAtEveryFillLevel) {
  for (int fill = 1; fill <= 20; ++fill) {
    Ring<int> r;
    std::deque<int> model;
    int next = 0;
    for (int i = 0; i < fill; ++i) {
      r.push_back(next);
      model.push_back(next++);
    }
    for (int round = 0; round < 200; ++round) {
      r.push_back(next);
      model.push_back(next++);
      ASSERT_EQ(r.front(), model.front()) << "fill " << fill << " round " << round;
      r.pop_front();
      model.pop_front();
      ASSERT_EQ(r.back(), model.back());
    }
    expect_same(r, model);
  }
}

// Growth while the content wraps past the end of the buffer keeps the order.
TEST(Ring, GrowsWhileWrappedAndKeepsTheOrder) {
  Ring<int> r;
  std::deque<int> model;
  int next = 0;
  // A pattern of bursts and drains, so that the buffer grows at many head
  // positions: push k, pop k/2, repeatedly, then drain.
  for (int k = 1; k < 300; k += 7) {
    for (int i = 0; i < k; ++i) {
      r.push_back(next);
      model.push_back(next++);
    }
    for (int i = 0; i < k / 2; ++i) {
      ASSERT_EQ(r.front(), model.front());
      r.pop_front();
      model.pop_front();
    }
    ASSERT_NO_FATAL_FAILURE(expect_same(r, model));
  }
  while (!model.empty()) {
    ASSERT_EQ(r.front(), model.front());
    r.pop_front();
    model.pop_front();
  }
  EXPECT_TRUE(r.empty());
}

// A pseudo-random interleaving of pushes and pops against the model.
TEST(Ring, RandomInterleavingMatchesDeque) {
  Ring<int> r;
  std::deque<int> model;
  uint32_t x = 12345;
  int next = 0;
  for (int step = 0; step < 100000; ++step) {
    x = x * 1664525u + 1013904223u;
    // Push a little more often than pop, so the size drifts up and down.
    bool push = model.empty() || (x >> 16) % 100 < (step % 20000 < 10000 ? 60u : 40u);
    if (push) {
      r.push_back(next);
      model.push_back(next++);
    } else {
      ASSERT_EQ(r.front(), model.front()) << "step " << step;
      r.pop_front();
      model.pop_front();
    }
    ASSERT_EQ(r.size(), model.size());
  }
  expect_same(r, model);
}

TEST(Ring, ClearEmptiesAndTheRingIsReusable) {
  Ring<int> r;
  for (int i = 0; i < 10; ++i) r.push_back(i);
  r.pop_front();
  r.clear();
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.size(), 0u);
  r.push_back(7);
  r.push_back(8);
  EXPECT_EQ(r.front(), 7);
  EXPECT_EQ(r.back(), 8);
  EXPECT_EQ(r.size(), 2u);
}

TEST(Ring, ShrinkIfEmptyOnlyWhenEmptyAndTheRingIsReusable) {
  Ring<int> r;
  r.shrink_if_empty();  // nothing to free
  for (int i = 0; i < 10; ++i) r.push_back(i);
  r.shrink_if_empty();  // not empty: keeps everything
  ASSERT_EQ(r.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r[i], i);
  r.clear();
  r.shrink_if_empty();
  EXPECT_TRUE(r.empty());
  for (int i = 0; i < 10; ++i) r.push_back(100 + i);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r[i], 100 + i);
}

TEST(Ring, MoveConstructionTakesTheElements) {
  Ring<int> a;
  for (int i = 0; i < 6; ++i) a.push_back(i);
  a.pop_front();  // head not at 0
  Ring<int> b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): documented by swap
  ASSERT_EQ(b.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b[i], i + 1);
  // Both stay usable.
  a.push_back(42);
  EXPECT_EQ(a.front(), 42);
  b.push_back(6);
  EXPECT_EQ(b.back(), 6);
}

TEST(Ring, MoveAssignmentReplacesTheElements) {
  Ring<int> a;
  Ring<int> b;
  for (int i = 0; i < 3; ++i) a.push_back(i);
  for (int i = 0; i < 9; ++i) b.push_back(100 + i);
  b = std::move(a);
  ASSERT_EQ(b.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b[i], i);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  a.push_back(1);
  EXPECT_EQ(a.size(), 1u);
}

TEST(Ring, StringsSurviveGrowthAndWrap) {
  Ring<std::string> r;
  std::deque<std::string> model;
  // Long enough to be heap-allocated, so a bad move would show.
  auto s = [](int i) {
    return "a string that is too long for the small buffer #" + std::to_string(i);
  };
  for (int i = 0; i < 3; ++i) {
    r.push_back(s(i));
    model.push_back(s(i));
  }
  for (int i = 3; i < 500; ++i) {
    r.push_back(s(i));
    model.push_back(s(i));
    if (i % 3 == 0) {
      ASSERT_EQ(r.front(), model.front());
      r.pop_front();
      model.pop_front();
    }
  }
  expect_same(r, model);
}

TEST(Ring, SharedPtrsAreReleasedExactlyOnce) {
  auto p = std::make_shared<int>(5);
  {
    Ring<std::shared_ptr<int>> r;
    for (int i = 0; i < 50; ++i) r.push_back(p);  // several growths
    EXPECT_EQ(p.use_count(), 51);
    for (int i = 0; i < 20; ++i) r.pop_front();
    EXPECT_EQ(p.use_count(), 31);
    for (int i = 0; i < 30; ++i) r.push_back(p);  // wraps and grows again
    EXPECT_EQ(p.use_count(), 61);
    Ring<std::shared_ptr<int>> moved(std::move(r));
    EXPECT_EQ(p.use_count(), 61);
    Ring<std::shared_ptr<int>> assigned;
    assigned.push_back(p);
    assigned = std::move(moved);  // drops assigned's one element
    EXPECT_EQ(p.use_count(), 61);
    assigned.clear();
    EXPECT_EQ(p.use_count(), 1);
    for (int i = 0; i < 7; ++i) assigned.push_back(p);
    EXPECT_EQ(p.use_count(), 8);
  }  // the destructor releases what is left
  EXPECT_EQ(p.use_count(), 1);
}

TEST_F(RingCounted, EveryElementIsDestroyedOnceThroughGrowthPopAndClear) {
  {
    Ring<Counted> r;
    for (int i = 0; i < 37; ++i) r.push_back(Counted(i));
    EXPECT_EQ(Counted::live, 37);
    for (int i = 0; i < 30; ++i) {
      ASSERT_EQ(r.front().value, i);
      r.pop_front();
    }
    EXPECT_EQ(Counted::live, 7);
    for (int i = 37; i < 137; ++i) r.push_back(Counted(i));  // wrap, grow
    EXPECT_EQ(Counted::live, 107);
    for (size_t i = 0; i < r.size(); ++i) ASSERT_EQ(r[i].value, static_cast<int>(30 + i));
    r.clear();
    EXPECT_EQ(Counted::live, 0);
    for (int i = 0; i < 5; ++i) r.push_back(Counted(i));
    EXPECT_EQ(Counted::live, 5);
  }
  EXPECT_EQ(Counted::live, 0);
}

TEST_F(RingCounted, MovesDestroyEachElementOnce) {
  {
    Ring<Counted> a;
    for (int i = 0; i < 10; ++i) a.push_back(Counted(i));
    Ring<Counted> b(std::move(a));
    EXPECT_EQ(Counted::live, 10);
    Ring<Counted> c;
    for (int i = 0; i < 3; ++i) c.push_back(Counted(100 + i));
    EXPECT_EQ(Counted::live, 13);
    c = std::move(b);  // c's old three go
    EXPECT_EQ(Counted::live, 10);
    ASSERT_EQ(c.size(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(c[i].value, i);
  }
  EXPECT_EQ(Counted::live, 0);
}

}  // namespace
