#include "ops/process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ops {

namespace {

std::string read_file(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

double boot_time_s() {
  std::istringstream in(read_file("/proc/stat"));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) return std::stod(line.substr(6));
  }
  return 0;
}

uint64_t count_open_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  uint64_t n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n > 0 ? n - 1 : 0;  // not the descriptor opendir itself holds
}

}  // namespace

bool parse_proc_stat(std::string_view text, long ticks_per_s, long page_size, double boot_time,
                     ProcessStats& out) {
  // "pid (comm) state ppid ...": comm ends at the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos || ticks_per_s <= 0) return false;
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::string_view rest = text.substr(close + 1);
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = std::min(rest.find_first_of(" \n"), rest.size());
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  // Field numbers as in proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  auto field = [&](int number, uint64_t& v) {
    const size_t i = static_cast<size_t>(number - 3);
    if (i >= fields.size()) return false;
    auto [p, ec] = std::from_chars(fields[i].data(), fields[i].data() + fields[i].size(), v);
    return ec == std::errc() && p == fields[i].data() + fields[i].size();
  };
  uint64_t utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
  if (!field(14, utime) || !field(15, stime) || !field(22, start) || !field(23, vsize) ||
      !field(24, rss)) {
    return false;
  }
  const auto ticks = static_cast<double>(ticks_per_s);
  out.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  out.start_time_seconds = boot_time + static_cast<double>(start) / ticks;
  out.virtual_bytes = vsize;
  out.resident_bytes = rss * static_cast<uint64_t>(page_size);
  out.ok = true;
  return true;
}

ProcessStats read_process_stats() {
  ProcessStats s;
  // The boot time does not change while we run: read it once.
  static const double boot = boot_time_s();
  parse_proc_stat(read_file("/proc/self/stat"), sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot,
                  s);
  s.open_fds = count_open_fds();
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) s.max_fds = rl.rlim_cur;
  return s;
}

}  // namespace ops
