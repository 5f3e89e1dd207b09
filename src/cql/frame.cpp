#include "cql/frame.hpp"

#include <array>

namespace cql {

const char* opcode_name(Opcode op) {
  switch (op) {
    case Opcode::Error:
      return "ERROR";
    case Opcode::Startup:
      return "STARTUP";
    case Opcode::Ready:
      return "READY";
    case Opcode::Authenticate:
      return "AUTHENTICATE";
    case Opcode::Options:
      return "OPTIONS";
    case Opcode::Supported:
      return "SUPPORTED";
    case Opcode::Query:
      return "QUERY";
    case Opcode::Result:
      return "RESULT";
    case Opcode::Prepare:
      return "PREPARE";
    case Opcode::Execute:
      return "EXECUTE";
    case Opcode::Register:
      return "REGISTER";
    case Opcode::Event:
      return "EVENT";
    case Opcode::Batch:
      return "BATCH";
    case Opcode::AuthChallenge:
      return "AUTH_CHALLENGE";
    case Opcode::AuthResponse:
      return "AUTH_RESPONSE";
    case Opcode::AuthSuccess:
      return "AUTH_SUCCESS";
  }
  return "?";
}

namespace {

bool known_opcode(uint8_t op) {
  return op <= 0x10 && op != 0x04;
}

// Appends a header with a zero length; finish_frame() fills the length in.
size_t begin_frame(std::vector<uint8_t>& out, int16_t stream, Opcode op) {
  const size_t start = out.size();
  out.resize(start + kHeaderSize);
  FrameHeader h;
  h.stream = stream;
  h.opcode = op;
  encode_header(h, std::span<uint8_t, kHeaderSize>(out.data() + start, kHeaderSize));
  return start;
}

// Patches the body length in, or rolls the frame back out of `out` on failure so
// that a failed encode never leaves half a frame in a pipelined buffer.
Status finish_frame(Writer& w, size_t start) {
  auto& out = w.buffer();
  const size_t body = out.size() - start - kHeaderSize;
  if (!w.ok() || body > kMaxBodySize) {
    out.resize(start);
    return make_error(Errc::TooLarge, "request does not fit the protocol's length fields");
  }
  w.patch_i32(start + 5, static_cast<int32_t>(body));
  return {};
}

Status bad_stream() {
  return make_error(Errc::Malformed, "request stream id must be 0..32767");
}

void write_query_params(Writer& w, const QueryParams& p) {
  uint8_t flags = 0;
  if (!p.values.empty()) flags |= 0x01;
  if (p.skip_metadata) flags |= 0x02;
  if (p.page_size) flags |= 0x04;
  if (p.paging_state) flags |= 0x08;
  if (p.serial_consistency) flags |= 0x10;
  if (p.default_timestamp_us) flags |= 0x20;
  w.consistency(p.consistency);
  w.u8(flags);
  if (!p.values.empty()) {
    if (p.values.size() > 0xFFFF) w.fail();
    w.u16(static_cast<uint16_t>(p.values.size()));
    for (const auto& v : p.values) w.value(v);
  }
  if (p.page_size) w.i32(*p.page_size);
  if (p.paging_state) w.bytes(*p.paging_state);
  if (p.serial_consistency) w.consistency(*p.serial_consistency);
  if (p.default_timestamp_us) w.i64(*p.default_timestamp_us);
}

}  // namespace

void encode_header(const FrameHeader& h, std::span<uint8_t, kHeaderSize> out) {
  const auto stream = static_cast<uint16_t>(h.stream);
  out[0] = h.version;
  out[1] = h.flags;
  out[2] = static_cast<uint8_t>(stream >> 8);
  out[3] = static_cast<uint8_t>(stream);
  out[4] = static_cast<uint8_t>(h.opcode);
  out[5] = static_cast<uint8_t>(h.length >> 24);
  out[6] = static_cast<uint8_t>(h.length >> 16);
  out[7] = static_cast<uint8_t>(h.length >> 8);
  out[8] = static_cast<uint8_t>(h.length);
}

Result<FrameHeader> decode_header(std::span<const uint8_t> in, uint8_t expected_version) {
  if (in.size() < kHeaderSize) return make_error(Errc::Truncated, "frame header");
  FrameHeader h;
  h.version = in[0];
  if (h.version != expected_version) {
    // A server that does not speak v4 answers STARTUP with its own version in
    // the header (and a protocol error body): say which one it was.
    return make_error(Errc::BadVersion, "frame version byte " + std::to_string(in[0]));
  }
  h.flags = in[1];
  h.stream = static_cast<int16_t>(static_cast<uint16_t>((in[2] << 8) | in[3]));
  if (!known_opcode(in[4])) {
    return make_error(Errc::Malformed, "unknown opcode " + std::to_string(in[4]));
  }
  h.opcode = static_cast<Opcode>(in[4]);
  h.length =
      (uint32_t{in[5]} << 24) | (uint32_t{in[6]} << 16) | (uint32_t{in[7]} << 8) | uint32_t{in[8]};
  if (h.length > kMaxBodySize) {
    return make_error(Errc::TooLarge, "frame body of " + std::to_string(h.length) + " bytes");
  }
  return h;
}

Status encode_startup(std::vector<uint8_t>& out, int16_t stream) {
  const std::array<std::pair<std::string_view, std::string_view>, 1> options{
      {{"CQL_VERSION", "3.0.0"}}};
  return encode_startup(out, stream, options);
}

Status encode_startup(std::vector<uint8_t>& out, int16_t stream,
                      std::span<const std::pair<std::string_view, std::string_view>> options) {
  if (stream < 0) return bad_stream();
  const size_t start = begin_frame(out, stream, Opcode::Startup);
  Writer w(out);
  w.string_map(options);
  return finish_frame(w, start);
}

Status encode_options(std::vector<uint8_t>& out, int16_t stream) {
  if (stream < 0) return bad_stream();
  const size_t start = begin_frame(out, stream, Opcode::Options);
  Writer w(out);
  return finish_frame(w, start);
}

Status encode_query(std::vector<uint8_t>& out, int16_t stream, std::string_view query,
                    const QueryParams& params) {
  if (stream < 0) return bad_stream();
  const size_t start = begin_frame(out, stream, Opcode::Query);
  Writer w(out);
  w.long_string(query);
  write_query_params(w, params);
  return finish_frame(w, start);
}

Status encode_prepare(std::vector<uint8_t>& out, int16_t stream, std::string_view query) {
  if (stream < 0) return bad_stream();
  const size_t start = begin_frame(out, stream, Opcode::Prepare);
  Writer w(out);
  w.long_string(query);
  return finish_frame(w, start);
}

Status encode_execute(std::vector<uint8_t>& out, int16_t stream, std::string_view prepared_id,
                      const QueryParams& params) {
  if (stream < 0) return bad_stream();
  const size_t start = begin_frame(out, stream, Opcode::Execute);
  Writer w(out);
  w.short_bytes(prepared_id);
  write_query_params(w, params);
  return finish_frame(w, start);
}

Status encode_batch(std::vector<uint8_t>& out, int16_t stream,
                    std::span<const BatchStatement> statements, const BatchParams& params) {
  if (stream < 0) return bad_stream();
  const size_t start = begin_frame(out, stream, Opcode::Batch);
  Writer w(out);
  w.u8(static_cast<uint8_t>(params.type));
  if (statements.size() > 0xFFFF) w.fail();
  w.u16(static_cast<uint16_t>(statements.size()));
  for (const auto& s : statements) {
    w.u8(s.prepared ? 1 : 0);
    if (s.prepared) {
      w.short_bytes(s.id_or_query);
    } else {
      w.long_string(s.id_or_query);
    }
    if (s.values.size() > 0xFFFF) w.fail();
    w.u16(static_cast<uint16_t>(s.values.size()));
    for (const auto& v : s.values) w.value(v);
  }
  w.consistency(params.consistency);
  uint8_t flags = 0;
  if (params.serial_consistency) flags |= 0x10;
  if (params.default_timestamp_us) flags |= 0x20;
  w.u8(flags);
  if (params.serial_consistency) w.consistency(*params.serial_consistency);
  if (params.default_timestamp_us) w.i64(*params.default_timestamp_us);
  return finish_frame(w, start);
}

Status encode_auth_response(std::vector<uint8_t>& out, int16_t stream, std::string_view token) {
  if (stream < 0) return bad_stream();
  const size_t start = begin_frame(out, stream, Opcode::AuthResponse);
  Writer w(out);
  w.bytes(token);
  return finish_frame(w, start);
}

std::string plain_auth_token(std::string_view user, std::string_view password) {
  std::string token;
  token.reserve(user.size() + password.size() + 2);
  token.push_back('\0');
  token.append(user);
  token.push_back('\0');
  token.append(password);
  return token;
}

}  // namespace cql
