// MQTT topic names and filters <-> NATS subjects, for routing between cluster
// nodes (design note cluster-design.md section B.2). Our own scheme, not
// nats-server's MQTT one: every MQTT level is exactly one NATS token, so NATS
// wildcard matching is MQTT matching, and '$' topics live in a namespace of
// their own. The subject only routes; the exact topic travels in the envelope
// (envelope.hpp). Pure functions, no sockets.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cluster {

// Default cap on an encoded subject; a topic whose subject is longer is refused
// in cluster mode (nats-server's max_control_line is set to 16 KiB above it).
inline constexpr size_t kMaxSubjectBytes = 4096;

// Appends the subject of a topic name to `out` (cleared first): "m.<tokens>", or
// "m$.<tokens>" when the first level starts with '$' -- so that '#' and '+' at
// the first level, which map to "m." only, never match them [MQTT-4.7.2-1].
// One MQTT level -> one token; an empty level -> "%"; the bytes '%', '.', ' ',
// control bytes < 0x20, 0x7f, '*', '>' -> "%XX" (upper-case hex). Everything
// else (UTF-8) as is. No allocation when `out` has capacity (hot path).
void topic_subject(std::string_view topic, std::string& out);
std::string topic_subject(std::string_view topic);

// The NATS subjects a plain (non-$share) filter needs: '+' -> "*"; a trailing
// '#' -> two subjects, "<parent>" and "<parent>.>", because '#' also matches
// its parent level [MQTT-4.7.1-2] while NATS '>' needs at least one token;
// "#" alone -> {"m.>"}; "$SYS/#" -> {"m$.$SYS", "m$.$SYS.>"}. The filter is
// assumed valid (mqtt::valid_topic_filter); for "$share/<g>/<f>" pass <f> and
// subscribe in the queue group queue_name(g, f).
std::vector<std::string> filter_subjects(std::string_view filter);

// Inverse for logs and tests: the topic (or filter, with '*' -> '+', '>' -> '#')
// of a subject; nullopt when it is not one of ours -- wrong prefix, an empty
// token, a malformed or needless "%XX", a byte that should have been escaped,
// a '$' first level outside "m$." (or a non-'$' one inside it).
std::optional<std::string> subject_to_topic(std::string_view subject);

// A NATS queue-group name for the shared subscription $share/<group>/<filter>
// (MQTT 5 section 4.8.2): "s." + 16 lower-case hex digits of the 64-bit FNV-1a
// hash of group + '\0' + filter. Stable across nodes and builds, so every node
// with a member of the group joins the same queue group; the '\0' keeps
// ("a", "b/c") and ("a/b", "c") apart.
std::string queue_name(std::string_view group, std::string_view filter);

}  // namespace cluster
