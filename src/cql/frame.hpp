// CQL native protocol v4 frames: the 9-byte header and the request encoders.
// Each encoder appends one whole frame (header + body) to `out`, so pipelining
// is appending many frames and writing the buffer once. Response decoding is in
// response.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cql/result.hpp"
#include "cql/wire.hpp"

namespace cql {

inline constexpr uint8_t kRequestVersion = 0x04;
inline constexpr uint8_t kResponseVersion = 0x84;
inline constexpr size_t kHeaderSize = 9;
// "currently a frame is limited to 256MB in length" (spec section 2.5).
inline constexpr uint32_t kMaxBodySize = 256u * 1024u * 1024u;
inline constexpr int16_t kMaxStreams = 32767;  // ids 0..32767; negative ids are the server's

enum class Opcode : uint8_t {
  Error = 0x00,
  Startup = 0x01,
  Ready = 0x02,
  Authenticate = 0x03,
  Options = 0x05,
  Supported = 0x06,
  Query = 0x07,
  Result = 0x08,
  Prepare = 0x09,
  Execute = 0x0A,
  Register = 0x0B,
  Event = 0x0C,
  Batch = 0x0D,
  AuthChallenge = 0x0E,
  AuthResponse = 0x0F,
  AuthSuccess = 0x10,
};

const char* opcode_name(Opcode op);

namespace frame_flag {
inline constexpr uint8_t kCompression = 0x01;
inline constexpr uint8_t kTracing = 0x02;
inline constexpr uint8_t kCustomPayload = 0x04;
inline constexpr uint8_t kWarning = 0x08;
}  // namespace frame_flag

struct FrameHeader {
  uint8_t version = kRequestVersion;
  uint8_t flags = 0;
  int16_t stream = 0;
  Opcode opcode = Opcode::Startup;
  uint32_t length = 0;  // body bytes after the header
};

// Writes the 9 header bytes at out[0..8].
void encode_header(const FrameHeader& h, std::span<uint8_t, kHeaderSize> out);

// Reads a header from the first 9 bytes of `in` (Truncated if fewer). Checks the
// version byte against `expected_version` (0x84 for what a server sends), that
// the opcode is one of v4's and the length is at most kMaxBodySize.
Result<FrameHeader> decode_header(std::span<const uint8_t> in,
                                  uint8_t expected_version = kResponseVersion);

// ---- request encoders ---------------------------------------------------------------------

// <query_parameters> of QUERY and EXECUTE (section 4.1.4).
struct QueryParams {
  Consistency consistency = Consistency::LocalOne;
  std::span<const Value> values;     // positional bind values (flag 0x01 when non-empty)
  bool skip_metadata = false;        // 0x02: rows come without column specs
  std::optional<int32_t> page_size;  // 0x04
  std::optional<std::string_view> paging_state;   // 0x08
  std::optional<Consistency> serial_consistency;  // 0x10
  std::optional<int64_t> default_timestamp_us;    // 0x20: microseconds since epoch
};

enum class BatchType : uint8_t { Logged = 0, Unlogged = 1, Counter = 2 };

// One statement of a BATCH: a prepared id (kind 1) or a query string (kind 0).
struct BatchStatement {
  bool prepared = true;
  std::string_view id_or_query;
  std::span<const Value> values;
};

struct BatchParams {
  BatchType type = BatchType::Unlogged;
  Consistency consistency = Consistency::LocalOne;
  std::optional<Consistency> serial_consistency;
  std::optional<int64_t> default_timestamp_us;
};

// STARTUP with CQL_VERSION 3.0.0 and no compression.
Status encode_startup(std::vector<uint8_t>& out, int16_t stream);
Status encode_startup(std::vector<uint8_t>& out, int16_t stream,
                      std::span<const std::pair<std::string_view, std::string_view>> options);
Status encode_options(std::vector<uint8_t>& out, int16_t stream);
Status encode_query(std::vector<uint8_t>& out, int16_t stream, std::string_view query,
                    const QueryParams& params);
Status encode_prepare(std::vector<uint8_t>& out, int16_t stream, std::string_view query);
Status encode_execute(std::vector<uint8_t>& out, int16_t stream, std::string_view prepared_id,
                      const QueryParams& params);
Status encode_batch(std::vector<uint8_t>& out, int16_t stream,
                    std::span<const BatchStatement> statements, const BatchParams& params);
Status encode_auth_response(std::vector<uint8_t>& out, int16_t stream, std::string_view token);
// The token PasswordAuthenticator expects: "\0user\0password".
std::string plain_auth_token(std::string_view user, std::string_view password);

}  // namespace cql
