// Test glue for util::Result: a Result's success as a bool, its error text
// copied into `error`, so that assertions can print and inspect the message.
#pragma once

#include <string>
#include <utility>

#include "util/result.hpp"

namespace test_util {

template <class T, class E>
bool ok(const util::Result<T, E>& r, std::string& error) {
  if (!r) error = r.error().message;
  return r.ok();
}

// The value into `out` on success (else `out` is left as it was).
template <class T, class E>
bool ok_into(util::Result<T, E>&& r, T& out, std::string& error) {
  if (!r) {
    error = r.error().message;
    return false;
  }
  out = std::move(r).value();
  return true;
}

// The value, or T{} (e.g. nullptr) with the message in `error`.
template <class T, class E>
T value_or_empty(util::Result<T, E>&& r, std::string& error) {
  if (!r) {
    error = r.error().message;
    return T{};
  }
  return std::move(r).value();
}

}  // namespace test_util
