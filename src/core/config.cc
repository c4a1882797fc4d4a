#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace moatless::core {
namespace {

Result<std::int64_t> ParseInt(std::string_view text) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return InvalidArgumentError("expected an integer, got \"" + std::string(text) + "\"");
  }
  return v;
}

// Parses "<number><unit>" where unit is one of `units` (empty unit allowed if listed).
Result<std::int64_t> ParseWithUnit(
    std::string_view text, const std::vector<std::pair<std::string_view, std::int64_t>>& units,
    std::string_view what) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view unit = text.substr(digits);
  for (const auto& [name, factor] : units) {
    if (unit != name) continue;
    if (digits == 0) break;
    std::int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, n);
    if (ec != std::errc() || n > INT64_MAX / factor) break;
    return n * factor;
  }
  return InvalidArgumentError("expected " + std::string(what) + ", got \"" + std::string(text) +
                              "\"");
}

struct FlatEntry {
  std::string key;
  std::string value;
};

Status Flatten(const YAML::Node& node, const std::string& prefix, std::vector<FlatEntry>* out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      RETURN_IF_ERROR(Flatten(kv.second, prefix.empty() ? key : prefix + "." + key, out));
    }
    return Status::Ok();
  }
  if (node.IsScalar()) {
    out->push_back({prefix, node.Scalar()});
    return Status::Ok();
  }
  if (node.IsNull()) return InvalidArgumentError("config key '" + prefix + "' has no value");
  return InvalidArgumentError("config key '" + prefix + "' must be a single value, not a list");
}

}  // namespace

Result<std::int64_t> ParseDurationMs(std::string_view text) {
  return ParseWithUnit(text, {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}},
                       "a duration such as 250ms, 30s, 5m or 2h");
}

Result<std::int64_t> ParseBytes(std::string_view text) {
  return ParseWithUnit(
      text, {{"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024LL * 1024 * 1024}},
      "a size such as 4096, 64KiB, 16MiB or 1GiB");
}

Result<bool> ParseBool(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "yes" || lower == "on" || lower == "1") return true;
  if (lower == "false" || lower == "no" || lower == "off" || lower == "0") return false;
  return InvalidArgumentError("expected true or false, got \"" + std::string(text) + "\"");
}

Status SplitHostPort(std::string_view text, std::string* host, std::uint16_t* port) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgumentError("expected host:port, got \"" + std::string(text) + "\" (" +
                                std::string(why) + ")");
  };
  std::string_view h;
  std::string_view p;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return bad("IPv6 addresses are written [addr]:port");
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) return bad("IPv6 addresses are written [addr]:port");
  }
  if (h.empty()) return bad("empty host");
  auto n = ParseInt(p);
  if (!n.ok() || *n < 0 || *n > 65535) return bad("port must be 0-65535");
  *host = std::string(h);
  *port = static_cast<std::uint16_t>(*n);
  return Status::Ok();
}

ConfigSchema& ConfigSchema::Add(ConfigKey key) {
  MOATLESS_CHECK(Find(key.name) == nullptr, "config key declared twice: " + key.name);
  keys_.push_back(std::move(key));
  return *this;
}

const ConfigKey* ConfigSchema::Find(std::string_view name) const {
  for (const auto& k : keys_) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string ConfigSchema::EnvName(std::string_view key_name) {
  std::string env = "MOATLESS_";
  for (char c : key_name) {
    env.push_back(c == '.' || c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  }
  return env;
}

Result<Config> Config::Load(const ConfigSchema& schema, const ConfigSources& sources,
                            const std::vector<std::string>& reserved_env) {
  // Gather raw text per key, later sources overriding earlier ones.
  std::map<std::string, std::pair<std::string, std::string>> raw;  // key -> (text, origin)
  for (const auto& key : schema.keys()) {
    if (!key.default_value.empty()) raw[key.name] = {key.default_value, "default"};
  }

  if (!sources.file_path.empty()) {
    std::ifstream in(sources.file_path);
    if (!in) return NotFoundError("config file " + sources.file_path + " cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    std::vector<FlatEntry> entries;
    try {
      const YAML::Node root = YAML::Load(text.str());
      if (!root.IsNull()) {
        if (!root.IsMap()) {
          return InvalidArgumentError("config file " + sources.file_path + " must be a YAML map");
        }
        RETURN_IF_ERROR(Flatten(root, "", &entries).Annotate("config file " + sources.file_path));
      }
    } catch (const YAML::Exception& e) {
      return InvalidArgumentError("config file " + sources.file_path + ": " + e.what());
    }
    for (auto& e : entries) {
      std::replace(e.key.begin(), e.key.end(), '-', '_');  // data-dir and data_dir alike
      if (schema.Find(e.key) == nullptr) {
        return InvalidArgumentError("unknown config key '" + e.key + "' in " + sources.file_path);
      }
      raw[e.key] = {std::move(e.value), "file " + sources.file_path};
    }
  }

  std::map<std::string, const ConfigKey*> by_env;
  for (const auto& key : schema.keys()) by_env[ConfigSchema::EnvName(key.name)] = &key;
  for (const auto& [name, value] : sources.environment) {
    if (!name.starts_with("MOATLESS_")) continue;
    const auto it = by_env.find(name);
    if (it == by_env.end()) {
      if (std::find(reserved_env.begin(), reserved_env.end(), name) != reserved_env.end()) continue;
      return InvalidArgumentError("unknown environment variable " + name +
                                  " (moatless reads only the MOATLESS_* variables it documents)");
    }
    raw[it->second->name] = {value, "env " + name};
  }

  for (const auto& [name, value] : sources.flags) {
    if (schema.Find(name) == nullptr) return InvalidArgumentError("unknown flag --" + name);
    raw[name] = {value, "flag --" + name};
  }

  Config config;
  for (const auto& key : schema.keys()) {
    const auto it = raw.find(key.name);
    if (it == raw.end()) {
      if (key.required) return InvalidArgumentError("config key '" + key.name + "' is required");
      config.values_[key.name] = Value{key.type, "", 0, "default"};
      continue;
    }
    const std::string& text = it->second.first;
    const std::string& origin = it->second.second;
    const auto fail = [&](const Status& why) {
      return InvalidArgumentError("config key '" + key.name + "' (from " + origin +
                                  "): " + why.message());
    };
    Value v{key.type, text, 0, origin};
    switch (key.type) {
      case ConfigType::kString:
        break;
      case ConfigType::kPath:
        if (text.empty()) return fail(InvalidArgumentError("must not be empty"));
        break;
      case ConfigType::kInt:
      case ConfigType::kBytes: {
        auto n = key.type == ConfigType::kInt ? ParseInt(text) : ParseBytes(text);
        if (!n.ok()) return fail(n.status());
        if (*n < key.min || *n > key.max) {
          return fail(InvalidArgumentError("must be between " + std::to_string(key.min) + " and " +
                                           std::to_string(key.max) + ", got " + text));
        }
        v.number = *n;
        break;
      }
      case ConfigType::kBool: {
        auto b = ParseBool(text);
        if (!b.ok()) return fail(b.status());
        v.number = *b ? 1 : 0;
        break;
      }
      case ConfigType::kDuration: {
        auto d = ParseDurationMs(text);
        if (!d.ok()) return fail(d.status());
        if (*d < key.min || *d > key.max) {
          return fail(InvalidArgumentError("out of range: " + text));
        }
        v.number = *d;
        break;
      }
      case ConfigType::kHostPort: {
        std::string host;
        std::uint16_t port = 0;
        if (Status s = SplitHostPort(text, &host, &port); !s.ok()) return fail(s);
        break;
      }
    }
    config.values_[key.name] = std::move(v);
  }
  return config;
}

const Config::Value& Config::Get(std::string_view name,
                                 std::initializer_list<ConfigType> types) const {
  const auto it = values_.find(name);
  MOATLESS_CHECK(it != values_.end(), "undeclared config key " + std::string(name));
  MOATLESS_CHECK(std::find(types.begin(), types.end(), it->second.type) != types.end(),
                 "config key read with the wrong type: " + std::string(name));
  return it->second;
}

const std::string& Config::GetString(std::string_view name) const {
  return Get(name, {ConfigType::kString, ConfigType::kPath, ConfigType::kHostPort}).text;
}
std::int64_t Config::GetInt(std::string_view name) const {
  return Get(name, {ConfigType::kInt, ConfigType::kBytes}).number;
}
bool Config::GetBool(std::string_view name) const { return Get(name, {ConfigType::kBool}).number; }
std::chrono::milliseconds Config::GetDuration(std::string_view name) const {
  return std::chrono::milliseconds(Get(name, {ConfigType::kDuration}).number);
}
const std::string& Config::Origin(std::string_view name) const {
  const auto it = values_.find(name);
  MOATLESS_CHECK(it != values_.end(), "undeclared config key " + std::string(name));
  return it->second.origin;
}

}  // namespace moatless::core
