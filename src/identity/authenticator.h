// Authenticator: turns a SigV4-signed HTTP request into the Caller it comes from — who, with which
// policies — or into the AWS error that refuses it.
//
// Long-term keys (AKIA...) are looked up in the Directory and must be Active; temporary ones
// (ASIA...) must come with their session token, which must open (SessionTokens), be unexpired,
// and — when bound to an execution environment — arrive from that environment. The principal the
// credentials belong to must still exist. Then the signature is verified (sigv4.h) with the
// key's secret, the configured region and the service the endpoint serves.
//
// The Caller carries what the policy engine needs: the request-context principal (ARN, kind,
// account, issuing role, tags) and the compiled identity policies, boundary and session policy.
// Policies are compiled per request (a few microseconds for typical documents).
//
// Resolved keys (with their SigV4 signing keys per credential scope) and principals (with their
// compiled policies) are cached until the Directory's generation() moves, i.e. until any principal,
// policy or key changes, so a change takes effect on the next request while the common case reads
// nothing from the store.
//
// Every failure is kUnauthenticated / kInvalidArgument with the AWS error type AWS uses
// (InvalidClientTokenId, ExpiredToken, SignatureDoesNotMatch, IncompleteSignature,
// MissingAuthenticationToken, RequestTimeTooSkewed, ...), and its message never holds secret
// material. Thread-safe: the Directory and SessionTokens are; last-used tracking is guarded.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"
#include "core/status.h"
#include "identity/directory.h"
#include "identity/session_token.h"
#include "identity/sigv4.h"
#include "policy/evaluator.h"

namespace moatless::identity {

// Where a request came from, as the transport knows it.
struct RequestOrigin {
  std::string source_ip;
  bool secure_transport = false;
  // The execution environment (e.g. a function's sandbox) the connection belongs to, if any.
  std::optional<std::string> environment;
};

struct Caller {
  std::string arn;  // the request context's principal ARN (user, root, or assumed-role session)
  policy::PrincipalKind kind = policy::PrincipalKind::kUser;
  std::string account;
  std::string issuer_arn;  // sessions: the role (or user) the session came from
  std::string user_id;     // AIDA... / AROA...:session, as GetCallerIdentity reports it
  std::string user_name;   // users only: aws:username
  std::string access_key_id;
  bool temporary = false;
  std::map<std::string, std::string> tags;  // aws:PrincipalTag/...
  policy::PolicySet policies;               // identity, boundary, session
};

struct AuthenticatorOptions {
  std::string region = "local";
  std::chrono::seconds max_skew{900};
  // Last-used times of long-term keys are written at most this often per key.
  std::chrono::seconds last_used_granularity{60};
  // Entries per cache (keys, principals) before it is emptied and refilled.
  std::size_t max_cached = 10000;
};

// The policy engine's request context for an action by `caller`: the principal, its tags, and the
// global condition keys AWS sets for every request — aws:username (users), aws:userid,
// aws:PrincipalType (Account, User, AssumedRole), aws:SourceIp, aws:SecureTransport,
// aws:CurrentTime, aws:EpochTime, aws:RequestedRegion, aws:ViaAWSService=false,
// aws:MultiFactorAuthPresent=false (no MFA yet).
policy::RequestContext RequestContextFor(const Caller& caller, const RequestOrigin& origin,
                                         std::string action, std::string resource,
                                         core::WallTime now, std::string_view region);

class Authenticator {
 public:
  Authenticator(Directory& directory, const SessionTokens& tokens, core::Clock& clock,
                AuthenticatorOptions options = {});

  // service: the SigV4 service name the endpoint answers for ("sts", "iam", ...); the credential
  // scope must name it and the configured region.
  core::Result<Caller> Authenticate(const HttpRequestView& request, const RequestOrigin& origin,
                                    std::string_view service);
  // The same for a request whose signature the caller has already parsed (ParseSignature), e.g.
  // to pick the service from its credential scope.
  core::Result<Caller> Authenticate(const HttpRequestView& request,
                                    const ParsedSignature& signature, const RequestOrigin& origin,
                                    std::string_view service);

  // The Caller for a principal of the directory acting with its own (long-term) identity; used for
  // requests the platform makes on a principal's behalf and by tests.
  core::Result<Caller> CallerFor(const Principal& principal) const;

 private:
  struct CachedKey {
    std::uint64_t generation = 0;
    KeyStatus status = KeyStatus::kActive;
    std::string owner_arn;
    core::SecretBytes secret;
    // SigV4 signing keys derived from the secret, by credential scope "date/region/service".
    std::map<std::string, core::SecretBytes, std::less<>> signing_keys;
  };
  // What verifying one request needs of a long-term key.
  struct KeyForScope {
    KeyStatus status = KeyStatus::kActive;
    std::string owner_arn;
    core::SecretBytes signing_key;  // for the signature's date, region and service
  };
  struct CachedCaller {
    std::uint64_t generation = 0;
    Caller caller;
  };
  core::Status NoteKeyUse(const std::string& key_id, std::string_view service);
  // The long-term key's owner, status and signing key for the signature's scope, from the cache
  // or the directory.
  core::Result<KeyForScope> LongTermKey(const ParsedSignature& signature);
  // The Caller a principal acts as with its own identity, from the cache or the directory.
  core::Result<Caller> PrincipalCaller(const std::string& arn);

  Directory& directory_;
  const SessionTokens& tokens_;
  core::Clock& clock_;
  AuthenticatorOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, core::WallTime> last_noted_;  // guarded by mu_
  std::unordered_map<std::string, CachedKey> keys_;             // guarded by mu_
  std::unordered_map<std::string, CachedCaller> callers_;       // by ARN; guarded by mu_
};

}  // namespace moatless::identity
