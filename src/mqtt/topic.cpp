// Topic name and filter validation and matching (MQTT 3.1.1 section 4.7).
#include "mqtt/topic.hpp"

#include <cstddef>
#include <string_view>

namespace mqtt {

namespace {

// Topic names and filters are carried as 2-byte length prefixed strings.
// [MQTT-4.7.3-3]
constexpr size_t kMaxTopicBytes = 65535;

}  // namespace

bool valid_topic_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxTopicBytes) return false;  // [MQTT-4.7.3-1]
  // Wildcards are ASCII, so a byte scan is exact even inside multi-byte
  // characters (continuation bytes are >= 0x80). [MQTT-3.3.2-2], [MQTT-4.7.1-1]
  if (name.find_first_of("+#") != std::string_view::npos) return false;
  return valid_utf8(name);
}

bool valid_topic_filter(std::string_view filter) {
  if (filter.empty() || filter.size() > kMaxTopicBytes) return false;  // [MQTT-4.7.3-1]
  const size_t n = filter.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = filter[i];
    if (c != '+' && c != '#') continue;
    // A wildcard must occupy a whole level. [MQTT-4.7.1-2], [MQTT-4.7.1-3]
    const bool starts_level = i == 0 || filter[i - 1] == '/';
    const bool ends_level = i + 1 == n || filter[i + 1] == '/';
    if (!starts_level || !ends_level) return false;
    // '#' must also be the last character. [MQTT-4.7.1-2]
    if (c == '#' && i + 1 != n) return false;
  }
  return valid_utf8(filter);
}

bool topic_matches(std::string_view filter, std::string_view name) {
  const size_t fn = filter.size();
  const size_t nn = name.size();
  // [MQTT-4.7.2-1]: wildcards at the first level do not match '$' topics.
  if (nn > 0 && name[0] == '$' && fn > 0 && (filter[0] == '+' || filter[0] == '#')) {
    return false;
  }
  size_t fi = 0;
  size_t ni = 0;
  // Each iteration consumes one level of the filter (and of the name); both
  // indices sit at the start of a level.
  while (fi < fn) {
    const char c = filter[fi];
    if (c == '#') return true;  // this level and everything below, the parent included
    if (c == '+') {
      while (ni < nn && name[ni] != '/') ++ni;  // exactly one level, possibly empty
      ++fi;
    } else {
      while (fi < fn && filter[fi] != '/') {
        if (ni >= nn || name[ni] != filter[fi]) return false;
        ++fi;
        ++ni;
      }
    }
    // End of this filter level: the name level must end here too.
    if (fi == fn) return ni == nn;
    // filter[fi] == '/'
    if (ni == nn) {
      // The name has no more levels; only a trailing "/#" still matches
      // ("sport/#" matches "sport").
      return fi + 2 == fn && filter[fi + 1] == '#';
    }
    if (name[ni] != '/') return false;
    ++fi;
    ++ni;
  }
  // Only reached for an empty filter or one ending in '/' (empty last level).
  return ni == nn;
}

bool parse_shared_subscription(std::string_view filter, std::string_view& share_name,
                               std::string_view& topic_filter) {
  if (!is_shared_subscription(filter)) return false;
  const std::string_view rest = filter.substr(kSharePrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;  // no filter after the ShareName
  const std::string_view name = rest.substr(0, slash);
  // [MQTT-4.8.2-1], [MQTT-4.8.2-2]
  if (name.empty() || name.find_first_of("+#") != std::string_view::npos) return false;
  const std::string_view inner = rest.substr(slash + 1);
  if (!valid_topic_filter(inner)) return false;
  share_name = name;
  topic_filter = inner;
  return true;
}

}  // namespace mqtt
