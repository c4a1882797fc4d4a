// Temporary credentials: an ASIA... access key id, a secret, and a session token that carries the
// session itself.
//
// The token is the session's claims (who, which role, session name and policy, tags, issue time,
// expiry, the temporary secret, an optional execution-environment binding) sealed with
// XChaCha20-Poly1305 under a key derived from the master key, base64-encoded. It is therefore
// unforgeable and tamper-evident (a one-byte edit fails to open), self-contained (no store lookup
// to verify a request) and opaque to its holder (the secret inside is encrypted). The access key id
// is the associated data, so a token only opens together with its own key id.
//
// SessionTokens is immutable after construction and safe to share between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/aead.h"
#include "core/clock.h"
#include "core/random.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace moatless::identity {

struct SessionClaims {
  std::string access_key_id;  // ASIA...
  // The principal the session acts as: arn:aws:sts::<acct>:assumed-role/<role>/<session> for a
  // role session, or the user's ARN for GetSessionToken.
  std::string principal_arn;
  // The identity the session's permissions come from: the role's or the user's ARN.
  std::string source_arn;
  std::string session_name;                   // roles only
  std::optional<std::string> session_policy;  // inline session policy document
  std::map<std::string, std::string> tags;    // session tags (aws:PrincipalTag/...)
  std::int64_t issued_at = 0;                 // unix seconds
  std::int64_t expires_at = 0;                // unix seconds
  // Execution-environment binding: when set, the credentials are valid only for requests that
  // arrive from that environment (e.g. a function's sandbox); the transport supplies the caller's
  // environment id and the authenticator compares.
  std::optional<std::string> bound_environment;
};

struct TemporaryCredentials {
  std::string access_key_id;
  core::SecretBytes secret_access_key;
  std::string session_token;
  std::int64_t expires_at = 0;
};

struct OpenedSession {
  SessionClaims claims;
  core::SecretBytes secret_access_key;
};

class SessionTokens {
 public:
  // master_key: the platform master key; a subkey for session tokens is derived from it.
  explicit SessionTokens(const core::AeadKey& master_key);

  // Fills in access_key_id and a fresh secret, seals the claims into a token.
  TemporaryCredentials Issue(SessionClaims claims, core::Random& random) const;

  // Opens a token presented with access_key_id. kUnauthenticated with AWS type
  // InvalidClientTokenId for anything forged, edited, or presented with another key id;
  // ExpiredToken when it opened but expired at or before now.
  core::Result<OpenedSession> Open(std::string_view token, std::string_view access_key_id,
                                   core::WallTime now) const;

 private:
  core::AeadKey key_;
};

}  // namespace moatless::identity
