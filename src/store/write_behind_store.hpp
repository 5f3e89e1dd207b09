// The Store the server runs: coalesces device publishes, retained messages
// and session snapshots in memory and writes them to a Backend from one
// background thread, retrying with back-off while the backend is down. The
// broker never waits on it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "store/backend.hpp"
#include "store/coalescer.hpp"
#include "store/store.hpp"

namespace store {

struct StoreStats {
  std::atomic<uint64_t> written{0};   // rows written
  std::atomic<uint64_t> batches{0};   // successful flushes
  std::atomic<uint64_t> failures{0};  // failed write attempts
};

class WriteBehindStore : public Store {
 public:
  WriteBehindStore(std::unique_ptr<Backend> backend, std::chrono::milliseconds interval);
  ~WriteBehindStore() override;

  util::Status start() override;
  void restore_into(broker::Broker& b) override;
  void stop() override;
  ReadStatus latest(std::string_view device_id, std::string_view topic, Record& out) override;

  void on_device_publish(const broker::MessagePtr& msg) override;
  void retained_changed(const broker::MessagePtr& m) override;
  void session_saved(broker::SessionSnapshot&& s) override;
  void session_erased(const std::string& client_id) override;

  const StoreStats& stats() const { return stats_; }
  size_t pending() const;
  StoreHealth health() const override;

 private:
  void run();
  bool flush_once();
  void take(WriteSet& ws);
  void put_back(WriteSet& ws);

  std::unique_ptr<Backend> backend_;
  std::chrono::milliseconds interval_;
  broker::Broker* broker_ = nullptr;  // for session snapshot requests
  Coalescer coalescer_;
  // Retained messages and sessions change rarely next to publishes: one lock.
  mutable std::mutex rare_mu_;
  WriteSet rare_;
  StoreStats stats_;
  std::mutex flush_mu_;  // held for one take-and-write; latest() waits on it
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  // The last write failed; logged once until it recovers. Written by the store
  // thread, read by /healthz; down_error_ under error_mu_.
  std::atomic<bool> down_{false};
  mutable std::mutex error_mu_;
  std::string down_error_;
};

}  // namespace store
