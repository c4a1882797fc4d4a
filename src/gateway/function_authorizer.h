// FunctionAuthorizer: runs an app's authorizer function (an API Gateway Lambda authorizer of
// REQUEST type, payload format 2.0) and caches its decisions.
//
// The gateway gathers the authorizer's identity sources first (a missing or empty one is a 401
// without invoking anything) and builds the 2.0 authorizer event; Authorize then answers from the
// cache or invokes the function at the version the app version deployed. Two response formats:
//  - simple (enableSimpleResponses): {"isAuthorized": bool, "context": {...}};
//  - IAM policy: {"principalId", "policyDocument", "context", "usageIdentifierKey"}, the policy
//    evaluated by the policy engine for execute-api:Invoke on the route's ARN (explicit deny
//    wins; no allow is a deny).
// Context values must be strings, numbers or booleans (as on AWS). Anything else — the function
// failing, timing out or throttled, a payload that is not one of the two shapes, a policy that
// does not parse — is an error (Internal), which the gateway answers with 500 and audits.
//
// Caching, as on AWS: keyed by the authorizer (app stage, name, function version) and the values
// of its identity sources — add $context.routeKey to the sources to cache per route — for ttl_s
// seconds (0: never cached). IAM-policy decisions are cached as the policy, and evaluated for each
// route, so a policy naming one route never leaks to another. Errors are never cached. The cache
// is bounded (the oldest entries go first) and cleared for an app stage when it is redeployed.
//
// Thread-safe; Authorize blocks while the function runs.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "gateway/api_config.h"
#include "gateway/functions.h"
#include "policy/evaluator.h"

namespace moatless::gateway {

struct AuthorizerDecision {
  bool authorized = false;
  boost::json::object context;       // requestContext.authorizer.lambda
  std::string principal_id;          // IAM-policy responses
  std::string usage_identifier_key;  // an API key value for usage plans; "" when none
  bool cached = false;               // answered from the cache
};

struct AuthorizerCall {
  std::string cache_scope;  // app stage + authorizer name + function version
  const FunctionAuthorizerConfig* config = nullptr;
  std::vector<std::string> identity_values;  // each non-empty
  std::string event;                         // the 2.0 authorizer event
  std::string route_arn;  // arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH
  std::string request_id;
};

class FunctionAuthorizer {
 public:
  FunctionAuthorizer(Functions& functions, const core::Clock& clock,
                     std::size_t max_entries = 10000);
  FunctionAuthorizer(const FunctionAuthorizer&) = delete;
  FunctionAuthorizer& operator=(const FunctionAuthorizer&) = delete;

  core::Result<AuthorizerDecision> Authorize(const AuthorizerCall& call);
  // Forgets every cached decision whose scope starts with `scope_prefix` ("" : all).
  void Clear(std::string_view scope_prefix = "");

 private:
  struct Entry {
    bool authorized = false;
    boost::json::object context;
    std::string principal_id;
    std::string usage_identifier_key;
    std::shared_ptr<const policy::CompiledPolicy> policy;  // IAM-policy responses
    core::WallTime expires;
    std::list<std::string>::iterator age;
  };
  // Parses a response; the error names what is wrong (for the logs and the audit record).
  static core::Result<Entry> Parse(const FunctionAuthorizerConfig& config,
                                   std::string_view payload);
  AuthorizerDecision Decide(const Entry& entry, const std::string& route_arn, bool cached) const;
  static std::string CacheKey(const AuthorizerCall& call);

  Functions& functions_;
  const core::Clock& clock_;
  const std::size_t max_entries_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
  std::list<std::string> ages_;  // oldest first
};

}  // namespace moatless::gateway
