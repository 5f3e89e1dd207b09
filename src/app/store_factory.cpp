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
bool cassandra_options(const Options& opts, store::CassandraOptions& out, std::string& error) {
  if (!store::parse_contact_points(opts.db_addr, out.hosts, error)) return false;
  out.keyspace = opts.db_keyspace;
  if (!opts.db_replication.empty()) {
    out.replication = opts.db_replication;
  } else if (const char* r = std::getenv("MQTT_SERVER_CASSANDRA_REPLICATION"); r && *r) {
    out.replication = r;  // kept for the tests that predate --db-replication
  }
  auto consistency = store::parse_consistency(opts.db_consistency);
  if (!consistency) {
    error = "unknown --db-consistency '" + opts.db_consistency + "'";
    return false;
  }
  out.consistency = *consistency;
  return store::validate(out, error);
}

}  // namespace

std::unique_ptr<store::Store> make_store(const Options& opts, std::string& error) {
  std::unique_ptr<store::Backend> backend;
  if (opts.no_store) {
    if (!opts.db_addr.empty()) {
      error = "--no-store and -d/--db_addr exclude each other";
      return nullptr;
    }
    return std::make_unique<store::NullStore>();
  }
  if (!opts.db_addr.empty()) {
    store::CassandraOptions cassandra;
    if (!cassandra_options(opts, cassandra, error)) return nullptr;
    backend = std::make_unique<store::CassandraBackend>(std::move(cassandra));
  } else {
    backend = std::make_unique<store::RocksDbBackend>(opts.data_dir);
  }
  return std::make_unique<store::WriteBehindStore>(
      std::move(backend), std::chrono::milliseconds(opts.flush_interval_ms));
}

}  // namespace app
