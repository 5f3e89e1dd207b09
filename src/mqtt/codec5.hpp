// The MQTT 5 codec is part of codec.hpp now (one API for every protocol
// level). This header remains for files not yet moved to it; include
// mqtt/codec.hpp instead.
#pragma once

#include "mqtt/codec.hpp"
