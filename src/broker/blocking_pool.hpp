// Runs slow jobs (a PBKDF2 password check costs ~100 ms) off the worker
// threads, so one CONNECT never stalls every other connection of its worker.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace broker {

class BlockingPool {
 public:
  explicit BlockingPool(int threads) : threads_(threads) {}
  ~BlockingPool() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      // Threads start on first use: a server without slow jobs runs none.
      if (workers_.empty()) {
        for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { run(); });
      }
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  int threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
};

}  // namespace broker
