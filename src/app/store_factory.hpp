// Chooses the latest-payload store from the command line: Cassandra with
// -d/--db_addr, the embedded RocksDB store otherwise.
#pragma once

#include <memory>
#include <string>

#include "app/options.hpp"
#include "store/store.hpp"
#include "util/result.hpp"

namespace app {

// A one-line error when the options are unusable.
util::Result<std::unique_ptr<store::Store>> make_store(const Options& opts);

}  // namespace app
