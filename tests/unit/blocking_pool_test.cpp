// broker::BlockingPool (src/broker/blocking_pool.hpp): runs slow jobs off the
// worker threads. Its threads start on the first post (a server without slow
// jobs runs none), every posted job runs once on one of them, and the
// destructor runs what is still queued before it joins.
#include "broker/blocking_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

namespace {

using broker::BlockingPool;
using namespace std::chrono_literals;

// Thread ids of this process (Linux: one entry per thread in /proc/self/task).
// The tests follow the pool's own threads by id rather than counting all of
// them: sanitizer runtimes start threads of their own at any moment.
std::set<pid_t> thread_ids() {
  std::set<pid_t> ids;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    ids.insert(static_cast<pid_t>(std::stol(e.path().filename().string())));
  }
  return ids;
}

bool thread_alive(pid_t tid) {
  return std::filesystem::exists("/proc/self/task/" + std::to_string(tid));
}

pid_t current_tid() {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

// Counts finished jobs; wait_for(n) waits (bounded) until n have finished.
class Done {
 public:
  void add() {
    std::lock_guard lock(mu_);
    ++n_;
    cv_.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 20s, [&] { return n_ >= n; });
  }
  int count() {
    std::lock_guard lock(mu_);
    return n_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

TEST(BlockingPool, StartsNoThreadUntilTheFirstPostAndJoinsThemAll) {
  std::mutex mu;
  std::set<pid_t> workers;  // threads that ran a job
  Done done;
  auto job = [&] {
    {
      std::lock_guard lock(mu);
      workers.insert(current_tid());
    }
    done.add();
  };
  {
    const std::set<pid_t> before = thread_ids();
    BlockingPool pool(3);
    for (pid_t t : thread_ids()) {
      EXPECT_TRUE(before.count(t)) << "a thread started before any job was posted";
    }
    for (int i = 0; i < 30; ++i) pool.post(job);
    ASSERT_TRUE(done.wait_for(30));
    std::lock_guard lock(mu);
    EXPECT_GE(workers.size(), 1u);
    EXPECT_LE(workers.size(), 3u) << "more threads than the pool was given";
    EXPECT_FALSE(workers.count(current_tid())) << "a job ran on the posting thread";
    for (pid_t t : workers) EXPECT_TRUE(thread_alive(t));
  }
  for (pid_t t : workers) EXPECT_FALSE(thread_alive(t)) << "the destructor left thread " << t;
}

TEST(BlockingPool, AnUnusedPoolIsDestroyedAtOnce) {
  const std::set<pid_t> before = thread_ids();
  auto start = std::chrono::steady_clock::now();
  {
    BlockingPool pool(4);
    for (pid_t t : thread_ids()) EXPECT_TRUE(before.count(t)) << "an unused pool started threads";
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(BlockingPool, EveryJobRunsOnceOffTheCallingThread) {
  constexpr int kJobs = 1000;
  constexpr int kThreads = 3;
  BlockingPool pool(kThreads);
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::vector<int> runs(kJobs, 0);
  Done done;
  for (int i = 0; i < kJobs; ++i) {
    pool.post([&, i] {
      {
        std::lock_guard lock(mu);
        ids.insert(std::this_thread::get_id());
        ++runs[static_cast<size_t>(i)];
      }
      done.add();
    });
  }
  ASSERT_TRUE(done.wait_for(kJobs));
  std::lock_guard lock(mu);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 0u) << "a job ran on the posting thread";
  EXPECT_GE(ids.size(), 1u);
  EXPECT_LE(ids.size(), static_cast<size_t>(kThreads));
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(runs[static_cast<size_t>(i)], 1) << "job " << i;
}

// With two threads, two jobs that each wait for the other both finish: they
// run at the same time (one slow CONNECT does not hold up the next).
TEST(BlockingPool, JobsRunInParallelUpToTheThreadCount) {
  BlockingPool pool(2);
  std::atomic<int> arrived{0};
  std::atomic<int> met{0};
  Done done;
  for (int i = 0; i < 2; ++i) {
    pool.post([&] {
      arrived.fetch_add(1);
      auto deadline = std::chrono::steady_clock::now() + 10s;
      while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
      }
      if (arrived.load() == 2) met.fetch_add(1);
      done.add();
    });
  }
  ASSERT_TRUE(done.wait_for(2));
  EXPECT_EQ(met.load(), 2);
}

// The destructor does not drop queued jobs: the workers finish the queue,
// then exit, and the destructor returns after that.
TEST(BlockingPool, TheDestructorRunsTheJobsStillQueued) {
  constexpr int kJobs = 200;
  std::atomic<int> ran{0};
  std::atomic<bool> gate{false};
  {
    BlockingPool pool(1);
    // The one thread is held on the first job while the rest queue up.
    pool.post([&] {
      while (!gate.load()) std::this_thread::sleep_for(1ms);
      ran.fetch_add(1);
    });
    for (int i = 1; i < kJobs; ++i) {
      pool.post([&] {
        std::this_thread::sleep_for(50us);
        ran.fetch_add(1);
      });
    }
    EXPECT_EQ(ran.load(), 0);
    gate.store(true);
  }  // destroyed with most of the jobs still queued
  EXPECT_EQ(ran.load(), kJobs);
}

TEST(BlockingPool, ConcurrentPostsFromSeveralThreads) {
  constexpr int kPosters = 4;
  constexpr int kEach = 2500;
  std::vector<std::atomic<int>> runs(kPosters * kEach);
  for (auto& r : runs) r.store(0);
  Done done;
  {
    BlockingPool pool(2);
    std::vector<std::thread> posters;
    for (int p = 0; p < kPosters; ++p) {
      posters.emplace_back([&, p] {
        for (int i = 0; i < kEach; ++i) {
          const size_t slot = static_cast<size_t>(p * kEach + i);
          pool.post([&runs, &done, slot] {
            runs[slot].fetch_add(1);
            done.add();
          });
        }
      });
    }
    for (auto& t : posters) t.join();
    EXPECT_TRUE(done.wait_for(kPosters * kEach));
  }
  EXPECT_EQ(done.count(), kPosters * kEach);
  int wrong = 0;
  for (auto& r : runs) wrong += r.load() != 1;
  EXPECT_EQ(wrong, 0) << "jobs that did not run exactly once";
}

}  // namespace
