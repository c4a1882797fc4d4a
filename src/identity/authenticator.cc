#include "identity/authenticator.h"

#include <utility>

#include "policy/compiled.h"

namespace moatless::identity {
namespace {

core::Status InvalidToken() {
  return core::UnauthenticatedError("The security token included in the request is invalid.")
      .WithAwsType("InvalidClientTokenId");
}

core::Result<policy::CompiledPolicyPtr> CompileStored(const std::string& document,
                                                      const std::string& name,
                                                      policy::PolicyType type) {
  auto compiled = policy::CompiledPolicy::FromJson(document, name, {.type = type});
  // Stored documents were validated on the way in; one that no longer compiles is a bug or a
  // damaged store, never something to ignore.
  if (!compiled.ok()) return core::InternalError("stored policy '" + name + "' does not compile");
  return *compiled;
}

}  // namespace

policy::RequestContext RequestContextFor(const Caller& caller, const RequestOrigin& origin,
                                         std::string action, std::string resource,
                                         core::WallTime now, std::string_view region) {
  policy::RequestContext r;
  r.principal_arn = caller.arn;
  r.principal_kind = caller.kind;
  r.principal_account = caller.account;
  r.issuer_arn = caller.issuer_arn;
  r.principal_tags = caller.tags;
  r.action = std::move(action);
  r.resource = std::move(resource);
  const char* type = "User";
  if (caller.kind == policy::PrincipalKind::kAccountRoot) type = "Account";
  if (caller.kind == policy::PrincipalKind::kRoleSession) type = "AssumedRole";
  if (caller.kind == policy::PrincipalKind::kFederatedUser) type = "FederatedUser";
  r.context.Set("aws:PrincipalType", type);
  r.context.Set("aws:userid", caller.user_id);
  if (!caller.user_name.empty()) r.context.Set("aws:username", caller.user_name);
  if (!origin.source_ip.empty()) r.context.Set("aws:SourceIp", origin.source_ip);
  r.context.Set("aws:SecureTransport", origin.secure_transport ? "true" : "false");
  r.context.Set("aws:CurrentTime", core::FormatRfc3339(now));
  r.context.Set(
      "aws:EpochTime",
      std::to_string(
          std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()));
  r.context.Set("aws:RequestedRegion", std::string(region));
  r.context.Set("aws:ViaAWSService", "false");
  r.context.Set("aws:MultiFactorAuthPresent", "false");
  return r;
}

Authenticator::Authenticator(Directory& directory, const SessionTokens& tokens, core::Clock& clock,
                             AuthenticatorOptions options)
    : directory_(directory), tokens_(tokens), clock_(clock), options_(std::move(options)) {}

core::Result<Caller> Authenticator::CallerFor(const Principal& principal) const {
  Caller caller;
  caller.arn = principal.arn;
  caller.account = directory_.account_id();
  caller.user_id = principal.id;
  if (principal.type == PrincipalType::kUser) caller.user_name = principal.name;
  caller.tags = principal.tags;
  switch (principal.type) {
    case PrincipalType::kRoot:
      caller.kind = policy::PrincipalKind::kAccountRoot;
      caller.user_id = directory_.account_id();  // AWS reports the account id for the root
      break;
    case PrincipalType::kUser:
      caller.kind = policy::PrincipalKind::kUser;
      break;
    case PrincipalType::kRole:
      caller.kind = policy::PrincipalKind::kRole;
      break;
  }
  for (const NamedPolicy& p : principal.policies) {
    ASSIGN_OR_RETURN(policy::CompiledPolicyPtr compiled,
                     CompileStored(p.document, p.name, policy::PolicyType::kIdentity));
    caller.policies.identity.push_back(std::move(compiled));
  }
  for (const ManagedPolicy& p : principal.attached) {
    ASSIGN_OR_RETURN(policy::CompiledPolicyPtr compiled,
                     CompileStored(p.document, p.name, policy::PolicyType::kIdentity));
    caller.policies.identity.push_back(std::move(compiled));
  }
  if (principal.boundary) {
    ASSIGN_OR_RETURN(
        caller.policies.boundary,
        CompileStored(*principal.boundary, "permissions boundary", policy::PolicyType::kBoundary));
  }
  return caller;
}

core::Result<Caller> Authenticator::Authenticate(const HttpRequestView& request,
                                                 const RequestOrigin& origin,
                                                 std::string_view service) {
  ASSIGN_OR_RETURN(const ParsedSignature signature, ParseSignature(request));
  return Authenticate(request, signature, origin, service);
}

core::Result<Caller> Authenticator::Authenticate(const HttpRequestView& request,
                                                 const ParsedSignature& signature,
                                                 const RequestOrigin& origin,
                                                 std::string_view service) {
  const core::WallTime now = clock_.Now();
  // IAM is a global service: AWS clients sign its requests for us-east-1 whatever region they are
  // configured with, so that scope is accepted for it besides the node's own region.
  std::string_view region = options_.region;
  if (service == "iam" && signature.region == "us-east-1") region = "us-east-1";
  const VerifyOptions verify{.now = now,
                             .max_skew = options_.max_skew,
                             .expected_region = region,
                             .expected_service = service};
  const std::string& key_id = signature.access_key_id;

  if (key_id.starts_with("ASIA")) {
    if (!signature.security_token) return InvalidToken();
    ASSIGN_OR_RETURN(OpenedSession session, tokens_.Open(*signature.security_token, key_id, now));
    const SessionClaims& claims = session.claims;
    if (claims.bound_environment && origin.environment != claims.bound_environment) {
      // Credentials of a sandbox used from anywhere else: refused as if they did not exist.
      return InvalidToken();
    }
    RETURN_IF_ERROR(VerifySignature(request, signature, session.secret_access_key, verify));
    ASSIGN_OR_RETURN(Caller caller, PrincipalCaller(claims.source_arn));
    caller.access_key_id = key_id;
    caller.temporary = true;
    for (const auto& [k, v] : claims.tags) caller.tags[k] = v;
    if (caller.kind == policy::PrincipalKind::kRole) {
      caller.issuer_arn = caller.arn;
      caller.arn = claims.principal_arn;
      caller.kind = policy::PrincipalKind::kRoleSession;
      caller.user_id += ":" + claims.session_name;
    }
    if (claims.session_policy) {
      ASSIGN_OR_RETURN(
          caller.policies.session,
          CompileStored(*claims.session_policy, "session policy", policy::PolicyType::kSession));
    }
    return caller;
  }

  if (signature.security_token) {
    // A session token with a long-term key: AWS refuses the pair.
    return InvalidToken();
  }
  ASSIGN_OR_RETURN(const KeyForScope key, LongTermKey(signature));
  if (key.status != KeyStatus::kActive) return InvalidToken();
  RETURN_IF_ERROR(VerifySignatureWithSigningKey(request, signature, key.signing_key, verify));
  ASSIGN_OR_RETURN(Caller caller, PrincipalCaller(key.owner_arn));
  caller.access_key_id = key_id;
  NoteKeyUse(key_id, service).IgnoreError();  // tracking must never fail a request
  return caller;
}

core::Result<Authenticator::KeyForScope> Authenticator::LongTermKey(
    const ParsedSignature& signature) {
  // Scopes kept per key: a key is normally used for a few services in one region, and its date
  // changes daily.
  constexpr std::size_t kMaxScopesPerKey = 8;
  const std::string& key_id = signature.access_key_id;
  const std::string scope = signature.date + "/" + signature.region + "/" + signature.service;
  const auto for_scope = [&](CachedKey& entry) {
    auto it = entry.signing_keys.find(scope);
    if (it == entry.signing_keys.end()) {
      if (entry.signing_keys.size() >= kMaxScopesPerKey) entry.signing_keys.clear();
      it = entry.signing_keys
               .emplace(scope, SigningKey(entry.secret, signature.date, signature.region,
                                          signature.service))
               .first;
    }
    return KeyForScope{
        .status = entry.status, .owner_arn = entry.owner_arn, .signing_key = it->second.Copy()};
  };
  // The generation is read before the store, so an entry can only be older than its number.
  const std::uint64_t generation = directory_.generation();
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key_id);
    if (it != keys_.end() && it->second.generation == generation) return for_scope(it->second);
  }
  ASSIGN_OR_RETURN(AccessKeyWithSecret resolved, directory_.ResolveAccessKey(key_id));
  CachedKey entry{.generation = generation,
                  .status = resolved.info.status,
                  .owner_arn = resolved.info.user_arn,
                  .secret = std::move(resolved.secret),
                  .signing_keys = {}};
  std::lock_guard lock(mu_);
  if (keys_.size() >= options_.max_cached) keys_.clear();
  return for_scope(keys_.insert_or_assign(key_id, std::move(entry)).first->second);
}

core::Result<Caller> Authenticator::PrincipalCaller(const std::string& arn) {
  const std::uint64_t generation = directory_.generation();
  {
    std::lock_guard lock(mu_);
    auto it = callers_.find(arn);
    if (it != callers_.end() && it->second.generation == generation) return it->second.caller;
  }
  auto principal = directory_.GetByArn(arn);
  if (!principal.ok()) {
    // Credentials of a principal that was deleted.
    if (principal.status().code() == core::StatusCode::kNotFound) return InvalidToken();
    return principal.status();
  }
  ASSIGN_OR_RETURN(Caller caller, CallerFor(*principal));
  std::lock_guard lock(mu_);
  if (callers_.size() >= options_.max_cached) callers_.clear();
  callers_[arn] = CachedCaller{.generation = generation, .caller = caller};
  return caller;
}

core::Status Authenticator::NoteKeyUse(const std::string& key_id, std::string_view service) {
  const core::WallTime now = clock_.Now();
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = last_noted_.try_emplace(key_id, now);
    if (!inserted) {
      if (now - it->second < options_.last_used_granularity) return core::Status::Ok();
      it->second = now;
    }
  }
  return directory_.RecordKeyUse(key_id, service);
}

}  // namespace moatless::identity
