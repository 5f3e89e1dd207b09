// Error and Result<T>: how every cql:: function reports failure. Nothing in
// src/cql throws on the I/O path; a caller checks ok() and reads error().
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "util/result.hpp"

namespace cql {

enum class Errc : uint8_t {
  Truncated,         // the bytes end before the structure they announce
  Malformed,         // impossible value (negative count, bad kind, nesting too deep...)
  BadVersion,        // frame version byte is not 0x84 (or 0x04 for requests)
  UnsupportedFrame,  // compressed frame, or an opcode we cannot handle here
  TooLarge,          // frame body or encoded value beyond the protocol's limits
  Server,            // the server answered ERROR: see server_code and message
  UnsupportedAuth,   // the server wants an authenticator we do not speak
  Unexpected,        // a well-formed response of the wrong kind for the request
  ConnectFailed,     // could not open the TCP connection (resolve, refuse, timeout)
  Disconnected,      // the connection dropped or was closed; reconnect
  Timeout,           // no response within the request's timeout
  Busy,              // every stream id is in use: poll() completions first
  Io,                // a socket call failed; the connection is closed
};

const char* errc_name(Errc code);

// Server error codes (protocol v4 section 9) that callers act on.
namespace server_error {
inline constexpr int32_t kServerError = 0x0000;
inline constexpr int32_t kProtocolError = 0x000A;
inline constexpr int32_t kBadCredentials = 0x0100;
inline constexpr int32_t kUnavailable = 0x1000;
inline constexpr int32_t kOverloaded = 0x1001;
inline constexpr int32_t kIsBootstrapping = 0x1002;
inline constexpr int32_t kWriteTimeout = 0x1100;
inline constexpr int32_t kReadTimeout = 0x1200;
inline constexpr int32_t kSyntaxError = 0x2000;
inline constexpr int32_t kUnauthorized = 0x2100;
inline constexpr int32_t kInvalid = 0x2200;
inline constexpr int32_t kConfigError = 0x2300;
inline constexpr int32_t kAlreadyExists = 0x2400;
inline constexpr int32_t kUnprepared = 0x2500;
}  // namespace server_error

struct Error {
  Errc code = Errc::Malformed;
  int32_t server_code = 0;  // only for Errc::Server
  std::string message;

  // True when the same request may succeed on a later try or another connection
  // (the connection dropped, timed out, or the server was briefly unable).
  bool retryable() const;
  // "Server error 0x2200 (Invalid): unconfigured table foo" and the like.
  std::string to_string() const;
};

inline Error make_error(Errc code, std::string message) {
  return Error{code, 0, std::move(message)};
}

// A value or an Error: util::Result with cql's typed Error (ok(), value(),
// error(), operator->). Status: success without a value (`return {};`).
template <class T>
using Result = util::Result<T, Error>;
using Status = util::Result<void, Error>;

}  // namespace cql
