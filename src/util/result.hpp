// Result<T, E> and Status: how a function outside the per-message path says
// "here is the value" or "here is why not", instead of a bool and a
// std::string& error out-parameter. [[nodiscard]] on the class, so a caller
// cannot drop a failure silently. Header-only, no exceptions: value() and
// error() on the wrong alternative are programming errors (std::get checks).
#pragma once

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace util {

// The error of most Results: the text a caller prints or logs as it is.
struct Error {
  std::string message;
};

// util::Error with fmt-style formatting: return util::errorf("{}: {}", path, why);
template <class... Args>
Error errorf(fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...)};
}

// A value of type T, or an error of type E. Implicitly constructible from
// either, so a function returns its value or its error as it is.
template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  E& error() & { return std::get<1>(v_); }
  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, E> v_;
};

// Success without a value, or an error. `return {};` succeeds.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(E error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }

  E& error() & { return error_; }
  const E& error() const& { return error_; }
  E&& error() && { return std::move(error_); }

 private:
  E error_{};
  bool failed_ = false;
};

// For functions that only succeed or fail.
using Status = Result<void>;

}  // namespace util
