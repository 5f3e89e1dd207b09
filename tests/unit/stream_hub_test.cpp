// api::StreamHub and api::Stream (src/api/stream_hub.hpp): the write-token
// protocol of the gRPC streams, without gRPC. A fake StreamSink stands in for
// the reactor: it records what it is asked to write and, like gRPC, reports a
// write done later (by hand, or from a "completion queue" thread).
//
// What must hold: at most one write is in flight per stream whoever produces;
// messages go out in the order they were queued; the token comes back with
// the write completion (which starts the next write) and is parked when there
// is nothing to send; a full queue drops the newest message and counts it; a
// cancelled or failed stream is finished once, under the token, and takes no
// more messages.
#include "api/stream_hub.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/message.hpp"

namespace {

using namespace std::chrono_literals;

broker::MessagePtr message(const std::string& topic, const std::string& payload,
                           const std::string& device = "dev") {
  return std::make_shared<const broker::Message>(topic, payload, 0, false, device, 0);
}

struct Written {
  std::string topic;
  std::string payload;
  uint64_t dropped_before = 0;
  bool more = false;
};

// The reactor's stand-in. Writes are only recorded; the test (or a
// completion thread) reports them done through Stream::on_write_done.
class FakeSink final : public api::StreamSink {
 public:
  void write(const broker::Message& m, uint64_t dropped_before, bool more) override {
    // Two writes at once would be a second StartWrite before OnWriteDone.
    if (in_flight_.fetch_add(1) != 0) overlapped_ = true;
    {
      std::lock_guard lock(mu_);
      written_.push_back({std::string(m.topic()), std::string(m.payload()), dropped_before, more});
    }
    cv_.notify_all();
  }
  void finish() override {
    finished_.fetch_add(1);
    cv_.notify_all();
  }

  // What gRPC does when a write completes: the write is no longer in flight
  // before OnWriteDone runs (which may start the next one at once).
  void complete(api::Stream& s, bool ok = true) {
    ASSERT_EQ(in_flight_.fetch_sub(1), 1) << "completed a write that was not in flight";
    s.on_write_done(ok);
  }

  // Waits until `n` writes were started; false on time-out.
  bool wait_written(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return written_.size() >= n; });
  }
  bool wait_finished() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return finished_.load() != 0; });
  }

  std::vector<Written> written() const {
    std::lock_guard lock(mu_);
    return written_;
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return written_.size();
  }
  int in_flight() const { return in_flight_.load(); }
  bool overlapped() const { return overlapped_.load(); }
  int finished() const { return finished_.load(); }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Written> written_;
  std::atomic<int> in_flight_{0};
  std::atomic<bool> overlapped_{false};
  std::atomic<int> finished_{0};
};

// A sink whose writes complete on a thread of their own, a little later, as
// gRPC's completion queue would report them.
class AsyncSink final : public api::StreamSink {
 public:
  AsyncSink() : completer_([this] { loop(); }) {}
  ~AsyncSink() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    completer_.join();
  }
  void attach(api::Stream* s) { stream_ = s; }

  void write(const broker::Message& m, uint64_t dropped_before, bool more) override {
    sink_.write(m, dropped_before, more);
    {
      std::lock_guard lock(mu_);
      ++due_;
    }
    cv_.notify_all();
  }
  void finish() override { sink_.finish(); }

  FakeSink& record() { return sink_; }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || due_ != 0; });
      if (due_ == 0) return;
      --due_;
      lock.unlock();
      std::this_thread::yield();  // let producers race the completion
      sink_.complete(*stream_);
      lock.lock();
    }
  }

  FakeSink sink_;
  api::Stream* stream_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  int due_ = 0;
  bool stop_ = false;
  std::thread completer_;
};

TEST(StreamHub, OpenHoldsTheTokenUntilRun) {
  FakeSink sink;
  api::StreamHub hub(16);
  auto s = hub.open({}, "peer", &sink);
  EXPECT_EQ(hub.stream_count(), 1u);
  // Queued while the creator holds the token: nobody may write yet.
  hub.on_device_publish(message("a", "1"));
  hub.on_device_publish(message("b", "2"));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sink.count(), 0u);
  s->run();  // the creator releases the token: the first write starts here
  ASSERT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.written()[0].topic, "a");
  EXPECT_TRUE(sink.written()[0].more);  // "b" is ready to follow
  sink.complete(*s);
  ASSERT_EQ(sink.count(), 2u);
  EXPECT_EQ(sink.written()[1].topic, "b");
  EXPECT_FALSE(sink.written()[1].more);
  sink.complete(*s);
  EXPECT_EQ(s->sent(), 2u);
  s->cancel();
  EXPECT_EQ(sink.finished(), 1);
  hub.close(s);
  EXPECT_EQ(hub.stream_count(), 0u);
}

TEST(StreamHub, TokenComesBackWithTheWriteCompletion) {
  FakeSink sink;
  api::StreamHub hub(16);
  auto s = hub.open({}, "peer", &sink);
  s->run();  // nothing queued: the token is parked
  EXPECT_EQ(sink.count(), 0u);

  // The first message takes the parked token; the dispatcher writes it.
  hub.on_device_publish(message("t", "1"));
  ASSERT_TRUE(sink.wait_written(1));
  // While that write is in flight nothing else starts, however much is queued.
  hub.on_device_publish(message("t", "2"));
  hub.on_device_publish(message("t", "3"));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.in_flight(), 1);

  // Completing the write hands the token to this thread, which starts the next.
  sink.complete(*s);
  ASSERT_EQ(sink.count(), 2u);
  sink.complete(*s);
  ASSERT_EQ(sink.count(), 3u);
  sink.complete(*s);  // nothing left: parked again
  EXPECT_EQ(sink.in_flight(), 0);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sink.count(), 3u);

  // And the next message takes it again.
  hub.on_device_publish(message("t", "4"));
  ASSERT_TRUE(sink.wait_written(4));
  sink.complete(*s);
  std::vector<Written> w = sink.written();
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(w[i].payload, std::to_string(i + 1));
  EXPECT_FALSE(sink.overlapped());
  s->cancel();
  hub.close(s);
}

TEST(StreamHub, ConcurrentProducersOneWriteAtATimeInOrder) {
  constexpr int kProducers = 4;
  constexpr int kEach = 2000;
  AsyncSink sink;
  api::StreamHub hub(kProducers * kEach);  // room for all: nothing dropped
  auto s = hub.open({}, "peer", &sink);
  sink.attach(s.get());
  s->run();

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&hub, p] {
      const std::string topic = "p/" + std::to_string(p);
      for (int i = 0; i < kEach; ++i) hub.on_device_publish(message(topic, std::to_string(i)));
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_TRUE(sink.record().wait_written(kProducers * kEach));

  EXPECT_FALSE(sink.record().overlapped()) << "two writes were in flight at once";
  std::vector<Written> w = sink.record().written();
  ASSERT_EQ(w.size(), size_t{kProducers * kEach});
  // Each producer's messages arrive in the order it published them.
  std::vector<int> next(kProducers, 0);
  for (const Written& m : w) {
    const int p = std::stoi(m.topic.substr(2));
    EXPECT_EQ(m.payload, std::to_string(next[static_cast<size_t>(p)]++));
    EXPECT_EQ(m.dropped_before, 0u);
  }
  EXPECT_EQ(s->dropped(), 0u);
  EXPECT_EQ(hub.dropped_total(), 0u);

  s->cancel();
  ASSERT_TRUE(sink.record().wait_finished());
  hub.close(s);
}

// Quiets the hub's "not keeping up" warnings for one test.
struct QuietLog {
  spdlog::level::level_enum saved = spdlog::get_level();
  QuietLog() { spdlog::set_level(spdlog::level::err); }
  ~QuietLog() { spdlog::set_level(saved); }
};

TEST(StreamHub, DropsBeyondTheBoundAndReportsTheCount) {
  QuietLog quiet;
  FakeSink sink;
  api::StreamHub hub(2);
  auto s = hub.open({}, "peer", &sink);
  s->run();

  hub.on_device_publish(message("t", "1"));
  ASSERT_TRUE(sink.wait_written(1));  // in flight: no longer counts against the bound
  hub.on_device_publish(message("t", "2"));
  hub.on_device_publish(message("t", "3"));  // the queue is full now
  hub.on_device_publish(message("t", "4"));  // dropped
  hub.on_device_publish(message("t", "5"));  // dropped
  EXPECT_EQ(s->dropped(), 2u);
  EXPECT_EQ(hub.dropped_total(), 2u);

  sink.complete(*s);
  ASSERT_EQ(sink.count(), 2u);
  // Taken for writing but not yet written still counts against the bound.
  hub.on_device_publish(message("t", "6"));  // "3" waits, one place left: queued
  hub.on_device_publish(message("t", "7"));  // dropped
  EXPECT_EQ(s->dropped(), 3u);
  sink.complete(*s);
  sink.complete(*s);
  ASSERT_EQ(sink.count(), 4u);
  sink.complete(*s);  // parked

  std::vector<Written> w = sink.written();
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].payload, "1");
  EXPECT_EQ(w[1].payload, "2");
  EXPECT_EQ(w[2].payload, "3");
  EXPECT_EQ(w[3].payload, "6");
  // The count of the drops rides on the next message that got through.
  EXPECT_EQ(w[0].dropped_before, 0u);
  EXPECT_EQ(w[1].dropped_before, 0u);
  EXPECT_EQ(w[2].dropped_before, 0u);
  EXPECT_EQ(w[3].dropped_before, 2u);
  hub.on_device_publish(message("t", "8"));
  ASSERT_TRUE(sink.wait_written(5));
  EXPECT_EQ(sink.written()[4].dropped_before, 1u);  // "7"
  sink.complete(*s);
  EXPECT_EQ(hub.dropped_total(), 3u);
  EXPECT_FALSE(sink.overlapped());
  s->cancel();
  hub.close(s);
}

TEST(StreamHub, CancelWhileParkedFinishesAtOnce) {
  FakeSink sink;
  api::StreamHub hub(4);
  auto s = hub.open({}, "peer", &sink);
  s->run();
  s->cancel();  // takes the parked token
  EXPECT_EQ(sink.finished(), 1);
  // A finished stream takes nothing more: no write, no drop.
  hub.on_device_publish(message("t", "1"));
  s->offer(message("t", "2"));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sink.count(), 0u);
  EXPECT_EQ(s->dropped(), 0u);
  s->cancel();  // a second cancel (gRPC: OnCancel after a failed write) is harmless
  EXPECT_EQ(sink.finished(), 1);
  hub.close(s);
}

TEST(StreamHub, CancelDuringAWriteFinishesWhenItCompletes) {
  FakeSink sink;
  api::StreamHub hub(4);
  auto s = hub.open({}, "peer", &sink);
  s->run();
  hub.on_device_publish(message("t", "1"));
  ASSERT_TRUE(sink.wait_written(1));
  hub.on_device_publish(message("t", "2"));
  s->cancel();  // the writer holds the token: it must not finish under it
  EXPECT_EQ(sink.finished(), 0);
  sink.complete(*s, false);  // gRPC fails the outstanding write of a cancelled call
  EXPECT_EQ(sink.finished(), 1);
  EXPECT_EQ(sink.count(), 1u);  // "2" is never written
  hub.on_device_publish(message("t", "3"));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sink.count(), 1u);
  hub.close(s);
}

TEST(StreamHub, FailedWriteEndsTheStream) {
  FakeSink sink;
  api::StreamHub hub(4);
  auto s = hub.open({}, "peer", &sink);
  hub.on_device_publish(message("t", "1"));
  hub.on_device_publish(message("t", "2"));
  s->run();
  ASSERT_EQ(sink.count(), 1u);
  sink.complete(*s, false);  // the client went away
  EXPECT_EQ(sink.finished(), 1);
  EXPECT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.in_flight(), 0);
  hub.close(s);
}

TEST(StreamHub, FiltersByDeviceTopicAndApiMessages) {
  FakeSink any, dev, api_msgs;
  api::StreamHub hub(16);
  auto s_any = hub.open({}, "a", &any);
  auto s_dev = hub.open({"d1", "x/#", false}, "b", &dev);
  auto s_api = hub.open({"", "x/+", true}, "c", &api_msgs);
  s_any->run();
  s_dev->run();
  s_api->run();

  hub.on_device_publish(message("x/1", "from d1", "d1"));
  hub.on_device_publish(message("y/1", "d1 elsewhere", "d1"));
  hub.on_device_publish(message("x/2", "from d2", "d2"));
  hub.on_api_publish(message("x/3", "api", ""));
  ASSERT_TRUE(any.wait_written(1));
  ASSERT_TRUE(dev.wait_written(1));
  ASSERT_TRUE(api_msgs.wait_written(1));
  // Drain each stream: one completion per written message.
  while (any.in_flight() != 0) any.complete(*s_any);
  while (dev.in_flight() != 0) dev.complete(*s_dev);
  while (api_msgs.in_flight() != 0) api_msgs.complete(*s_api);

  auto payloads = [](const FakeSink& s) {
    std::vector<std::string> out;
    for (const Written& w : s.written()) out.push_back(w.payload);
    return out;
  };
  EXPECT_EQ(payloads(any), (std::vector<std::string>{"from d1", "d1 elsewhere", "from d2"}));
  EXPECT_EQ(payloads(dev), (std::vector<std::string>{"from d1"}));
  EXPECT_EQ(payloads(api_msgs), (std::vector<std::string>{"from d1", "from d2", "api"}));
  for (auto* s : {&s_any, &s_dev, &s_api}) {
    (*s)->cancel();
    hub.close(*s);
  }
}

}  // namespace
