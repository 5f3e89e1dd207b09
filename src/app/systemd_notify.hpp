// Tells systemd (Type=notify units) how the server is doing, through
// sd_notify(3): READY=1 once every listener accepts, STOPPING=1 when shutdown
// begins, WATCHDOG=1 from the main loop when the unit sets WatchdogSec.
// Without $NOTIFY_SOCKET (not started by systemd) each call does nothing.
#pragma once

#include <chrono>
#include <string>

namespace app {

void notify_ready(const std::string& status);
void notify_stopping();
void notify_watchdog();
// How often to send WATCHDOG=1: half of $WATCHDOG_USEC, as sd_watchdog_enabled(3)
// advises; zero when there is no watchdog.
std::chrono::microseconds watchdog_interval();

}  // namespace app
