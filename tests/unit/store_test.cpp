#include <gtest/gtest.h>

#include "result_helpers.hpp"

#include <map>

#include <filesystem>
#include <memory>

#include "store/coalescer.hpp"
#include "store/rocksdb_backend.hpp"
#include "store/session_codec.hpp"
#include "store/write_behind_store.hpp"

namespace {

broker::MessagePtr msg(std::string device, std::string topic, std::string payload, int64_t t = 1) {
  return std::make_shared<const broker::Message>(topic, payload, 0, false, device, t);
}

TEST(Coalescer, KeepsOnlyTheNewestValuePerKey) {
  store::Coalescer c;
  c.put(msg("d1", "t", "old"));
  c.put(msg("d1", "t", "new"));
  c.put(msg("d2", "t", "other"));
  EXPECT_EQ(c.pending(), 2u);
  EXPECT_EQ(c.find("d1", "t")->payload(), "new");
  store::Batch b;
  c.take(b);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(c.pending(), 0u);
  EXPECT_EQ(b.at(store::Key{"d1", "t"})->payload(), "new");
}

TEST(Coalescer, RestoreNeverOverwritesANewerValue) {
  store::Coalescer c;
  c.put(msg("d", "t", "v1"));
  store::Batch failed;
  c.take(failed);
  c.put(msg("d", "t", "v2"));  // arrived while the write of v1 was failing
  c.restore(failed);
  EXPECT_EQ(c.find("d", "t")->payload(), "v2");
  EXPECT_EQ(c.pending(), 1u);
}

class TempDir {
 public:
  TempDir() {
    path_ =
        std::filesystem::temp_directory_path() /
        ("mqtt-store-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(RocksDbBackend, WritesAndReadsBackAcrossReopen) {
  TempDir dir;
  {
    store::RocksDbBackend db(dir.str());
    std::string error;
    ASSERT_TRUE(test_util::ok(db.open(), error)) << error;
    store::WriteSet ws;
    store::Coalescer c;
    c.put(msg("dev", "a/b", std::string("bin\0ary", 7), 1234));
    c.take(ws.latest);
    ws.retained["r/1"] = std::make_shared<const broker::Message>("r/1", "kept", 1, true, "", 5);
    ws.retained["r/2"] = std::make_shared<const broker::Message>("r/2", "gone", 0, true, "", 5);
    broker::SessionSnapshot snap;
    snap.client_id = "c1";
    snap.subscriptions = {{"a/#", {.qos = 1}}, {"b", {.qos = 2}}};
    snap.messages.push_back({msg("dev", "a/x", "queued", 9), 1, false});
    ws.sessions["c1"] = store::encode_session(snap);
    ws.sessions["c2"] = store::encode_session(snap);
    ASSERT_TRUE(test_util::ok(db.write(ws), error)) << error;
    EXPECT_TRUE(ws.empty());
    // Deletions: an empty retained payload and an erased session.
    ws.retained["r/2"] = std::make_shared<const broker::Message>("r/2", "", 0, true, "", 6);
    ws.sessions["c2"] = std::nullopt;
    ASSERT_TRUE(test_util::ok(db.write(ws), error)) << error;
  }
  store::RocksDbBackend db(dir.str());
  std::string error;
  ASSERT_TRUE(test_util::ok(db.open(), error)) << error;
  store::Record r;
  ASSERT_EQ(db.read("dev", "a/b", r), store::ReadStatus::Found);
  EXPECT_EQ(r.payload, std::string("bin\0ary", 7));
  EXPECT_EQ(r.updated_ms, 1234);
  EXPECT_EQ(db.read("dev", "a/c", r), store::ReadStatus::NotFound);
  // The separator keeps ("a", "b/c") and ("a\0b", "c")-like keys apart.
  EXPECT_EQ(db.read("de", "v", r), store::ReadStatus::NotFound);

  std::vector<std::string> retained;
  ASSERT_TRUE(test_util::ok(db.load_retained([&](const store::StoredRetained& s) {
    retained.push_back(std::string(s.topic) + "=" + std::string(s.payload) + "/q" +
                       std::to_string(s.qos));
  }),
                            error));
  EXPECT_EQ(retained, (std::vector<std::string>{"r/1=kept/q1"}));

  std::vector<broker::SessionSnapshot> sessions;
  ASSERT_TRUE(test_util::ok(db.load_sessions([&](std::string_view id, std::string_view bytes) {
    broker::SessionSnapshot s;
    ASSERT_TRUE(store::decode_session(id, bytes, s));
    sessions.push_back(std::move(s));
  }),
                            error));
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].client_id, "c1");
  EXPECT_EQ(sessions[0].subscriptions.size(), 2u);
  ASSERT_EQ(sessions[0].messages.size(), 1u);
  EXPECT_EQ(sessions[0].messages[0].msg->payload(), "queued");
  EXPECT_EQ(sessions[0].messages[0].qos, 1);
}

TEST(RocksDbBackend, RetainedKeepsMqtt5PropertiesAndExpiry) {
  TempDir dir;
  const std::string props("\x03\x00\x04text\x26\x00\x01k\x00\x01v", 14);
  {
    store::RocksDbBackend db(dir.str());
    std::string error;
    ASSERT_TRUE(test_util::ok(db.open(), error)) << error;
    store::WriteSet ws;
    ws.retained["v5"] = std::make_shared<const broker::Message>(
        "v5", "payload", 2, true, "", 77, broker::MessageMeta{props, true, 30});
    ws.retained["v5-no-expiry"] = std::make_shared<const broker::Message>(
        "v5-no-expiry", "p2", 1, true, "", 78, broker::MessageMeta{props, false, 0});
    ws.retained["v3"] = std::make_shared<const broker::Message>("v3", "plain", 1, true, "", 79);
    ASSERT_TRUE(test_util::ok(db.write(ws), error)) << error;
  }
  store::RocksDbBackend db(dir.str());
  std::string error;
  ASSERT_TRUE(test_util::ok(db.open(), error)) << error;
  std::map<std::string, std::string> got;
  ASSERT_TRUE(test_util::ok(db.load_retained([&](const store::StoredRetained& r) {
    got[std::string(r.topic)] =
        std::string(r.payload) + "|q" + std::to_string(r.qos) + "|" + std::to_string(r.updated_ms) +
        "|" + std::string(r.meta.properties) + "|" +
        (r.meta.has_expiry ? std::to_string(r.meta.expiry_interval_s) : std::string("-"));
  }),
                            error));
  EXPECT_EQ(got["v5"], "payload|q2|77|" + props + "|30");
  EXPECT_EQ(got["v5-no-expiry"], "p2|q1|78|" + props + "|-");
  EXPECT_EQ(got["v3"], "plain|q1|79||-");
}

TEST(SessionCodec, RejectsTruncatedSnapshots) {
  broker::SessionSnapshot snap;
  snap.client_id = "c";
  snap.subscriptions = {{"t", {.qos = 1}}};
  snap.messages.push_back({msg("d", "t", "p", 1), 2, true});
  std::string bytes = store::encode_session(snap);
  broker::SessionSnapshot out;
  ASSERT_TRUE(store::decode_session("c", bytes, out));
  EXPECT_TRUE(out.messages[0].retain);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(store::decode_session("c", std::string_view(bytes).substr(0, n), out)) << n;
  }
}

TEST(SessionCodec, KeepsMqtt5OptionsPropertiesAndExpiry) {
  broker::SessionSnapshot snap;
  snap.client_id = "c";
  snap.expiry_s = 3600;
  snap.subscriptions = {
      {"$share/g/a/+",
       {.qos = 1, .no_local = false, .retain_as_published = true, .retain_handling = 2, .id = 7}},
      {"b",
       {.qos = 2, .no_local = true, .retain_as_published = false, .retain_handling = 1, .id = 0}}};
  const std::string props("\x03\x00\x04text\x26\x00\x01k\x00\x01v", 14);
  auto m = std::make_shared<const broker::Message>("a/x", "p", 1, false, "d", 42,
                                                   broker::MessageMeta{props, true, 60});
  snap.messages.push_back({m, 1, false, 7});
  broker::SessionSnapshot out;
  ASSERT_TRUE(store::decode_session("c", store::encode_session(snap), out));
  EXPECT_EQ(out.expiry_s, 3600u);
  ASSERT_EQ(out.subscriptions.size(), 2u);
  const broker::SubOptions& a = out.subscriptions[0].second;
  EXPECT_EQ(out.subscriptions[0].first, "$share/g/a/+");
  EXPECT_EQ(a.qos, 1);
  EXPECT_FALSE(a.no_local);
  EXPECT_TRUE(a.retain_as_published);
  EXPECT_EQ(a.retain_handling, 2);
  EXPECT_EQ(a.id, 7u);
  const broker::SubOptions& b = out.subscriptions[1].second;
  EXPECT_EQ(b.qos, 2);
  EXPECT_TRUE(b.no_local);
  EXPECT_EQ(b.retain_handling, 1);
  EXPECT_EQ(b.id, 0u);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].sub_id, 7u);
  EXPECT_EQ(out.messages[0].msg->properties(), props);
  EXPECT_EQ(out.messages[0].msg->payload(), "p");
  EXPECT_TRUE(out.messages[0].msg->has_expiry());
  EXPECT_EQ(out.messages[0].msg->expiry_interval_s(), 60u);
}

TEST(SessionCodec, ReadsVersion1Snapshots) {
  // Bytes as the server wrote them before MQTT 5: version 1, one
  // subscription ("t", QoS 1), one message.
  std::string v1(
      "\x01\x01\x01t\x01\x01\x01t\x01p\x01"
      "d\x01\x00",
      14);
  v1 += std::string("\x00\x00\x00\x00\x00\x00\x00\x2a", 8);
  broker::SessionSnapshot out;
  ASSERT_TRUE(store::decode_session("c", v1, out));
  EXPECT_EQ(out.expiry_s, broker::kNeverExpires);
  ASSERT_EQ(out.subscriptions.size(), 1u);
  EXPECT_EQ(out.subscriptions[0].second.qos, 1);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].msg->payload(), "p");
  EXPECT_EQ(out.messages[0].msg->received_ms(), 42);
  EXPECT_TRUE(out.messages[0].msg->properties().empty());
}

TEST(WriteBehindStore, ServesPendingValuesAndFlushesOnStop) {
  TempDir dir;
  {
    store::WriteBehindStore s(std::make_unique<store::RocksDbBackend>(dir.str()),
                              std::chrono::milliseconds(60000));
    std::string error;
    ASSERT_TRUE(test_util::ok(s.start(), error)) << error;
    s.on_device_publish(msg("d", "t", "v1", 1));
    s.on_device_publish(msg("d", "t", "v2", 2));
    store::Record r;
    ASSERT_EQ(s.latest("d", "t", r), store::ReadStatus::Found);  // not flushed yet
    EXPECT_EQ(r.payload, "v2");
    s.stop();
    EXPECT_EQ(s.stats().written.load(), 1u);
  }
  store::RocksDbBackend db(dir.str());
  std::string error;
  ASSERT_TRUE(test_util::ok(db.open(), error)) << error;
  store::Record r;
  ASSERT_EQ(db.read("d", "t", r), store::ReadStatus::Found);
  EXPECT_EQ(r.payload, "v2");
}

// A backend that fails until told otherwise, to check retry without loss.
class FlakyBackend : public store::Backend {
 public:
  std::atomic<bool> up{false};
  std::atomic<int> rows{0};
  std::string describe() const override { return "flaky"; }
  util::Status open() override { return {}; }
  util::Status write(store::WriteSet& ws) override {
    if (!up) return util::Error{"down"};
    rows += static_cast<int>(ws.size());
    ws = store::WriteSet{};
    return {};
  }
  store::ReadStatus read(std::string_view, std::string_view, store::Record&) override {
    return store::ReadStatus::NotFound;
  }
  util::Status load_retained(const std::function<void(const store::StoredRetained&)>&) override {
    return {};
  }
  util::Status load_sessions(
      const std::function<void(std::string_view, std::string_view)>&) override {
    return {};
  }
};

TEST(WriteBehindStore, KeepsTheNewestValuesWhileTheBackendIsDown) {
  auto backend = std::make_unique<FlakyBackend>();
  FlakyBackend* flaky = backend.get();
  store::WriteBehindStore s(std::move(backend), std::chrono::milliseconds(5));
  std::string error;
  ASSERT_TRUE(test_util::ok(s.start(), error));
  for (int i = 0; i < 1000; ++i) s.on_device_publish(msg("d", "t" + std::to_string(i % 10), "v"));
  // Wait until at least one write was attempted and failed.
  for (int i = 0; i < 400 && s.stats().failures.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GT(s.stats().failures.load(), 0u);
  // Bounded by distinct keys (polled: a retry briefly takes the batch out).
  for (int i = 0; i < 400 && s.pending() != 10u; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(s.pending(), 10u);
  flaky->up = true;
  s.stop();
  EXPECT_EQ(flaky->rows.load(), 10);
  EXPECT_EQ(s.pending(), 0u);
}

}  // namespace
