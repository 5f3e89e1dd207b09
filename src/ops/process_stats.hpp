// The standard process_* metrics of Prometheus clients, read from /proc the
// way the official clients do (Linux only).
#pragma once

#include <cstdint>
#include <string_view>

namespace ops {

struct ProcessStats {
  bool ok = false;         // /proc/self/stat could be read
  double cpu_seconds = 0;  // user + system
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;           // the soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // since the Unix epoch
};

ProcessStats read_process_stats();

// Parses the text of /proc/<pid>/stat (fields after the command name, which
// may hold spaces and parentheses) given the clock ticks per second, the page
// size and the boot time (/proc/stat btime). False on a malformed line.
bool parse_proc_stat(std::string_view text, long ticks_per_s, long page_size, double boot_time_s,
                     ProcessStats& out);

}  // namespace ops
