#include "cql/result.hpp"

#include <cstdio>

namespace cql {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::Truncated:
      return "truncated";
    case Errc::Malformed:
      return "malformed";
    case Errc::BadVersion:
      return "bad protocol version";
    case Errc::UnsupportedFrame:
      return "unsupported frame";
    case Errc::TooLarge:
      return "too large";
    case Errc::Server:
      return "server error";
    case Errc::UnsupportedAuth:
      return "unsupported authentication";
    case Errc::Unexpected:
      return "unexpected response";
    case Errc::ConnectFailed:
      return "connect failed";
    case Errc::Disconnected:
      return "disconnected";
    case Errc::Timeout:
      return "timeout";
    case Errc::Busy:
      return "no free stream id";
    case Errc::Io:
      return "i/o error";
  }
  return "unknown";
}

namespace {

const char* server_code_name(int32_t code) {
  switch (code) {
    case server_error::kServerError:
      return "Server_error";
    case server_error::kProtocolError:
      return "Protocol_error";
    case server_error::kBadCredentials:
      return "Bad_credentials";
    case server_error::kUnavailable:
      return "Unavailable";
    case server_error::kOverloaded:
      return "Overloaded";
    case server_error::kIsBootstrapping:
      return "Is_bootstrapping";
    case 0x1003:
      return "Truncate_error";
    case server_error::kWriteTimeout:
      return "Write_timeout";
    case server_error::kReadTimeout:
      return "Read_timeout";
    case 0x1300:
      return "Read_failure";
    case 0x1400:
      return "Function_failure";
    case 0x1500:
      return "Write_failure";
    case server_error::kSyntaxError:
      return "Syntax_error";
    case server_error::kUnauthorized:
      return "Unauthorized";
    case server_error::kInvalid:
      return "Invalid";
    case server_error::kConfigError:
      return "Config_error";
    case server_error::kAlreadyExists:
      return "Already_exists";
    case server_error::kUnprepared:
      return "Unprepared";
    default:
      return "unknown";
  }
}

}  // namespace

bool Error::retryable() const {
  switch (code) {
    case Errc::ConnectFailed:
    case Errc::Disconnected:
    case Errc::Timeout:
    case Errc::Busy:
    case Errc::Io:
      return true;
    case Errc::Server:
      return server_code == server_error::kUnavailable ||
             server_code == server_error::kOverloaded ||
             server_code == server_error::kIsBootstrapping ||
             server_code == server_error::kWriteTimeout ||
             server_code == server_error::kReadTimeout || server_code == server_error::kUnprepared;
    default:
      return false;
  }
}

std::string Error::to_string() const {
  std::string out = errc_name(code);
  if (code == Errc::Server) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " 0x%04X (%s)", static_cast<unsigned>(server_code),
                  server_code_name(server_code));
    out += buf;
  }
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

}  // namespace cql
