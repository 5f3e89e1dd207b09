// libFuzzer target for the CQL response decoders (src/cql/response.cpp): what a
// server, or anything posing as one, can send to the store thread.
//
// The input is used twice:
//  1. as a byte stream of frames, decoded one after another exactly as
//     Connection::read_available does (header first, then the body);
//  2. with its first byte choosing an opcode and prefix flags for a synthetic
//     header, so that the rest reaches every body decoder without the fuzzer
//     having to guess a valid header and length first.
// Each decoded value is checked for the invariants callers rely on (cell count
// matches the metadata, ids and strings within the frame), and every decode
// must return, never crash, hang or allocate far beyond the input's size.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <variant>

#include "cql/frame.hpp"
#include "cql/response.hpp"

namespace {

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

void check_rows_metadata(const cql::RowsMetadata& m) {
  FUZZ_CHECK(m.column_count >= 0);
  if (!(m.flags & cql::rows_flag::kNoMetadata)) {
    FUZZ_CHECK(m.columns.size() == static_cast<size_t>(m.column_count));
  }
}

void check_result(const cql::ResultBody& r, size_t body_size) {
  if (const auto* rows = std::get_if<cql::Rows>(&r)) {
    check_rows_metadata(rows->metadata);
    FUZZ_CHECK(rows->row_count >= 0);
    FUZZ_CHECK(rows->cells.size() == static_cast<size_t>(rows->row_count) * rows->columns());
    FUZZ_CHECK(rows->row_count == 0 || rows->columns() > 0);
    size_t bytes = 0;
    for (const auto& cell : rows->cells) bytes += cell ? cell->size() : 0;
    FUZZ_CHECK(bytes <= body_size);
    if (rows->row_count > 0) {
      const auto& last = rows->at(static_cast<size_t>(rows->row_count) - 1, rows->columns() - 1);
      (void)last;
    }
  } else if (const auto* p = std::get_if<cql::Prepared>(&r)) {
    FUZZ_CHECK(p->id.size() <= body_size);
    check_rows_metadata(p->result_metadata);
  }
}

void check_response(const cql::Response& resp, size_t body_size) {
  if (resp.tracing_id) FUZZ_CHECK(resp.tracing_id->size() == 16);
  if (const auto* res = std::get_if<cql::ResultBody>(&resp.body)) check_result(*res, body_size);
  if (const auto* err = std::get_if<cql::ErrorBody>(&resp.body)) {
    FUZZ_CHECK(err->message.size() <= body_size);
    (void)cql::to_error(*err).to_string();
  }
}

constexpr cql::Opcode kResponseOpcodes[] = {
    cql::Opcode::Error,  cql::Opcode::Ready, cql::Opcode::Authenticate,  cql::Opcode::Supported,
    cql::Opcode::Result, cql::Opcode::Event, cql::Opcode::AuthChallenge, cql::Opcode::AuthSuccess,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);

  // 1. A stream of whole frames.
  size_t pos = 0;
  while (pos < in.size()) {
    size_t used = 0;
    auto r = cql::decode_frame(in.subspan(pos), &used);
    if (!r) {
      FUZZ_CHECK(r.error().code != cql::Errc::Server);
      break;
    }
    FUZZ_CHECK(used >= cql::kHeaderSize && used <= in.size() - pos);
    check_response(*r, used - cql::kHeaderSize);
    pos += used;
  }

  // 2. A synthetic header over the rest of the input.
  if (size >= 1) {
    cql::FrameHeader h;
    h.version = cql::kResponseVersion;
    h.opcode = kResponseOpcodes[data[0] & 0x07];
    h.flags = static_cast<uint8_t>((data[0] >> 3) & 0x0E);  // tracing, payload, warning
    h.stream = 1;
    h.length = static_cast<uint32_t>(size - 1);
    const auto body = in.subspan(1);
    auto r = cql::decode_response(h, body);
    if (r) check_response(*r, body.size());

    // The body decoders alone, as tests and callers use them.
    if (auto res = cql::decode_result(body)) check_result(*res, body.size());
    if (auto err = cql::decode_error(body)) FUZZ_CHECK(err->message.size() <= body.size());
  }
  return 0;
}
