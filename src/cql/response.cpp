#include "cql/response.hpp"

#include <string_view>

#include "cql/wire.hpp"

namespace cql {

namespace {

// Nested collection types deeper than this are rejected: real schemas nest a few
// levels, and the bound keeps a hostile frame from exhausting the stack.
constexpr int kMaxTypeDepth = 16;

Error truncated(const char* what) {
  return make_error(Errc::Truncated, what);
}
Error malformed(const char* what) {
  return make_error(Errc::Malformed, what);
}

bool read_type(Reader& r, DataType& t, int depth) {
  if (depth > kMaxTypeDepth) {
    r.fail();
    return false;
  }
  t.id = r.u16();
  if (!r.ok()) return false;
  switch (t.id) {
    case DataType::kCustom:
      t.name = r.string();
      break;
    case DataType::kList:
    case DataType::kSet:
      t.elements.resize(1);
      read_type(r, t.elements[0], depth + 1);
      break;
    case DataType::kMap:
      t.elements.resize(2);
      read_type(r, t.elements[0], depth + 1) && read_type(r, t.elements[1], depth + 1);
      break;
    case DataType::kUdt: {
      std::string ks = r.string();
      std::string udt = r.string();
      t.name = ks + "." + udt;
      const uint16_t n = r.u16();
      if (!r.need(size_t{n} * 4)) return false;  // each field: [string] + [option]
      t.elements.resize(n);
      t.field_names.resize(n);
      for (uint16_t i = 0; i < n && r.ok(); ++i) {
        t.field_names[i] = r.string();
        read_type(r, t.elements[i], depth + 1);
      }
      break;
    }
    case DataType::kTuple: {
      const uint16_t n = r.u16();
      if (!r.need(size_t{n} * 2)) return false;
      t.elements.resize(n);
      for (uint16_t i = 0; i < n && r.ok(); ++i) read_type(r, t.elements[i], depth + 1);
      break;
    }
    default:
      // Native types carry no value. Ids this version does not define (0x000A,
      // 0x0015+ below 0x0020, ...) cannot be skipped safely: their value length
      // is unknown.
      if (t.id > DataType::kTinyint || t.id == 0x000A) r.fail();
      break;
  }
  return r.ok();
}

bool read_column_specs(Reader& r, bool global, size_t count, std::vector<ColumnSpec>& out,
                       const std::string& ks, const std::string& table) {
  // Smallest spec: [string] name (2) + [option] id (2), more without a global spec.
  if (!r.need(count * (global ? 4 : 8))) return false;
  out.resize(count);
  for (auto& c : out) {
    if (global) {
      c.keyspace = ks;
      c.table = table;
    } else {
      c.keyspace = r.string();
      c.table = r.string();
    }
    c.name = r.string();
    if (!read_type(r, c.type, 0)) return false;
  }
  return r.ok();
}

bool read_rows_metadata(Reader& r, RowsMetadata& m) {
  m.flags = r.i32();
  m.column_count = r.i32();
  if (!r.ok()) return false;
  if (m.column_count < 0) {
    r.fail();
    return false;
  }
  if (m.flags & rows_flag::kHasMorePages) {
    m.paging_state = r.bytes();
    if (!r.ok()) return false;
  }
  if (m.flags & rows_flag::kNoMetadata) return true;
  std::string ks, table;
  const bool global = (m.flags & rows_flag::kGlobalTablesSpec) != 0;
  if (global) {
    ks = r.string();
    table = r.string();
  }
  return read_column_specs(r, global, static_cast<size_t>(m.column_count), m.columns, ks, table);
}

Result<ResultBody> decode_rows(Reader& r) {
  Rows rows;
  if (!read_rows_metadata(r, rows.metadata)) return truncated("rows metadata");
  rows.row_count = r.i32();
  if (!r.ok()) return truncated("rows count");
  if (rows.row_count < 0) return malformed("negative rows count");
  // Rows of no column carry no bytes, so nothing would bound their count: a
  // hostile frame could announce 2^31 of them for a caller to loop over.
  if (rows.row_count > 0 && rows.metadata.column_count == 0) {
    return malformed("rows without columns");
  }
  const uint64_t cells =
      static_cast<uint64_t>(rows.row_count) * static_cast<uint64_t>(rows.metadata.column_count);
  // Every cell is at least an [int] length: that bounds what the body can hold.
  if (cells > r.remaining() / 4) return truncated("rows content");
  rows.cells.reserve(static_cast<size_t>(cells));
  for (uint64_t i = 0; i < cells; ++i) {
    rows.cells.push_back(r.bytes());
    if (!r.ok()) return truncated("row value");
  }
  return ResultBody{std::move(rows)};
}

Result<ResultBody> decode_prepared(Reader& r) {
  Prepared p;
  p.id = r.short_bytes();
  p.metadata.flags = r.i32();
  const int32_t columns = r.i32();
  const int32_t pk_count = r.i32();
  if (!r.ok()) return truncated("prepared metadata");
  if (columns < 0 || pk_count < 0) return malformed("negative prepared metadata count");
  if (!r.need(static_cast<size_t>(pk_count) * 2)) return truncated("partition key indexes");
  p.metadata.pk_indices.reserve(static_cast<size_t>(pk_count));
  for (int32_t i = 0; i < pk_count; ++i) p.metadata.pk_indices.push_back(r.u16());
  std::string ks, table;
  const bool global = (p.metadata.flags & rows_flag::kGlobalTablesSpec) != 0;
  if (global) {
    ks = r.string();
    table = r.string();
  }
  if (!read_column_specs(r, global, static_cast<size_t>(columns), p.metadata.columns, ks, table)) {
    return truncated("prepared bind markers");
  }
  if (!read_rows_metadata(r, p.result_metadata)) return truncated("prepared result metadata");
  return ResultBody{std::move(p)};
}

bool read_schema_change(Reader& r, SchemaChange& s) {
  s.change_type = r.string();
  s.target = r.string();
  s.keyspace = r.string();
  if (!r.ok()) return false;
  if (s.target == "TABLE" || s.target == "TYPE") {
    s.name = r.string();
  } else if (s.target == "FUNCTION" || s.target == "AGGREGATE") {
    s.name = r.string();
    s.argument_types = r.string_list();
  }
  return r.ok();
}

}  // namespace

Result<ErrorBody> decode_error(std::span<const uint8_t> body) {
  Reader r(body);
  ErrorBody e;
  e.code = r.i32();
  e.message = r.string();
  if (!r.ok()) return truncated("error body");
  if (e.code == server_error::kUnprepared) {
    e.unprepared_id = r.short_bytes();
    if (!r.ok()) return truncated("unprepared id");
  }
  return e;
}

Result<ResultBody> decode_result(std::span<const uint8_t> body) {
  Reader r(body);
  const int32_t kind = r.i32();
  if (!r.ok()) return truncated("result kind");
  switch (kind) {
    case 0x0001:
      return ResultBody{VoidResult{}};
    case 0x0002:
      return decode_rows(r);
    case 0x0003: {
      SetKeyspace s{r.string()};
      if (!r.ok()) return truncated("set_keyspace");
      return ResultBody{std::move(s)};
    }
    case 0x0004:
      return decode_prepared(r);
    case 0x0005: {
      SchemaChange s;
      if (!read_schema_change(r, s)) return truncated("schema_change");
      return ResultBody{std::move(s)};
    }
    default:
      return malformed("unknown result kind");
  }
}

Result<Response> decode_response(const FrameHeader& header, std::span<const uint8_t> body) {
  if (header.flags & frame_flag::kCompression) {
    return make_error(Errc::UnsupportedFrame, "compressed frame (no compression was negotiated)");
  }
  if (body.size() < header.length) return truncated("frame body");
  body = body.first(header.length);
  Reader r(body);
  Response resp{header, std::nullopt, {}, ResponseBody{Ready{}}};
  if (header.flags & frame_flag::kTracing) {
    resp.tracing_id = std::string(r.raw(16));
    if (!r.ok()) return truncated("tracing id");
  }
  if (header.flags & frame_flag::kWarning) {
    resp.warnings = r.string_list();
    if (!r.ok()) return truncated("warnings");
  }
  if (header.flags & frame_flag::kCustomPayload) {
    r.skip_bytes_map();
    if (!r.ok()) return truncated("custom payload");
  }
  const auto rest = body.subspan(r.position());
  Reader m(rest);
  switch (header.opcode) {
    case Opcode::Error: {
      auto e = decode_error(rest);
      if (!e) return e.error();
      resp.body = std::move(e).value();
      break;
    }
    case Opcode::Ready:
      resp.body = Ready{};
      break;
    case Opcode::Authenticate: {
      Authenticate a{m.string()};
      if (!m.ok()) return truncated("authenticate");
      resp.body = std::move(a);
      break;
    }
    case Opcode::Supported: {
      Supported s{m.string_multimap()};
      if (!m.ok()) return truncated("supported");
      resp.body = std::move(s);
      break;
    }
    case Opcode::Result: {
      auto res = decode_result(rest);
      if (!res) return res.error();
      resp.body = std::move(res).value();
      break;
    }
    case Opcode::Event: {
      Event ev;
      ev.type = m.string();
      if (ev.type == "SCHEMA_CHANGE") {
        read_schema_change(m, ev.schema);
        ev.change = ev.schema.change_type;
      } else {
        ev.change = m.string();  // the [inet] that follows is not needed here
      }
      if (!m.ok()) return truncated("event");
      resp.body = std::move(ev);
      break;
    }
    case Opcode::AuthChallenge: {
      AuthChallenge c{m.bytes()};
      if (!m.ok()) return truncated("auth_challenge");
      resp.body = std::move(c);
      break;
    }
    case Opcode::AuthSuccess: {
      AuthSuccess s{m.bytes()};
      if (!m.ok()) return truncated("auth_success");
      resp.body = std::move(s);
      break;
    }
    default:
      return make_error(Errc::Unexpected,
                        std::string("request opcode in a response: ") + opcode_name(header.opcode));
  }
  return resp;
}

Result<Response> decode_frame(std::span<const uint8_t> in, size_t* consumed) {
  auto h = decode_header(in);
  if (!h) return h.error();
  if (in.size() - kHeaderSize < h->length) return truncated("frame body");
  if (consumed != nullptr) *consumed = kHeaderSize + h->length;
  return decode_response(*h, in.subspan(kHeaderSize, h->length));
}

Error to_error(const ErrorBody& e) {
  return Error{Errc::Server, e.code, e.message};
}

}  // namespace cql
