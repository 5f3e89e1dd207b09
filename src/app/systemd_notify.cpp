#include "app/systemd_notify.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstring>

namespace app {

namespace {
void notify(const std::string& state) {
  // unset_environment 0: a child process (none today) would still see the socket.
  int rc = sd_notify(0, state.c_str());
  if (rc < 0) spdlog::warn("sd_notify({}): {}", state, std::strerror(-rc));
}
}  // namespace

void notify_ready(const std::string& status) {
  notify("READY=1\nSTATUS=" + status);
}

void notify_stopping() {
  notify("STOPPING=1");
}

void notify_watchdog() {
  notify("WATCHDOG=1");
}

std::chrono::microseconds watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec / 2);
}

}  // namespace app
