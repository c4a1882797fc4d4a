// Manifest: the model of `moatless.yaml`, the one file that describes an app — its functions
// (code, runtime, limits, egress, and each function's own IAM policy), its HTTP routes and how
// each is authenticated, its authorizers, usage plans, secrets and alerts — and the parser that
// turns the YAML into that model, validating everything it can without running anything.
//
// Parsing never stops at the first problem: every problem found is reported as a Diagnostic naming
// the file, line and column (1-based, from yaml-cpp's marks) and saying what was expected, so one
// run shows the developer everything to fix. What is checked: unknown keys (with the keys that are
// allowed), wrong types, names and limits out of range, references to functions, authorizers,
// usage plans and secrets that the manifest does not define, routes without `auth` (deny by
// default: `auth: none` must be written out), duplicate routes (`GET /a/{x}` and `GET /a/{y}` are
// the same route), every function's configuration as the runtime would refuse it
// (runtime::ValidateFunction), every policy statement with the policy engine's validator, and —
// when a base directory is given — that code directories, handler files, schemas and JWKS files
// exist inside it (never outside: `..` and absolute paths are refused).
//
// Policies are written in the IAM language (YAML form of the JSON). Resources may use short forms,
// which expand to the ARNs of the app's own resources in its own stage:
//   secret:NAME      arn:aws:secretsmanager:REGION:ACCOUNT:secret:STAGE/APP/NAME-??????
//   function:NAME    arn:aws:lambda:REGION:ACCOUNT:function:APP_STAGE_NAME (and :* for versions)
//   queue:NAME       arn:aws:sqs:REGION:ACCOUNT:APP_STAGE_NAME
// A short form must name a secret or function the manifest defines.
//
// Plain values; stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "runtime/function.h"

namespace moatless::manifest {

inline constexpr std::string_view kManifestFileName = "moatless.yaml";

// Where something is written, 1-based; {0, 0} when unknown.
struct Location {
  int line = 0;
  int column = 0;
  friend bool operator==(const Location&, const Location&) = default;
};

struct Diagnostic {
  Location at;
  std::string message;
};

struct FunctionSpec {
  std::string name;  // the key under `functions`
  Location at;
  runtime::RuntimeKind runtime = runtime::RuntimeKind::kNodejs20;
  std::string handler;  // "index.handler"; absent for `provided`
  std::string code;     // directory relative to the manifest, normalised ("functions/x")
  std::uint32_t memory_mb = 128;
  std::uint32_t timeout_s = 3;
  std::optional<std::uint32_t> concurrency;  // reserved concurrency
  std::map<std::string, std::string> environment;
  std::vector<std::string> egress;
  // The function's identity policy as IAM JSON, short forms expanded; "" when the function has no
  // policy (it may then do nothing).
  std::string policy;
  friend bool operator==(const FunctionSpec&, const FunctionSpec&) = default;
};

// How a route is authenticated. Exactly one kind; kNone only when written as `auth: none`.
struct AuthSpec {
  enum class Kind { kNone, kJwt, kApiKey, kAuthorizer, kIam };
  Kind kind = Kind::kNone;
  std::string authorizer;           // kJwt, kAuthorizer: the authorizer's name
  std::vector<std::string> scopes;  // kJwt: every one of them is required
  std::string usage_plan;           // kApiKey: "" for none
  friend bool operator==(const AuthSpec&, const AuthSpec&) = default;
};

// WAF settings (gateway/waf.h): the app's, and a route's on top of them. A route's mode,
// paranoia and threshold replace the app's; its exclusions add to the app's.
struct WafSpec {
  Location at;
  std::optional<std::string> mode;  // "off", "detect", "block"
  std::optional<int> paranoia;      // 1..4
  std::optional<int> anomaly_threshold;
  std::vector<int> exclude_rules;
  std::vector<std::string> exclude_tags;
  friend bool operator==(const WafSpec&, const WafSpec&) = default;
};

// A query or header parameter a route checks (`parameters: {query: {NAME: {...}}, headers: ...}`).
struct ParameterSpec {
  bool header = false;
  std::string name;  // header names lower-cased
  bool required = false;
  std::string schema;  // the inline JSON Schema for the value, as JSON text; "" for none
  friend bool operator==(const ParameterSpec&, const ParameterSpec&) = default;
};

struct RouteSpec {
  std::string method;  // GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY
  std::string path;    // "/notes/{id}"; a last segment {name+} is greedy
  Location at;
  std::string function;
  AuthSpec auth;
  std::string schema;  // request body JSON Schema, relative to the manifest; "" for none
  // A token bucket for this route: per API key on api_key routes, for all callers otherwise.
  std::optional<double> throttle_rate;
  std::uint32_t throttle_burst = 0;
  std::vector<ParameterSpec> parameters;
  std::optional<WafSpec> waf;
  // "GET /notes/{id}", or "$default"
  std::string key() const { return path == "$default" ? path : method + " " + path; }
  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
};

struct AuthorizerSpec {
  enum class Type { kJwt, kFunction };
  std::string name;
  Location at;
  Type type = Type::kJwt;
  std::string issuer;                 // kJwt: https URL
  std::vector<std::string> audience;  // kJwt: at least one
  std::string jwks;                   // kJwt: a file relative to the manifest, or an https URL
  std::string jwks_inline;            // kJwt: the JWK Set written inline (JSON), instead
  std::int64_t leeway_s = 30;         // kJwt: clock skew allowed for exp / nbf / iat
  // Where the credential is: kJwt one source, kFunction one or more (API Gateway selection
  // expressions: $request.header.X, $request.querystring.X, $context.routeKey...).
  std::vector<std::string> identity_sources;
  std::string function;          // kFunction
  std::uint32_t ttl_s = 300;     // kFunction: how long a decision may be cached (0: never)
  bool simple_responses = true;  // kFunction: {isAuthorized, context}; false: an IAM policy
  friend bool operator==(const AuthorizerSpec&, const AuthorizerSpec&) = default;
};

struct UsagePlanSpec {
  std::string name;
  Location at;
  double rate = 0;          // requests per second, steady
  std::uint32_t burst = 0;  // requests at once
  std::optional<std::uint64_t> quota_limit;
  std::string quota_period;        // "day", "week" or "month" when quota_limit is set
  std::uint64_t quota_offset = 0;  // requests taken off the limit in the first period
  friend bool operator==(const UsagePlanSpec&, const UsagePlanSpec&) = default;
};

// The app's CORS policy, applied by the gateway (preflight included).
struct CorsSpec {
  Location at;
  std::vector<std::string> allow_origins;  // "https://app.example.com", or "*"
  std::vector<std::string> allow_methods;  // default: the methods of the app's routes
  std::vector<std::string> allow_headers;
  std::vector<std::string> expose_headers;
  std::int64_t max_age_s = 0;
  bool allow_credentials = false;
  friend bool operator==(const CorsSpec&, const CorsSpec&) = default;
};

struct SecretSpec {
  std::string name;  // within the app and stage; full name STAGE/APP/NAME
  Location at;
  std::string description;
  std::string rotation_function;  // "" for no rotation
  std::int64_t rotation_every_s = 0;
  // The secret's resource policy as IAM JSON ("" when the manifest gives none); in it,
  // Principal: {AWS: function:NAME} is that function's role.
  std::string policy;
  friend bool operator==(const SecretSpec&, const SecretSpec&) = default;
};

// An alert (observe/alerts.h): one metric of a function, a route or the whole API, over a window,
// compared with a threshold; notified to the app's webhooks and the log.
struct AlertSpec {
  Location at;
  std::string name;      // unique in the app; default "<function|route|api>-<metric>"
  std::string function;  // the manifest's name; or
  std::string route;     // a route's key ("GET /pay"); neither: the whole API (or the platform)
  std::string metric;    // observe::AlertMetric names: errors, error_rate, duration_p99_ms, ...
  bool below = false;    // `below:` instead of `above:`
  double threshold = 0;
  std::int64_t window_s = 300;
  std::int64_t for_s = 60;
  std::vector<std::string> notify;  // webhook names
  std::string key() const;  // "create-note errors > 5 for 300s": identifies an alert in plans
  friend bool operator==(const AlertSpec&, const AlertSpec&) = default;
};

// Where alerts are posted: an HTTPS (or, when the operator allows it, HTTP) URL, and the app
// secret whose value is the HMAC-SHA256 key that signs every notification.
struct WebhookSpec {
  Location at;
  std::string url;
  std::string secret;  // a name under `secrets:`
  friend bool operator==(const WebhookSpec&, const WebhookSpec&) = default;
};

struct Manifest {
  std::string app;
  std::string stage;
  std::map<std::string, FunctionSpec> functions;
  std::vector<RouteSpec> routes;
  std::map<std::string, AuthorizerSpec> authorizers;
  std::map<std::string, UsagePlanSpec> usage_plans;
  std::optional<CorsSpec> cors;
  std::optional<WafSpec> waf;  // the app's WAF settings; none: block at paranoia 1
  // A PEM file of CAs, relative to the manifest: every route then requires a client certificate
  // chaining to one of them (mutual TLS on the gateway's TLS listener). "" for none.
  std::string mtls_truststore;
  std::map<std::string, SecretSpec> secrets;
  std::vector<AlertSpec> alerts;
  std::map<std::string, WebhookSpec> webhooks;
};

struct ParseOptions {
  std::string file_name = std::string(kManifestFileName);  // for messages
  std::string stage;  // overrides the manifest's `stage` when not empty (`--stage`)
  // Checks that referenced files exist inside this directory; "" skips the file checks.
  std::string base_dir;
  // For expanding short resource forms into ARNs.
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
};

struct ParseOutcome {
  std::optional<Manifest> manifest;  // set iff diagnostics is empty
  std::vector<Diagnostic> diagnostics;
  // "moatless.yaml:12:7: routes[0].auth: ..." one per line; kInvalidArgument, or OK when none.
  core::Status ToStatus(std::string_view file_name) const;
};

ParseOutcome ParseManifest(std::string_view yaml, const ParseOptions& options = {});

// The names the platform gives an app's pieces. Function, role and queue: APP_STAGE_NAME (at most
// 64 characters, checked by ParseManifest); secret: STAGE/APP/NAME. App and stage names hold no
// '_' or '/', so the prefix APP_STAGE_ (or STAGE/APP/) belongs to one app and stage only: a
// boundary written on it cannot reach another app's resources.
std::string QualifiedFunctionName(std::string_view app, std::string_view stage,
                                  std::string_view function);
std::string QualifiedSecretName(std::string_view app, std::string_view stage,
                                std::string_view secret);
// arn:aws:moatless:REGION:ACCOUNT:app/APP/STAGE: what moatless:Deploy and the other app actions
// are authorised on.
std::string AppArn(std::string_view region, std::string_view account_id, std::string_view app,
                   std::string_view stage);
// [a-z][a-z0-9-]{0,31} for apps, [a-z][a-z0-9-]{0,15} for stages; kInvalidArgument otherwise.
core::Status ValidateAppName(std::string_view app);
core::Status ValidateStageName(std::string_view stage);

}  // namespace moatless::manifest
