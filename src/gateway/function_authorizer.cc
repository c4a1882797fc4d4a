#include "gateway/function_authorizer.h"

#include <boost/json.hpp>

#include "policy/compiled.h"

namespace moatless::gateway {
namespace {

namespace json = boost::json;

core::Status Malformed(std::string why) {
  return core::InternalError("the authorizer's response is not valid: " + std::move(why));
}

// Context values reach the function as requestContext.authorizer.lambda; AWS allows scalars only.
core::Result<json::object> ContextOf(const json::object& response) {
  const json::value* context = response.if_contains("context");
  if (context == nullptr || context->is_null()) return json::object{};
  if (!context->is_object()) return Malformed("context is not an object");
  for (const auto& [key, value] : context->as_object()) {
    if (!(value.is_string() || value.is_number() || value.is_bool())) {
      return Malformed("context." + std::string(key) + " is not a string, number or boolean");
    }
  }
  return context->as_object();
}

}  // namespace

FunctionAuthorizer::FunctionAuthorizer(Functions& functions, const core::Clock& clock,
                                       std::size_t max_entries)
    : functions_(functions), clock_(clock), max_entries_(max_entries) {}

std::string FunctionAuthorizer::CacheKey(const AuthorizerCall& call) {
  // Length-prefixed, so no choice of values can collide with another.
  std::string key = call.cache_scope;
  key += '\n';
  for (const std::string& v : call.identity_values) {
    key += std::to_string(v.size());
    key += ':';
    key += v;
  }
  return key;
}

core::Result<FunctionAuthorizer::Entry> FunctionAuthorizer::Parse(
    const FunctionAuthorizerConfig& config, std::string_view payload) {
  boost::system::error_code ec;
  const json::value doc = json::parse(payload, ec);
  if (ec || !doc.is_object()) return Malformed("not a JSON object");
  const json::object& response = doc.as_object();
  Entry entry;
  ASSIGN_OR_RETURN(entry.context, ContextOf(response));
  if (config.simple_responses) {
    const json::value* authorized = response.if_contains("isAuthorized");
    if (authorized == nullptr || !authorized->is_bool()) {
      return Malformed("isAuthorized is missing or not a boolean");
    }
    entry.authorized = authorized->as_bool();
    return entry;
  }
  const json::value* principal = response.if_contains("principalId");
  if (principal == nullptr || !principal->is_string()) {
    return Malformed("principalId is missing or not a string");
  }
  entry.principal_id = std::string(principal->as_string());
  const json::value* document = response.if_contains("policyDocument");
  if (document == nullptr || !document->is_object()) {
    return Malformed("policyDocument is missing or not an object");
  }
  auto compiled = policy::CompiledPolicy::FromJson(json::serialize(*document), "authorizer policy");
  if (!compiled.ok()) return Malformed("policyDocument: " + compiled.status().message());
  entry.policy = *std::move(compiled);
  if (const json::value* key = response.if_contains("usageIdentifierKey")) {
    if (!key->is_string()) return Malformed("usageIdentifierKey is not a string");
    entry.usage_identifier_key = std::string(key->as_string());
  }
  return entry;
}

AuthorizerDecision FunctionAuthorizer::Decide(const Entry& entry, const std::string& route_arn,
                                              bool cached) const {
  AuthorizerDecision decision{.authorized = entry.authorized,
                              .context = entry.context,
                              .principal_id = entry.principal_id,
                              .usage_identifier_key = entry.usage_identifier_key,
                              .cached = cached};
  if (entry.policy != nullptr) {
    policy::RequestContext request;
    request.principal_kind = policy::PrincipalKind::kUser;
    request.action = "execute-api:Invoke";
    request.resource = route_arn;
    policy::PolicySet policies;
    policies.identity.push_back(entry.policy);
    decision.authorized = policy::Evaluate(request, policies).allowed();
  }
  return decision;
}

core::Result<AuthorizerDecision> FunctionAuthorizer::Authorize(const AuthorizerCall& call) {
  const FunctionAuthorizerConfig& config = *call.config;
  const std::string key = config.ttl_s > 0 ? CacheKey(call) : std::string();
  const core::WallTime now = clock_.Now();
  if (!key.empty()) {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (it->second.expires > now) return Decide(it->second, call.route_arn, true);
      ages_.erase(it->second.age);
      cache_.erase(it);
    }
  }
  auto result =
      functions_.Invoke(config.function, config.function_version, call.event, call.request_id);
  if (!result.ok()) {
    return core::InternalError("the authorizer could not run: " + result.status().message());
  }
  if (result->function_error) {
    return core::InternalError("the authorizer failed (" + *result->function_error + ")");
  }
  ASSIGN_OR_RETURN(Entry entry, Parse(config, result->payload));
  AuthorizerDecision decision = Decide(entry, call.route_arn, false);
  if (!key.empty()) {
    entry.expires = now + std::chrono::seconds(config.ttl_s);
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      ages_.erase(it->second.age);
      cache_.erase(it);
    }
    while (cache_.size() >= max_entries_ && !ages_.empty()) {
      cache_.erase(ages_.front());
      ages_.pop_front();
    }
    entry.age = ages_.insert(ages_.end(), key);
    cache_.emplace(key, std::move(entry));
  }
  return decision;
}

void FunctionAuthorizer::Clear(std::string_view scope_prefix) {
  std::lock_guard lock(mu_);
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (it->first.starts_with(scope_prefix)) {
      ages_.erase(it->second.age);
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace moatless::gateway
