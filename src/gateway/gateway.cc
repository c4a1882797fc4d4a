#include "gateway/gateway.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <optional>
#include <set>

#include "gateway/jwt.h"
#include "gateway/payload.h"
#include "gateway/schema_validator.h"
#include "gateway/truststore.h"
#include "http/path.h"
#include "http/router.h"
#include "identity/sigv4.h"
#include "observe/utf8.h"

namespace moatless::gateway {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;

constexpr std::string_view kContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The value of a header (names compared case-insensitively, without copying them: this runs
// several times per request); repeated headers joined with commas, as the event shows them.
std::optional<std::string> HeaderValue(const std::vector<std::pair<std::string, std::string>>& hs,
                                       std::string_view lower_name) {
  std::optional<std::string> out;
  for (const auto& [name, value] : hs) {
    if (!boost::beast::iequals(name, lower_name)) continue;
    if (out) {
      *out += ",";
      *out += value;
    } else {
      out = value;
    }
  }
  return out;
}

// A query parameter's first value, percent- and '+'-decoded; nullopt when absent.
std::optional<std::string> QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    auto decode = [](std::string_view raw) -> std::optional<std::string> {
      std::string plus(raw);
      for (char& c : plus) {
        if (c == '+') c = ' ';
      }
      auto decoded = http::PercentDecode(plus);
      if (!decoded.ok()) return std::nullopt;
      return *decoded;
    };
    auto key = decode(pair.substr(0, eq));
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::string SourceIp(const std::string& remote) {
  if (remote.starts_with('[')) {
    const std::size_t end = remote.find(']');
    return end == std::string::npos ? remote : remote.substr(1, end - 1);
  }
  const std::size_t colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

std::string StatusClass(unsigned status) { return std::to_string(status / 100) + "xx"; }

// What the router holds for each route: the route's index in its ApiConfig. The gateway only
// matches with the router (Router::Find) and reads the index back; it never calls the handler.
struct RouteIndex {
  std::size_t index = 0;
  http::asio::awaitable<http::Response> operator()(http::Request&, http::RequestContext&) const {
    co_return http::Response{http::HttpStatus::internal_server_error, 11};
  }
};

// Whether the app's CORS policy allows `origin`; the value for Access-Control-Allow-Origin.
std::optional<std::string> AllowedOrigin(const CorsConfig& cors, const std::string& origin) {
  for (const std::string& allowed : cors.allow_origins) {
    if (allowed == origin) return origin;
  }
  for (const std::string& allowed : cors.allow_origins) {
    if (allowed == "*") return std::string("*");
  }
  return std::nullopt;
}

std::string CommaList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace

// One app stage's API, ready to serve: immutable once built.
struct Gateway::CompiledApi {
  ApiConfig config;
  std::string id;  // "APP/STAGE"
  http::Router router;
  std::optional<std::size_t> default_route;
  std::map<std::string, std::shared_ptr<const JwtVerifier>> jwt;              // by authorizer name
  std::map<std::size_t, std::shared_ptr<const CompiledSchema>> body_schemas;  // by route index
  // By route index, then as RouteConfig::parameters (null: no schema).
  std::map<std::size_t, std::vector<std::shared_ptr<const CompiledSchema>>> parameter_schemas;
  std::vector<std::shared_ptr<const WafEngine>> waf;  // by route index; null: off
  std::optional<Truststore> truststore;               // mutual TLS
  std::string cors_methods;                           // Access-Control-Allow-Methods
};

// One request on its way through the gateway; owned jointly by the connection's coroutine and the
// work on the blocking pool, so either may finish first.
struct Gateway::Exchange {
  std::shared_ptr<const CompiledApi> api;
  const RouteConfig* route = nullptr;
  std::size_t route_index = 0;
  GatewayRequest request;
  std::string target;  // the whole request-target as received (SigV4 signs it)
  bool secure = false;
  std::chrono::steady_clock::time_point started;
  // What the access log and metrics say.
  std::string principal;                        // JWT sub, IAM caller ARN, authorizer principalId
  std::string key_id;                           // the API key's id (never its value)
  json::object request_authorizer;              // requestContext.authorizer
  const CompiledSchema* body_schema = nullptr;  // the route's, if it has one
  const WafEngine* waf = nullptr;               // the route's, unless off
  std::string remote;                           // "ip:port" of the client
};

struct Gateway::Outcome {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool generated = true;  // written by the gateway, not the function
  std::string denied;     // the auth kind that refused, for metrics
  std::string throttled;  // "rate" or "quota"

  static Outcome Message(unsigned status, std::string_view message) {
    Outcome o;
    o.status = status;
    o.body = json::serialize(json::object{{"message", message}});
    return o;
  }
};

Gateway::Gateway(Deps deps, GatewayOptions options)
    : deps_(std::move(deps)),
      options_(std::move(options)),
      authorizer_(deps_.functions, deps_.clock) {
  if (deps_.metrics != nullptr) {
    requests_metric_ = &deps_.metrics->Counter(
        "moatless_gateway_requests_total",
        "Gateway requests by API (app-stage), route and status class.", {"api", "route", "status"});
    latency_metric_ = &deps_.metrics->Histogram(
        "moatless_gateway_request_duration_seconds",
        "Gateway request latency, from routing to the response, by API and route.",
        {"api", "route"});
    denials_metric_ = &deps_.metrics->Counter(
        "moatless_gateway_auth_denials_total",
        "Requests refused by a route's authentication, by API, route and auth kind.",
        {"api", "route", "auth"});
    invalid_metric_ = &deps_.metrics->Counter(
        "moatless_gateway_validation_failures_total",
        "Requests refused because their parameters or body did not match the route's "
        "declarations (400, 415).",
        {"api", "route"});
    waf_metric_ = &deps_.metrics->Counter(
        "moatless_gateway_waf_matches_total",
        "Requests the WAF refused (action=blocked) or would have refused in detect mode "
        "(action=detected), by API and route.",
        {"api", "route", "action"});
    throttles_metric_ = &deps_.metrics->Counter(
        "moatless_gateway_throttles_total",
        "Requests refused by a usage plan (rate or quota), by API and route.",
        {"api", "route", "reason"});
  }
}

Gateway::~Gateway() = default;

core::Status Gateway::LoadWaf() { return WafFor(WafConfig{}).status(); }

core::Result<std::shared_ptr<const WafEngine>> Gateway::WafFor(const WafConfig& config) {
  if (config.mode == "off") return std::shared_ptr<const WafEngine>();
  const WafSettings settings = ToWafSettings(config);
  std::string key = config.mode + "|" + std::to_string(config.paranoia) + "|" +
                    std::to_string(config.anomaly_threshold) + "|";
  for (int id : settings.excluded_rule_ids) key += std::to_string(id) + ",";
  key += "|";
  for (const std::string& tag : settings.excluded_tags) key += tag + ",";
  std::lock_guard lock(waf_mu_);
  // Engines no API uses any more go (an exchange in flight holds its API, and so its engine).
  for (auto it = waf_engines_.begin(); it != waf_engines_.end();) {
    it = it->second.use_count() == 1 && it->first != key ? waf_engines_.erase(it) : std::next(it);
  }
  if (auto it = waf_engines_.find(key); it != waf_engines_.end()) return it->second;
  ASSIGN_OR_RETURN(std::unique_ptr<WafEngine> engine,
                   WafEngine::Create(settings, options_.waf_rules_dir));
  std::shared_ptr<const WafEngine> shared(std::move(engine));
  waf_engines_.emplace(key, shared);
  return shared;
}

core::Status Gateway::Apply(const ApiConfig& config) {
  RETURN_IF_ERROR(ValidateApiConfig(config));
  auto api = std::make_shared<CompiledApi>();
  api->config = config;
  api->id = config.app + "/" + config.stage;
  for (const auto& [name, a] : config.authorizers) {
    if (a.type != AuthKind::kJwt) continue;
    auto verifier = JwtVerifier::Create(JwtRules{.issuer = a.jwt.issuer,
                                                 .audience = a.jwt.audience,
                                                 .leeway = std::chrono::seconds(a.jwt.leeway_s)},
                                        a.jwt.jwks);
    if (!verifier.ok()) {
      return core::InvalidArgumentError("authorizer " + name + ": " + verifier.status().message());
    }
    api->jwt.emplace(name, std::make_shared<const JwtVerifier>(*std::move(verifier)));
  }
  if (config.mtls) {
    auto truststore = Truststore::FromPem(config.mtls->truststore_pem);
    if (!truststore.ok()) return truststore.status();
    api->truststore = *std::move(truststore);
  }
  std::set<std::string> methods;
  for (std::size_t i = 0; i < api->config.routes.size(); ++i) {
    const RouteConfig& route = api->config.routes[i];
    if (!route.body_schema.empty()) {
      auto compiled = CompiledSchema::Compile(route.body_schema);
      if (!compiled.ok()) {
        return core::InvalidArgumentError("route " + route.key() +
                                          ": schema: " + compiled.status().message());
      }
      api->body_schemas.emplace(i, std::make_shared<const CompiledSchema>(*std::move(compiled)));
    }
    for (const ParameterConfig& p : route.parameters) {
      std::shared_ptr<const CompiledSchema> schema;
      if (!p.schema.empty()) {
        auto compiled = CompiledSchema::Compile(p.schema);
        if (!compiled.ok()) {
          return core::InvalidArgumentError("route " + route.key() + ": parameter " + p.name +
                                            ": schema: " + compiled.status().message());
        }
        schema = std::make_shared<const CompiledSchema>(*std::move(compiled));
      }
      api->parameter_schemas[i].push_back(std::move(schema));
    }
    auto waf = WafFor(route.waf);
    if (!waf.ok()) return waf.status().Annotate("route " + route.key() + ": waf");
    api->waf.push_back(*std::move(waf));
    if (route.path == "$default") {
      api->default_route = i;
      continue;
    }
    if (route.method == "ANY") {
      methods.insert({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"});
    } else {
      methods.insert(route.method);
    }
    RETURN_IF_ERROR(api->router.Add(route.method, route.path, RouteIndex{i}));
  }
  api->cors_methods = config.cors && !config.cors->allow_methods.empty()
                          ? CommaList(config.cors->allow_methods)
                          : CommaList({methods.begin(), methods.end()});
  {
    std::lock_guard lock(mu_);
    apis_[api->id] = std::move(api);
  }
  authorizer_.Clear(config.app + "/" + config.stage + "/");
  return core::Status::Ok();
}

void Gateway::Remove(std::string_view app, std::string_view stage) {
  const std::string id = std::string(app) + "/" + std::string(stage);
  {
    std::lock_guard lock(mu_);
    apis_.erase(id);
  }
  authorizer_.Clear(id + "/");
}

std::shared_ptr<const Gateway::CompiledApi> Gateway::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = apis_.find(id);
  return it == apis_.end() ? nullptr : it->second;
}

http::Handler Gateway::AsHandler() {
  return [this](http::Request& request, http::RequestContext& context) {
    return Handle(request, context);
  };
}

http::asio::awaitable<http::Response> Gateway::Handle(http::Request& request,
                                                      http::RequestContext& context) {
  auto ex = std::make_shared<Exchange>();
  ex->started = std::chrono::steady_clock::now();
  ex->target = std::string(request.target());
  ex->secure = context.tls;
  ex->remote = context.remote;
  GatewayRequest& g = ex->request;
  g.method = std::string(request.method_string());
  g.request_id = context.request_id;
  g.time = deps_.clock.Now();
  g.source_ip = SourceIp(context.remote);
  g.account_id = options_.account_id;
  g.protocol = request.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
  for (const auto& field : request) {
    g.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  std::string host = Lower(std::string(request[http::Field::host]));
  if (const std::size_t colon = host.rfind(':');
      colon != std::string::npos && host.find(']') == std::string::npos) {
    host.resize(colon);
  } else if (host.starts_with('[') && host.find("]:") != std::string::npos) {
    host.resize(host.find("]:") + 1);
  }
  g.domain_name = host;

  // Which API: a mapped host, or /APP/STAGE/...
  const http::TargetParts parts = http::SplitTarget(ex->target);
  g.raw_query = std::string(parts.query);
  std::string api_id;
  std::string_view rest = parts.path;
  if (auto mapped = options_.hosts.find(host); mapped != options_.hosts.end()) {
    api_id = mapped->second;
  } else {
    const std::size_t app_end = rest.find('/', 1);
    const std::size_t stage_end =
        app_end == std::string_view::npos ? app_end : rest.find('/', app_end + 1);
    if (app_end != std::string_view::npos && app_end > 1 && stage_end != app_end + 1) {
      api_id = std::string(rest.substr(
          1, stage_end == std::string_view::npos ? std::string_view::npos : stage_end - 1));
      rest = stage_end == std::string_view::npos ? std::string_view("/") : rest.substr(stage_end);
    }
  }
  g.raw_path = std::string(rest);
  ex->api = api_id.empty() ? nullptr : Find(api_id);

  Outcome outcome;
  std::optional<std::string> origin = HeaderValue(g.headers, "origin");
  const CompiledApi* api = ex->api.get();
  auto segments = http::DecodePathSegments(g.raw_path);
  bool ready = false;
  if (api == nullptr) {
    outcome = Outcome::Message(404, "Not Found");
  } else if (api->truststore && !AdmitClientCert(*ex, context)) {
    outcome = Outcome::Message(403, "Forbidden");
    outcome.denied = "mtls";
  } else if (!segments.ok()) {
    outcome = Outcome::Message(400, "Bad Request");
  } else if (std::any_of(segments->begin(), segments->end(),
                         [](const std::string& s) { return !observe::IsValidUtf8(s); })) {
    outcome = Outcome::Message(400, "Bad Request");
  } else if (g.method == "OPTIONS" && origin && api->config.cors &&
             HeaderValue(g.headers, "access-control-request-method")) {
    // CORS preflight: answered here, before authentication (browsers send no credentials).
    outcome.status = 204;
    const CorsConfig& cors = *api->config.cors;
    if (AllowedOrigin(cors, *origin)) {
      outcome.headers.emplace_back("access-control-allow-methods", api->cors_methods);
      if (!cors.allow_headers.empty()) {
        outcome.headers.emplace_back("access-control-allow-headers", CommaList(cors.allow_headers));
      }
      if (cors.max_age_s > 0) {
        outcome.headers.emplace_back("access-control-max-age", std::to_string(cors.max_age_s));
      }
    }
  } else {
    const http::Router::Match match = api->router.Find(g.method, g.raw_path);
    std::optional<std::size_t> index;
    if (match.handler != nullptr) {
      index = match.handler->target<RouteIndex>()->index;
      for (const auto& [name, value] : match.params) g.path_parameters[name] = value;
    } else if (api->default_route) {
      index = api->default_route;
    }
    if (index) {
      ex->route = &api->config.routes[*index];
      ex->route_index = *index;
      if (auto schema = api->body_schemas.find(*index); schema != api->body_schemas.end()) {
        ex->body_schema = schema->second.get();
      }
      ex->waf = api->waf[*index].get();
      g.route_key = ex->route->key();
      g.api_id = api->config.api_id();
      g.stage = api->config.stage;
      ready = true;
    } else if (match.method_not_allowed) {
      outcome = Outcome::Message(405, "Method Not Allowed");
      outcome.headers.emplace_back("allow", match.allow);
    } else {
      outcome = Outcome::Message(404, "Not Found");
    }
  }

  if (ready) {
    g.body = request.body();
    // The rest may block (store, functions): on the blocking pool, bounded by the integration
    // timeout. The work owns what it needs, so a timed-out request leaves it to finish alone.
    struct Pending {
      std::mutex mu;
      std::optional<Outcome> outcome;
    };
    auto pending = std::make_shared<Pending>();
    auto executor = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(executor, options_.integration_timeout);
    asio::post(deps_.blocking, [this, ex, pending, timer, executor] {
      Outcome done = Run(*ex);
      {
        std::lock_guard lock(pending->mu);
        pending->outcome = std::move(done);
      }
      asio::post(executor, [timer] { timer->cancel(); });
    });
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    std::lock_guard lock(pending->mu);
    if (pending->outcome) {
      outcome = std::move(*pending->outcome);
    } else {
      outcome = Outcome::Message(504, "Gateway Timeout");
      deps_.log.WithRequestId(g.request_id)
          .Error("gateway integration timed out",
                 {{"api", ex->api->id},
                  {"route", g.route_key},
                  {"timeout_ms", static_cast<std::int64_t>(options_.integration_timeout.count())}});
    }
  }

  http::Response response{static_cast<http::HttpStatus>(outcome.status), request.version()};
  for (const auto& [name, value] : outcome.headers) response.insert(name, value);
  if (outcome.generated && outcome.status != 204) {
    response.set(http::Field::content_type, "application/json");
    response.set("x-content-type-options", "nosniff");
    response.set(http::Field::cache_control, "no-store");
    response.set("content-security-policy", kContentSecurityPolicy);
  }
  if (outcome.status != 204 || !outcome.generated) response.body() = std::move(outcome.body);
  // CORS: the allowed origin on every answer to it, preflight or not.
  if (api != nullptr && api->config.cors && origin) {
    const CorsConfig& cors = *api->config.cors;
    if (auto allowed = AllowedOrigin(cors, *origin)) {
      response.set("access-control-allow-origin", *allowed);
      response.set(http::Field::vary, "Origin");
      if (cors.allow_credentials) response.set("access-control-allow-credentials", "true");
      if (!cors.expose_headers.empty()) {
        response.set("access-control-expose-headers", CommaList(cors.expose_headers));
      }
    }
  }
  response.erase(http::Field::server);
  response.prepare_payload();
  Finish(*ex, response, outcome);
  co_return response;
}

// Mutual TLS: the connection's client certificate must chain to the app's truststore. A refusal
// is logged and audited with the reason; the client learns only 403.
bool Gateway::AdmitClientCert(Exchange& ex, const http::RequestContext& context) {
  const GatewayRequest& g = ex.request;
  core::Status verdict = core::Status::Ok();
  if (!context.tls) {
    verdict = core::PermissionDeniedError("mutual TLS: the request did not come over TLS");
  } else if (context.client_cert == nullptr) {
    verdict = core::PermissionDeniedError("mutual TLS: no client certificate");
  } else {
    verdict = ex.api->truststore->Verify(context.client_cert->leaf_pem,
                                         context.client_cert->chain_pem, deps_.clock.Now());
  }
  const std::string resource = "arn:aws:execute-api:" + options_.region + ":" +
                               options_.account_id + ":" + ex.api->config.api_id() + "/" +
                               ex.api->config.stage;
  if (!verdict.ok()) {
    deps_.log.WithRequestId(g.request_id)
        .Warn("gateway client certificate refused",
              {{"api", ex.api->id}, {"source_ip", g.source_ip}, {"reason", verdict.message()}});
    Audit(ex,
          context.client_cert != nullptr ? "mtls:" + context.client_cert->subject_dn : "anonymous",
          "execute-api:Invoke", resource, observe::AuditOutcome::kDenied, verdict.message());
    return false;
  }
  const http::ClientCertificate& c = *context.client_cert;
  ex.request.client_cert = ClientCertInfo{.pem = c.leaf_pem,
                                          .subject_dn = c.subject_dn,
                                          .issuer_dn = c.issuer_dn,
                                          .serial_number = c.serial_number,
                                          .not_before = c.not_before,
                                          .not_after = c.not_after};
  return true;
}

Gateway::Outcome Gateway::Run(Exchange& ex) {
  if (ex.waf != nullptr) {
    Outcome refused = Inspect(ex);
    if (refused.status != 0) return refused;
  }
  Outcome auth = Authenticate(ex);
  if (auth.status != 0) return auth;
  // The route's own bucket; an API key's was checked with its plan.
  if (ex.route->throttle && ex.key_id.empty()) {
    Outcome throttled = ThrottleRoute(ex, "*", ex.api->id);
    if (throttled.status != 0) return throttled;
  }
  if (!ex.route->parameters.empty()) {
    Outcome invalid = ValidateParameters(ex);
    if (invalid.status != 0) {
      for (auto& header : auth.headers) invalid.headers.push_back(std::move(header));
      return invalid;
    }
  }
  if (ex.body_schema != nullptr) {
    Outcome invalid = ValidateBody(ex);
    if (invalid.status != 0) {
      for (auto& header : auth.headers) invalid.headers.push_back(std::move(header));
      return invalid;
    }
  }
  Outcome result = Invoke(ex);
  // Rate-limit headers decided during authentication travel with the function's answer.
  for (auto& header : auth.headers) result.headers.push_back(std::move(header));
  return result;
}

// Status 0 means "go on" (with headers to add); anything else is the answer.
Gateway::Outcome Gateway::Authenticate(Exchange& ex) {
  const RouteConfig& route = *ex.route;
  const CompiledApi& api = *ex.api;
  GatewayRequest& g = ex.request;
  Outcome go;
  go.status = 0;
  auto deny = [&](Outcome o) {
    o.denied = std::string(AuthKindName(route.auth));
    return o;
  };
  switch (route.auth) {
    case AuthKind::kNone:
      return go;
    case AuthKind::kJwt: {
      const AuthorizerConfig& a = api.config.authorizers.at(route.authorizer);
      const JwtVerifier& verifier = *api.jwt.at(route.authorizer);
      std::optional<std::string> source;
      if (a.jwt.identity_source.kind == IdentitySource::Kind::kHeader) {
        source = HeaderValue(g.headers, a.jwt.identity_source.name);
      } else if (a.jwt.identity_source.kind == IdentitySource::Kind::kQuery) {
        source = QueryValue(g.raw_query, a.jwt.identity_source.name);
      }
      const std::string_view token = source ? BearerToken(*source) : std::string_view();
      if (token.empty()) {
        Outcome o = Outcome::Message(401, "Unauthorized");
        o.headers.emplace_back("www-authenticate", "Bearer");
        return deny(std::move(o));
      }
      auto verified = verifier.Verify(token, deps_.clock.Now());
      if (!verified.ok()) {
        Outcome o = Outcome::Message(401, "Unauthorized");
        o.headers.emplace_back("www-authenticate",
                               "Bearer error=\"invalid_token\", error_description=\"" +
                                   verified.status().message() + "\"");
        return deny(std::move(o));
      }
      if (const json::value* sub = verified->claims.if_contains("sub"); sub && sub->is_string()) {
        ex.principal = std::string(sub->as_string());
      }
      if (!HasScopes(*verified, route.scopes)) {
        std::string scopes;
        for (const std::string& s : route.scopes) scopes += (scopes.empty() ? "" : " ") + s;
        Outcome o = Outcome::Message(403, "Forbidden");
        o.headers.emplace_back("www-authenticate",
                               "Bearer error=\"insufficient_scope\", scope=\"" + scopes + "\"");
        return deny(std::move(o));
      }
      json::array scopes;
      for (const std::string& s : verified->scopes) scopes.emplace_back(s);
      json::value scopes_value = scopes.empty() ? json::value(nullptr) : json::value(scopes);
      ex.request_authorizer =
          json::object{{"jwt", json::object{{"claims", std::move(verified->claims)},
                                            {"scopes", std::move(scopes_value)}}}};
      return go;
    }
    case AuthKind::kApiKey: {
      std::optional<std::string> value = HeaderValue(g.headers, "x-api-key");
      if (!value || value->empty()) return deny(Outcome::Message(401, "Unauthorized"));
      Outcome admitted = AdmitKey(ex, *value);
      if (admitted.status != 0 && admitted.throttled.empty()) return deny(std::move(admitted));
      return admitted;
    }
    case AuthKind::kAuthorizer: {
      const AuthorizerConfig& a = api.config.authorizers.at(route.authorizer);
      std::vector<std::string> values;
      for (const IdentitySource& source : a.function.identity_sources) {
        std::optional<std::string> v;
        switch (source.kind) {
          case IdentitySource::Kind::kHeader:
            v = HeaderValue(g.headers, source.name);
            break;
          case IdentitySource::Kind::kQuery:
            v = QueryValue(g.raw_query, source.name);
            break;
          case IdentitySource::Kind::kContext:
            if (source.name == "routeKey") v = g.route_key;
            if (source.name == "httpMethod") v = g.method;
            if (source.name == "path") v = g.raw_path;
            if (source.name == "sourceIp") v = g.source_ip;
            break;
        }
        if (!v || v->empty()) return deny(Outcome::Message(401, "Unauthorized"));
        values.push_back(std::move(*v));
      }
      const std::string route_arn = RouteArn(ex);
      std::string event = BuildAuthorizerEvent(g, route_arn, values);
      const AuthorizerCall call{
          .cache_scope = api.id + "/" + a.name + "/" + std::to_string(a.function.function_version),
          .config = &a.function,
          .identity_values = std::move(values),
          .event = std::move(event),
          .route_arn = route_arn,
          .request_id = g.request_id};
      auto decision = authorizer_.Authorize(call);
      if (!decision.ok()) {
        deps_.log.WithRequestId(g.request_id)
            .Error("gateway authorizer failed", {{"api", api.id},
                                                 {"route", g.route_key},
                                                 {"authorizer", a.name},
                                                 {"error", decision.status()}});
        Audit(ex, "authorizer:" + a.name, "execute-api:Invoke", route_arn,
              observe::AuditOutcome::kError, decision.status().message());
        return deny(Outcome::Message(500, "Internal Server Error"));
      }
      ex.principal = decision->principal_id;
      if (!decision->authorized) return deny(Outcome::Message(403, "Forbidden"));
      ex.request_authorizer = json::object{{"lambda", std::move(decision->context)}};
      if (!decision->usage_identifier_key.empty()) {
        Outcome admitted = AdmitKey(ex, decision->usage_identifier_key);
        if (admitted.status != 0 && admitted.throttled.empty()) return deny(std::move(admitted));
        return admitted;
      }
      return go;
    }
    case AuthKind::kIam: {
      const std::string route_arn = RouteArn(ex);
      if (deps_.authenticator == nullptr) return deny(Outcome::Message(403, "Forbidden"));
      identity::HttpRequestView view{.method = g.method, .target = ex.target, .body = g.body};
      for (const auto& [name, value] : g.headers) view.headers.emplace_back(name, value);
      const identity::RequestOrigin origin{.source_ip = g.source_ip, .secure_transport = ex.secure};
      auto caller = deps_.authenticator->Authenticate(view, origin, "execute-api");
      if (!caller.ok()) {
        Audit(ex, "anonymous", "execute-api:Invoke", route_arn, observe::AuditOutcome::kDenied,
              caller.status().message());
        return deny(Outcome::Message(403, caller.status().message()));
      }
      const policy::RequestContext request = identity::RequestContextFor(
          *caller, origin, "execute-api:Invoke", route_arn, deps_.clock.Now(), options_.region);
      const policy::EvaluationResult decision = policy::Evaluate(request, caller->policies);
      ex.principal = caller->arn;
      if (!decision.allowed()) {
        Audit(ex, caller->arn, "execute-api:Invoke", route_arn, observe::AuditOutcome::kDenied,
              decision.Message(request));
        return deny(Outcome::Message(403, decision.Message(request)));
      }
      Audit(ex, caller->arn, "execute-api:Invoke", route_arn, observe::AuditOutcome::kAllowed, "");
      ex.request_authorizer =
          json::object{{"iam", json::object{{"accessKey", caller->access_key_id},
                                            {"accountId", caller->account},
                                            {"callerId", caller->user_id},
                                            {"cognitoIdentity", nullptr},
                                            {"principalOrgId", nullptr},
                                            {"userArn", caller->arn},
                                            {"userId", caller->user_id}}}};
      return go;
    }
  }
  return deny(Outcome::Message(403, "Forbidden"));
}

// The request body against the route's schema. Status 0: valid. A body that is not JSON is 415
// (the schema describes JSON); violations are 400 with each one's JSON pointer and message (the
// validator caps their number and size).
Gateway::Outcome Gateway::ValidateBody(Exchange& ex) {
  std::string type = Lower(HeaderValue(ex.request.headers, "content-type").value_or(""));
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  const bool json_type =
      type == "application/json" || (type.starts_with("application/") && type.ends_with("+json"));
  if (!json_type) {
    Outcome o = Outcome::Message(415, "Unsupported Media Type");
    o.denied = "validation";
    return o;
  }
  const std::vector<Violation> violations = ex.body_schema->Validate(ex.request.body);
  Outcome o;
  o.status = 0;
  if (violations.empty()) return o;
  json::array list;
  for (const Violation& v : violations) {
    list.emplace_back(json::object{{"path", v.pointer}, {"message", v.message}});
  }
  o.status = 400;
  o.body = json::serialize(
      json::object{{"message", "Invalid request body"}, {"violations", std::move(list)}});
  o.denied = "validation";
  return o;
}

// The route's query and header parameters: each required one present, each value (as a JSON
// string) matching its schema. Status 0: valid; otherwise 400 listing each violation.
Gateway::Outcome Gateway::ValidateParameters(Exchange& ex) {
  const std::vector<std::shared_ptr<const CompiledSchema>>& schemas =
      ex.api->parameter_schemas.at(ex.route_index);
  json::array list;
  for (std::size_t i = 0; i < ex.route->parameters.size(); ++i) {
    const ParameterConfig& p = ex.route->parameters[i];
    const bool query = p.in == ParameterConfig::In::kQuery;
    const std::optional<std::string> value =
        query ? QueryValue(ex.request.raw_query, p.name) : HeaderValue(ex.request.headers, p.name);
    auto violation = [&](std::string message) {
      list.emplace_back(json::object{
          {"in", query ? "query" : "header"}, {"name", p.name}, {"message", std::move(message)}});
    };
    if (!value) {
      if (p.required) violation("is required");
      continue;
    }
    if (schemas[i] == nullptr) continue;
    for (const Violation& v : schemas[i]->Validate(json::value(json::string(*value)))) {
      violation(v.message);
    }
  }
  Outcome o;
  o.status = 0;
  if (list.empty()) return o;
  o.status = 400;
  o.body = json::serialize(
      json::object{{"message", "Invalid request parameters"}, {"violations", std::move(list)}});
  o.denied = "validation";
  return o;
}

// The route's WAF on the request as received. Status 0: go on (also in detect mode, which only
// logs); otherwise 403 (500 if the WAF itself failed) naming the request id, the rules in the log
// and the audit record.
Gateway::Outcome Gateway::Inspect(Exchange& ex) {
  const GatewayRequest& g = ex.request;
  WafRequest request{.client_ip = g.source_ip,
                     .method = g.method,
                     .uri = ex.target,
                     .http_version = g.protocol == "HTTP/1.0" ? "1.0" : "1.1",
                     .headers = g.headers,
                     .body = g.body,
                     .request_id = g.request_id};
  if (const std::size_t colon = ex.remote.rfind(':'); colon != std::string::npos) {
    request.client_port = std::atoi(ex.remote.c_str() + colon + 1);
  }
  const WafVerdict verdict = ex.waf->Inspect(request);
  Outcome o;
  o.status = 0;
  if (!verdict.matched && !verdict.blocked) return o;
  std::string rules;
  for (int id : verdict.rule_ids) rules += (rules.empty() ? "" : ",") + std::to_string(id);
  const std::string action = verdict.blocked ? "blocked" : "detected";
  if (waf_metric_ != nullptr) waf_metric_->WithLabels({ex.api->id, g.route_key, action}).Inc();
  deps_.log.WithRequestId(g.request_id)
      .Warn("gateway waf " + action,
            {{"api", ex.api->id},
             {"route", g.route_key},
             {"source_ip", g.source_ip},
             {"rules", rules},
             {"anomaly_score", static_cast<std::int64_t>(verdict.anomaly_score)},
             {"matches", verdict.log}});
  if (!verdict.blocked) return o;
  Audit(ex, "anonymous", "execute-api:Invoke", RouteArn(ex), observe::AuditOutcome::kDenied,
        "waf " + action + ": rules " + rules + " (anomaly score " +
            std::to_string(verdict.anomaly_score) + ")");
  o.status = verdict.status == 0 ? 403 : static_cast<unsigned>(verdict.status);
  o.body = json::serialize(
      json::object{{"message", o.status == 403 ? "Forbidden" : "Internal Server Error"},
                   {"requestId", g.request_id}});
  return o;
}

// The route's token bucket for `who` (an API key id, or "*": every caller). Status 0: admitted.
Gateway::Outcome Gateway::ThrottleRoute(Exchange& ex, const std::string& who,
                                        const std::string& bucket) {
  const Throttle& throttle = *ex.route->throttle;
  auto admission = deps_.usage.Admit(who, bucket, {.rate = throttle.rate, .burst = throttle.burst},
                                     ex.request.route_key);
  if (!admission.ok()) {
    deps_.log.WithRequestId(ex.request.request_id)
        .Error("gateway usage meter failed", {{"error", admission.status()}});
    return Outcome::Message(500, "Internal Server Error");
  }
  Outcome o;
  o.status = 0;
  if (!admission->admitted) {
    o = Outcome::Message(429, "Too Many Requests");
    o.headers.emplace_back("retry-after", std::to_string(admission->retry_after.count()));
    o.throttled = "route";
  }
  return o;
}

// arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH (PATH without its leading '/').
std::string Gateway::RouteArn(const Exchange& ex) const {
  return "arn:aws:execute-api:" + options_.region + ":" + options_.account_id + ":" +
         ex.api->config.api_id() + "/" + ex.api->config.stage + "/" + ex.request.method + "/" +
         ex.request.raw_path.substr(1);
}

Gateway::Outcome Gateway::AdmitKey(Exchange& ex, const std::string& value) {
  const RouteConfig& route = *ex.route;
  const ApiConfig& config = ex.api->config;
  auto key = deps_.keys.Lookup(value);
  if (!key.ok()) {
    if (key.status().code() != core::StatusCode::kNotFound) {
      deps_.log.WithRequestId(ex.request.request_id)
          .Error("gateway API key lookup failed", {{"error", key.status()}});
      return Outcome::Message(500, "Internal Server Error");
    }
    return Outcome::Message(403, "Forbidden");
  }
  ex.key_id = key->id;
  if (!key->enabled || key->app != config.app || key->stage != config.stage ||
      (!route.usage_plan.empty() && key->plan != route.usage_plan)) {
    return Outcome::Message(403, "Forbidden");
  }
  auto plan = config.usage_plans.find(key->plan);
  if (plan == config.usage_plans.end()) return Outcome::Message(403, "Forbidden");
  if (route.throttle) {
    Outcome throttled = ThrottleRoute(ex, key->id, "route:" + key->plan);
    if (throttled.status != 0) return throttled;
  }
  PlanLimits limits{.rate = plan->second.rate, .burst = plan->second.burst};
  if (plan->second.quota_limit) {
    limits.quota_limit = plan->second.quota_limit;
    limits.period = plan->second.quota_period == "week"    ? QuotaPeriod::kWeek
                    : plan->second.quota_period == "month" ? QuotaPeriod::kMonth
                                                           : QuotaPeriod::kDay;
    limits.quota_offset = plan->second.quota_offset;
  }
  auto admission = deps_.usage.Admit(key->id, key->plan, limits);
  if (!admission.ok()) {
    deps_.log.WithRequestId(ex.request.request_id)
        .Error("gateway usage meter failed", {{"error", admission.status()}});
    return Outcome::Message(500, "Internal Server Error");
  }
  Outcome o;
  o.status = 0;
  if (limits.quota_limit) {
    const auto reset = std::chrono::duration_cast<std::chrono::seconds>(admission->quota_resets_at -
                                                                        deps_.clock.Now());
    o.headers.emplace_back("x-ratelimit-limit", std::to_string(*limits.quota_limit));
    o.headers.emplace_back("x-ratelimit-remaining",
                           std::to_string(admission->quota_remaining.value_or(0)));
    o.headers.emplace_back("x-ratelimit-reset", std::to_string(std::max<long>(0, reset.count())));
  }
  if (!admission->admitted) {
    Outcome refused = Outcome::Message(429, "Too Many Requests");
    refused.headers = std::move(o.headers);
    refused.headers.emplace_back("retry-after", std::to_string(admission->retry_after.count()));
    refused.throttled = admission->refusal == Admission::Refusal::kQuota ? "quota" : "rate";
    return refused;
  }
  return o;
}

Gateway::Outcome Gateway::Invoke(Exchange& ex) {
  const RouteConfig& route = *ex.route;
  const GatewayRequest& g = ex.request;
  const std::string event = BuildEvent(g, ex.request_authorizer);
  auto result = deps_.functions.Invoke(route.function, route.function_version, event, g.request_id);
  auto fail = [&](std::string_view what, const std::string& detail) {
    deps_.log.WithRequestId(g.request_id)
        .Error("gateway integration failed", {{"api", ex.api->id},
                                              {"route", g.route_key},
                                              {"function", route.function},
                                              {"reason", what},
                                              {"detail", detail}});
    return Outcome::Message(502, "Bad Gateway");
  };
  if (!result.ok()) {
    if (result.status().code() == core::StatusCode::kResourceExhausted) {
      Outcome o = Outcome::Message(429, "Too Many Requests");
      o.headers.emplace_back("retry-after", "1");
      o.throttled = "function";
      return o;
    }
    if (result.status().code() == core::StatusCode::kUnavailable) {
      deps_.log.WithRequestId(g.request_id)
          .Error("gateway integration unavailable",
                 {{"api", ex.api->id}, {"route", g.route_key}, {"error", result.status()}});
      return Outcome::Message(503, "Service Unavailable");
    }
    return fail("the function could not run", result.status().message());
  }
  if (result->function_error) {
    return fail("the function failed", result->payload.substr(0, 1024));
  }
  auto mapped = MapResponse(result->payload);
  if (!mapped.ok()) return fail("the function's response is not valid", mapped.status().message());
  if (mapped->body.size() > options_.max_response_bytes) {
    return fail("the function's response is too large", std::to_string(mapped->body.size()));
  }
  Outcome o;
  o.generated = false;
  o.status = mapped->status;
  o.headers = std::move(mapped->headers);
  o.body = std::move(mapped->body);
  return o;
}

void Gateway::Audit(const Exchange& ex, std::string actor, std::string action, std::string resource,
                    observe::AuditOutcome outcome, std::string reason) {
  if (deps_.audit == nullptr) return;
  observe::AuditRecord record{
      .actor = std::move(actor),
      .action = std::move(action),
      .resource = std::move(resource),
      .outcome = outcome,
      .request_id = ex.request.request_id,
      .reason = std::move(reason),
      .fields = {{"source_ip", ex.request.source_ip}, {"route", ex.request.route_key}}};
  if (core::Status s = deps_.audit->Append(record); !s.ok()) {
    deps_.log.WithRequestId(ex.request.request_id).Error("gateway audit failed", {{"error", s}});
  }
}

void Gateway::Finish(const Exchange& ex, http::Response& response, const Outcome& outcome) {
  if (requests_metric_ == nullptr && !options_.access_log) return;
  const std::string api = ex.api ? ex.api->id : "unknown";
  const std::string route = ex.route ? ex.request.route_key : "unmatched";
  const auto latency = std::chrono::steady_clock::now() - ex.started;
  const double seconds = std::chrono::duration<double>(latency).count();
  if (requests_metric_ != nullptr) {
    requests_metric_->WithLabels({api, route, StatusClass(outcome.status)}).Inc();
    latency_metric_->WithLabels({api, route}).Observe(seconds);
    if (outcome.denied == "validation") {
      invalid_metric_->WithLabels({api, route}).Inc();
    } else if (!outcome.denied.empty()) {
      denials_metric_->WithLabels({api, route, outcome.denied}).Inc();
    }
    if (!outcome.throttled.empty()) {
      throttles_metric_->WithLabels({api, route, outcome.throttled}).Inc();
    }
  }
  if (!options_.access_log) return;
  std::vector<observe::LogField> fields = {
      {"api", api},
      {"route", route},
      {"method", ex.request.method},
      {"status", static_cast<std::int64_t>(response.result_int())},
      {"latency_ms", seconds * 1000},
      {"source_ip", ex.request.source_ip}};
  if (ex.route != nullptr) fields.emplace_back("auth", AuthKindName(ex.route->auth));
  if (!ex.principal.empty()) fields.emplace_back("principal", ex.principal);
  if (!ex.key_id.empty()) fields.emplace_back("api_key_id", ex.key_id);
  if (!outcome.throttled.empty()) fields.emplace_back("throttled", outcome.throttled);
  // The logger writes the id under "request_id" (a field of that name would be renamed).
  deps_.log.WithRequestId(ex.request.request_id)
      .Log(observe::LogLevel::kInfo, "gateway request", fields);
}

}  // namespace moatless::gateway
