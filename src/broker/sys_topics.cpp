#include "broker/sys_topics.hpp"

#include <fmt/format.h>

#include <cmath>

#include "broker/clock.hpp"

namespace broker {

void LoadAverage::update(double events, double dt_s) {
  if (dt_s <= 0) return;
  const double rate = events * 60.0 / dt_s;  // per minute, as Mosquitto reports it
  value_ = rate + std::exp(-dt_s / window_s_) * (value_ - rate);
}

std::map<std::string, std::string> sys_values(const StatsSnapshot& s, const std::string& version,
                                              int64_t uptime_s) {
  auto n = [](uint64_t v) { return std::to_string(v); };
  return {
      {"$SYS/broker/version", version},
      {"$SYS/broker/uptime", fmt::format("{} seconds", uptime_s)},
      {"$SYS/broker/clients/connected", n(s.connected)},
      {"$SYS/broker/clients/active", n(s.connected)},  // Mosquitto's older name
      {"$SYS/broker/clients/disconnected", n(s.sessions_offline())},
      {"$SYS/broker/clients/inactive", n(s.sessions_offline())},
      // Mosquitto: connected clients plus disconnected ones with a session.
      {"$SYS/broker/clients/total", n(s.sessions)},
      {"$SYS/broker/messages/received", n(s.messages_in)},
      {"$SYS/broker/messages/sent", n(s.messages_out)},
      {"$SYS/broker/publish/messages/received", n(s.messages_in)},
      {"$SYS/broker/publish/messages/sent", n(s.messages_out)},
      {"$SYS/broker/publish/messages/dropped",
       n(s.dropped_qos0 + s.dropped_queued + s.dropped_too_large + s.dropped_expired)},
      {"$SYS/broker/bytes/received", n(s.bytes_in)},
      {"$SYS/broker/bytes/sent", n(s.bytes_out)},
      {"$SYS/broker/subscriptions/count", n(s.subscriptions)},
      {"$SYS/broker/retained messages/count", n(s.retained)},
  };
}

SysTopics::SysTopics(Broker& broker, std::string version, unsigned interval_s)
    : broker_(broker), version_(std::move(version)), interval_(interval_s) {}

SysTopics::~SysTopics() {
  stop();
}

void SysTopics::start() {
  thread_ = std::thread([this] { run(); });
}

void SysTopics::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SysTopics::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    publish_round();
    lock.lock();
    cv_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

void SysTopics::publish(const std::string& topic, const std::string& payload) {
  // Like Mosquitto, only what changed goes out; the retained copy serves new
  // subscribers, so a quiet broker sends almost nothing.
  auto [it, inserted] = last_.try_emplace(topic, payload);
  if (!inserted) {
    if (it->second == payload) return;
    it->second = payload;
  }
  broker_.publish_sys(std::make_shared<const Message>(topic, payload, /*qos=*/0, /*retain=*/true,
                                                      /*origin=*/"", wall_clock_ms()));
}

void SysTopics::publish_round() {
  const auto now = std::chrono::steady_clock::now();
  const StatsSnapshot s = broker_.stats_now();
  const int64_t uptime_s = std::chrono::duration_cast<std::chrono::seconds>(now - started_).count();
  for (const auto& [topic, payload] : sys_values(s, version_, uptime_s)) publish(topic, payload);

  static const char* const kWindows[3] = {"1min", "5min", "15min"};
  const bool first = last_round_ == std::chrono::steady_clock::time_point{};
  const double dt = std::chrono::duration<double>(now - last_round_).count();
  for (int i = 0; i < 3; ++i) {
    if (!first) {
      received_[i].update(static_cast<double>(s.messages_in - last_stats_.messages_in), dt);
      sent_[i].update(static_cast<double>(s.messages_out - last_stats_.messages_out), dt);
    }
    publish(fmt::format("$SYS/broker/load/messages/received/{}", kWindows[i]),
            fmt::format("{:.2f}", received_[i].value()));
    publish(fmt::format("$SYS/broker/load/messages/sent/{}", kWindows[i]),
            fmt::format("{:.2f}", sent_[i].value()));
  }
  last_round_ = now;
  last_stats_ = s;
}

}  // namespace broker
