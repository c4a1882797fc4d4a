// STS: the security token service's operations, as functions of an authenticated Caller.
//
//   GetCallerIdentity  who the caller is (never denied, as in AWS);
//   AssumeRole         temporary credentials for a role whose trust policy admits the caller and,
//                      unless the trust policy names the caller itself, whose identity policies
//                      allow sts:AssumeRole on the role (the policy engine decides, with the trust
//                      policy as the resource policy that must allow); session name, duration
//                      (900 s to the role's maximum; 1 h when chaining from a role session),
//                      inline session policy and session tags are validated as AWS does;
//   GetSessionToken    temporary credentials for a user (or the root) with its own permissions;
//                      refused for temporary credentials;
//   and, not an STS operation, the credentials of a function's execution environment, bound to
//   it.
//
// Every authorization decision, allowed or not, is returned with its policy-engine result so the
// protocol layer can audit it. Thread-safe as Directory and SessionTokens are.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/env.h"
#include "core/status.h"
#include "identity/authenticator.h"
#include "identity/directory.h"
#include "identity/session_token.h"
#include "policy/evaluator.h"

namespace moatless::identity {

struct CallerIdentity {
  std::string account;
  std::string arn;
  std::string user_id;
};

struct AssumeRoleRequest {
  std::string role_arn;
  std::string role_session_name;
  std::optional<std::int64_t> duration_seconds;  // default 3600
  std::optional<std::string> policy;             // inline session policy
  std::map<std::string, std::string> tags;       // session tags
};

struct AssumedRole {
  TemporaryCredentials credentials;
  std::string assumed_role_arn;  // arn:aws:sts::<acct>:assumed-role/<role>/<session>
  std::string assumed_role_id;   // AROA...:<session>
};

// The policy decision behind an operation, for the audit log.
struct StsDecision {
  std::string action;
  std::string resource;
  policy::EvaluationResult result;
};

class Sts {
 public:
  // region: the node's region, for aws:RequestedRegion in decisions.
  Sts(Directory& directory, const SessionTokens& tokens, core::Env& env, std::string region);

  CallerIdentity GetCallerIdentity(const Caller& caller) const;
  // origin: where the request came from (aws:SourceIp, aws:SecureTransport in the decision).
  // decision (if given) receives the sts:AssumeRole decision whenever one was made.
  core::Result<AssumedRole> AssumeRole(const Caller& caller, const AssumeRoleRequest& request,
                                       const RequestOrigin& origin,
                                       StsDecision* decision = nullptr) const;
  core::Result<TemporaryCredentials> GetSessionToken(
      const Caller& caller, std::optional<std::int64_t> duration_seconds) const;
  // Credentials the platform issues to a function's execution environment: a session of
  // `role_arn` named `session_name`, bound to `environment` (valid only for requests that arrive
  // from it), for `duration_seconds` (900 s to the role's maximum). The role's trust policy must
  // allow the service principal lambda.amazonaws.com to assume it (AccessDenied otherwise);
  // `decision` receives that decision.
  core::Result<AssumedRole> CredentialsForEnvironment(const std::string& role_arn,
                                                      const std::string& session_name,
                                                      const std::string& environment,
                                                      std::int64_t duration_seconds = 900,
                                                      StsDecision* decision = nullptr) const;

 private:
  // Issues a session of `role` named `session_name`; fills in the session's identity, issue time
  // and expiry of `claims` (which may carry a session policy, tags, an environment binding).
  AssumedRole RoleSession(const Principal& role, const std::string& session_name,
                          std::int64_t duration_seconds, SessionClaims claims) const;

  Directory& directory_;
  const SessionTokens& tokens_;
  core::Env& env_;
  std::string region_;
};

}  // namespace moatless::identity
