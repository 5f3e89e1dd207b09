// The broker's own status under $SYS/broker/..., with Mosquitto's topic names
// and formats, so that dashboards and scripts written for Mosquitto work here.
// Published retained, from a thread of its own, every --sys-interval seconds.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "broker/broker.hpp"

namespace broker {

// A per-minute rate, exponentially decayed over `window_s` seconds like
// Mosquitto's $SYS/broker/load/... values (and the Unix load average): each
// update moves the value towards the rate of the last interval by
// 1 - exp(-dt / window).
class LoadAverage {
 public:
  explicit LoadAverage(double window_s) : window_s_(window_s) {}
  // `events` happened during the last `dt_s` seconds.
  void update(double events, double dt_s);
  double value() const { return value_; }

 private:
  double window_s_;
  double value_ = 0;
};

// What one round publishes: topic -> payload. Pure, for the tests.
std::map<std::string, std::string> sys_values(const StatsSnapshot& s, const std::string& version,
                                              int64_t uptime_s);

class SysTopics {
 public:
  // `interval_s` > 0. `version` is the text of $SYS/broker/version.
  SysTopics(Broker& broker, std::string version, unsigned interval_s);
  ~SysTopics();  // stops the thread
  SysTopics(const SysTopics&) = delete;
  SysTopics& operator=(const SysTopics&) = delete;

  // Publishes a first round now, then one every interval.
  void start();
  void stop();

 private:
  void run();
  void publish_round();
  void publish(const std::string& topic, const std::string& payload);

  Broker& broker_;
  const std::string version_;
  const std::chrono::seconds interval_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  // State of the rounds (only the thread touches it).
  std::map<std::string, std::string> last_;  // what each topic holds now
  std::chrono::steady_clock::time_point last_round_{};
  StatsSnapshot last_stats_{};
  LoadAverage received_[3] = {LoadAverage(60), LoadAverage(300), LoadAverage(900)};
  LoadAverage sent_[3] = {LoadAverage(60), LoadAverage(300), LoadAverage(900)};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace broker
