#include "app/config_file.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "app/listener_table.hpp"  // and toml++
#include "net/server.hpp"

namespace app {

namespace {

// The command-line flags that describe the single listener; in the file they
// cannot sit beside [[listener]] tables, which say the same thing per listener.
const std::set<std::string> kListenerFlags = {"--addr", "--cert", "--key", "--non-tls"};

std::string swapped(std::string s, char from, char to) {
  for (char& c : s) {
    if (c == from) c = to;
  }
  return s;
}

CLI::Option* find_option(CLI::App& cli, const std::string& key) {
  if (key.empty() || key.front() == '-') return nullptr;
  for (const std::string& name : {key, swapped(key, '_', '-'), swapped(key, '-', '_')}) {
    if (CLI::Option* o = cli.get_option_no_throw("--" + name)) return o;
  }
  return nullptr;
}

std::string first_long_name(const CLI::Option& o) {
  return o.get_lnames().empty() ? o.get_name() : "--" + o.get_lnames().front();
}

const char* type_of(const toml::node& v) {
  switch (v.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

// What the option takes, from its CLI11 definition: a flag takes a boolean,
// a numeric option a number, a BOOLEAN option a boolean, the rest a string.
enum class Want { Boolean, Integer, Number, String };
Want wanted(const CLI::Option& o) {
  if (o.get_expected_max() == 0) return Want::Boolean;  // a flag: takes no value
  const std::string t = o.get_type_name();
  if (t.rfind("BOOLEAN", 0) == 0) return Want::Boolean;
  if (t.rfind("INT", 0) == 0 || t.rfind("UINT", 0) == 0) return Want::Integer;
  if (t.rfind("FLOAT", 0) == 0 || t.rfind("NUMBER", 0) == 0) return Want::Number;
  return Want::String;
}

// One TOML scalar as the text CLI11 would have got on the command line; an
// error (without the key) when its type is not what the option takes.
util::Result<std::string> scalar_text(const toml::node& v, Want want) {
  if (want == Want::Boolean && v.is_boolean()) {
    return std::string(*v.value<bool>() ? "true" : "false");
  }
  if ((want == Want::Integer || want == Want::Number) && v.is_integer()) {
    return std::to_string(*v.value<int64_t>());
  }
  if (want == Want::Number && v.is_floating_point()) {
    return std::to_string(*v.value<double>());
  }
  if (want == Want::String && v.is_string()) {
    return *v.value<std::string>();
  }
  static constexpr const char* kNames[] = {"a boolean (true or false)", "an integer", "a number",
                                           "a string (in quotes)"};
  return util::Error{std::string("expected ") + kNames[static_cast<int>(want)] + ", got " +
                     type_of(v)};
}

// CLI11's messages name the flag ("--max-inflight: Value 0 not in range ...");
// the key is named already, so drop that prefix.
std::string cli_reason(const CLI::Error& e, const CLI::Option& o) {
  std::string what = e.what();
  for (const std::string& name : {o.get_name(), first_long_name(o)}) {
    if (what.rfind(name + ": ", 0) == 0) what = what.substr(name.size() + 2);
  }
  // CLI::NonNegativeNumber says "not in range 0.000000 to <DBL_MAX in full>".
  if (size_t at = what.find(" not in range 0.000000 to 1797"); at != std::string::npos) {
    what = what.substr(0, at) + " is negative";
  }
  return what;
}

class FileApplier {
 public:
  FileApplier(CLI::App& cli, const std::string& path) : cli_(cli), path_(path) {}

  std::string at(const toml::source_region& where) const {
    return path_ + ":" + std::to_string(where.begin.line) + ": ";
  }

  // One top-level setting.
  util::Status apply(const std::string& key, const toml::key& k, const toml::node& v,
                     bool has_listeners) {
    const std::string here = at(k.source()) + "key '" + key + "': ";
    CLI::Option* o = find_option(cli_, key);
    if (!o) {
      return util::Error{here + "unknown setting (the keys are the long flag names of --help)"};
    }
    if (!o->get_configurable()) {
      return util::Error{here + "cannot be set in a config file, only on the command line"};
    }
    if (auto [it, fresh] = seen_.emplace(o, SeenAt{key, k.source().begin.line}); !fresh) {
      // Keys come in sorted order, not file order: name the later line.
      SeenAt first = it->second, second{key, k.source().begin.line};
      if (second.line < first.line) std::swap(first, second);
      return util::Error{path_ + ":" + std::to_string(second.line) + ": key '" + second.key +
                         "': same setting as '" + first.key + "' on line " +
                         std::to_string(first.line)};
    }
    if (has_listeners && kListenerFlags.count(first_long_name(*o))) {
      return util::Error{
          here +
          "not used when the file has [[listener]] tables: give each listener its own "
          "address (and protocol, certificate, key)"};
    }
    std::vector<std::string> values;
    const Want want = wanted(*o);
    if (const toml::array* list = v.as_array()) {
      if (o->get_items_expected_max() <= 1) {
        return util::Error{here + "takes one value, not an array"};
      }
      for (const toml::node& item : *list) {
        auto text = scalar_text(item, want);
        if (!text) return util::Error{here + text.error().message};
        values.push_back(std::move(text).value());
      }
    } else {
      auto text = scalar_text(v, want);
      if (!text) return util::Error{here + text.error().message};
      values.push_back(std::move(text).value());
    }
    if (o->count() > 0) return {};  // given on the command line: that wins
    try {
      o->add_result(values);
      o->run_callback();
    } catch (const CLI::Error& e) {
      return util::Error{here + cli_reason(e, *o)};
    }
    return {};
  }

 private:
  struct SeenAt {
    std::string key;
    uint32_t line;
  };
  CLI::App& cli_;
  const std::string& path_;
  std::map<const CLI::Option*, SeenAt> seen_;
};

}  // namespace

util::Status apply_config_file(CLI::App& cli, const std::string& path, net::ServerOptions& server,
                               std::string& note) {
  {
    std::ifstream probe(path);
    if (!probe) {
      return util::Error{path + ": cannot read the config file: " + std::strerror(errno)};
    }
  }
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return util::Error{path + ":" + std::to_string(e.source().begin.line) + ": " +
                       std::string(e.description())};
  }

  // Whether the command line already describes the listener, before the
  // file adds results to those options.
  bool listener_flags_given = false;
  for (const std::string& name : kListenerFlags) {
    if (const CLI::Option* o = cli.get_option_no_throw(name); o && o->count() > 0) {
      listener_flags_given = true;
    }
  }

  const toml::node* listener_node = nullptr;
  const toml::key* listener_key = nullptr;
  for (auto&& [k, v] : root) {
    if (swapped(std::string(k.str()), '-', '_') == "listener") {
      listener_node = &v;
      listener_key = &k;
    }
  }

  FileApplier applier(cli, path);
  // Plain settings first: a listener inherits cafile and require_certificate,
  // which must have their final values by then.
  for (auto&& [k, v] : root) {
    if (&k == listener_key) continue;
    if (auto applied = applier.apply(std::string(k.str()), k, v, listener_node != nullptr);
        !applied) {
      return applied;
    }
  }
  if (!listener_node) return {};

  const toml::array* tables = listener_node->as_array();
  if (!tables || !tables->is_array_of_tables()) {
    return util::Error{
        applier.at(listener_key->source()) + "key '" + std::string(listener_key->str()) +
        "': expected [[listener]] tables (one per listener), got " + type_of(*listener_node)};
  }
  std::vector<net::ListenerConfig> listeners;
  for (const toml::node& t : *tables) {
    auto l = parse_listener_table(*t.as_table(), path, server);
    if (!l) return std::move(l).error();
    listeners.push_back(std::move(l).value());
  }
  if (listener_flags_given) {
    note = "the command line's listener flags (-a, -c, -k, --non-tls) replace the " +
           std::to_string(listeners.size()) + " [[listener]] table(s) of " + path;
    return {};
  }
  server.listeners = std::move(listeners);
  return {};
}

}  // namespace app
