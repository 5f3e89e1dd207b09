// src/cql frames against byte sequences written by hand from
// apache/cassandra doc/native_protocol_v4.spec (sections cited per test).
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "cql/backoff.hpp"
#include "cql/frame.hpp"
#include "cql/response.hpp"
#include "cql/wire.hpp"

namespace {

using Bytes = std::vector<uint8_t>;

// Builds a byte vector from numbers and string pieces: B({0x84, 0x00}, "abc").
struct B {
  Bytes v;
  B() = default;
  B& operator()(std::initializer_list<int> bytes) {
    for (int b : bytes) v.push_back(static_cast<uint8_t>(b));
    return *this;
  }
  B& operator()(const std::string& s) {
    v.insert(v.end(), s.begin(), s.end());
    return *this;
  }
  // [string]: a [short] length, then the bytes.
  B& str(const std::string& s) {
    (*this)({static_cast<int>(s.size() >> 8), static_cast<int>(s.size() & 0xFF)});
    return (*this)(s);
  }
  // [int]
  B& i32(int32_t x) {
    const auto u = static_cast<uint32_t>(x);
    return (*this)({static_cast<int>(u >> 24), static_cast<int>((u >> 16) & 0xFF),
                    static_cast<int>((u >> 8) & 0xFF), static_cast<int>(u & 0xFF)});
  }
};

// A response frame: 0x84, flags, stream, opcode, length, body.
Bytes response(uint8_t opcode, const Bytes& body, int16_t stream = 0, uint8_t flags = 0) {
  B b;
  const auto s = static_cast<uint16_t>(stream);
  b({0x84, flags, s >> 8, s & 0xFF, opcode});
  b.i32(static_cast<int32_t>(body.size()));
  b.v.insert(b.v.end(), body.begin(), body.end());
  return b.v;
}

// ---- section 2: the header ----------------------------------------------------------------

TEST(CqlFrame, HeaderRoundTrip) {
  cql::FrameHeader h{0x84, 0x08, -1, cql::Opcode::Event, 0x10203040};
  uint8_t out[9];
  cql::encode_header(h, std::span<uint8_t, 9>(out));
  EXPECT_EQ(Bytes(out, out + 9), (Bytes{0x84, 0x08, 0xFF, 0xFF, 0x0C, 0x10, 0x20, 0x30, 0x40}));
  // 0x10203040 > 256 MiB: encoding is allowed (it is a number), decoding rejects it.
  auto d = cql::decode_header(Bytes(out, out + 9));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, cql::Errc::TooLarge);

  out[5] = 0x00;  // now 0x00203040 bytes
  d = cql::decode_header(Bytes(out, out + 9));
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->version, 0x84);
  EXPECT_EQ(d->flags, 0x08);
  EXPECT_EQ(d->stream, -1);
  EXPECT_EQ(d->opcode, cql::Opcode::Event);
  EXPECT_EQ(d->length, 0x00203040u);
}

TEST(CqlFrame, HeaderRejectsBadInput) {
  const Bytes ready{0x84, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00};
  for (size_t n = 0; n < ready.size(); ++n) {
    auto d = cql::decode_header(Bytes(ready.begin(), ready.begin() + static_cast<long>(n)));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error().code, cql::Errc::Truncated) << n;
  }
  Bytes v3 = ready;
  v3[0] = 0x83;  // a v3 server's answer
  EXPECT_EQ(cql::decode_header(v3).error().code, cql::Errc::BadVersion);
  Bytes request = ready;
  request[0] = 0x04;  // a request where a response belongs
  EXPECT_EQ(cql::decode_header(request).error().code, cql::Errc::BadVersion);
  EXPECT_TRUE(cql::decode_header(request, cql::kRequestVersion).ok());
  Bytes op = ready;
  op[4] = 0x04;  // "there is no 0x04 message in this version"
  EXPECT_EQ(cql::decode_header(op).error().code, cql::Errc::Malformed);
  op[4] = 0x11;
  EXPECT_EQ(cql::decode_header(op).error().code, cql::Errc::Malformed);
  Bytes big = ready;
  big[5] = 0x10;
  big[8] = 0x01;  // 256 MiB + 1
  EXPECT_EQ(cql::decode_header(big).error().code, cql::Errc::TooLarge);
  big[8] = 0x00;  // exactly 256 MiB is allowed
  EXPECT_TRUE(cql::decode_header(big).ok());
}

// ---- section 4.1: requests ----------------------------------------------------------------

TEST(CqlFrame, StartupByteForByte) {
  Bytes out;
  ASSERT_TRUE(cql::encode_startup(out, 0).ok());
  // 4.1.1: a [string map] {"CQL_VERSION": "3.0.0"}; body 2 + (2+11) + (2+5) = 22 bytes.
  const Bytes want = B()({0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x16})({0x00, 0x01})
                         .str("CQL_VERSION")
                         .str("3.0.0")
                         .v;
  EXPECT_EQ(out, want);
}

TEST(CqlFrame, OptionsIsAnEmptyBody) {
  Bytes out;
  ASSERT_TRUE(cql::encode_options(out, 5).ok());
  EXPECT_EQ(out, (Bytes{0x04, 0x00, 0x00, 0x05, 0x05, 0x00, 0x00, 0x00, 0x00}));
}

TEST(CqlFrame, QueryByteForByte) {
  Bytes out;
  cql::QueryParams p;
  p.consistency = cql::Consistency::One;
  ASSERT_TRUE(cql::encode_query(out, 1, "USE ks", p).ok());
  // 4.1.4: [long string] query, [consistency] 0x0001, flags byte 0. 4 + 6 + 2 + 1 = 13.
  const Bytes want = B()({0x04, 0x00, 0x00, 0x01, 0x07, 0x00, 0x00, 0x00, 0x0D})
                         .i32(6)("USE ks")({0x00, 0x01, 0x00})
                         .v;
  EXPECT_EQ(out, want);
}

TEST(CqlFrame, QueryWithEveryParameter) {
  Bytes out;
  const cql::Value values[] = {cql::Value::of("a"), cql::Value::null(), cql::Value::unset()};
  cql::QueryParams p;
  p.consistency = cql::Consistency::Quorum;
  p.values = values;
  p.skip_metadata = true;
  p.page_size = 5000;
  p.paging_state = std::string_view("\x01\x02", 2);
  p.serial_consistency = cql::Consistency::LocalSerial;
  p.default_timestamp_us = 0x0102030405060708;
  ASSERT_TRUE(cql::encode_query(out, 0x1234, "Q", p).ok());
  const Bytes body = B().i32(1)("Q")({0x00, 0x04})  // QUORUM
                     ({0x3F})                       // values|skip|page|paging|serial|timestamp
                     ({0x00, 0x03})                 // three [value]s
                         .i32(1)("a")
                         .i32(-1)  // null
                         .i32(-2)  // not set
                         .i32(5000)
                         .i32(2)({0x01, 0x02})   // paging state [bytes]
                     ({0x00, 0x09})              // LOCAL_SERIAL
                     ({1, 2, 3, 4, 5, 6, 7, 8})  // [long] timestamp
                         .v;
  Bytes want = B()({0x04, 0x00, 0x12, 0x34, 0x07}).i32(static_cast<int32_t>(body.size())).v;
  want.insert(want.end(), body.begin(), body.end());
  EXPECT_EQ(out, want);
}

TEST(CqlFrame, PrepareExecuteBatchByteForByte) {
  Bytes out;
  ASSERT_TRUE(cql::encode_prepare(out, 2, "SELECT k FROM t").ok());
  EXPECT_EQ(out, B()({0x04, 0x00, 0x00, 0x02, 0x09}).i32(19).i32(15)("SELECT k FROM t").v);

  // 4.1.6: <id>[short bytes] then the QUERY parameters.
  out.clear();
  const std::string id("\xDE\xAD\xBE\xEF", 4);
  // Value is a view: the encoded bigint must outlive the encode, so it is named.
  const std::string ts = cql::encode_bigint(1);
  const cql::Value vals[] = {cql::Value::of("k1"), cql::Value::of(ts)};
  cql::QueryParams p;  // LOCAL_ONE by default
  p.values = vals;
  ASSERT_TRUE(cql::encode_execute(out, 3, id, p).ok());
  const Bytes exec_body =
      B()({0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF})({0x00, 0x0A})({0x01})({0x00, 0x02})
          .i32(2)("k1")
          .i32(8)({0, 0, 0, 0, 0, 0, 0, 1})
          .v;
  Bytes want = B()({0x04, 0x00, 0x00, 0x03, 0x0A}).i32(static_cast<int32_t>(exec_body.size())).v;
  want.insert(want.end(), exec_body.begin(), exec_body.end());
  EXPECT_EQ(out, want);

  // 4.1.7: <type><n><query_1>...<query_n><consistency><flags>
  out.clear();
  const cql::Value one[] = {cql::Value::of("x")};
  const cql::BatchStatement stmts[] = {{true, id, one}, {false, "DELETE FROM t", {}}};
  cql::BatchParams bp;
  bp.consistency = cql::Consistency::One;
  ASSERT_TRUE(cql::encode_batch(out, 4, stmts, bp).ok());
  const Bytes batch_body = B()({0x01})({0x00, 0x02})                     // unlogged, 2 statements
                           ({0x01, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF})  // kind 1 + id
                           ({0x00, 0x01})
                               .i32(1)("x")({0x00})
                               .i32(13)("DELETE FROM t")({0x00, 0x00})  // kind 0, no values
                           ({0x00, 0x01})({0x00})                       // ONE, flags 0
                               .v;
  want = B()({0x04, 0x00, 0x00, 0x04, 0x0D}).i32(static_cast<int32_t>(batch_body.size())).v;
  want.insert(want.end(), batch_body.begin(), batch_body.end());
  EXPECT_EQ(out, want);
}

TEST(CqlFrame, AuthResponseCarriesPlainToken) {
  Bytes out;
  ASSERT_TRUE(cql::encode_auth_response(out, 0, cql::plain_auth_token("cassandra", "secret")).ok());
  EXPECT_EQ(out,
            B()({0x04, 0x00, 0x00, 0x00, 0x0F}).i32(21).i32(17)({0})("cassandra")({0})("secret").v);
}

TEST(CqlFrame, PipelinedFramesAppend) {
  Bytes out;
  ASSERT_TRUE(cql::encode_options(out, 1).ok());
  ASSERT_TRUE(cql::encode_options(out, 2).ok());
  ASSERT_EQ(out.size(), 18u);
  EXPECT_EQ(out[3], 1);
  EXPECT_EQ(out[12], 2);
}

TEST(CqlFrame, EncodeFailuresLeaveTheBufferUntouched) {
  Bytes out;
  ASSERT_TRUE(cql::encode_options(out, 1).ok());
  const Bytes before = out;
  const std::string huge(70000, 'x');  // a [string] holds at most 65535 bytes
  const std::pair<std::string_view, std::string_view> opts[] = {{"CQL_VERSION", huge}};
  auto st = cql::encode_startup(out, 2, opts);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, cql::Errc::TooLarge);
  EXPECT_EQ(out, before);
  EXPECT_FALSE(cql::encode_execute(out, 3, huge, {}).ok());
  EXPECT_EQ(out, before);
  EXPECT_EQ(cql::encode_query(out, -1, "x", {}).error().code, cql::Errc::Malformed);
  EXPECT_EQ(out, before);
}

// ---- section 4.2: responses ---------------------------------------------------------------

TEST(CqlFrame, Ready) {
  const Bytes f{0x84, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00};
  size_t used = 0;
  auto r = cql::decode_frame(f, &used);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(used, 9u);
  EXPECT_TRUE(std::holds_alternative<cql::Ready>(r->body));
}

TEST(CqlFrame, ErrorInvalid0x2200) {
  // 4.2.1: [int] code, [string] message. 4 + 2 + 13 = 19 bytes.
  const Bytes f =
      B()({0x84, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x13})({0x00, 0x00, 0x22, 0x00})
          .str("no such table")
          .v;
  auto r = cql::decode_frame(f);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->header.stream, 7);
  const auto* e = std::get_if<cql::ErrorBody>(&r->body);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, 0x2200);
  EXPECT_EQ(e->message, "no such table");
  const cql::Error err = cql::to_error(*e);
  EXPECT_EQ(err.code, cql::Errc::Server);
  EXPECT_EQ(err.server_code, cql::server_error::kInvalid);
  EXPECT_EQ(err.to_string(), "server error 0x2200 (Invalid): no such table");
  EXPECT_FALSE(err.retryable());
}

TEST(CqlFrame, ErrorUnpreparedCarriesTheId) {
  const Bytes body = B().i32(0x2500).str("unknown id")({0x00, 0x02, 0xAB, 0xCD}).v;
  auto e = cql::decode_error(body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->unprepared_id, std::string("\xAB\xCD"));
  EXPECT_TRUE(cql::to_error(*e).retryable());
  EXPECT_EQ(cql::decode_error(Bytes(body.begin(), body.end() - 1)).error().code,
            cql::Errc::Truncated);
}

Bytes rows_body() {
  // 4.2.5.2: kind 2; flags Global_tables_spec; 2 columns; "ks"."t"; a varchar, b varchar;
  // 2 rows: ("x", "yz") and ("", null).
  return B()
      .i32(2)
      .i32(1)
      .i32(2)
      .str("ks")
      .str("t")
      .str("a")({0x00, 0x0D})
      .str("b")({0x00, 0x0D})
      .i32(2)
      .i32(1)("x")
      .i32(2)("yz")
      .i32(0)
      .i32(-1)
      .v;
}

TEST(CqlFrame, RowsWithTwoTextColumns) {
  auto r = cql::decode_frame(response(0x08, rows_body(), 3));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto* res = std::get_if<cql::ResultBody>(&r->body);
  ASSERT_NE(res, nullptr);
  const auto* rows = std::get_if<cql::Rows>(res);
  ASSERT_NE(rows, nullptr);
  ASSERT_EQ(rows->metadata.column_count, 2);
  ASSERT_EQ(rows->metadata.columns.size(), 2u);
  EXPECT_EQ(rows->metadata.columns[0].keyspace, "ks");
  EXPECT_EQ(rows->metadata.columns[0].table, "t");
  EXPECT_EQ(rows->metadata.columns[0].name, "a");
  EXPECT_EQ(rows->metadata.columns[1].name, "b");
  EXPECT_EQ(rows->metadata.columns[1].type.id, cql::DataType::kVarchar);
  ASSERT_EQ(rows->row_count, 2);
  EXPECT_EQ(rows->at(0, 0), std::optional<std::string>("x"));
  EXPECT_EQ(rows->at(0, 1), std::optional<std::string>("yz"));
  EXPECT_EQ(rows->at(1, 0), std::optional<std::string>(""));
  EXPECT_EQ(rows->at(1, 1), std::nullopt);
}

TEST(CqlFrame, RowsWithoutGlobalSpecAndWithPagingState) {
  const Bytes body = B().i32(2)
                         .i32(0x0002)  // Has_more_pages
                         .i32(1)
                         .i32(3)({1, 2, 3})  // paging state
                         .str("ks")
                         .str("t")
                         .str("m")({0x00, 0x21, 0x00, 0x0D, 0x00, 0x20, 0x00, 0x03})  // map<text,
                                                                                      // list<blob>>
                         .i32(0)
                         .v;
  auto r = cql::decode_result(body);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& rows = std::get<cql::Rows>(*r);
  EXPECT_EQ(rows.metadata.paging_state, std::optional<std::string>("\x01\x02\x03"));
  ASSERT_EQ(rows.metadata.columns.size(), 1u);
  const auto& t = rows.metadata.columns[0].type;
  EXPECT_EQ(t.id, cql::DataType::kMap);
  ASSERT_EQ(t.elements.size(), 2u);
  EXPECT_EQ(t.elements[0].id, cql::DataType::kVarchar);
  EXPECT_EQ(t.elements[1].id, cql::DataType::kList);
  EXPECT_EQ(t.elements[1].elements.at(0).id, cql::DataType::kBlob);
  EXPECT_EQ(rows.row_count, 0);
}

TEST(CqlFrame, RowsNoMetadata) {
  const Bytes body = B().i32(2).i32(0x0004).i32(1).i32(1).i32(2)("hi").v;
  auto r = cql::decode_result(body);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& rows = std::get<cql::Rows>(*r);
  EXPECT_TRUE(rows.metadata.columns.empty());
  EXPECT_EQ(rows.at(0, 0), std::optional<std::string>("hi"));
}

Bytes prepared_body() {
  // 4.2.5.4: id DEADBEEF; metadata: global spec, 2 bind markers, 1 pk index (0);
  // "ks"."t"; k varchar, v blob; result metadata: No_metadata, 0 columns.
  return B()
      .i32(4)({0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF})
      .i32(1)
      .i32(2)
      .i32(1)({0x00, 0x00})
      .str("ks")
      .str("t")
      .str("k")({0x00, 0x0D})
      .str("v")({0x00, 0x03})
      .i32(4)
      .i32(0)
      .v;
}

TEST(CqlFrame, PreparedResult) {
  auto r = cql::decode_frame(response(0x08, prepared_body(), 9));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& p = std::get<cql::Prepared>(std::get<cql::ResultBody>(r->body));
  EXPECT_EQ(p.id, std::string("\xDE\xAD\xBE\xEF"));
  EXPECT_EQ(p.metadata.pk_indices, std::vector<uint16_t>{0});
  ASSERT_EQ(p.metadata.columns.size(), 2u);
  EXPECT_EQ(p.metadata.columns[0].name, "k");
  EXPECT_EQ(p.metadata.columns[0].type.id, cql::DataType::kVarchar);
  EXPECT_EQ(p.metadata.columns[1].name, "v");
  EXPECT_EQ(p.metadata.columns[1].type.id, cql::DataType::kBlob);
  EXPECT_EQ(p.result_metadata.flags, cql::rows_flag::kNoMetadata);
  EXPECT_EQ(p.result_metadata.column_count, 0);
}

TEST(CqlFrame, VoidSetKeyspaceSchemaChange) {
  auto v = cql::decode_result(B().i32(1).v);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(std::holds_alternative<cql::VoidResult>(*v));

  auto k = cql::decode_result(B().i32(3).str("retain_kv").v);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(std::get<cql::SetKeyspace>(*k).keyspace, "retain_kv");

  auto s = cql::decode_result(
      B().i32(5).str("CREATED").str("TABLE").str("retain_kv").str("device_data").v);
  ASSERT_TRUE(s.ok());
  const auto& sc = std::get<cql::SchemaChange>(*s);
  EXPECT_EQ(sc.change_type, "CREATED");
  EXPECT_EQ(sc.target, "TABLE");
  EXPECT_EQ(sc.keyspace, "retain_kv");
  EXPECT_EQ(sc.name, "device_data");

  auto ks = cql::decode_result(B().i32(5).str("CREATED").str("KEYSPACE").str("retain_kv").v);
  ASSERT_TRUE(ks.ok());
  EXPECT_EQ(std::get<cql::SchemaChange>(*ks).name, "");

  auto fn = cql::decode_result(
      B().i32(5).str("DROPPED").str("FUNCTION").str("ks").str("f")({0x00, 0x01}).str("int").v);
  ASSERT_TRUE(fn.ok());
  EXPECT_EQ(std::get<cql::SchemaChange>(*fn).argument_types, std::vector<std::string>{"int"});
}

TEST(CqlFrame, AuthenticateSupportedEventAuth) {
  auto a = cql::decode_frame(
      response(0x03, B().str("org.apache.cassandra.auth.PasswordAuthenticator").v));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(std::get<cql::Authenticate>(a->body).authenticator,
            "org.apache.cassandra.auth.PasswordAuthenticator");

  auto s = cql::decode_frame(response(0x06, B()({0x00, 0x02})
                                                .str("CQL_VERSION")({0x00, 0x01})
                                                .str("3.4.7")
                                                .str("COMPRESSION")({0x00, 0x02})
                                                .str("snappy")
                                                .str("lz4")
                                                .v));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  const auto& opts = std::get<cql::Supported>(s->body).options;
  ASSERT_EQ(opts.size(), 2u);
  EXPECT_EQ(opts[0].first, "CQL_VERSION");
  EXPECT_EQ(opts[1].second, (std::vector<std::string>{"snappy", "lz4"}));

  auto e = cql::decode_frame(
      response(0x0C, B().str("STATUS_CHANGE").str("UP")({4, 127, 0, 0, 1}).i32(9042).v, -1));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->header.stream, -1);
  EXPECT_EQ(std::get<cql::Event>(e->body).change, "UP");

  auto ok = cql::decode_frame(response(0x10, B().i32(-1).v));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(std::get<cql::AuthSuccess>(ok->body).token, std::nullopt);
  auto ch = cql::decode_frame(response(0x0E, B().i32(2)("ab").v));
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(std::get<cql::AuthChallenge>(ch->body).token, std::optional<std::string>("ab"));
}

TEST(CqlFrame, TracingWarningsAndCustomPayloadPrefixes) {
  // 2.2: tracing id (16 bytes), then warnings ([string list]), then a [bytes map].
  Bytes body(16, 0x11);
  const Bytes rest =
      B()({0x00, 0x01}).str("Batch too large")({0x00, 0x01}).str("k").i32(1)("v").i32(1).v;
  body.insert(body.end(), rest.begin(), rest.end());
  auto r = cql::decode_frame(response(0x08, body, 0, 0x02 | 0x04 | 0x08));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->tracing_id, std::optional<std::string>(std::string(16, '\x11')));
  EXPECT_EQ(r->warnings, std::vector<std::string>{"Batch too large"});
  EXPECT_TRUE(std::holds_alternative<cql::VoidResult>(std::get<cql::ResultBody>(r->body)));
}

TEST(CqlFrame, ExtraTrailingBytesAreIgnored) {
  // "clients should support extra informations ... at the end of the frame body".
  auto r = cql::decode_frame(response(0x08, B().i32(1)({0xAA, 0xBB}).v));
  ASSERT_TRUE(r.ok());
}

// ---- truncated and corrupt input ----------------------------------------------------------

TEST(CqlFrame, EveryTruncationIsRejected) {
  const std::vector<Bytes> frames = {
      response(0x08, rows_body()),
      response(0x08, prepared_body()),
      response(0x00, B().i32(0x2200).str("bad").v),
      response(0x08, B().i32(5).str("CREATED").str("TABLE").str("ks").str("t").v),
      response(0x06, B()({0x00, 0x01}).str("K")({0x00, 0x01}).str("V").v),
  };
  for (const auto& f : frames) {
    ASSERT_TRUE(cql::decode_frame(f).ok());
    // The frame cut short anywhere: not enough bytes for what the header says.
    for (size_t n = 0; n < f.size(); ++n) {
      auto r = cql::decode_frame(Bytes(f.begin(), f.begin() + static_cast<long>(n)));
      ASSERT_FALSE(r.ok()) << n;
      EXPECT_EQ(r.error().code, cql::Errc::Truncated) << n;
    }
    // The body cut short but the header's length fixed to match: the body's own
    // structure must notice.
    for (size_t n = 9; n < f.size(); ++n) {
      Bytes cut(f.begin(), f.begin() + static_cast<long>(n));
      const auto len = static_cast<uint32_t>(n - 9);
      cut[5] = static_cast<uint8_t>(len >> 24);
      cut[6] = static_cast<uint8_t>(len >> 16);
      cut[7] = static_cast<uint8_t>(len >> 8);
      cut[8] = static_cast<uint8_t>(len);
      EXPECT_FALSE(cql::decode_frame(cut).ok()) << n;
    }
  }
}

TEST(CqlFrame, CorruptCountsAreRejectedWithoutAllocating) {
  // 2^31-1 rows of 2 columns in a 30-byte body: Truncated, not a huge reserve().
  auto huge = cql::decode_result(B().i32(2).i32(4).i32(2).i32(0x7FFFFFFF).i32(0).v);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().code, cql::Errc::Truncated);
  // A million columns announced, none present.
  EXPECT_FALSE(cql::decode_result(B().i32(2).i32(1).i32(1000000).str("k").str("t").v).ok());
  // Negative counts.
  EXPECT_FALSE(cql::decode_result(B().i32(2).i32(4).i32(-1).i32(0).v).ok());
  EXPECT_EQ(cql::decode_result(B().i32(2).i32(4).i32(0).i32(-5).v).error().code,
            cql::Errc::Malformed);
  EXPECT_FALSE(
      cql::decode_result(B().i32(4)({0x00, 0x00}).i32(0).i32(-1).i32(0).i32(4).i32(0).v).ok());
  EXPECT_FALSE(cql::decode_result(B().i32(4)({0x00, 0x00}).i32(0).i32(0).i32(70000).v).ok());
  // Rows without columns: nothing would bound how many a frame can announce.
  EXPECT_EQ(cql::decode_result(B().i32(2).i32(4).i32(0).i32(538976288).v).error().code,
            cql::Errc::Malformed);
  EXPECT_TRUE(cql::decode_result(B().i32(2).i32(4).i32(0).i32(0).v).ok());
  // Unknown result kind.
  EXPECT_EQ(cql::decode_result(B().i32(9).v).error().code, cql::Errc::Malformed);
  // Unknown column type id (its value length would be unknown).
  EXPECT_FALSE(
      cql::decode_result(B().i32(2).i32(1).i32(1).str("k").str("t").str("c")({0x00, 0x15}).i32(0).v)
          .ok());
}

TEST(CqlFrame, DeeplyNestedTypesAreRejected) {
  B b;
  b.i32(2).i32(1).i32(1).str("k").str("t").str("c");
  for (int i = 0; i < 10000; ++i) b({0x00, 0x20});  // list<list<list<...
  b({0x00, 0x0D}).i32(0);
  EXPECT_FALSE(cql::decode_result(b.v).ok());
  // Nesting a few levels is fine.
  B ok;
  ok.i32(2).i32(1).i32(1).str("k").str("t").str("c");
  for (int i = 0; i < 5; ++i) ok({0x00, 0x22});
  ok({0x00, 0x0D}).i32(0);
  EXPECT_TRUE(cql::decode_result(ok.v).ok());
}

TEST(CqlFrame, CompressedOrRequestFramesAreRejected) {
  auto c = cql::decode_frame(response(0x08, B().i32(1).v, 0, 0x01));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, cql::Errc::UnsupportedFrame);
  auto q = cql::decode_frame(response(0x07, B().i32(1).v));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, cql::Errc::Unexpected);
}

// ---- wire helpers -------------------------------------------------------------------------

TEST(CqlWire, BigintAndInt) {
  EXPECT_EQ(cql::encode_bigint(0x0102030405060708),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08"));
  EXPECT_EQ(cql::decode_bigint(cql::encode_bigint(-2)), -2);
  EXPECT_EQ(cql::decode_bigint(cql::encode_bigint(1700000000123)), 1700000000123);
  EXPECT_EQ(cql::decode_bigint("short"), std::nullopt);
  EXPECT_EQ(cql::decode_int(cql::encode_int(-7)), -7);
  EXPECT_EQ(cql::decode_int("12345"), std::nullopt);
}

TEST(CqlWire, ReaderIsSticky) {
  const Bytes in{0x00, 0x05, 'a', 'b'};
  cql::Reader r(in);
  EXPECT_EQ(r.string(), "");  // says 5 bytes, has 2
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.u8(), 0);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(CqlBackoff, DoublesWithJitterUpToTheCap) {
  cql::Backoff b(std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
  const int64_t bases[] = {100, 200, 400, 800, 1000, 1000};
  for (int64_t base : bases) {
    const auto d = b.next().count();
    EXPECT_GE(d, base - base / 4);
    EXPECT_LE(d, base + base / 4);
  }
  b.reset();
  EXPECT_LE(b.next().count(), 125);
}

}  // namespace
