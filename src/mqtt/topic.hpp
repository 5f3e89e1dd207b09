// Topic names and topic filters (MQTT 3.1.1 section 4.7).
#pragma once

#include <string_view>

namespace mqtt {

// UTF-8 as MQTT requires it: well-formed, no U+0000, no surrogates (U+D800..DFFF),
// no overlong forms. [MQTT-1.5.3-1], [MQTT-1.5.3-2]
bool valid_utf8(std::string_view s);

// A PUBLISH topic name: at least one character, valid UTF-8, no '+' or '#'.
// [MQTT-4.7.3-1], [MQTT-3.3.2-2]
bool valid_topic_name(std::string_view name);

// A SUBSCRIBE/UNSUBSCRIBE filter: at least one character, valid UTF-8, '#' only
// as the whole last level, '+' only as a whole level. [MQTT-4.7.1-2], [MQTT-4.7.1-3]
bool valid_topic_filter(std::string_view filter);

// Whether `filter` matches `name` (both assumed valid). Topics starting with '$'
// are not matched by a filter starting with '+' or '#'. [MQTT-4.7.2-1]
bool topic_matches(std::string_view filter, std::string_view name);

// MQTT 5 shared subscriptions (section 4.8.2): "$share/{ShareName}/{filter}".
inline constexpr std::string_view kSharePrefix = "$share/";

// "$SYS" and "$SYS/...": the broker's own status topics. Only the broker
// publishes there; the spec lets a server keep $ topics for itself and says it
// should stop clients using them to talk to each other (section 4.7.2).
inline bool is_sys_topic(std::string_view name) {
  return name.starts_with("$SYS") && (name.size() == 4 || name[4] == '/');
}

// Whether `filter` asks for a shared subscription (starts with "$share/").
// Only meaningful for MQTT 5; in 3.1.1 such a filter is an ordinary one.
inline bool is_shared_subscription(std::string_view filter) {
  return filter.substr(0, kSharePrefix.size()) == kSharePrefix;
}

// Splits a shared subscription into its ShareName and topic filter. False when
// `filter` is not a valid one: it must start with "$share/", the ShareName be
// at least one character without '/', '+' or '#' [MQTT-4.8.2-1], and be
// followed by '/' and a valid topic filter [MQTT-4.8.2-2]. The outputs are
// views into `filter`, set only on success.
bool parse_shared_subscription(std::string_view filter, std::string_view& share_name,
                               std::string_view& topic_filter);

}  // namespace mqtt
