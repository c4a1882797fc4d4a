// Gateway: the public HTTP entry point of every deployed app. HTTP traffic reaches a function only
// through a route its app's manifest declares, and only once that route's authentication has
// passed; there is no other way in (no "invoke by name" on this listener).
//
// Which app: an operator-configured host name maps to one app stage (options.hosts: "api.example
// .com" -> "notes/dev"); any other host uses the path prefix /APP/STAGE (so
// http://gateway/notes/dev/notes/42 is the route GET /notes/{id} of notes/dev). rawPath is the
// path after that prefix, as API Gateway leaves out a custom domain's API mapping.
//
// Per request, in this order:
//  1. the server has already refused ambiguous requests, dot segments (also encoded, or hidden
//     behind an encoded slash), NULs and bad escapes (http/path.h); the gateway also refuses
//     decoded segments that are not well-formed UTF-8 (overlong forms included);
//  2. an app with mutual TLS (ApiConfig::mtls) admits only requests whose TLS client certificate
//     chains to its truststore (gateway/truststore.h), 403 otherwise (audited); the certificate
//     then appears in the event's requestContext.authentication.clientCert;
//  3. CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered by the
//     gateway when the app configures CORS, without authentication, as browsers expect;
//  4. routing: the most specific route wins (http/router.h); otherwise $default if the app has
//     one; otherwise 404, or 405 with Allow when only the method is wrong;
//  5. the route's WAF (gateway/waf.h; by default blocking at paranoia level 1) inspects the
//     request as received: a blocked request is a 403 with its request id (the rule ids go to the
//     log and the audit trail, never to the client); in detect mode matches are only logged;
//  6. authentication as the route declares: none, JWT (401 / 403 on scopes), API key (401 without
//     one, 403 for an unknown, disabled or other app's key, or a key not on the route's plan),
//     an authorizer function (401 without its identity sources, 403 when it denies, 500 when it
//     fails), or SigV4 (execute-api:Invoke on the route's ARN, authorised by the caller's
//     policies, the decision audited);
//  7. usage plan of the API key (or of the authorizer's usageIdentifierKey): 429 with
//     Retry-After when over its rate or quota;
//  8. the route's query and header parameters (required ones present, values matching their
//     schemas), then the JSON body against the route's schema (gateway/schema_validator.h): 400
//     with the violations, 415 for a body that is not JSON;
//  9. the function version the app version deployed runs with the payload 2.0 event; its response
//     is mapped back (payload.h). A function error, an invalid response or one over
//     max_response_bytes is a 502 with a generic body (details in the log); no answer within
//     integration_timeout is a 504 (the invocation is left to the function's own timeout).
// Responses the gateway writes itself are JSON {"message": "..."} with nosniff and no-store; no
// response carries a Server header. Every request gets one access-log line (request id, api,
// route, status, latency, auth kind and principal or API key id — never a token or a key; unless
// options.access_log is off) and is counted in moatless_gateway_* metrics per api and route (with
// a registry).
//
// Apply/Remove replace one app stage's API atomically: a request in flight finishes with the API
// it started with. Handle is a coroutine for the http::Server; everything that may block runs on
// the blocking pool. Thread-safe; the Gateway must outlive the servers that call it.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "gateway/api_config.h"
#include "gateway/api_keys.h"
#include "gateway/function_authorizer.h"
#include "gateway/functions.h"
#include "gateway/usage_meter.h"
#include "gateway/waf.h"
#include "http/types.h"
#include "identity/authenticator.h"
#include "observe/audit_log.h"
#include "observe/logger.h"
#include "observe/metrics.h"

namespace moatless::gateway {

struct GatewayOptions {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  // Host name (lower-case, without port) -> "APP/STAGE".
  std::map<std::string, std::string> hosts;
  std::size_t max_response_bytes = 6 * 1024 * 1024;
  std::chrono::milliseconds integration_timeout{30000};
  // The OWASP CRS rules directory (gateway/waf.h); "" for Debian's.
  std::string waf_rules_dir;
  // One "gateway request" access-log line per request (the operator's log.access). Off, the
  // gateway still logs WAF matches, failures and what it loads, and still audits.
  bool access_log = true;
};

class Gateway {
 public:
  struct Deps {
    Functions& functions;
    ApiKeyStore& keys;
    UsageMeter& usage;
    const core::Clock& clock;
    boost::asio::thread_pool& blocking;                // authentication and invocations run here
    identity::Authenticator* authenticator = nullptr;  // null: IAM routes answer 403
    observe::AuditLog* audit = nullptr;                // null: nothing audited (tests)
    observe::Logger log;
    observe::MetricsRegistry* metrics = nullptr;
  };
  Gateway(Deps deps, GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Loads the WAF rules with the default settings (block, paranoia 1): FailedPrecondition naming
  // the file when the rules are missing or broken. Start-up calls it so that a broken rule set
  // stops the daemon instead of being found by the first deployment.
  core::Status LoadWaf();

  // Serves `config` for its app stage from now on (replacing what was there). InvalidArgument,
  // and nothing changes, when it does not validate, a JWKS or a schema does not compile, or a
  // route's WAF settings cannot be loaded.
  core::Status Apply(const ApiConfig& config);
  void Remove(std::string_view app, std::string_view stage);

  http::asio::awaitable<http::Response> Handle(http::Request& request,
                                               http::RequestContext& context);
  http::Handler AsHandler();

 private:
  struct CompiledApi;
  struct Exchange;
  struct Outcome;
  std::shared_ptr<const CompiledApi> Find(const std::string& id) const;
  // Everything after routing that may block; runs on the blocking pool.
  Outcome Run(Exchange& ex);
  Outcome Authenticate(Exchange& ex);
  Outcome AdmitKey(Exchange& ex, const std::string& value);
  Outcome Invoke(Exchange& ex);
  std::string RouteArn(const Exchange& ex) const;
  Outcome ThrottleRoute(Exchange& ex, const std::string& who, const std::string& bucket);
  Outcome ValidateBody(Exchange& ex);
  Outcome ValidateParameters(Exchange& ex);
  Outcome Inspect(Exchange& ex);
  bool AdmitClientCert(Exchange& ex, const http::RequestContext& context);
  // The engine for `config` (shared by every route with the same settings); null when off.
  core::Result<std::shared_ptr<const WafEngine>> WafFor(const WafConfig& config);
  void Finish(const Exchange& ex, http::Response& response, const Outcome& outcome);
  void Audit(const Exchange& ex, std::string actor, std::string action, std::string resource,
             observe::AuditOutcome outcome, std::string reason);

  Deps deps_;
  GatewayOptions options_;
  FunctionAuthorizer authorizer_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const CompiledApi>, std::less<>> apis_;  // "APP/STAGE"
  std::mutex waf_mu_;  // held while an engine loads, so each configuration loads once
  std::map<std::string, std::shared_ptr<const WafEngine>> waf_engines_;  // by settings
  observe::CounterFamily* requests_metric_ = nullptr;
  observe::HistogramFamily* latency_metric_ = nullptr;
  observe::CounterFamily* denials_metric_ = nullptr;
  observe::CounterFamily* throttles_metric_ = nullptr;
  observe::CounterFamily* invalid_metric_ = nullptr;
  observe::CounterFamily* waf_metric_ = nullptr;
};

}  // namespace moatless::gateway
