// libFuzzer target for the envelope between cluster nodes (src/cluster/
// envelope.hpp). Arbitrary bytes go to decode_envelope, which must never read
// out of bounds. When it accepts them, the message is rebuilt with to_message
// and encoded again: the encoding is canonical (fixed-width integers, minimal
// varints, exact total length), so the re-encoding must equal the input byte
// for byte, and decoding it must give the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cluster/envelope.hpp"

namespace {

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

bool same(const cluster::Envelope& a, const cluster::Envelope& b) {
  return a.qos == b.qos && a.retain == b.retain && a.source == b.source && a.node == b.node &&
         a.epoch == b.epoch && a.seq == b.seq && a.topic == b.topic && a.payload == b.payload &&
         a.properties == b.properties && a.origin_client == b.origin_client &&
         a.has_expiry == b.has_expiry && a.expiry_s == b.expiry_s && a.received_ms == b.received_ms;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so ASan catches a read one past the end.
  const std::string in(reinterpret_cast<const char*>(data), size);
  auto decoded = cluster::decode_envelope(in);
  if (!decoded) return 0;
  const cluster::Envelope& e = *decoded;
  FUZZ_CHECK(e.qos <= 2);
  FUZZ_CHECK(!e.node.empty() && e.node.size() <= cluster::kMaxNodeBytes);
  FUZZ_CHECK(e.topic.size() <= 65535);

  // Rebuilt and sent at the time the origin received it, the remaining expiry
  // is the whole interval again and received_ms is unchanged.
  const broker::MessagePtr m = cluster::to_message(e, e.received_ms);
  FUZZ_CHECK(m->topic() == e.topic);
  FUZZ_CHECK(m->payload() == e.payload);
  FUZZ_CHECK(m->properties() == e.properties);
  FUZZ_CHECK(m->origin() == e.origin_client);
  FUZZ_CHECK(m->qos() == e.qos && m->retain() == e.retain);
  FUZZ_CHECK(m->has_expiry() == e.has_expiry && m->expiry_interval_s() == e.expiry_s);
  std::string again;
  cluster::encode_envelope(again, *m, e.source, e.node, e.epoch, e.seq, e.received_ms);
  FUZZ_CHECK(again == in);
  auto redecoded = cluster::decode_envelope(again);
  FUZZ_CHECK(redecoded.ok());
  FUZZ_CHECK(same(e, *redecoded));
  return 0;
}
