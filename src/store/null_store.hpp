// --no-store: nothing is kept (a pure broker). Latest-payload reads answer
// Unavailable; retained messages and sessions live in memory only.
#pragma once

#include "store/store.hpp"

namespace store {

class NullStore : public Store {
 public:
  util::Status start() override { return {}; }
  void restore_into(broker::Broker&) override {}
  void stop() override {}
  ReadStatus latest(std::string_view, std::string_view, Record&) override {
    return ReadStatus::Unavailable;
  }
  void on_device_publish(const broker::MessagePtr&) override {}
  void retained_changed(const broker::MessagePtr&) override {}
  void session_saved(broker::SessionSnapshot&&) override {}
  void session_erased(const std::string&) override {}
};

}  // namespace store
