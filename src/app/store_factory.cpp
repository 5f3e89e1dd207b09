#include "app/store_factory.hpp"

#include <chrono>

#include "store/rocksdb_backend.hpp"
#include "store/write_behind_store.hpp"

namespace app {

std::unique_ptr<store::Store> make_store(const Options& opts, std::string& error) {
  std::unique_ptr<store::Backend> backend;
  if (!opts.db_addr.empty()) {
    error = "Cassandra (-d/--db_addr) is not available in this build yet";
    return nullptr;
  }
  backend = std::make_unique<store::RocksDbBackend>(opts.data_dir);
  return std::make_unique<store::WriteBehindStore>(
      std::move(backend), std::chrono::milliseconds(opts.flush_interval_ms));
}

}  // namespace app
