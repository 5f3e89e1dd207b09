#include "app/store_factory.hpp"

#include <chrono>
#include <cstdlib>

#include "store/cassandra_backend.hpp"
#include "store/null_store.hpp"
#include "store/rocksdb_backend.hpp"
#include "store/write_behind_store.hpp"

namespace app {

namespace {

// The Cassandra settings from the command line. Until the options grow their
// own flags, the replication map of a new keyspace comes from the environment.
util::Result<store::CassandraOptions> cassandra_options(const Options& opts) {
  store::CassandraOptions out;
  auto hosts = store::parse_contact_points(opts.db_addr);
  if (!hosts) return std::move(hosts).error();
  out.hosts = std::move(hosts).value();
  out.keyspace = opts.db_keyspace;
  if (!opts.db_replication.empty()) {
    out.replication = opts.db_replication;
  } else if (const char* r = std::getenv("MQTT_SERVER_CASSANDRA_REPLICATION"); r && *r) {
    out.replication = r;  // kept for the tests that predate --db-replication
  }
  auto consistency = store::parse_consistency(opts.db_consistency);
  if (!consistency) return util::Error{"unknown --db-consistency '" + opts.db_consistency + "'"};
  out.consistency = *consistency;
  if (auto valid = store::validate(out); !valid) return std::move(valid).error();
  return out;
}

}  // namespace

util::Result<std::unique_ptr<store::Store>> make_store(const Options& opts) {
  std::unique_ptr<store::Backend> backend;
  if (opts.no_store) {
    if (!opts.db_addr.empty()) {
      return util::Error{"--no-store and -d/--db_addr exclude each other"};
    }
    return std::unique_ptr<store::Store>(std::make_unique<store::NullStore>());
  }
  if (!opts.db_addr.empty()) {
    auto cassandra = cassandra_options(opts);
    if (!cassandra) return std::move(cassandra).error();
    backend = std::make_unique<store::CassandraBackend>(std::move(cassandra).value());
  } else {
    backend = std::make_unique<store::RocksDbBackend>(opts.data_dir);
  }
  return std::unique_ptr<store::Store>(std::make_unique<store::WriteBehindStore>(
      std::move(backend), std::chrono::milliseconds(opts.flush_interval_ms)));
}

}  // namespace app
