// Configuration: typed keys declared once in a ConfigSchema, loaded from (lowest precedence
// first) their defaults, a YAML config file, MOATLESS_* environment variables and command-line
// flags. Loading validates every value and fails closed: an unknown key in the file or the
// environment, a value of the wrong type or out of range, each is an error that names the key
// and where it came from ("listen (from MOATLESS_LISTEN): ..."), never a silent default.
//
// Key names are lower-case words joined by '.' and '_' ("http.max_body_bytes"). In the file they
// are nested maps or dotted keys ('-' reads as '_'); in the environment MOATLESS_ + upper-case with
// '.' as '_' (MOATLESS_HTTP_MAX_BODY_BYTES); as flags --name. A loaded Config is immutable and
// thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace moatless::core {

enum class ConfigType {
  kString,
  kPath,      // non-empty
  kInt,       // decimal integer within [min, max]
  kBytes,     // integer with an optional unit: 512, 64KiB, 16MiB, 1GiB
  kBool,      // true/false/yes/no/on/off/1/0
  kDuration,  // 250ms, 30s, 5m, 2h (non-negative)
  kHostPort,  // host:port or [ipv6]:port, port 0-65535
};

struct ConfigKey {
  std::string name;
  ConfigType type = ConfigType::kString;
  std::string default_value;  // in the same text form a user writes; "" with required=true: none
  std::string help;
  std::int64_t min = 0;  // for kInt and kBytes
  std::int64_t max = INT64_MAX;
  bool required = false;
};

class ConfigSchema {
 public:
  ConfigSchema& Add(ConfigKey key);
  const ConfigKey* Find(std::string_view name) const;
  const std::vector<ConfigKey>& keys() const { return keys_; }
  // "MOATLESS_HTTP_MAX_BODY_BYTES" for "http.max_body_bytes".
  static std::string EnvName(std::string_view key_name);

 private:
  std::vector<ConfigKey> keys_;
};

struct ConfigSources {
  std::string file_path;                           // "" for none
  std::map<std::string, std::string> environment;  // the process environment, all of it
  std::map<std::string, std::string> flags;  // key name -> value, as given on the command line
};

class Config {
 public:
  // Environment variables outside the schema that Load accepts (e.g. MOATLESS_CONFIG, which names
  // the file itself).
  static Result<Config> Load(const ConfigSchema& schema, const ConfigSources& sources,
                             const std::vector<std::string>& reserved_env = {"MOATLESS_CONFIG"});

  // Getters for declared keys; asking for an undeclared key or with the wrong type is a bug.
  const std::string& GetString(std::string_view name) const;
  std::int64_t GetInt(std::string_view name) const;  // kInt and kBytes
  bool GetBool(std::string_view name) const;
  std::chrono::milliseconds GetDuration(std::string_view name) const;
  // Where the effective value came from: "default", "file <path>", "env MOATLESS_X", "flag --x".
  const std::string& Origin(std::string_view name) const;

 private:
  struct Value {
    ConfigType type;
    std::string text;
    std::int64_t number = 0;  // kInt, kBytes, kBool (0/1), kDuration (ms)
    std::string origin;
  };
  const Value& Get(std::string_view name, std::initializer_list<ConfigType> types) const;
  std::map<std::string, Value, std::less<>> values_;
};

// Parses one value of a type; the error message does not name the key (the caller does).
Result<std::int64_t> ParseDurationMs(std::string_view text);
Result<std::int64_t> ParseBytes(std::string_view text);
Result<bool> ParseBool(std::string_view text);
// Splits "host:port" / "[v6]:port"; port in [0, 65535].
Status SplitHostPort(std::string_view text, std::string* host, std::uint16_t* port);

}  // namespace moatless::core
