// The broker's names for the server's two clocks (defined in util/clock.hpp).
#pragma once

#include "util/clock.hpp"

namespace broker {

using util::monotonic_ms;
using util::wall_clock_ms;

}  // namespace broker
