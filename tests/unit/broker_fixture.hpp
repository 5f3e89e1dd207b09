// What the broker tests share (broker_client_test.cpp for MQTT 3.1/3.1.1,
// broker_v5_test.cpp for MQTT 5): a one-shard broker whose clients are driven
// through bytes exactly as the network layer drives them. Each test file adds
// its own packet encoders and decodes what the server wrote with the rules of
// its protocol level.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/client.hpp"
#include "broker/config.hpp"
#include "broker/shard.hpp"
#include "broker/transport.hpp"
#include "mqtt/packet.hpp"

namespace broker_test {

// The packets of type `t` in `v` (any decoded-packet type with a `type`).
template <typename P>
std::vector<P> only(const std::vector<P>& v, mqtt::PacketType t) {
  std::vector<P> out;
  for (const auto& p : v)
    if (p.type == t) out.push_back(p);
  return out;
}

// Stands in for the network layer's connection: records what the client asked
// of it (the fixture reads the out queue directly, and destroys clients itself).
struct RecordingTransport final : broker::Transport {
  void wants_write() override { ++writes; }
  void close_requested() override { ++closes; }
  int writes = 0;
  int closes = 0;
};

class BrokerFixture : public ::testing::Test {
 protected:
  // `log_level` is set for the test and the previous level restored after it.
  explicit BrokerFixture(spdlog::level::level_enum log_level = spdlog::level::warn)
      : log_level_(log_level) {}

  void SetUp() override {
    saved_level_ = spdlog::get_level();
    spdlog::set_level(log_level_);
    make_broker(broker::Config{});
  }
  void TearDown() override {
    clients_.clear();
    transports_.clear();
    spdlog::set_level(saved_level_);
  }

  // Replaces the broker with a new one-shard broker on `cfg`; the clients of
  // the old one are destroyed first.
  virtual void make_broker(broker::Config cfg) {
    clients_.clear();
    transports_.clear();
    broker_ = std::make_unique<broker::Broker>(cfg, std::vector<std::function<void()>>{[] {}});
  }
  broker::Shard& shard() { return broker_->shard(0); }

  // A new connection, as the network layer makes one on accept.
  broker::Client& open() {
    transports_.push_back(std::make_unique<RecordingTransport>());
    clients_.push_back(
        std::make_unique<broker::Client>(shard(), *transports_.back(), ++next_conn_, "test"));
    return *clients_.back();
  }

  // Hands bytes to the client as the network layer does, then settles;
  // returns the bytes the client used.
  size_t feed(broker::Client& c, std::string_view bytes) {
    size_t used = c.on_bytes(bytes);
    settle();
    return used;
  }

  // Runs what a worker runs at the end of a turn: inbox and cross-shard posts.
  void settle() {
    for (int i = 0; i < 4; ++i) {
      shard().flush_outboxes();
      shard().drain_inbox();
    }
  }

  // The network layer destroys a closed connection.
  void forget(broker::Client& c) {
    for (size_t i = 0; i < clients_.size(); ++i) {
      if (clients_[i].get() == &c) {
        clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
        transports_.erase(transports_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
    settle();
  }

  // Every byte the server queued for `c` since the last call, as the network
  // layer writes them (gather, then consume what was written).
  static std::string written(broker::Client& c) {
    std::string all;
    std::string_view views[64];
    while (!c.out().empty()) {
      size_t n = c.out().gather(views, 64);
      size_t total = 0;
      for (size_t i = 0; i < n; ++i) {
        all.append(views[i]);
        total += views[i].size();
      }
      c.out().consume(total);
    }
    return all;
  }

  std::unique_ptr<broker::Broker> broker_;
  // transports_[i] is the connection of clients_[i] (and outlives it).
  std::vector<std::unique_ptr<RecordingTransport>> transports_;
  std::vector<std::unique_ptr<broker::Client>> clients_;
  uint64_t next_conn_ = 0;

 private:
  spdlog::level::level_enum log_level_;
  spdlog::level::level_enum saved_level_ = spdlog::level::info;
};

}  // namespace broker_test
