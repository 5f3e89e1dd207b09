// Decoders for what a server sends (protocol v4 section 4.2): ERROR, READY,
// AUTHENTICATE, SUPPORTED, RESULT (Void, Rows, Set_keyspace, Prepared,
// Schema_change), EVENT, AUTH_CHALLENGE, AUTH_SUCCESS. Pure functions over
// bytes: bounds-checked, no exceptions, errors returned. Fuzzed by
// fuzz/fuzz_cql_frame.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cql/frame.hpp"
#include "cql/result.hpp"

namespace cql {

// [option] type of a column or bind marker (section 4.2.5.2).
struct DataType {
  enum : uint16_t {
    kCustom = 0x0000,
    kAscii = 0x0001,
    kBigint = 0x0002,
    kBlob = 0x0003,
    kBoolean = 0x0004,
    kCounter = 0x0005,
    kDecimal = 0x0006,
    kDouble = 0x0007,
    kFloat = 0x0008,
    kInt = 0x0009,
    kTimestamp = 0x000B,
    kUuid = 0x000C,
    kVarchar = 0x000D,
    kVarint = 0x000E,
    kTimeuuid = 0x000F,
    kInet = 0x0010,
    kDate = 0x0011,
    kTime = 0x0012,
    kSmallint = 0x0013,
    kTinyint = 0x0014,
    kList = 0x0020,
    kMap = 0x0021,
    kSet = 0x0022,
    kUdt = 0x0030,
    kTuple = 0x0031,
  };
  uint16_t id = kCustom;
  std::string name;                      // Custom: class name; UDT: "keyspace.type"
  std::vector<DataType> elements;        // list/set: 1, map: 2, tuple and UDT: n
  std::vector<std::string> field_names;  // UDT only, parallel to elements
};

struct ColumnSpec {
  std::string keyspace;
  std::string table;
  std::string name;
  DataType type;
};

namespace rows_flag {
inline constexpr int32_t kGlobalTablesSpec = 0x0001;
inline constexpr int32_t kHasMorePages = 0x0002;
inline constexpr int32_t kNoMetadata = 0x0004;
}  // namespace rows_flag

struct RowsMetadata {
  int32_t flags = 0;
  int32_t column_count = 0;
  std::optional<std::string> paging_state;
  std::vector<ColumnSpec> columns;  // empty when kNoMetadata
};

struct VoidResult {};

struct Rows {
  RowsMetadata metadata;
  int32_t row_count = 0;
  // Row-major: row r, column c is cells[r * column_count + c]; nullopt is NULL.
  std::vector<std::optional<std::string>> cells;

  size_t columns() const { return static_cast<size_t>(metadata.column_count); }
  const std::optional<std::string>& at(size_t row, size_t col) const {
    return cells[row * columns() + col];
  }
};

struct SetKeyspace {
  std::string keyspace;
};

struct PreparedMetadata {
  int32_t flags = 0;
  std::vector<uint16_t> pk_indices;
  std::vector<ColumnSpec> columns;  // one per bind marker
};

struct Prepared {
  std::string id;  // [short bytes], to pass to EXECUTE / BATCH
  PreparedMetadata metadata;
  RowsMetadata result_metadata;
};

struct SchemaChange {
  std::string change_type;  // CREATED, UPDATED, DROPPED
  std::string target;       // KEYSPACE, TABLE, TYPE, FUNCTION, AGGREGATE
  std::string keyspace;
  std::string name;                         // empty for KEYSPACE
  std::vector<std::string> argument_types;  // FUNCTION, AGGREGATE
};

using ResultBody = std::variant<VoidResult, Rows, SetKeyspace, Prepared, SchemaChange>;

struct ErrorBody {
  int32_t code = 0;
  std::string message;
  std::string unprepared_id;  // only for 0x2500 Unprepared
};

struct Ready {};
struct Authenticate {
  std::string authenticator;  // e.g. org.apache.cassandra.auth.PasswordAuthenticator
};
struct Supported {
  std::vector<std::pair<std::string, std::vector<std::string>>> options;
};
struct AuthChallenge {
  std::optional<std::string> token;
};
struct AuthSuccess {
  std::optional<std::string> token;
};
struct Event {
  std::string type;     // TOPOLOGY_CHANGE, STATUS_CHANGE, SCHEMA_CHANGE
  std::string change;   // NEW_NODE, UP, CREATED, ...
  SchemaChange schema;  // SCHEMA_CHANGE only
};

using ResponseBody = std::variant<ErrorBody, Ready, Authenticate, Supported, ResultBody, Event,
                                  AuthChallenge, AuthSuccess>;

struct Response {
  FrameHeader header;
  std::optional<std::string> tracing_id;  // 16 bytes when the tracing flag is set
  std::vector<std::string> warnings;
  ResponseBody body;
};

// Decodes one response body whose header was already decoded.
Result<Response> decode_response(const FrameHeader& header, std::span<const uint8_t> body);

// Decodes the first whole frame of `in`: header, then body. Truncated when `in`
// holds less than one frame; `consumed` (if given) receives the frame's size.
Result<Response> decode_frame(std::span<const uint8_t> in, size_t* consumed = nullptr);

// The message bodies alone (after tracing id / warnings / custom payload).
Result<ErrorBody> decode_error(std::span<const uint8_t> body);
Result<ResultBody> decode_result(std::span<const uint8_t> body);

// An ERROR response as an Error (Errc::Server with its code and message).
Error to_error(const ErrorBody& e);

}  // namespace cql
