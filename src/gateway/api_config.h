// ApiConfig: one app stage's API as the gateway serves it — its routes (each bound to the
// function version the app version deployed, each with its authentication), its authorizers
// (a JWT authorizer carries its JWKS inline), its usage plans and its CORS policy — and ApiStore,
// where the deployer writes it (in the same store transaction as the app version it belongs to)
// and the gateway reads it.
//
// The config is the gateway's own model, so the gateway does not depend on the manifest: the
// deployer translates a manifest into it. It is stored as JSON (ToJson / ApiConfigFromJson);
// ApiConfigFromJson checks everything the gateway relies on (known methods and auth kinds, route
// patterns the router accepts, references to authorizers and usage plans that exist, limits in
// range), so a damaged row is refused with a message instead of being served half-understood.
//
// Plain values and stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "gateway/waf.h"
#include "store/database.h"

namespace moatless::gateway {

enum class AuthKind { kNone, kJwt, kApiKey, kAuthorizer, kIam };
std::string_view AuthKindName(AuthKind kind);  // "none", "jwt", "api_key", "authorizer", "iam"

// Where a function authorizer's or a JWT authorizer's identity comes from: an API Gateway
// selection expression — $request.header.NAME (case-insensitive), $request.querystring.NAME
// (case-sensitive), $context.routeKey / $context.httpMethod / $context.path / $context.sourceIp.
struct IdentitySource {
  enum class Kind { kHeader, kQuery, kContext };
  Kind kind = Kind::kHeader;
  std::string name;        // header names lower-cased
  std::string expression;  // as written
  friend bool operator==(const IdentitySource&, const IdentitySource&) = default;
};
core::Result<IdentitySource> ParseIdentitySource(std::string_view expression);

struct Throttle {
  double rate = 0;          // requests per second
  std::uint32_t burst = 0;  // requests at once
  friend bool operator==(const Throttle&, const Throttle&) = default;
};

// The WAF of a route (gateway/waf.h): the app's settings with the route's own on top, resolved by
// the deployer. The default is the safe one: blocking at paranoia level 1.
struct WafConfig {
  std::string mode = "block";             // "off", "detect" or "block"
  int paranoia = 1;                       // 1..4
  int anomaly_threshold = 5;              // 1..1000; 5 = one critical match blocks
  std::vector<int> exclude_rules;         // rule ids (CRS 9xxxxx or ours 100xx)
  std::vector<std::string> exclude_tags;  // e.g. "attack-sqli"
  friend bool operator==(const WafConfig&, const WafConfig&) = default;
};

// The engine settings for `config` (exclusions sorted, so equal configs give equal settings).
WafSettings ToWafSettings(const WafConfig& config);

// A query or header parameter a route checks before its function runs. A value is validated as a
// JSON string (so a schema says `type: string` with pattern / enum / maxLength...).
struct ParameterConfig {
  enum class In { kQuery, kHeader };
  In in = In::kQuery;
  std::string name;  // query names are case-sensitive; header names lower-cased
  bool required = false;
  std::string schema;  // JSON Schema text; "" for none
  friend bool operator==(const ParameterConfig&, const ParameterConfig&) = default;
};

struct RouteConfig {
  std::string method;    // GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY
  std::string path;      // "/notes/{id}", a greedy last segment "{path+}"; "$default": everything
  std::string function;  // the qualified function name (APP_STAGE_NAME)
  std::int64_t function_version = 0;
  AuthKind auth = AuthKind::kNone;
  std::string authorizer;           // kJwt, kAuthorizer
  std::vector<std::string> scopes;  // kJwt: every one is required
  std::string usage_plan;           // kApiKey: the plan the key must be on; "" for any
  // The route's own token bucket: per API key on kApiKey routes, shared by every caller
  // otherwise. Applied after authentication.
  std::optional<Throttle> throttle;
  // The JSON Schema (draft-04 or draft-07) a JSON request body must match, as JSON text; "" for
  // none. Compiled when the API is applied; a schema that does not compile refuses the API.
  std::string body_schema;
  std::vector<ParameterConfig> parameters;
  WafConfig waf;
  std::string key() const;  // "GET /notes/{id}" or "$default"
  friend bool operator==(const RouteConfig&, const RouteConfig&) = default;
};

struct JwtAuthorizerConfig {
  std::string issuer;
  std::vector<std::string> audience;
  std::string jwks;  // the JWK Set, JSON text
  IdentitySource identity_source{IdentitySource::Kind::kHeader, "authorization",
                                 "$request.header.Authorization"};
  std::int64_t leeway_s = 30;
  friend bool operator==(const JwtAuthorizerConfig&, const JwtAuthorizerConfig&) = default;
};

struct FunctionAuthorizerConfig {
  std::string function;  // qualified name
  std::int64_t function_version = 0;
  std::vector<IdentitySource> identity_sources;  // at least one
  std::int64_t ttl_s = 300;                      // 0: no caching; at most 3600
  bool simple_responses = true;                  // {isAuthorized, context}; false: IAM policy
  friend bool operator==(const FunctionAuthorizerConfig&,
                         const FunctionAuthorizerConfig&) = default;
};

struct AuthorizerConfig {
  std::string name;
  AuthKind type = AuthKind::kJwt;  // kJwt or kAuthorizer
  JwtAuthorizerConfig jwt;
  FunctionAuthorizerConfig function;
  friend bool operator==(const AuthorizerConfig&, const AuthorizerConfig&) = default;
};

struct UsagePlanConfig {
  std::string name;
  double rate = 0;
  std::uint32_t burst = 0;
  std::optional<std::uint64_t> quota_limit;
  std::string quota_period;  // "day", "week", "month"
  std::uint64_t quota_offset = 0;
  friend bool operator==(const UsagePlanConfig&, const UsagePlanConfig&) = default;
};

struct CorsConfig {
  std::vector<std::string> allow_origins;  // exact origins, or "*" (never with credentials)
  std::vector<std::string> allow_methods;  // empty: the methods of the app's routes
  std::vector<std::string> allow_headers;  // lower-case
  std::vector<std::string> expose_headers;
  std::int64_t max_age_s = 0;
  bool allow_credentials = false;
  friend bool operator==(const CorsConfig&, const CorsConfig&) = default;
};

// Mutual TLS for an app: a request reaches its routes only over a TLS connection whose client
// certificate chains to one of these CAs (checked by the gateway against the certificate the
// listener received; the listener must request client certificates).
struct MtlsConfig {
  std::string truststore_pem;  // one or more PEM CA certificates
  friend bool operator==(const MtlsConfig&, const MtlsConfig&) = default;
};

struct ApiConfig {
  std::string app;
  std::string stage;
  std::int64_t version = 0;  // the app version that wrote it
  std::vector<RouteConfig> routes;
  std::map<std::string, AuthorizerConfig> authorizers;
  std::map<std::string, UsagePlanConfig> usage_plans;
  std::optional<CorsConfig> cors;
  std::optional<MtlsConfig> mtls;
  std::string api_id() const { return app + "-" + stage; }
  friend bool operator==(const ApiConfig&, const ApiConfig&) = default;
};

std::string ToJson(const ApiConfig& config);
// InvalidArgument naming what is wrong.
core::Result<ApiConfig> ApiConfigFromJson(std::string_view json);
// The checks ApiConfigFromJson makes, on a config built in memory (the deployer's).
core::Status ValidateApiConfig(const ApiConfig& config);

// The stored APIs: one row per app stage (gateway_apis).
class ApiStore {
 public:
  // Writes (replaces) the API of config.app / config.stage inside the caller's transaction.
  static core::Status PutIn(store::Transaction& tx, const ApiConfig& config, core::WallTime now);
  // Removes an app stage's API (it then serves nothing).
  static core::Status DeleteIn(store::Transaction& tx, std::string_view app,
                               std::string_view stage);
  // One app stage's API; nullopt when it has none.
  static core::Result<std::optional<ApiConfig>> Load(store::Database& db, std::string_view app,
                                                     std::string_view stage);
  // Every stored API. A row that does not parse fails the whole load (nothing is served from a
  // store the gateway does not understand).
  static core::Result<std::vector<ApiConfig>> LoadAll(store::Database& db);
};

}  // namespace moatless::gateway
