// The byte format of a saved persistent session (the same for every backend):
//   u8 version (1) | varint n_subs | n_subs x (str filter, u8 qos)
//   | varint n_msgs | n_msgs x (str topic, str payload, str origin, u8 qos, u8 retain, i64 ms)
// where str = varint length + bytes and i64 is big-endian.
#pragma once

#include <string>
#include <string_view>

#include "broker/persistence.hpp"

namespace store {

std::string encode_session(const broker::SessionSnapshot& s);
// False when `bytes` is not a valid snapshot.
bool decode_session(std::string_view client_id, std::string_view bytes,
                    broker::SessionSnapshot& out);

}  // namespace store
