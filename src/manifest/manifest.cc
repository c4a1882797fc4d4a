#include "manifest/manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>
#include <system_error>

#include "observe/alerts.h"
#include "policy/parser.h"
#include "secrets/resource_policy.h"

namespace moatless::manifest {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxManifestBytes = 1 << 20;
// Aliases make a YAML document a graph; walking it must stay bounded ("billion laughs").
constexpr std::size_t kMaxNodesVisited = 200000;

Location LocationOf(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

bool IsLowerName(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool IsFunctionKey(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

bool IsSecretKey(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("/_+=.@-").find(c) != std::string_view::npos;
  });
}

// "30d", "12h", "5m", "90s" -> seconds.
std::optional<std::int64_t> ParseSeconds(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  const char unit = text.back();
  std::int64_t multiplier = 0;
  switch (unit) {
    case 's':
      multiplier = 1;
      break;
    case 'm':
      multiplier = 60;
      break;
    case 'h':
      multiplier = 3600;
      break;
    case 'd':
      multiplier = 86400;
      break;
    default:
      return std::nullopt;
  }
  std::int64_t n = 0;
  const std::string_view digits = text.substr(0, text.size() - 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n < 0 || n > 100000000) {
    return std::nullopt;
  }
  return n * multiplier;
}

// A relative path that stays inside the manifest's directory, normalised; nullopt otherwise.
std::optional<std::string> NormaliseRelative(std::string_view text) {
  if (text.empty() || text.front() == '/' || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  const fs::path normal = fs::path(std::string(text)).lexically_normal();
  std::string out = normal.generic_string();
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (out.empty() || out == "." || out == ".." || out.starts_with("../")) return std::nullopt;
  return out;
}

class Parser {
 public:
  explicit Parser(const ParseOptions& options) : options_(options) {}

  ParseOutcome Run(std::string_view yaml) {
    ParseOutcome outcome;
    if (yaml.size() > kMaxManifestBytes) {
      Error({}, "the manifest is " + std::to_string(yaml.size()) + " bytes; at most " +
                    std::to_string(kMaxManifestBytes) + " are accepted");
      outcome.diagnostics = std::move(diagnostics_);
      return outcome;
    }
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      Error({e.mark.line + 1, e.mark.column + 1}, "not valid YAML: " + e.msg);
      outcome.diagnostics = std::move(diagnostics_);
      return outcome;
    }
    try {
      if (CountNodes(root) > kMaxNodesVisited) {
        Error({}, "the manifest expands to more than " + std::to_string(kMaxNodesVisited) +
                      " nodes (aliases?)");
      } else {
        ParseRoot(root);
      }
    } catch (const YAML::Exception& e) {  // yaml-cpp throws on conversions we did not guard
      Error({e.mark.line + 1, e.mark.column + 1}, e.msg);
    }
    std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                       return std::pair(a.at.line, a.at.column) < std::pair(b.at.line, b.at.column);
                     });
    if (diagnostics_.empty()) outcome.manifest = std::move(manifest_);
    outcome.diagnostics = std::move(diagnostics_);
    return outcome;
  }

 private:
  void Error(Location at, std::string message) { diagnostics_.push_back({at, std::move(message)}); }
  void Error(const YAML::Node& node, const std::string& path, const std::string& message) {
    Error(LocationOf(node), path + ": " + message);
  }

  std::size_t CountNodes(const YAML::Node& node) {
    std::size_t count = 1;
    if (node.IsMap() || node.IsSequence()) {
      for (auto it = node.begin(); it != node.end() && count <= kMaxNodesVisited; ++it) {
        if (node.IsMap()) {
          count += CountNodes(it->second) + 1;
        } else {
          count += CountNodes(*it);
        }
      }
    }
    return count;
  }

  // A map whose keys are all in `allowed`; reports the others. False if not a map.
  bool ExpectMap(const YAML::Node& node, const std::string& path,
                 std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) {
      Error(node, path, "expected a map with keys " + AllowedList(allowed));
      return false;
    }
    for (const auto& entry : node) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        Error(entry.first, path,
              "unknown key '" + key + "'; expected one of " + AllowedList(allowed));
      }
    }
    return true;
  }
  static std::string AllowedList(std::initializer_list<std::string_view> allowed) {
    std::string out;
    for (std::string_view key : allowed) {
      if (!out.empty()) out += ", ";
      out += key;
    }
    return out;
  }

  std::optional<std::string> String(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
      Error(node, path, "expected a string");
      return std::nullopt;
    }
    return node.Scalar();
  }
  std::optional<std::string> RequiredString(const YAML::Node& parent, std::string_view key,
                                            const std::string& path) {
    const YAML::Node node = parent[std::string(key)];
    if (!node) {
      Error(parent, path, "'" + std::string(key) + "' is required");
      return std::nullopt;
    }
    return String(node, path + "." + std::string(key));
  }
  // A plain (unquoted) decimal integer within [min, max].
  std::optional<std::int64_t> Integer(const YAML::Node& node, const std::string& path,
                                      std::int64_t min, std::int64_t max) {
    const std::string range = "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
    if (!node.IsScalar() || node.Tag() == "!") {
      Error(node, path, "expected an integer in " + range);
      return std::nullopt;
    }
    const std::string& text = node.Scalar();
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size()) {
      Error(node, path, "expected an integer in " + range + ", not '" + text + "'");
      return std::nullopt;
    }
    if (n < min || n > max) {
      Error(node, path, std::to_string(n) + " is out of range; expected " + range);
      return std::nullopt;
    }
    return n;
  }
  std::optional<double> Number(const YAML::Node& node, const std::string& path, double min,
                               double max) {
    if (!node.IsScalar() || node.Tag() == "!") {
      Error(node, path, "expected a number");
      return std::nullopt;
    }
    const std::string& text = node.Scalar();
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
      Error(node, path, "expected a number, not '" + text + "'");
      return std::nullopt;
    }
    if (value < min || value > max) {
      Error(
          node, path,
          text + " is out of range; expected a number in [" + Short(min) + ", " + Short(max) + "]");
      return std::nullopt;
    }
    return value;
  }
  static std::string Short(double v) {
    std::string s = std::to_string(v);
    while (s.find('.') != std::string::npos && (s.back() == '0' || s.back() == '.')) s.pop_back();
    return s;
  }
  std::optional<std::int64_t> Duration(const YAML::Node& node, const std::string& path,
                                       std::int64_t min_s, std::int64_t max_s) {
    auto text = String(node, path);
    if (!text) return std::nullopt;
    auto seconds = ParseSeconds(*text);
    if (!seconds) {
      Error(node, path, "expected a duration such as 90s, 5m, 12h or 30d, not '" + *text + "'");
      return std::nullopt;
    }
    if (*seconds < min_s || *seconds > max_s) {
      Error(node, path,
            "'" + *text + "' is out of range; expected " + std::to_string(min_s) + " s to " +
                std::to_string(max_s) + " s");
      return std::nullopt;
    }
    return seconds;
  }
  std::vector<std::string> StringList(const YAML::Node& node, const std::string& path) {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(node.Scalar());
      return out;
    }
    if (!node.IsSequence()) {
      Error(node, path, "expected a list of strings");
      return out;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (auto s = String(node[i], path + "[" + std::to_string(i) + "]")) out.push_back(*s);
    }
    return out;
  }
  // A file or directory that must exist inside base_dir (when given).
  std::optional<std::string> RelativePath(const YAML::Node& node, const std::string& path,
                                          bool directory) {
    auto text = String(node, path);
    if (!text) return std::nullopt;
    auto normal = NormaliseRelative(*text);
    if (!normal) {
      Error(node, path,
            "'" + *text + "' must be a path relative to the manifest's directory, inside it");
      return std::nullopt;
    }
    if (!options_.base_dir.empty()) {
      std::error_code ec;
      const fs::path full = fs::path(options_.base_dir) / *normal;
      const fs::file_status status = fs::symlink_status(full, ec);
      const bool ok = !ec && (directory ? fs::is_directory(status) : fs::is_regular_file(status));
      if (!ok) {
        Error(node, path,
              "'" + *normal + "' is not " + (directory ? "a directory" : "a regular file") +
                  " beside the manifest");
        return std::nullopt;
      }
    }
    return normal;
  }
  bool FileExists(const std::string& relative) const {
    std::error_code ec;
    return fs::is_regular_file(fs::symlink_status(fs::path(options_.base_dir) / relative, ec));
  }

  void ParseRoot(const YAML::Node& root) {
    if (!ExpectMap(root, "manifest",
                   {"app", "stage", "functions", "routes", "authorizers", "usage_plans", "cors",
                    "waf", "mtls", "secrets", "alerts", "webhooks"})) {
      return;
    }
    if (auto app = RequiredString(root, "app", "manifest")) {
      if (ValidateAppName(*app).ok()) {
        manifest_.app = *app;
      } else {
        Error(root["app"], "app", std::string(ValidateAppName(*app).message()));
      }
    }
    if (!options_.stage.empty()) {
      if (core::Status s = ValidateStageName(options_.stage); !s.ok()) {
        Error({}, "--stage: " + s.message());
      } else {
        manifest_.stage = options_.stage;
      }
    } else if (auto stage = RequiredString(root, "stage", "manifest")) {
      if (core::Status s = ValidateStageName(*stage); !s.ok()) {
        Error(root["stage"], "stage", s.message());
      } else {
        manifest_.stage = *stage;
      }
    }
    // Names first: sections refer to each other in any order.
    CollectNames(root["functions"], function_names_);
    CollectNames(root["secrets"], secret_names_);
    CollectNames(root["authorizers"], authorizer_names_);
    CollectNames(root["usage_plans"], plan_names_);

    if (const YAML::Node functions = root["functions"]) ParseFunctions(functions);
    if (const YAML::Node secrets = root["secrets"]) ParseSecrets(secrets);
    if (const YAML::Node authorizers = root["authorizers"]) ParseAuthorizers(authorizers);
    if (const YAML::Node plans = root["usage_plans"]) ParseUsagePlans(plans);
    if (const YAML::Node routes = root["routes"]) ParseRoutes(routes);
    if (const YAML::Node webhooks = root["webhooks"]) ParseWebhooks(webhooks);
    if (const YAML::Node alerts = root["alerts"]) ParseAlerts(alerts);
    if (const YAML::Node cors = root["cors"]) ParseCors(cors);
    if (const YAML::Node waf = root["waf"]) manifest_.waf = ParseWaf(waf, "waf");
    if (const YAML::Node mtls = root["mtls"]) {
      if (ExpectMap(mtls, "mtls", {"truststore"})) {
        if (!mtls["truststore"]) {
          Error(mtls, "mtls", "'truststore' is required: a PEM file of the CAs clients chain to");
        } else if (auto file = RelativePath(mtls["truststore"], "mtls.truststore", false)) {
          manifest_.mtls_truststore = *file;
        }
      }
    }
  }

  WafSpec ParseWaf(const YAML::Node& node, const std::string& path) {
    WafSpec w;
    w.at = LocationOf(node);
    if (!ExpectMap(node, path,
                   {"mode", "paranoia", "anomaly_threshold", "exclude_rules", "exclude_tags"})) {
      return w;
    }
    if (const YAML::Node mode = node["mode"]) {
      if (auto text = String(mode, path + ".mode")) {
        if (*text != "off" && *text != "detect" && *text != "block") {
          Error(mode, path + ".mode", "expected off, detect or block, not '" + *text + "'");
        } else {
          w.mode = *text;
        }
      }
    }
    if (const YAML::Node paranoia = node["paranoia"]) {
      if (auto n = Integer(paranoia, path + ".paranoia", 1, 4)) w.paranoia = static_cast<int>(*n);
    }
    if (const YAML::Node threshold = node["anomaly_threshold"]) {
      if (auto n = Integer(threshold, path + ".anomaly_threshold", 1, 1000)) {
        w.anomaly_threshold = static_cast<int>(*n);
      }
    }
    if (const YAML::Node ids = node["exclude_rules"]) {
      if (!ids.IsSequence()) {
        Error(ids, path + ".exclude_rules", "expected a list of rule ids");
      } else {
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if (auto id = Integer(ids[i], path + ".exclude_rules[" + std::to_string(i) + "]", 1,
                                99'999'999)) {
            w.exclude_rules.push_back(static_cast<int>(*id));
          }
        }
      }
    }
    if (const YAML::Node tags = node["exclude_tags"]) {
      w.exclude_tags = StringList(tags, path + ".exclude_tags");
    }
    return w;
  }

  // YAML -> JSON with YAML's scalar types (for JSON Schemas written inline): quoted scalars are
  // strings; plain ones are null, booleans, integers or numbers when they read as such.
  boost::json::value TypedJson(const YAML::Node& node) {
    if (node.IsMap()) {
      boost::json::object object;
      for (const auto& entry : node) {
        object[entry.first.IsScalar() ? entry.first.Scalar() : ""] = TypedJson(entry.second);
      }
      return object;
    }
    if (node.IsSequence()) {
      boost::json::array array;
      for (const auto& item : node) array.push_back(TypedJson(item));
      return array;
    }
    if (!node.IsScalar()) return nullptr;
    const std::string& text = node.Scalar();
    if (node.Tag() == "!") return boost::json::string(text);
    if (text == "null" || text == "~") return nullptr;
    if (text == "true") return true;
    if (text == "false") return false;
    std::int64_t n = 0;
    if (auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        ec == std::errc() && end == text.data() + text.size()) {
      return n;
    }
    double d = 0;
    if (auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
        ec == std::errc() && end == text.data() + text.size() && std::isfinite(d)) {
      return d;
    }
    return boost::json::string(text);
  }

  void ParseParameters(const YAML::Node& node, const std::string& path, RouteSpec& r) {
    if (!ExpectMap(node, path, {"query", "headers"})) return;
    for (const bool header : {false, true}) {
      const std::string where = path + (header ? ".headers" : ".query");
      const YAML::Node section = node[header ? "headers" : "query"];
      if (!section) continue;
      if (!section.IsMap()) {
        Error(section, where, "expected a map of parameter names to {required, schema}");
        continue;
      }
      for (const auto& entry : section) {
        ParameterSpec p;
        p.header = header;
        p.name = entry.first.IsScalar() ? entry.first.Scalar() : "";
        if (header) {
          for (char& c : p.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        const std::string at = where + "." + p.name;
        bool valid_name = !p.name.empty() && p.name.size() <= 128;
        for (char c : p.name) {
          const auto u = static_cast<unsigned char>(c);
          if (u <= 0x20 || u == 0x7f || (header && (c == ':' || c == '"'))) valid_name = false;
        }
        if (!valid_name) {
          Error(entry.first, where, "'" + p.name + "' is not a parameter name");
          continue;
        }
        const YAML::Node spec = entry.second;
        if (!ExpectMap(spec, at, {"required", "schema"})) continue;
        if (const YAML::Node required = spec["required"]) {
          if (!required.IsScalar() ||
              (required.Scalar() != "true" && required.Scalar() != "false")) {
            Error(required, at + ".required", "expected true or false");
          } else {
            p.required = required.Scalar() == "true";
          }
        }
        if (const YAML::Node schema = spec["schema"]) {
          if (!schema.IsMap()) {
            Error(schema, at + ".schema", "expected a JSON Schema written as a map");
          } else {
            p.schema = boost::json::serialize(TypedJson(schema));
          }
        }
        r.parameters.push_back(std::move(p));
      }
    }
  }

  void ParseCors(const YAML::Node& node) {
    if (!ExpectMap(node, "cors",
                   {"allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age",
                    "allow_credentials"})) {
      return;
    }
    CorsSpec c;
    c.at = LocationOf(node);
    if (!node["allow_origins"]) {
      Error(node, "cors", "'allow_origins' is required: the origins browsers may call from");
    } else {
      c.allow_origins = StringList(node["allow_origins"], "cors.allow_origins");
      for (const std::string& origin : c.allow_origins) {
        const std::size_t scheme = origin.find("://");
        if (origin != "*" &&
            (!(origin.starts_with("https://") || origin.starts_with("http://")) ||
             origin.find('/', scheme + 3) != std::string::npos || origin.size() == scheme + 3)) {
          Error(node["allow_origins"], "cors.allow_origins",
                "'" + origin + "' is not an origin: scheme://host[:port], without a path, or *");
        }
      }
    }
    if (const YAML::Node m = node["allow_methods"]) {
      static const std::set<std::string> kMethods = {"GET",    "POST", "PUT",    "PATCH",
                                                     "DELETE", "HEAD", "OPTIONS"};
      for (const std::string& method : StringList(m, "cors.allow_methods")) {
        if (!kMethods.contains(method)) {
          Error(m, "cors.allow_methods", "unknown method '" + method + "'");
        } else {
          c.allow_methods.push_back(method);
        }
      }
    }
    auto header_names = [&](const char* key) {
      std::vector<std::string> out;
      if (const YAML::Node h = node[key]) {
        for (std::string name : StringList(h, std::string("cors.") + key)) {
          const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) ||
                   std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
          });
          if (!token) {
            Error(h, std::string("cors.") + key, "'" + name + "' is not a header name");
            continue;
          }
          for (char& ch : name)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          out.push_back(std::move(name));
        }
      }
      return out;
    };
    c.allow_headers = header_names("allow_headers");
    c.expose_headers = header_names("expose_headers");
    if (const YAML::Node age = node["max_age"]) {
      if (auto seconds = Duration(age, "cors.max_age", 0, 86400)) c.max_age_s = *seconds;
    }
    if (const YAML::Node credentials = node["allow_credentials"]) {
      if (auto flag = Flag(credentials, "cors.allow_credentials")) c.allow_credentials = *flag;
    }
    if (c.allow_credentials &&
        std::find(c.allow_origins.begin(), c.allow_origins.end(), "*") != c.allow_origins.end()) {
      Error(node, "cors", "allow_credentials cannot be used with the origin '*'");
    }
    manifest_.cors = std::move(c);
  }

  std::optional<bool> Flag(const YAML::Node& node, const std::string& path) {
    auto text = String(node, path);
    if (!text) return std::nullopt;
    if (*text == "true") return true;
    if (*text == "false") return false;
    Error(node, path, "expected true or false, not '" + *text + "'");
    return std::nullopt;
  }

  void IdentitySources(const YAML::Node& node, const std::string& path,
                       std::vector<std::string>& out) {
    for (const std::string& source : StringList(node, path)) {
      const bool known = source.starts_with("$request.header.") ||
                         source.starts_with("$request.querystring.") ||
                         source == "$context.routeKey" || source == "$context.httpMethod" ||
                         source == "$context.path" || source == "$context.sourceIp";
      if (!known || source.ends_with(".")) {
        Error(node, path,
              "'" + source +
                  "' is not an identity source; expected $request.header.NAME, "
                  "$request.querystring.NAME or $context.routeKey|httpMethod|path|sourceIp");
        continue;
      }
      out.push_back(source);
    }
  }

  static void CollectNames(const YAML::Node& section, std::set<std::string>& names) {
    if (!section || !section.IsMap()) return;
    for (const auto& entry : section) {
      if (entry.first.IsScalar()) names.insert(entry.first.Scalar());
    }
  }

  void ParseFunctions(const YAML::Node& section) {
    if (!section.IsMap()) {
      Error(section, "functions", "expected a map of function names to their definitions");
      return;
    }
    for (const auto& entry : section) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string path = "functions." + name;
      if (!IsFunctionKey(name)) {
        Error(entry.first, "functions",
              "'" + name + "' is not a function name: use letters, digits, '-' and '_'");
        continue;
      }
      if (!manifest_.app.empty() && !manifest_.stage.empty() &&
          QualifiedFunctionName(manifest_.app, manifest_.stage, name).size() > 64) {
        Error(entry.first, path,
              "the function's full name '" +
                  QualifiedFunctionName(manifest_.app, manifest_.stage, name) +
                  "' is longer than 64 characters; shorten the app, stage or function name");
      }
      ParseFunction(entry.second, name, path);
    }
  }

  void ParseFunction(const YAML::Node& node, const std::string& name, const std::string& path) {
    if (!ExpectMap(node, path,
                   {"runtime", "handler", "code", "memory", "timeout", "concurrency", "environment",
                    "egress", "policy"})) {
      return;
    }
    FunctionSpec f;
    f.name = name;
    f.at = LocationOf(node);
    bool ok = true;
    if (auto runtime = RequiredString(node, "runtime", path)) {
      auto kind = runtime::ParseRuntime(*runtime);
      if (kind.ok()) {
        f.runtime = *kind;
      } else {
        Error(node["runtime"], path + ".runtime",
              "unknown runtime '" + *runtime + "'; expected nodejs20, python3 or provided");
        ok = false;
      }
    } else {
      ok = false;
    }
    if (const YAML::Node handler = node["handler"]) {
      if (auto h = String(handler, path + ".handler")) f.handler = *h;
    } else if (ok && f.runtime != runtime::RuntimeKind::kProvided) {
      Error(node, path,
            "'handler' is required for the " + std::string(runtime::RuntimeName(f.runtime)) +
                " runtime");
    }
    if (!node["code"]) {
      Error(node, path, "'code' is required: the function's directory, relative to the manifest");
      ok = false;
    } else if (auto code = RelativePath(node["code"], path + ".code", /*directory=*/true)) {
      f.code = *code;
    } else {
      ok = false;
    }
    if (const YAML::Node memory = node["memory"]) {
      if (auto mb = Integer(memory, path + ".memory", 128, 10240)) f.memory_mb = *mb;
    }
    if (const YAML::Node timeout = node["timeout"]) {
      if (auto s = Integer(timeout, path + ".timeout", 1, 900)) f.timeout_s = *s;
    }
    if (const YAML::Node concurrency = node["concurrency"]) {
      if (auto n = Integer(concurrency, path + ".concurrency", 0, 1000)) f.concurrency = *n;
    }
    if (const YAML::Node env = node["environment"]) {
      if (!env.IsMap()) {
        Error(env, path + ".environment", "expected a map of variable names to strings");
      } else {
        for (const auto& var : env) {
          auto key = String(var.first, path + ".environment");
          auto value = String(var.second, path + ".environment." + (key ? *key : ""));
          if (key && value) f.environment[*key] = *value;
        }
      }
    }
    if (const YAML::Node egress = node["egress"]) {
      f.egress = StringList(egress, path + ".egress");
    }
    if (const YAML::Node policy = node["policy"]) {
      f.policy = ParsePolicy(policy, path + ".policy");
    }
    if (ok) {
      CheckHandler(node, path, f);
      // Everything else the runtime would refuse, said where the function is written.
      runtime::FunctionConfig config = ToConfig(f);
      if (core::Status valid = runtime::ValidateFunction(config); !valid.ok()) {
        Error(node, path, valid.message());
      }
    }
    manifest_.functions.emplace(name, std::move(f));
  }

  runtime::FunctionConfig ToConfig(const FunctionSpec& f) const {
    runtime::FunctionConfig config;
    config.name = manifest_.app.empty() || manifest_.stage.empty()
                      ? f.name
                      : QualifiedFunctionName(manifest_.app, manifest_.stage, f.name);
    if (config.name.size() > 64) config.name = f.name;  // reported already
    config.runtime = f.runtime;
    config.handler = f.handler;
    config.code_dir = "/" + f.code;  // any absolute directory: the real one is chosen at deploy
    config.memory_mb = f.memory_mb;
    config.timeout = std::chrono::seconds(f.timeout_s);
    config.environment = f.environment;
    config.reserved_concurrency = f.concurrency;
    config.egress = f.egress;
    return config;
  }

  // The handler names a file the runtime will load (checked when the files are at hand).
  void CheckHandler(const YAML::Node& node, const std::string& path, const FunctionSpec& f) {
    if (options_.base_dir.empty()) return;
    const YAML::Node at = node["handler"] ? node["handler"] : node;
    if (f.runtime == runtime::RuntimeKind::kProvided) {
      if (!FileExists(f.code + "/bootstrap")) {
        Error(at, path, "the provided runtime runs '" + f.code + "/bootstrap', which is missing");
      }
      return;
    }
    const std::size_t dot = f.handler.rfind('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == f.handler.size()) {
      Error(at, path + ".handler",
            "'" + f.handler + "' is not a handler: expected " +
                (f.runtime == runtime::RuntimeKind::kPython3 ? "module.function" : "file.export"));
      return;
    }
    std::string module = f.handler.substr(0, dot);
    std::vector<std::string> candidates;
    if (f.runtime == runtime::RuntimeKind::kPython3) {
      std::replace(module.begin(), module.end(), '.', '/');
      candidates = {module + ".py", module + "/__init__.py"};
    } else {
      candidates = {module + ".mjs", module + ".js", module + ".cjs"};
    }
    auto inside = NormaliseRelative(f.code + "/" + module);
    bool found = false;
    if (inside && inside->starts_with(f.code + "/")) {
      for (const std::string& candidate : candidates) {
        if (FileExists(f.code + "/" + candidate)) found = true;
      }
    }
    if (!found) {
      Error(at, path + ".handler",
            "handler '" + f.handler + "' needs " + f.code + "/" + Join(candidates, " or ") +
                ", which is missing");
    }
  }

  // YAML (as written) -> JSON, every scalar a string: IAM's values are strings.
  boost::json::value ToJson(const YAML::Node& node) {
    if (node.IsMap()) {
      boost::json::object object;
      for (const auto& entry : node) {
        object[entry.first.IsScalar() ? entry.first.Scalar() : ""] = ToJson(entry.second);
      }
      return object;
    }
    if (node.IsSequence()) {
      boost::json::array array;
      for (const auto& item : node) array.push_back(ToJson(item));
      return array;
    }
    if (node.IsScalar()) return boost::json::string(node.Scalar());
    return nullptr;
  }

  // Appends the ARNs `value` stands for to `out`; a problem, or "".
  std::string ExpandResource(const std::string& value, boost::json::array& out) {
    const std::string& region = options_.region;
    const std::string& account = options_.account_id;
    auto short_name = [&](std::string_view prefix) { return value.substr(prefix.size()); };
    if (value == "*" || value.starts_with("arn:")) {
      out.push_back(boost::json::string(value));
    } else if (value.starts_with("secret:")) {
      const std::string name = short_name("secret:");
      if (!secret_names_.contains(name)) {
        return "'" + value + "' names a secret that `secrets` does not define";
      }
      out.push_back(boost::json::string(
          "arn:aws:secretsmanager:" + region + ":" + account +
          ":secret:" + QualifiedSecretName(manifest_.app, manifest_.stage, name) + "-??????"));
    } else if (value.starts_with("function:")) {
      const std::string name = short_name("function:");
      if (!function_names_.contains(name)) {
        return "'" + value + "' names a function that `functions` does not define";
      }
      const std::string arn = "arn:aws:lambda:" + region + ":" + account + ":function:" +
                              QualifiedFunctionName(manifest_.app, manifest_.stage, name);
      out.push_back(boost::json::string(arn));
      out.push_back(boost::json::string(arn + ":*"));
    } else if (value.starts_with("queue:")) {
      const std::string name = short_name("queue:");
      if (!IsFunctionKey(name)) return "'" + value + "' is not a queue name";
      out.push_back(
          boost::json::string("arn:aws:sqs:" + region + ":" + account + ":" +
                              QualifiedFunctionName(manifest_.app, manifest_.stage, name)));
    } else {
      return "'" + value +
             "' is not a resource: expected an ARN, '*', or secret:NAME, function:NAME, "
             "queue:NAME";
    }
    return "";
  }

  std::string ParsePolicy(const YAML::Node& node, const std::string& path,
                          policy::PolicyType type = policy::PolicyType::kIdentity) {
    if (!node.IsSequence()) {
      Error(node, path, "expected a list of IAM statements (Effect, Action, Resource, ...)");
      return "";
    }
    boost::json::array statements;
    bool ok = true;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const YAML::Node statement = node[i];
      const std::string spath = path + "[" + std::to_string(i) + "]";
      if (!statement.IsMap()) {
        Error(statement, spath, "expected an IAM statement (a map with Effect, Action, Resource)");
        ok = false;
        continue;
      }
      boost::json::value json = ToJson(statement);
      boost::json::object& object = json.as_object();
      bool expanded_ok = true;
      for (const char* key : {"Resource", "NotResource"}) {
        const YAML::Node resources = statement[key];
        if (!resources) continue;
        boost::json::array expanded;
        for (const std::string& value : StringList(resources, spath + "." + key)) {
          if (std::string problem = ExpandResource(value, expanded); !problem.empty()) {
            Error(resources, spath + "." + key, problem);
            expanded_ok = false;
          }
        }
        object[key] = std::move(expanded);
      }
      // In a resource policy, Principal: {AWS: function:NAME} is the role of one of the app's
      // functions.
      if (type == policy::PolicyType::kResource) {
        if (const YAML::Node principal = statement["Principal"];
            principal && principal.IsMap() && principal["AWS"]) {
          boost::json::array expanded;
          for (const std::string& value : StringList(principal["AWS"], spath + ".Principal.AWS")) {
            if (!value.starts_with("function:")) {
              expanded.push_back(boost::json::string(value));
              continue;
            }
            const std::string name = value.substr(std::string_view("function:").size());
            if (!function_names_.contains(name)) {
              Error(principal["AWS"], spath + ".Principal.AWS",
                    "'" + value + "' names a function that `functions` does not define");
              expanded_ok = false;
              continue;
            }
            expanded.push_back(
                boost::json::string("arn:aws:iam::" + options_.account_id + ":role/" +
                                    QualifiedFunctionName(manifest_.app, manifest_.stage, name)));
          }
          object["Principal"].as_object()["AWS"] = std::move(expanded);
        }
      }
      if (!expanded_ok) {
        ok = false;
        continue;
      }
      boost::json::object one{{"Version", "2012-10-17"}, {"Statement", boost::json::array{object}}};
      auto parsed = policy::ParsePolicy(boost::json::serialize(one), {.type = type});
      if (!parsed.ok()) {
        std::string message = parsed.status().message();
        // The validator numbers statements within the one-statement document it was given.
        if (message.starts_with("statement ")) {
          if (const std::size_t colon = message.find(": "); colon != std::string::npos) {
            message = message.substr(colon + 2);
          }
        }
        Error(statement, spath, message);
        ok = false;
        continue;
      }
      statements.push_back(std::move(object));
    }
    if (!ok || statements.empty()) return "";
    const std::string document = boost::json::serialize(
        boost::json::object{{"Version", "2012-10-17"}, {"Statement", std::move(statements)}});
    if (auto whole = policy::ParsePolicy(document, {.type = type}); !whole.ok()) {
      Error(node, path, whole.status().message());
      return "";
    }
    return document;
  }

  void ParseSecrets(const YAML::Node& section) {
    if (!section.IsMap()) {
      Error(section, "secrets", "expected a map of secret names to their definitions");
      return;
    }
    for (const auto& entry : section) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string path = "secrets." + name;
      if (!IsSecretKey(name)) {
        Error(entry.first, "secrets",
              "'" + name + "' is not a secret name: use letters, digits and /_+=.@-");
        continue;
      }
      SecretSpec s;
      s.name = name;
      s.at = LocationOf(entry.first);
      const YAML::Node node = entry.second;
      if (node.IsNull()) {
        manifest_.secrets.emplace(name, std::move(s));
        continue;
      }
      if (!ExpectMap(node, path, {"description", "rotation", "policy"})) continue;
      if (const YAML::Node policy = node["policy"]) {
        s.policy = ParsePolicy(policy, path + ".policy", policy::PolicyType::kResource);
        if (!s.policy.empty()) {
          auto review = secrets::ReviewResourcePolicy(s.policy);
          if (review.ok() && review->is_public) {
            Error(policy, path + ".policy",
                  "this resource policy allows every principal (public); name the principals");
          }
        }
      }
      if (const YAML::Node d = node["description"]) {
        if (auto text = String(d, path + ".description")) s.description = *text;
      }
      if (const YAML::Node rotation = node["rotation"]) {
        if (ExpectMap(rotation, path + ".rotation", {"function", "every"})) {
          if (auto fn = RequiredString(rotation, "function", path + ".rotation")) {
            if (CheckFunctionRef(rotation["function"], path + ".rotation.function", *fn)) {
              s.rotation_function = *fn;
            }
          }
          if (!rotation["every"]) {
            Error(rotation, path + ".rotation", "'every' is required (for example 30d)");
          } else if (auto every = Duration(rotation["every"], path + ".rotation.every", 4 * 3600,
                                           1000 * 86400)) {
            s.rotation_every_s = *every;
          }
        }
      }
      manifest_.secrets.emplace(name, std::move(s));
    }
  }

  bool CheckFunctionRef(const YAML::Node& at, const std::string& path, const std::string& name) {
    if (function_names_.contains(name)) return true;
    Error(at, path, "'" + name + "' is not a function of this manifest" + Known(function_names_));
    return false;
  }
  static std::string Known(const std::set<std::string>& names) {
    if (names.empty()) return " (it defines none)";
    return " (it defines " + Join(std::vector<std::string>(names.begin(), names.end()), ", ") + ")";
  }

  void ParseAuthorizers(const YAML::Node& section) {
    if (!section.IsMap()) {
      Error(section, "authorizers", "expected a map of authorizer names to their definitions");
      return;
    }
    for (const auto& entry : section) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string path = "authorizers." + name;
      const YAML::Node node = entry.second;
      if (!IsFunctionKey(name)) {
        Error(entry.first, "authorizers", "'" + name + "' is not an authorizer name");
        continue;
      }
      AuthorizerSpec a;
      a.name = name;
      a.at = LocationOf(entry.first);
      if (!node.IsMap()) {
        Error(node, path, "expected a map with 'type' (jwt or function)");
        continue;
      }
      auto type = RequiredString(node, "type", path);
      if (!type) continue;
      if (*type == "jwt") {
        a.type = AuthorizerSpec::Type::kJwt;
        if (!ExpectMap(node, path,
                       {"type", "issuer", "audience", "jwks", "identity_source", "leeway"})) {
          continue;
        }
        if (auto issuer = RequiredString(node, "issuer", path)) {
          if (!issuer->starts_with("https://")) {
            Error(node["issuer"], path + ".issuer", "the issuer must be an https:// URL");
          }
          a.issuer = *issuer;
        }
        if (!node["audience"]) {
          Error(node, path, "'audience' is required: the audiences a token must be issued for");
        } else {
          a.audience = StringList(node["audience"], path + ".audience");
          if (a.audience.empty()) Error(node["audience"], path + ".audience", "name at least one");
        }
        if (const YAML::Node source = node["identity_source"]) {
          IdentitySources(source, path + ".identity_source", a.identity_sources);
          if (a.identity_sources.size() > 1 ||
              (a.identity_sources.size() == 1 && a.identity_sources[0].starts_with("$context."))) {
            Error(source, path + ".identity_source",
                  "a JWT comes from one header or query parameter");
          }
        }
        if (const YAML::Node leeway = node["leeway"]) {
          if (auto seconds = Duration(leeway, path + ".leeway", 0, 300)) a.leeway_s = *seconds;
        }
        if (!node["jwks"]) {
          Error(node, path,
                "'jwks' is required: a JWKS file beside the manifest, the keys inline, or an "
                "https URL");
        } else if (node["jwks"].IsMap()) {
          const boost::json::value keys = ToJson(node["jwks"]);
          const boost::json::value* list = keys.as_object().if_contains("keys");
          if (list == nullptr || !list->is_array() || list->as_array().empty()) {
            Error(node["jwks"], path + ".jwks", "an inline JWK Set needs a non-empty 'keys' list");
          } else {
            a.jwks_inline = boost::json::serialize(keys);
          }
        } else if (auto jwks = String(node["jwks"], path + ".jwks")) {
          if (jwks->starts_with("https://")) {
            a.jwks = *jwks;
          } else if (auto file = RelativePath(node["jwks"], path + ".jwks", false)) {
            a.jwks = *file;
            CheckJsonFile(node["jwks"], path + ".jwks", *file);
          }
        }
      } else if (*type == "function") {
        a.type = AuthorizerSpec::Type::kFunction;
        if (!ExpectMap(node, path, {"type", "function", "ttl", "identity_source", "response"})) {
          continue;
        }
        if (const YAML::Node source = node["identity_source"]) {
          IdentitySources(source, path + ".identity_source", a.identity_sources);
          if (a.identity_sources.empty()) {
            Error(source, path + ".identity_source", "name at least one identity source");
          }
        } else {
          a.identity_sources.push_back("$request.header.Authorization");
        }
        if (const YAML::Node response = node["response"]) {
          if (auto format = String(response, path + ".response")) {
            if (*format == "simple" || *format == "iam") {
              a.simple_responses = *format == "simple";
            } else {
              Error(response, path + ".response",
                    "unknown response format '" + *format + "'; expected simple or iam");
            }
          }
        }
        if (auto fn = RequiredString(node, "function", path)) {
          if (CheckFunctionRef(node["function"], path + ".function", *fn)) a.function = *fn;
        }
        if (const YAML::Node ttl = node["ttl"]) {
          if (auto s = Duration(ttl, path + ".ttl", 0, 3600)) a.ttl_s = *s;
        }
      } else {
        Error(node["type"], path + ".type",
              "unknown type '" + *type + "'; expected jwt or function");
        continue;
      }
      manifest_.authorizers.emplace(name, std::move(a));
    }
  }

  void CheckJsonFile(const YAML::Node& at, const std::string& path, const std::string& file) {
    if (options_.base_dir.empty()) return;
    std::error_code ec;
    const fs::path full = fs::path(options_.base_dir) / file;
    const auto size = fs::file_size(full, ec);
    if (ec || size > kMaxManifestBytes) {
      Error(at, path, "'" + file + "' cannot be read or is over 1 MiB");
      return;
    }
    std::string text(size, '\0');
    if (FILE* f = std::fopen(full.c_str(), "rb")) {
      text.resize(std::fread(text.data(), 1, text.size(), f));
      std::fclose(f);
    }
    boost::system::error_code json_ec;
    const boost::json::value value = boost::json::parse(text, json_ec);
    if (json_ec || !(value.is_object() || value.is_bool())) {
      Error(at, path, "'" + file + "' is not a JSON object");
    }
  }

  void ParseUsagePlans(const YAML::Node& section) {
    if (!section.IsMap()) {
      Error(section, "usage_plans", "expected a map of plan names to their limits");
      return;
    }
    for (const auto& entry : section) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string path = "usage_plans." + name;
      const YAML::Node node = entry.second;
      if (!IsFunctionKey(name)) {
        Error(entry.first, "usage_plans", "'" + name + "' is not a usage plan name");
        continue;
      }
      if (!ExpectMap(node, path, {"rate", "burst", "quota"})) continue;
      UsagePlanSpec p;
      p.name = name;
      p.at = LocationOf(entry.first);
      if (!node["rate"]) {
        Error(node, path, "'rate' is required: requests per second");
      } else if (auto rate = Number(node["rate"], path + ".rate", 0.001, 1e6)) {
        p.rate = *rate;
      }
      if (!node["burst"]) {
        Error(node, path, "'burst' is required: requests at once");
      } else if (auto burst = Integer(node["burst"], path + ".burst", 1, 1000000)) {
        p.burst = *burst;
      }
      if (const YAML::Node quota = node["quota"]) {
        if (ExpectMap(quota, path + ".quota", {"limit", "period", "offset"})) {
          if (!quota["limit"]) {
            Error(quota, path + ".quota", "'limit' is required");
          } else if (auto limit =
                         Integer(quota["limit"], path + ".quota.limit", 1, 1'000'000'000'000)) {
            p.quota_limit = *limit;
          }
          if (auto period = RequiredString(quota, "period", path + ".quota")) {
            if (*period == "day" || *period == "week" || *period == "month") {
              p.quota_period = *period;
            } else {
              Error(quota["period"], path + ".quota.period",
                    "unknown period '" + *period + "'; expected day, week or month");
            }
          }
          if (const YAML::Node offset = quota["offset"]) {
            if (auto n = Integer(offset, path + ".quota.offset", 0, 1'000'000'000'000)) {
              p.quota_offset = *n;
              if (p.quota_limit && static_cast<std::uint64_t>(*n) >= *p.quota_limit) {
                Error(offset, path + ".quota.offset", "the offset must be below the limit");
              }
            }
          }
        }
      }
      manifest_.usage_plans.emplace(name, std::move(p));
    }
  }

  void ParseRoutes(const YAML::Node& section) {
    if (!section.IsSequence()) {
      Error(section, "routes", "expected a list of routes");
      return;
    }
    std::map<std::string, Location> seen;  // "GET /a/{}" -> where
    for (std::size_t i = 0; i < section.size(); ++i) {
      const YAML::Node node = section[i];
      const std::string path = "routes[" + std::to_string(i) + "]";
      if (!ExpectMap(node, path,
                     {"route", "function", "auth", "schema", "parameters", "throttle", "waf"})) {
        continue;
      }
      RouteSpec r;
      r.at = LocationOf(node);
      if (auto route = RequiredString(node, "route", path)) {
        if (std::string problem = ParseRouteKey(*route, r); !problem.empty()) {
          Error(node["route"], path + ".route", problem);
        } else {
          const std::string shape = RouteShape(r);
          if (auto [it, inserted] = seen.emplace(shape, r.at); !inserted) {
            Error(
                node["route"], path + ".route",
                "'" + *route + "' duplicates the route at line " + std::to_string(it->second.line));
          }
        }
      }
      if (auto fn = RequiredString(node, "function", path)) {
        if (CheckFunctionRef(node["function"], path + ".function", *fn)) r.function = *fn;
      }
      if (!node["auth"]) {
        Error(node, path,
              "'auth' is required: every route says how it is authenticated (jwt, api_key, "
              "authorizer, iam), or `auth: none` to make it public on purpose");
      } else {
        ParseAuth(node["auth"], path + ".auth", r.auth);
      }
      if (const YAML::Node schema = node["schema"]) {
        if (auto file = RelativePath(schema, path + ".schema", false)) {
          r.schema = *file;
          CheckJsonFile(schema, path + ".schema", *file);
        }
      }
      if (const YAML::Node throttle = node["throttle"]) {
        if (ExpectMap(throttle, path + ".throttle", {"rate", "burst"})) {
          if (!throttle["rate"] || !throttle["burst"]) {
            Error(throttle, path + ".throttle", "'rate' and 'burst' are required");
          } else {
            auto rate = Number(throttle["rate"], path + ".throttle.rate", 0.001, 1e6);
            auto burst = Integer(throttle["burst"], path + ".throttle.burst", 1, 1000000);
            if (rate && burst) {
              r.throttle_rate = *rate;
              r.throttle_burst = static_cast<std::uint32_t>(*burst);
            }
          }
        }
      }
      if (const YAML::Node parameters = node["parameters"]) {
        ParseParameters(parameters, path + ".parameters", r);
      }
      if (const YAML::Node waf = node["waf"]) r.waf = ParseWaf(waf, path + ".waf");
      manifest_.routes.push_back(std::move(r));
    }
  }

  // "POST /notes/{id}" -> method and path; a problem, or "".
  static std::string ParseRouteKey(const std::string& text, RouteSpec& r) {
    if (text == "$default") {  // what no other route matches (the gateway's catch-all)
      r.method = "ANY";
      r.path = text;
      return "";
    }
    const std::size_t space = text.find(' ');
    if (space == std::string::npos) {
      return "expected 'METHOD /path', for example 'GET /notes/{id}'";
    }
    r.method = text.substr(0, space);
    r.path = text.substr(space + 1);
    static const std::set<std::string> kMethods = {"GET",    "POST", "PUT",     "PATCH",
                                                   "DELETE", "HEAD", "OPTIONS", "ANY"};
    if (!kMethods.contains(r.method)) {
      return "unknown method '" + r.method +
             "'; expected GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY";
    }
    if (r.path.empty() || r.path[0] != '/') return "the path must start with '/'";
    if (r.path.size() > 1 && r.path.back() == '/') return "the path must not end with '/'";
    std::set<std::string> params;
    std::size_t start = 1;
    while (start <= r.path.size() && r.path.size() > 1) {
      std::size_t end = r.path.find('/', start);
      if (end == std::string::npos) end = r.path.size();
      const std::string segment = r.path.substr(start, end - start);
      if (segment.empty()) return "the path has an empty segment";
      if (segment.front() == '{') {
        if (segment.back() != '}' || segment.size() < 3) {
          return "'" + segment + "' is not a parameter: expected {name} or {name+}";
        }
        std::string name = segment.substr(1, segment.size() - 2);
        if (name.back() == '+') {
          if (end != r.path.size()) return "a greedy parameter {" + name + "} must come last";
          name.pop_back();
        }
        if (!IsFunctionKey(name)) return "'" + name + "' is not a parameter name";
        if (!params.insert(name).second) return "the parameter {" + name + "} appears twice";
      } else {
        for (char c : segment) {
          const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') ||
                          std::string_view("-._~!$&'()*,;=:@").find(c) != std::string_view::npos;
          if (!ok) return "'" + segment + "' holds a character a path segment cannot";
        }
      }
      start = end + 1;
    }
    return "";
  }
  // Parameter names do not tell routes apart.
  static std::string RouteShape(const RouteSpec& r) {
    std::string shape = r.method + " ";
    bool in_param = false;
    for (char c : r.path) {
      if (c == '{') {
        in_param = true;
        shape += "{";
      } else if (c == '}') {
        in_param = false;
        shape += "}";
      } else if (!in_param) {
        shape += c;
      } else if (c == '+') {
        shape += "+";
      }
    }
    return shape;
  }

  void ParseAuth(const YAML::Node& node, const std::string& path, AuthSpec& auth) {
    if (node.IsScalar()) {
      if (node.Scalar() == "none") {
        auth.kind = AuthSpec::Kind::kNone;
      } else if (node.Scalar() == "iam") {
        auth.kind = AuthSpec::Kind::kIam;
      } else {
        Error(node, path,
              "expected `none`, `iam`, or a map with one of jwt, api_key, authorizer, iam");
      }
      return;
    }
    if (!ExpectMap(node, path, {"jwt", "scopes", "api_key", "usage_plan", "authorizer", "iam"})) {
      return;
    }
    const int kinds = (node["jwt"] ? 1 : 0) + (node["api_key"] ? 1 : 0) +
                      (node["authorizer"] ? 1 : 0) + (node["iam"] ? 1 : 0);
    if (kinds != 1) {
      Error(node, path, "name exactly one of jwt, api_key, authorizer, iam");
      return;
    }
    if (const YAML::Node jwt = node["jwt"]) {
      auth.kind = AuthSpec::Kind::kJwt;
      if (auto name = String(jwt, path + ".jwt")) {
        auto it = manifest_.authorizers.find(*name);
        if (!authorizer_names_.contains(*name)) {
          Error(jwt, path + ".jwt",
                "'" + *name + "' is not an authorizer of this manifest" + Known(authorizer_names_));
        } else if (it != manifest_.authorizers.end() &&
                   it->second.type != AuthorizerSpec::Type::kJwt) {
          Error(jwt, path + ".jwt", "authorizer '" + *name + "' is not of type jwt");
        }
        auth.authorizer = *name;
      }
      if (const YAML::Node scopes = node["scopes"])
        auth.scopes = StringList(scopes, path + ".scopes");
    } else if (node["scopes"]) {
      Error(node["scopes"], path + ".scopes", "scopes apply to jwt auth only");
    }
    if (const YAML::Node key = node["api_key"]) {
      auth.kind = AuthSpec::Kind::kApiKey;
      if (!key.IsScalar() || key.Scalar() != "true") {
        Error(key, path + ".api_key", "expected `true`");
      }
      if (const YAML::Node plan = node["usage_plan"]) {
        if (auto name = String(plan, path + ".usage_plan")) {
          if (!plan_names_.contains(*name)) {
            Error(plan, path + ".usage_plan",
                  "'" + *name + "' is not a usage plan of this manifest" + Known(plan_names_));
          }
          auth.usage_plan = *name;
        }
      }
    } else if (node["usage_plan"]) {
      Error(node["usage_plan"], path + ".usage_plan", "usage plans apply to api_key auth only");
    }
    if (const YAML::Node authorizer = node["authorizer"]) {
      auth.kind = AuthSpec::Kind::kAuthorizer;
      if (auto name = String(authorizer, path + ".authorizer")) {
        auto it = manifest_.authorizers.find(*name);
        if (!authorizer_names_.contains(*name)) {
          Error(authorizer, path + ".authorizer",
                "'" + *name + "' is not an authorizer of this manifest" + Known(authorizer_names_));
        } else if (it != manifest_.authorizers.end() &&
                   it->second.type != AuthorizerSpec::Type::kFunction) {
          Error(authorizer, path + ".authorizer",
                "authorizer '" + *name + "' is not of type function (use `jwt:` for jwt)");
        }
        auth.authorizer = *name;
      }
    }
    if (const YAML::Node iam = node["iam"]) {
      auth.kind = AuthSpec::Kind::kIam;
      if (!iam.IsScalar() || iam.Scalar() != "true") Error(iam, path + ".iam", "expected `true`");
    }
  }

  void ParseWebhooks(const YAML::Node& section) {
    if (!section.IsMap()) {
      Error(section, "webhooks", "expected a map of webhook names to {url, secret}");
      return;
    }
    for (const auto& entry : section) {
      const std::string name = entry.first.Scalar();
      const std::string path = "webhooks." + name;
      if (!IsLowerName(name, 64)) {
        Error(entry.first, path,
              "a webhook name is 1-64 of a-z, 0-9 and '-', starting with a letter");
        continue;
      }
      const YAML::Node node = entry.second;
      if (!ExpectMap(node, path, {"url", "secret"})) continue;
      WebhookSpec w;
      w.at = LocationOf(node);
      if (auto url = RequiredString(node, "url", path)) {
        const auto parsed = boost::urls::parse_absolute_uri(*url);
        if (!parsed || (parsed->scheme() != "https" && parsed->scheme() != "http") ||
            parsed->host().empty() || parsed->has_userinfo()) {
          Error(node["url"], path + ".url",
                "expected an absolute http(s) URL without credentials, not '" + *url + "'");
        }
        w.url = *url;
      }
      if (auto secret = RequiredString(node, "secret", path)) {
        if (!secret_names_.contains(*secret)) {
          Error(node["secret"], path + ".secret",
                "'" + *secret +
                    "' is not a secret of this app: declare it under secrets (its value is the "
                    "webhook's signing key)");
        }
        w.secret = *secret;
      }
      manifest_.webhooks.emplace(name, std::move(w));
    }
  }

  void ParseAlerts(const YAML::Node& section) {
    if (!section.IsSequence()) {
      Error(section, "alerts", "expected a list of alerts");
      return;
    }
    std::set<std::string> route_keys;
    for (const RouteSpec& r : manifest_.routes) route_keys.insert(r.key());
    std::set<std::string> seen;
    std::set<std::string> names;
    for (std::size_t i = 0; i < section.size(); ++i) {
      const YAML::Node node = section[i];
      const std::string path = "alerts[" + std::to_string(i) + "]";
      if (!ExpectMap(node, path,
                     {"name", "function", "route", "metric", "above", "below", "window", "for",
                      "notify"})) {
        continue;
      }
      AlertSpec a;
      a.at = LocationOf(node);
      if (node["function"] && node["route"]) {
        Error(node, path, "give 'function' or 'route', not both");
      }
      if (node["function"]) {
        if (auto fn = String(node["function"], path + ".function")) {
          if (CheckFunctionRef(node["function"], path + ".function", *fn)) a.function = *fn;
        }
      } else if (node["route"]) {
        if (auto route = String(node["route"], path + ".route")) {
          if (!route_keys.contains(*route)) {
            Error(node["route"], path + ".route",
                  "'" + *route +
                      "' is not a route of this app (write it as in routes, e.g. "
                      "'GET /notes/{id}')");
          }
          a.route = *route;
        }
      }
      if (auto metric = RequiredString(node, "metric", path)) {
        a.metric = *metric;
        const auto parsed = observe::ParseAlertMetric(*metric);
        if (!parsed) {
          Error(node["metric"], path + ".metric",
                "unknown metric '" + *metric +
                    "'; expected invocations, errors, error_rate, throttles, duration_p99_ms, "
                    "cold_start_rate, denials or rotation_failures");
        } else if (*parsed == observe::AlertMetric::kColdStartRate && a.function.empty()) {
          Error(node, path, "cold_start_rate is a function's: give 'function'");
        } else if (*parsed == observe::AlertMetric::kDenials && !a.function.empty()) {
          Error(node, path, "denials are counted per route or API: give 'route' or neither");
        } else if (*parsed == observe::AlertMetric::kRotationFailures &&
                   (!a.function.empty() || !a.route.empty())) {
          Error(node, path, "rotation_failures is the platform's: give neither function nor route");
        }
      }
      if (node["above"] && node["below"]) {
        Error(node, path, "give 'above' or 'below', not both");
      } else if (!node["above"] && !node["below"]) {
        Error(node, path, "'above' or 'below' is required: the threshold");
      } else {
        a.below = static_cast<bool>(node["below"]);
        const std::string key = a.below ? "below" : "above";
        if (auto threshold = Number(node[key], path + "." + key, 0, 1e12)) a.threshold = *threshold;
      }
      if (const YAML::Node window = node["window"]) {
        if (auto s = Duration(window, path + ".window", 10, 86400)) a.window_s = *s;
      }
      if (const YAML::Node hold = node["for"]) {
        if (auto s = Duration(hold, path + ".for", 0, 86400)) a.for_s = *s;
      }
      if (const YAML::Node notify = node["notify"]) {
        for (const std::string& hook : StringList(notify, path + ".notify")) {
          if (!manifest_.webhooks.contains(hook)) {
            Error(notify, path + ".notify", "'" + hook + "' is not a webhook of this app");
          }
          a.notify.push_back(hook);
        }
      }
      if (node["name"]) {
        if (auto name = String(node["name"], path + ".name")) {
          if (!IsLowerName(*name, 64)) {
            Error(node["name"], path + ".name",
                  "an alert name is 1-64 of a-z, 0-9 and '-', starting with a letter");
          }
          a.name = *name;
        }
      } else {
        std::string subject = !a.function.empty() ? a.function
                              : !a.route.empty()  ? std::string("route")
                                                  : std::string("api");
        a.name = subject + "-" + a.metric;
        std::replace(a.name.begin(), a.name.end(), '_', '-');
      }
      if (!names.insert(a.name).second) {
        Error(node, path,
              "another alert is named '" + a.name + "'; give each alert a distinct 'name'");
      }
      if (!seen.insert(a.key()).second) Error(node, path, "duplicates an earlier alert");
      manifest_.alerts.push_back(std::move(a));
    }
  }

  const ParseOptions& options_;
  Manifest manifest_;
  std::vector<Diagnostic> diagnostics_;
  std::set<std::string> function_names_;
  std::set<std::string> secret_names_;
  std::set<std::string> authorizer_names_;
  std::set<std::string> plan_names_;
};

}  // namespace

std::string AlertSpec::key() const {
  std::string limit = std::to_string(threshold);
  while (limit.find('.') != std::string::npos && (limit.back() == '0' || limit.back() == '.')) {
    limit.pop_back();
  }
  const std::string subject = !function.empty() ? function : !route.empty() ? route : "api";
  return subject + " " + metric + (below ? " < " : " > ") + limit + " over " +
         std::to_string(window_s) + "s for " + std::to_string(for_s) + "s";
}

core::Status ParseOutcome::ToStatus(std::string_view file_name) const {
  if (diagnostics.empty()) return core::Status::Ok();
  std::string message;
  for (const Diagnostic& d : diagnostics) {
    if (!message.empty()) message += "\n";
    message += std::string(file_name);
    if (d.at.line > 0) {
      message += ":" + std::to_string(d.at.line) + ":" + std::to_string(d.at.column);
    }
    message += ": " + d.message;
  }
  return core::InvalidArgumentError(message);
}

ParseOutcome ParseManifest(std::string_view yaml, const ParseOptions& options) {
  return Parser(options).Run(yaml);
}

std::string QualifiedFunctionName(std::string_view app, std::string_view stage,
                                  std::string_view function) {
  return std::string(app) + "_" + std::string(stage) + "_" + std::string(function);
}

std::string QualifiedSecretName(std::string_view app, std::string_view stage,
                                std::string_view secret) {
  return std::string(stage) + "/" + std::string(app) + "/" + std::string(secret);
}

std::string AppArn(std::string_view region, std::string_view account_id, std::string_view app,
                   std::string_view stage) {
  return "arn:aws:moatless:" + std::string(region) + ":" + std::string(account_id) + ":app/" +
         std::string(app) + "/" + std::string(stage);
}

core::Status ValidateAppName(std::string_view app) {
  if (IsLowerName(app, 32)) return core::Status::Ok();
  return core::InvalidArgumentError("'" + std::string(app) +
                                    "' is not an app name: 1-32 of a-z, 0-9 and '-', starting "
                                    "with a letter");
}

core::Status ValidateStageName(std::string_view stage) {
  if (IsLowerName(stage, 16)) return core::Status::Ok();
  return core::InvalidArgumentError("'" + std::string(stage) +
                                    "' is not a stage name: 1-16 of a-z, 0-9 and '-', starting "
                                    "with a letter");
}

}  // namespace moatless::manifest
