#include "gateway/api_config.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <set>

#include "gateway/truststore.h"
#include "http/router.h"
#include "http/types.h"

namespace moatless::gateway {
namespace {

namespace json = boost::json;

constexpr std::string_view kDefaultRoute = "$default";

json::array StringArray(const std::vector<std::string>& values) {
  json::array out;
  for (const std::string& v : values) out.emplace_back(v);
  return out;
}

std::optional<AuthKind> AuthKindFromName(std::string_view name) {
  for (AuthKind kind : {AuthKind::kNone, AuthKind::kJwt, AuthKind::kApiKey, AuthKind::kAuthorizer,
                        AuthKind::kIam}) {
    if (AuthKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

// Reads a JSON document field by field; the first problem is kept, with its path.
class Reader {
 public:
  core::Status status() const { return error_.empty() ? core::Status::Ok() : Fail(); }

  std::string String(const json::object& o, std::string_view key, const std::string& path,
                     bool required = true) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) {
      if (required) Note(path + "." + std::string(key) + " is missing");
      return "";
    }
    if (!v->is_string()) {
      Note(path + "." + std::string(key) + " is not a string");
      return "";
    }
    return std::string(v->as_string());
  }
  std::int64_t Int(const json::object& o, std::string_view key, const std::string& path,
                   std::int64_t fallback) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) return fallback;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
      return static_cast<std::int64_t>(v->as_uint64());
    }
    Note(path + "." + std::string(key) + " is not an integer");
    return fallback;
  }
  double Number(const json::object& o, std::string_view key, const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) return 0;
    if (v->is_number()) return v->to_number<double>();
    Note(path + "." + std::string(key) + " is not a number");
    return 0;
  }
  bool Bool(const json::object& o, std::string_view key, const std::string& path, bool fallback) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) return fallback;
    if (v->is_bool()) return v->as_bool();
    Note(path + "." + std::string(key) + " is not a boolean");
    return fallback;
  }
  std::vector<std::string> Strings(const json::object& o, std::string_view key,
                                   const std::string& path) {
    std::vector<std::string> out;
    const json::value* v = o.if_contains(key);
    if (v == nullptr) return out;
    if (!v->is_array()) {
      Note(path + "." + std::string(key) + " is not an array");
      return out;
    }
    for (const json::value& item : v->as_array()) {
      if (!item.is_string()) {
        Note(path + "." + std::string(key) + " holds a non-string");
        return {};
      }
      out.emplace_back(item.as_string());
    }
    return out;
  }
  const json::object* Object(const json::object& o, std::string_view key, const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) {
      Note(path + "." + std::string(key) + " is not an object");
      return nullptr;
    }
    return &v->as_object();
  }
  void Note(std::string problem) {
    if (error_.empty()) error_ = std::move(problem);
  }

 private:
  core::Status Fail() const { return core::InvalidArgumentError("gateway API config: " + error_); }
  std::string error_;
};

json::object IdentitySourceJson(const IdentitySource& source) {
  return {{"expression", source.expression}};
}

IdentitySource IdentitySourceFrom(Reader& r, const json::object& o, const std::string& path) {
  const std::string expression = r.String(o, "expression", path);
  auto parsed = ParseIdentitySource(expression);
  if (!parsed.ok()) {
    r.Note(path + ": " + parsed.status().message());
    return {};
  }
  return *parsed;
}

bool IsHttpMethod(std::string_view m) {
  static const std::set<std::string_view> kMethods = {"GET",    "POST", "PUT",     "PATCH",
                                                      "DELETE", "HEAD", "OPTIONS", "ANY"};
  return kMethods.contains(m);
}

}  // namespace

std::string_view AuthKindName(AuthKind kind) {
  switch (kind) {
    case AuthKind::kNone:
      return "none";
    case AuthKind::kJwt:
      return "jwt";
    case AuthKind::kApiKey:
      return "api_key";
    case AuthKind::kAuthorizer:
      return "authorizer";
    case AuthKind::kIam:
      return "iam";
  }
  return "none";
}

core::Result<IdentitySource> ParseIdentitySource(std::string_view expression) {
  auto bad = [&] {
    return core::InvalidArgumentError(
        "'" + std::string(expression) +
        "' is not an identity source; expected $request.header.NAME, "
        "$request.querystring.NAME or $context.routeKey|httpMethod|path|sourceIp");
  };
  IdentitySource out;
  out.expression = std::string(expression);
  auto valid_name = [](std::string_view n) {
    if (n.empty() || n.size() > 128) return false;
    for (char c : n) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '.') return false;
    }
    return true;
  };
  if (expression.starts_with("$request.header.")) {
    out.kind = IdentitySource::Kind::kHeader;
    out.name = std::string(expression.substr(16));
    for (char& c : out.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  } else if (expression.starts_with("$request.querystring.")) {
    out.kind = IdentitySource::Kind::kQuery;
    out.name = std::string(expression.substr(21));
  } else if (expression.starts_with("$context.")) {
    out.kind = IdentitySource::Kind::kContext;
    out.name = std::string(expression.substr(9));
    static const std::set<std::string_view> kContext = {"routeKey", "httpMethod", "path",
                                                        "sourceIp"};
    if (!kContext.contains(out.name)) return bad();
  } else {
    return bad();
  }
  if (!valid_name(out.name)) return bad();
  return out;
}

WafSettings ToWafSettings(const WafConfig& config) {
  WafSettings settings;
  settings.mode = config.mode == "off"      ? WafMode::kOff
                  : config.mode == "detect" ? WafMode::kDetect
                                            : WafMode::kBlock;
  settings.paranoia_level = config.paranoia;
  settings.inbound_anomaly_threshold = config.anomaly_threshold;
  settings.excluded_rule_ids = config.exclude_rules;
  settings.excluded_tags = config.exclude_tags;
  std::sort(settings.excluded_rule_ids.begin(), settings.excluded_rule_ids.end());
  std::sort(settings.excluded_tags.begin(), settings.excluded_tags.end());
  return settings;
}

std::string RouteConfig::key() const {
  return path == kDefaultRoute ? std::string(kDefaultRoute) : method + " " + path;
}

std::string ToJson(const ApiConfig& config) {
  json::array routes;
  for (const RouteConfig& r : config.routes) {
    json::object o{{"method", r.method},
                   {"path", r.path},
                   {"function", r.function},
                   {"function_version", r.function_version},
                   {"auth", AuthKindName(r.auth)}};
    if (!r.authorizer.empty()) o["authorizer"] = r.authorizer;
    if (!r.scopes.empty()) o["scopes"] = StringArray(r.scopes);
    if (!r.usage_plan.empty()) o["usage_plan"] = r.usage_plan;
    if (r.throttle) {
      o["throttle"] = json::object{{"rate", r.throttle->rate}, {"burst", r.throttle->burst}};
    }
    if (!r.body_schema.empty()) o["body_schema"] = r.body_schema;
    if (!r.parameters.empty()) {
      json::array parameters;
      for (const ParameterConfig& p : r.parameters) {
        json::object po{{"in", p.in == ParameterConfig::In::kQuery ? "query" : "header"},
                        {"name", p.name},
                        {"required", p.required}};
        if (!p.schema.empty()) po["schema"] = p.schema;
        parameters.emplace_back(std::move(po));
      }
      o["parameters"] = std::move(parameters);
    }
    json::array excluded_rules;
    for (int id : r.waf.exclude_rules) excluded_rules.emplace_back(id);
    o["waf"] = json::object{{"mode", r.waf.mode},
                            {"paranoia", r.waf.paranoia},
                            {"anomaly_threshold", r.waf.anomaly_threshold},
                            {"exclude_rules", std::move(excluded_rules)},
                            {"exclude_tags", StringArray(r.waf.exclude_tags)}};
    routes.emplace_back(std::move(o));
  }
  json::object authorizers;
  for (const auto& [name, a] : config.authorizers) {
    json::object o{{"type", AuthKindName(a.type)}};
    if (a.type == AuthKind::kJwt) {
      o["issuer"] = a.jwt.issuer;
      o["audience"] = StringArray(a.jwt.audience);
      o["jwks"] = a.jwt.jwks;
      o["identity_source"] = IdentitySourceJson(a.jwt.identity_source);
      o["leeway_s"] = a.jwt.leeway_s;
    } else {
      o["function"] = a.function.function;
      o["function_version"] = a.function.function_version;
      json::array sources;
      for (const IdentitySource& s : a.function.identity_sources) {
        sources.emplace_back(IdentitySourceJson(s));
      }
      o["identity_sources"] = std::move(sources);
      o["ttl_s"] = a.function.ttl_s;
      o["simple_responses"] = a.function.simple_responses;
    }
    authorizers[name] = std::move(o);
  }
  json::object plans;
  for (const auto& [name, p] : config.usage_plans) {
    json::object o{{"rate", p.rate}, {"burst", p.burst}};
    if (p.quota_limit) {
      o["quota_limit"] = *p.quota_limit;
      o["quota_period"] = p.quota_period;
      o["quota_offset"] = p.quota_offset;
    }
    plans[name] = std::move(o);
  }
  json::object out{{"app", config.app},
                   {"stage", config.stage},
                   {"version", config.version},
                   {"routes", std::move(routes)},
                   {"authorizers", std::move(authorizers)},
                   {"usage_plans", std::move(plans)}};
  if (config.cors) {
    const CorsConfig& c = *config.cors;
    out["cors"] = json::object{{"allow_origins", StringArray(c.allow_origins)},
                               {"allow_methods", StringArray(c.allow_methods)},
                               {"allow_headers", StringArray(c.allow_headers)},
                               {"expose_headers", StringArray(c.expose_headers)},
                               {"max_age_s", c.max_age_s},
                               {"allow_credentials", c.allow_credentials}};
  }
  if (config.mtls) out["mtls"] = json::object{{"truststore_pem", config.mtls->truststore_pem}};
  return json::serialize(out);
}

core::Result<ApiConfig> ApiConfigFromJson(std::string_view text) {
  boost::system::error_code ec;
  const json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) {
    return core::InvalidArgumentError("gateway API config: not a JSON object");
  }
  const json::object& root = doc.as_object();
  Reader r;
  ApiConfig config;
  config.app = r.String(root, "app", "config");
  config.stage = r.String(root, "stage", "config");
  config.version = r.Int(root, "version", "config", 0);
  if (const json::value* routes = root.if_contains("routes"); routes && routes->is_array()) {
    int i = 0;
    for (const json::value& item : routes->as_array()) {
      const std::string path = "routes[" + std::to_string(i++) + "]";
      if (!item.is_object()) {
        r.Note(path + " is not an object");
        continue;
      }
      const json::object& o = item.as_object();
      RouteConfig route;
      route.method = r.String(o, "method", path);
      route.path = r.String(o, "path", path);
      route.function = r.String(o, "function", path);
      route.function_version = r.Int(o, "function_version", path, 0);
      const std::string auth = r.String(o, "auth", path);
      if (auto kind = AuthKindFromName(auth)) {
        route.auth = *kind;
      } else if (!auth.empty()) {
        r.Note(path + ".auth '" + auth + "' is unknown");
      }
      route.authorizer = r.String(o, "authorizer", path, false);
      route.scopes = r.Strings(o, "scopes", path);
      route.usage_plan = r.String(o, "usage_plan", path, false);
      route.body_schema = r.String(o, "body_schema", path, false);
      if (const json::object* t = r.Object(o, "throttle", path)) {
        route.throttle = Throttle{
            .rate = r.Number(*t, "rate", path + ".throttle"),
            .burst = static_cast<std::uint32_t>(r.Int(*t, "burst", path + ".throttle", 0))};
      }
      if (const json::value* ps = o.if_contains("parameters"); ps && ps->is_array()) {
        for (const json::value& entry : ps->as_array()) {
          if (!entry.is_object()) {
            r.Note(path + ".parameters holds a non-object");
            continue;
          }
          const json::object& po = entry.as_object();
          ParameterConfig p;
          const std::string in = r.String(po, "in", path + ".parameters");
          if (in == "header") {
            p.in = ParameterConfig::In::kHeader;
          } else if (in != "query") {
            r.Note(path + ".parameters: in '" + in + "' is unknown");
          }
          p.name = r.String(po, "name", path + ".parameters");
          p.required = r.Bool(po, "required", path + ".parameters", false);
          p.schema = r.String(po, "schema", path + ".parameters", false);
          route.parameters.push_back(std::move(p));
        }
      }
      // Stored before the WAF existed: the default (block, paranoia 1).
      if (const json::object* w = r.Object(o, "waf", path)) {
        route.waf.mode = r.String(*w, "mode", path + ".waf");
        route.waf.paranoia = static_cast<int>(r.Int(*w, "paranoia", path + ".waf", 1));
        route.waf.anomaly_threshold =
            static_cast<int>(r.Int(*w, "anomaly_threshold", path + ".waf", 5));
        if (const json::value* ids = w->if_contains("exclude_rules"); ids && ids->is_array()) {
          for (const json::value& id : ids->as_array()) {
            if (!id.is_int64()) {
              r.Note(path + ".waf.exclude_rules holds a non-integer");
              continue;
            }
            route.waf.exclude_rules.push_back(static_cast<int>(id.as_int64()));
          }
        }
        route.waf.exclude_tags = r.Strings(*w, "exclude_tags", path + ".waf");
      }
      config.routes.push_back(std::move(route));
    }
  } else {
    r.Note("config.routes is missing");
  }
  if (const json::object* authorizers = r.Object(root, "authorizers", "config")) {
    for (const auto& [key, value] : *authorizers) {
      const std::string path = "authorizers." + std::string(key);
      if (!value.is_object()) {
        r.Note(path + " is not an object");
        continue;
      }
      const json::object& o = value.as_object();
      AuthorizerConfig a;
      a.name = std::string(key);
      const std::string type = r.String(o, "type", path);
      if (type == "jwt") {
        a.type = AuthKind::kJwt;
        a.jwt.issuer = r.String(o, "issuer", path);
        a.jwt.audience = r.Strings(o, "audience", path);
        a.jwt.jwks = r.String(o, "jwks", path);
        if (const json::object* s = r.Object(o, "identity_source", path)) {
          a.jwt.identity_source = IdentitySourceFrom(r, *s, path + ".identity_source");
        }
        a.jwt.leeway_s = r.Int(o, "leeway_s", path, 30);
      } else if (type == "authorizer") {
        a.type = AuthKind::kAuthorizer;
        a.function.function = r.String(o, "function", path);
        a.function.function_version = r.Int(o, "function_version", path, 0);
        if (const json::value* s = o.if_contains("identity_sources"); s && s->is_array()) {
          for (const json::value& item : s->as_array()) {
            if (!item.is_object()) {
              r.Note(path + ".identity_sources holds a non-object");
              continue;
            }
            a.function.identity_sources.push_back(
                IdentitySourceFrom(r, item.as_object(), path + ".identity_sources"));
          }
        }
        a.function.ttl_s = r.Int(o, "ttl_s", path, 300);
        a.function.simple_responses = r.Bool(o, "simple_responses", path, true);
      } else {
        r.Note(path + ".type '" + type + "' is unknown");
      }
      config.authorizers.emplace(a.name, std::move(a));
    }
  }
  if (const json::object* plans = r.Object(root, "usage_plans", "config")) {
    for (const auto& [key, value] : *plans) {
      const std::string path = "usage_plans." + std::string(key);
      if (!value.is_object()) {
        r.Note(path + " is not an object");
        continue;
      }
      const json::object& o = value.as_object();
      UsagePlanConfig p;
      p.name = std::string(key);
      p.rate = r.Number(o, "rate", path);
      p.burst = static_cast<std::uint32_t>(r.Int(o, "burst", path, 0));
      if (o.contains("quota_limit")) {
        p.quota_limit = static_cast<std::uint64_t>(r.Int(o, "quota_limit", path, 0));
        p.quota_period = r.String(o, "quota_period", path);
        p.quota_offset = static_cast<std::uint64_t>(r.Int(o, "quota_offset", path, 0));
      }
      config.usage_plans.emplace(p.name, std::move(p));
    }
  }
  if (const json::object* cors = r.Object(root, "cors", "config")) {
    CorsConfig c;
    c.allow_origins = r.Strings(*cors, "allow_origins", "cors");
    c.allow_methods = r.Strings(*cors, "allow_methods", "cors");
    c.allow_headers = r.Strings(*cors, "allow_headers", "cors");
    c.expose_headers = r.Strings(*cors, "expose_headers", "cors");
    c.max_age_s = r.Int(*cors, "max_age_s", "cors", 0);
    c.allow_credentials = r.Bool(*cors, "allow_credentials", "cors", false);
    config.cors = std::move(c);
  }
  if (const json::object* mtls = r.Object(root, "mtls", "config")) {
    config.mtls = MtlsConfig{.truststore_pem = r.String(*mtls, "truststore_pem", "mtls")};
  }
  RETURN_IF_ERROR(r.status());
  RETURN_IF_ERROR(ValidateApiConfig(config));
  return config;
}

core::Status ValidateApiConfig(const ApiConfig& config) {
  auto bad = [&](std::string message) {
    return core::InvalidArgumentError("gateway API config of " + config.app + "/" + config.stage +
                                      ": " + std::move(message));
  };
  if (config.app.empty() || config.stage.empty()) return bad("app and stage are required");
  http::Router probe;  // the same pattern rules (and duplicate detection) as serving
  bool has_default = false;
  for (const RouteConfig& route : config.routes) {
    const std::string key = route.key();
    if (route.path == kDefaultRoute) {
      if (has_default) return bad("$default is routed twice");
      has_default = true;
    } else {
      if (!IsHttpMethod(route.method)) return bad(key + ": unknown method");
      const http::Handler never =
          [](http::Request&, http::RequestContext&) -> http::asio::awaitable<http::Response> {
        co_return http::Response{};
      };
      if (core::Status s = probe.Add(route.method, route.path, never); !s.ok()) {
        return bad(key + ": " + s.message());
      }
    }
    if (route.function.empty() || route.function_version <= 0) {
      return bad(key + ": a function and its version are required");
    }
    if (route.throttle &&
        (!(route.throttle->rate > 0) || route.throttle->rate > 1e6 || route.throttle->burst == 0)) {
      return bad(key + ": a throttle needs a rate (up to 10^6/s) and a burst of at least 1");
    }
    if (route.waf.mode != "off" && route.waf.mode != "detect" && route.waf.mode != "block") {
      return bad(key + ": waf mode must be off, detect or block");
    }
    if (route.waf.paranoia < 1 || route.waf.paranoia > 4) {
      return bad(key + ": waf paranoia must be 1-4");
    }
    if (route.waf.anomaly_threshold < 1 || route.waf.anomaly_threshold > 1000) {
      return bad(key + ": waf anomaly threshold must be 1-1000");
    }
    if (core::Status s = ValidateWafSettings(ToWafSettings(route.waf)); !s.ok()) {
      return bad(key + ": " + s.message());
    }
    std::set<std::pair<ParameterConfig::In, std::string>> parameters;
    for (const ParameterConfig& p : route.parameters) {
      const std::string where = p.in == ParameterConfig::In::kQuery ? "query" : "header";
      bool valid_name = !p.name.empty() && p.name.size() <= 128;
      for (char c : p.name) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f ||
            (p.in == ParameterConfig::In::kHeader && (std::isupper(u) || c == ':' || c == '"'))) {
          valid_name = false;
        }
      }
      if (!valid_name) return bad(key + ": " + where + " parameter '" + p.name + "' is not valid");
      if (!parameters.emplace(p.in, p.name).second) {
        return bad(key + ": " + where + " parameter '" + p.name + "' is declared twice");
      }
    }
    switch (route.auth) {
      case AuthKind::kJwt:
      case AuthKind::kAuthorizer: {
        auto it = config.authorizers.find(route.authorizer);
        if (it == config.authorizers.end() || it->second.type != route.auth) {
          return bad(key + ": authorizer '" + route.authorizer + "' is not a " +
                     std::string(AuthKindName(route.auth)) + " authorizer of this API");
        }
        break;
      }
      case AuthKind::kApiKey:
        if (!route.usage_plan.empty() && !config.usage_plans.contains(route.usage_plan)) {
          return bad(key + ": usage plan '" + route.usage_plan + "' is not defined");
        }
        break;
      case AuthKind::kNone:
      case AuthKind::kIam:
        break;
    }
  }
  for (const auto& [name, a] : config.authorizers) {
    if (a.type == AuthKind::kJwt) {
      if (a.jwt.issuer.empty() || a.jwt.audience.empty() || a.jwt.jwks.empty()) {
        return bad("authorizer " + name + ": issuer, audience and jwks are required");
      }
      if (a.jwt.identity_source.kind == IdentitySource::Kind::kContext) {
        return bad("authorizer " + name + ": a JWT comes from a header or a query parameter");
      }
      if (a.jwt.leeway_s < 0 || a.jwt.leeway_s > 300) {
        return bad("authorizer " + name + ": leeway must be 0-300 s");
      }
    } else if (a.type == AuthKind::kAuthorizer) {
      if (a.function.function.empty() || a.function.function_version <= 0) {
        return bad("authorizer " + name + ": a function and its version are required");
      }
      if (a.function.identity_sources.empty()) {
        return bad("authorizer " + name + ": at least one identity source is required");
      }
      if (a.function.ttl_s < 0 || a.function.ttl_s > 3600) {
        return bad("authorizer " + name + ": ttl must be 0-3600 s");
      }
    } else {
      return bad("authorizer " + name + ": unknown type");
    }
  }
  for (const auto& [name, p] : config.usage_plans) {
    if (!(p.rate >= 0) || p.rate > 1e6) return bad("usage plan " + name + ": rate out of range");
    if (p.quota_limit) {
      if (p.quota_period != "day" && p.quota_period != "week" && p.quota_period != "month") {
        return bad("usage plan " + name + ": quota period must be day, week or month");
      }
      if (p.quota_offset >= *p.quota_limit) {
        return bad("usage plan " + name + ": quota offset must be below the limit");
      }
    }
  }
  if (config.cors) {
    const CorsConfig& c = *config.cors;
    for (const std::string& origin : c.allow_origins) {
      if (origin == "*") {
        if (c.allow_credentials) return bad("cors: '*' origins cannot allow credentials");
        continue;
      }
      if (!(origin.starts_with("https://") || origin.starts_with("http://")) ||
          origin.find_first_of("/", origin.find("//") + 2) != std::string::npos) {
        return bad("cors: '" + origin + "' is not an origin (scheme://host[:port])");
      }
    }
    if (c.max_age_s < 0 || c.max_age_s > 86400) return bad("cors: max_age must be 0-86400 s");
  }
  if (config.mtls) {
    if (auto truststore = Truststore::FromPem(config.mtls->truststore_pem); !truststore.ok()) {
      return bad(truststore.status().message());
    }
  }
  return core::Status::Ok();
}

core::Status ApiStore::PutIn(store::Transaction& tx, const ApiConfig& config, core::WallTime now) {
  RETURN_IF_ERROR(ValidateApiConfig(config));
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  RETURN_IF_ERROR(
      tx.Exec("DELETE FROM gateway_apis WHERE app = ? AND stage = ?", {config.app, config.stage})
          .status());
  return tx
      .Exec(
          "INSERT INTO gateway_apis (app, stage, version, config, updated_ms) VALUES (?, ?, ?, ?, "
          "?)",
          {config.app, config.stage, config.version, ToJson(config), now_ms})
      .status();
}

core::Status ApiStore::DeleteIn(store::Transaction& tx, std::string_view app,
                                std::string_view stage) {
  return tx.Exec("DELETE FROM gateway_apis WHERE app = ? AND stage = ?", {app, stage}).status();
}

core::Result<std::optional<ApiConfig>> ApiStore::Load(store::Database& db, std::string_view app,
                                                      std::string_view stage) {
  ASSIGN_OR_RETURN(
      const std::optional<store::Row> row,
      store::TransactValue(db, {.access = store::Access::kReadOnly}, [&](store::Transaction& tx) {
        return tx.QueryOptional("SELECT config FROM gateway_apis WHERE app = ? AND stage = ?",
                                {app, stage});
      }));
  if (!row) return std::optional<ApiConfig>();
  ASSIGN_OR_RETURN(const std::string text, row->GetText("config"));
  ASSIGN_OR_RETURN(ApiConfig config, ApiConfigFromJson(text));
  return std::optional<ApiConfig>(std::move(config));
}

core::Result<std::vector<ApiConfig>> ApiStore::LoadAll(store::Database& db) {
  ASSIGN_OR_RETURN(
      const std::vector<store::Row> rows,
      store::TransactValue(db, {.access = store::Access::kReadOnly}, [](store::Transaction& tx) {
        return tx.Query("SELECT config FROM gateway_apis ORDER BY app, stage");
      }));
  std::vector<ApiConfig> out;
  for (const store::Row& row : rows) {
    ASSIGN_OR_RETURN(const std::string text, row.GetText("config"));
    ASSIGN_OR_RETURN(ApiConfig config, ApiConfigFromJson(text));
    out.push_back(std::move(config));
  }
  return out;
}

}  // namespace moatless::gateway
