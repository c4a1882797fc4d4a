#include "identity/sts.h"

#include <chrono>
#include <utility>

#include "policy/compiled.h"
#include "policy/parser.h"

namespace moatless::identity {
namespace {

constexpr std::int64_t kDefaultDuration = 3600;
constexpr std::int64_t kMinDuration = 900;
constexpr std::int64_t kChainedMaxDuration = 3600;
constexpr std::int64_t kUserSessionMaxDuration = 129600;  // 36 h
constexpr std::size_t kMaxSessionPolicyBytes = 2048;
constexpr std::string_view kLambdaServicePrincipal = "lambda.amazonaws.com";

core::Status Validation(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("ValidationError");
}

core::Status ValidateSessionName(std::string_view name) {
  // IAM's name characters, at least two of them.
  if (name.size() < 2 || !ValidatePrincipalName(name).ok()) {
    return Validation("RoleSessionName must be 2-64 of letters, digits and +=,.@_-");
  }
  return core::Status::Ok();
}

std::int64_t UnixNow(core::Env& env) {
  return std::chrono::duration_cast<std::chrono::seconds>(env.clock().Now().time_since_epoch())
      .count();
}

// The sts:AssumeRole decision on `role`: its trust policy is the resource policy that must allow,
// `policies` (the caller's own; none for a service principal) the identity side. A missing role,
// or one without a trust policy, is denied like a refused one, so the answer does not reveal
// which roles exist.
core::Result<policy::EvaluationResult> TrustDecision(const core::Result<Principal>& role,
                                                     const policy::RequestContext& context,
                                                     policy::PolicySet policies) {
  if (!role.ok() && role.status().code() != core::StatusCode::kNotFound) return role.status();
  policy::EvaluationResult result;
  result.missing_allow = policy::Layer::kResource;
  if (role.ok() && role->type == PrincipalType::kRole && role->trust_policy) {
    auto trust = policy::CompiledPolicy::FromJson(*role->trust_policy, "trust policy",
                                                  {.type = policy::PolicyType::kTrust});
    if (!trust.ok()) return core::InternalError("a stored trust policy does not compile");
    policies.resource = *trust;
    policies.resource_policy_must_allow = true;
    result = policy::Evaluate(context, policies);
  }
  return result;
}

}  // namespace

Sts::Sts(Directory& directory, const SessionTokens& tokens, core::Env& env, std::string region)
    : directory_(directory), tokens_(tokens), env_(env), region_(std::move(region)) {}

CallerIdentity Sts::GetCallerIdentity(const Caller& caller) const {
  return {.account = caller.account, .arn = caller.arn, .user_id = caller.user_id};
}

core::Result<AssumedRole> Sts::AssumeRole(const Caller& caller, const AssumeRoleRequest& request,
                                          const RequestOrigin& origin,
                                          StsDecision* decision) const {
  RETURN_IF_ERROR(ValidateSessionName(request.role_session_name));
  if (request.tags.size() > 50) return Validation("at most 50 session tags are allowed");
  if (request.policy) {
    if (request.policy->size() > kMaxSessionPolicyBytes) {
      return core::InvalidArgumentError("the session policy is over 2048 characters")
          .WithAwsType("PackedPolicyTooLarge");
    }
    auto compiled = policy::CompiledPolicy::FromJson(*request.policy, "session policy",
                                                     {.type = policy::PolicyType::kSession});
    if (!compiled.ok()) {
      return core::InvalidArgumentError(compiled.status().message())
          .WithAwsType("MalformedPolicyDocument");
    }
  }

  // The role, and the decision: trust policy as the resource policy that must allow, the caller's
  // own policies as the identity side.
  auto role = directory_.GetByArn(request.role_arn);
  const policy::RequestContext context = RequestContextFor(
      caller, origin, "sts:AssumeRole", request.role_arn, env_.clock().Now(), region_);
  ASSIGN_OR_RETURN(const policy::EvaluationResult result,
                   TrustDecision(role, context, caller.policies));
  if (decision != nullptr) {
    *decision = {.action = "sts:AssumeRole", .resource = request.role_arn, .result = result};
  }
  if (!result.allowed()) {
    return core::PermissionDeniedError(result.Message(context)).WithAwsType("AccessDenied");
  }

  std::int64_t max_duration = role->max_session_seconds;
  if (caller.kind == policy::PrincipalKind::kRoleSession) {
    max_duration = std::min(max_duration, kChainedMaxDuration);
  }
  const std::int64_t duration = request.duration_seconds.value_or(kDefaultDuration);
  if (duration < kMinDuration || duration > max_duration) {
    return Validation("DurationSeconds must be between " + std::to_string(kMinDuration) + " and " +
                      std::to_string(max_duration) + " for this role");
  }

  SessionClaims claims;
  claims.session_policy = request.policy;
  claims.tags = request.tags;
  return RoleSession(*role, request.role_session_name, duration, std::move(claims));
}

AssumedRole Sts::RoleSession(const Principal& role, const std::string& session_name,
                             std::int64_t duration_seconds, SessionClaims claims) const {
  claims.principal_arn =
      "arn:aws:sts::" + directory_.account_id() + ":assumed-role/" + role.name + "/" + session_name;
  claims.source_arn = role.arn;
  claims.session_name = session_name;
  claims.issued_at = UnixNow(env_);
  claims.expires_at = claims.issued_at + duration_seconds;
  AssumedRole out;
  out.assumed_role_arn = claims.principal_arn;
  out.assumed_role_id = role.id + ":" + session_name;
  out.credentials = tokens_.Issue(std::move(claims), env_.random());
  return out;
}

core::Result<AssumedRole> Sts::CredentialsForEnvironment(const std::string& role_arn,
                                                         const std::string& session_name,
                                                         const std::string& environment,
                                                         std::int64_t duration_seconds,
                                                         StsDecision* decision) const {
  if (environment.empty()) return core::InvalidArgumentError("no execution environment");
  RETURN_IF_ERROR(ValidateSessionName(session_name));
  auto role = directory_.GetByArn(role_arn);
  policy::RequestContext context;
  context.principal_arn = std::string(kLambdaServicePrincipal);
  context.principal_kind = policy::PrincipalKind::kService;
  context.action = "sts:AssumeRole";
  context.resource = role_arn;
  context.context.Set("aws:CurrentTime", core::FormatRfc3339(env_.clock().Now()));
  context.context.Set("aws:PrincipalServiceName", std::string(kLambdaServicePrincipal));
  // A service principal has no identity policies: the trust policy alone decides.
  ASSIGN_OR_RETURN(const policy::EvaluationResult result, TrustDecision(role, context, {}));
  if (decision != nullptr) {
    *decision = {.action = "sts:AssumeRole", .resource = role_arn, .result = result};
  }
  if (!result.allowed()) {
    return core::PermissionDeniedError("the trust policy of " + role_arn +
                                       " does not allow lambda.amazonaws.com to assume it")
        .WithAwsType("AccessDenied");
  }
  if (duration_seconds < kMinDuration || duration_seconds > role->max_session_seconds) {
    return Validation("DurationSeconds must be between " + std::to_string(kMinDuration) + " and " +
                      std::to_string(role->max_session_seconds) + " for this role");
  }
  SessionClaims claims;
  claims.bound_environment = environment;
  return RoleSession(*role, session_name, duration_seconds, std::move(claims));
}

core::Result<TemporaryCredentials> Sts::GetSessionToken(
    const Caller& caller, std::optional<std::int64_t> duration_seconds) const {
  if (caller.temporary) {
    return core::PermissionDeniedError("Cannot call GetSessionToken with session credentials")
        .WithAwsType("AccessDenied");
  }
  if (caller.kind != policy::PrincipalKind::kUser &&
      caller.kind != policy::PrincipalKind::kAccountRoot) {
    return core::PermissionDeniedError("only users can call GetSessionToken")
        .WithAwsType("AccessDenied");
  }
  const std::int64_t max_duration = caller.kind == policy::PrincipalKind::kAccountRoot
                                        ? kChainedMaxDuration
                                        : kUserSessionMaxDuration;
  const std::int64_t duration =
      duration_seconds.value_or(43200 < max_duration ? 43200 : max_duration);
  if (duration < kMinDuration || duration > max_duration) {
    return Validation("DurationSeconds must be between " + std::to_string(kMinDuration) + " and " +
                      std::to_string(max_duration));
  }
  SessionClaims claims;
  claims.principal_arn = caller.arn;
  claims.source_arn = caller.arn;
  claims.issued_at = UnixNow(env_);
  claims.expires_at = claims.issued_at + duration;
  return tokens_.Issue(std::move(claims), env_.random());
}

}  // namespace moatless::identity
