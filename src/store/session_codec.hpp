// The byte format of a saved persistent session (the same for every backend):
//   u8 version (2) | varint session expiry interval
//   | varint n_subs | n_subs x (str filter, u8 options, varint subscription id)
//   | varint n_msgs | n_msgs x (str topic, str payload, str origin, u8 qos, u8 retain, i64 ms,
//                               varint subscription id, str v5 properties, u8 has expiry,
//                               varint message expiry interval)
// where str = varint length + bytes, i64 is big-endian, and options are the
// MQTT 5 Subscription Options bits (QoS, No Local, Retain As Published, Retain
// Handling). Version 1 (no expiry, options = QoS, no ids, no properties) is
// still read.
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
