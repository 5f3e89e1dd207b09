// broker::Inbox (src/broker/inbox.hpp): work posted to a shard by other
// threads. The owner is woken once when the inbox goes from empty to
// non-empty, not once per item, and take() hands over everything in order.
#include "broker/inbox.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using broker::Inbox;
using broker::InboxItem;

namespace inbox = broker::inbox;

// An item that says who pushed it and its place in that producer's order.
InboxItem item(int producer, uint64_t seq) {
  return inbox::Takeover{nullptr, seq, producer};
}
const inbox::Takeover& takeover(const InboxItem& it) {
  return std::get<inbox::Takeover>(it);
}

std::vector<uint64_t> seqs(const std::vector<InboxItem>& v) {
  std::vector<uint64_t> out;
  for (const auto& it : v) out.push_back(takeover(it).conn_id);
  return out;
}

TEST(Inbox, WakesOnlyWhenItStopsBeingEmpty) {
  int wakes = 0;
  Inbox in([&] { ++wakes; });
  EXPECT_EQ(wakes, 0);
  in.push(item(0, 1));
  EXPECT_EQ(wakes, 1);
  in.push(item(0, 2));
  in.push(item(0, 3));
  EXPECT_EQ(wakes, 1);  // not per push

  std::vector<InboxItem> out;
  in.take(out);
  EXPECT_EQ(seqs(out), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(wakes, 1);  // taking does not wake

  in.push(item(0, 4));  // empty again: this one wakes
  EXPECT_EQ(wakes, 2);
}

TEST(Inbox, TakeOfAnEmptyInboxGivesNothing) {
  int wakes = 0;
  Inbox in([&] { ++wakes; });
  std::vector<InboxItem> out;
  in.take(out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(wakes, 0);
}

TEST(Inbox, TakeKeepsTheOrderAndTheItems) {
  Inbox in([] {});
  auto msg = std::make_shared<const broker::Message>("t", "p", 1, false, "o", 0);
  uint64_t ran = 0;
  for (uint64_t i = 0; i < 100; ++i) {
    if (i % 2) {
      in.push(inbox::Deliver{nullptr, {msg, 1, false, static_cast<uint32_t>(i)}});
    } else {
      in.push(inbox::Run{[msg, i, &ran] { ran = i; }});
    }
  }
  EXPECT_EQ(msg.use_count(), 101);  // held, not copied away
  std::vector<InboxItem> out;
  in.take(out);
  ASSERT_EQ(out.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) {
    if (i % 2) {
      const auto* d = std::get_if<inbox::Deliver>(&out[i]);
      ASSERT_NE(d, nullptr) << "item " << i << " changed its kind";
      EXPECT_EQ(d->delivery.sub_id, i);
      EXPECT_EQ(d->delivery.msg, msg);
    } else {
      auto* r = std::get_if<inbox::Run>(&out[i]);
      ASSERT_NE(r, nullptr) << "item " << i << " changed its kind";
      r->fn();
      EXPECT_EQ(ran, i);
    }
  }
  std::vector<InboxItem> again;
  in.take(again);
  EXPECT_TRUE(again.empty());  // everything was handed over once
}

TEST(Inbox, ABatchWakesOnceAndIsLeftEmpty) {
  int wakes = 0;
  Inbox in([&] { ++wakes; });
  std::vector<InboxItem> batch;
  in.push_batch(batch);  // an empty batch is nothing
  EXPECT_EQ(wakes, 0);

  for (uint64_t i = 0; i < 5; ++i) batch.push_back(item(0, i));
  in.push_batch(batch);
  EXPECT_EQ(wakes, 1);
  EXPECT_TRUE(batch.empty());

  for (uint64_t i = 5; i < 8; ++i) batch.push_back(item(0, i));
  in.push_batch(batch);  // into a non-empty inbox: appended, no wake
  EXPECT_EQ(wakes, 1);
  EXPECT_TRUE(batch.empty());
  in.push(item(0, 8));
  EXPECT_EQ(wakes, 1);

  std::vector<InboxItem> out;
  in.take(out);
  EXPECT_EQ(seqs(out), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));

  batch.push_back(item(0, 9));
  in.push_batch(batch);
  EXPECT_EQ(wakes, 2);
}

// Several producers, one owner that sleeps until woken, as a shard does:
// every item arrives exactly once and in each producer's order, and no
// wake-up is lost (the owner would wait forever, here: time out).
TEST(Inbox, ConcurrentProducersDeliverEverythingOnceInProducerOrder) {
  constexpr int kProducers = 4;
  constexpr uint64_t kItems = 10000;
  std::mutex m;
  std::condition_variable cv;
  bool woken = false;
  std::atomic<int> wakes{0};
  Inbox in([&] {
    wakes.fetch_add(1);
    std::lock_guard lock(m);
    woken = true;
    cv.notify_one();
  });

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&in, p] {
      std::vector<InboxItem> batch;
      for (uint64_t i = 0; i < kItems; ++i) {
        // Half single pushes, half small batches.
        if (p % 2 == 0) {
          in.push(item(p, i));
        } else {
          batch.push_back(item(p, i));
          if (batch.size() == 7 || i + 1 == kItems) in.push_batch(batch);
        }
      }
    });
  }

  std::vector<uint64_t> next(kProducers, 0);
  uint64_t received = 0;
  bool out_of_order = false;
  int takes_with_items = 0;
  std::vector<InboxItem> out;
  while (received < kProducers * kItems) {
    {
      std::unique_lock lock(m);
      if (!cv.wait_for(lock, std::chrono::seconds(20), [&] { return woken; })) break;
      woken = false;
    }
    out.clear();
    in.take(out);
    if (!out.empty()) ++takes_with_items;
    for (const InboxItem& any : out) {
      const inbox::Takeover& it = takeover(any);
      if (it.from < 0 || it.from >= kProducers) {
        out_of_order = true;  // not an item any producer pushed
        continue;
      }
      auto& n = next[static_cast<size_t>(it.from)];
      if (it.conn_id != n) out_of_order = true;
      n = it.conn_id + 1;
      ++received;
    }
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(received, kProducers * kItems) << "a wake-up was lost or an item dropped";
  EXPECT_FALSE(out_of_order);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[static_cast<size_t>(p)], kItems);
  std::vector<InboxItem> rest;
  in.take(rest);
  EXPECT_TRUE(rest.empty()) << "an item arrived twice or late";
  // One wake per empty-to-non-empty transition: never more than the takes
  // that found something (plus one for a wake that raced the last take).
  EXPECT_LE(wakes.load(), takes_with_items + 1);
  EXPECT_GE(wakes.load(), 1);
}

}  // namespace
