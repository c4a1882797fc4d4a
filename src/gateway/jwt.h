// JwtVerifier: checks the bearer JWTs of the gateway's JWT routes — a compact JWS (RFC 7515)
// signed by one of the keys of a configured JWK Set (RFC 7517), with claims (RFC 7519) that name
// the configured issuer and audience and are within their validity window.
//
// Only what a public-key verifier should accept is accepted: RSA (PKCS#1 v1.5 and PSS), ECDSA
// P-256 / P-384 and Ed25519 signatures; never `none`, never HMAC (so the classic "HMAC-sign with
// the public key" confusion fails), never a key named by the token itself (jku, x5u, jwk, x5c),
// never a header with `crit` extensions. The JWKS is parsed and its keys imported once, in
// Create; a JWKS holding private or symmetric keys is refused outright, since whoever wrote it
// leaked them.
//
// Every failure of Verify is kUnauthenticated with a short, lower-case description meant for an
// RFC 6750 `error_description`; it never contains any part of the token, its claims or the keys,
// so it is safe to send to the client and to log.
//
// A JwtVerifier is immutable once created and cheap to copy (keys are shared): Verify is const and
// safe to call from many threads at once.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace moatless::gateway {

namespace internal {
struct JwtKey;  // one imported key of the set (jwt.cc)
}  // namespace internal

struct JwtRules {
  // `iss` must equal it exactly. Required (non-empty).
  std::string issuer;
  // `aud` (a string or an array of strings) must contain one of these; only when the token has no
  // `aud` (as some access tokens do), `client_id` must be one of them. Required (non-empty).
  std::vector<std::string> audience;
  // Allowed clock skew for exp / nbf / iat; 0 to 300 seconds.
  std::chrono::seconds leeway{30};
};

struct VerifiedJwt {
  boost::json::object claims;       // the payload's claims as sent
  std::vector<std::string> scopes;  // from `scope` (space-separated) or else `scp`
  // The time claims, in seconds since the epoch: checked again whenever a verification is reused.
  double expires_at = 0;
  std::optional<double> not_before;
  std::optional<double> issued_at;
};

// Tokens up to this size are remembered once verified (by their SHA-256), at most
// kMaxRememberedTokens of them: the same token presented again skips the signature check (its
// time claims are checked every time). The set is emptied when full.
inline constexpr std::size_t kMaxRememberedTokenSize = 4096;
inline constexpr std::size_t kMaxRememberedTokens = 4096;

// The longest compact token Verify decodes at all.
inline constexpr std::size_t kMaxJwtSize = 16 * 1024;

class JwtVerifier {
 public:
  // jwks_json: a JWK Set {"keys":[...]}. Accepts RSA (n, e; a modulus of 2048 to 16384 bits),
  // EC (crv P-256 / P-384, x, y) and OKP (crv Ed25519, x) public keys. Keys whose "use" is present
  // and not "sig", or whose "key_ops" is present and lacks "verify", are skipped. Refused with
  // kInvalidArgument: malformed JSON (duplicate member names included), a set with no usable
  // key, a key carrying private members (d, p, q, dp, dq, qi, oth, k), a symmetric ("oct") key, an
  // unsupported kty / crv, a key that does not import (e.g. an EC point off its curve), a JWK
  // `alg` that is not accepted or does not fit its key, two keys with one kid, and rules without
  // an issuer or audience or with a leeway outside 0..300 s. Messages name the key by its position
  // in "keys", never by its material.
  static core::Result<JwtVerifier> Create(JwtRules rules, std::string_view jwks_json);

  // Verifies a compact JWS (three base64url parts, no padding), its signature and its claims at
  // `now` (a token verified before is remembered: see kMaxRememberedTokens). The key is the one the
  // header's `kid` names, or, without a kid, the only key of the set usable with the header's alg;
  // either way its kty / crv and its JWK `alg`, if any, must fit the header's alg. Every failure is
  // kUnauthenticated (see the file comment).
  core::Result<VerifiedJwt> Verify(std::string_view token, core::WallTime now) const;

  // The number of keys tokens can be verified with (skipped keys not counted).
  std::size_t key_count() const;

  const JwtRules& rules() const { return rules_; }

 private:
  struct Remembered;
  JwtVerifier(JwtRules rules, std::shared_ptr<const std::vector<internal::JwtKey>> keys);
  core::Result<VerifiedJwt> VerifyAll(std::string_view token, core::WallTime now) const;
  core::Status CheckTimes(const VerifiedJwt& jwt, core::WallTime now) const;

  JwtRules rules_;
  // Verified tokens by SHA-256; shared by copies, guarded by its own mutex.
  std::shared_ptr<Remembered> remembered_;
  // Immutable after Create and shared by copies, so Verify needs no lock.
  std::shared_ptr<const std::vector<internal::JwtKey>> keys_;
};

// The token of an Authorization-style header value: "Bearer <token>" (the scheme is
// case-insensitive) or the bare token; "" when there is none (empty, another scheme such as
// "Basic", or a token containing whitespace). The result views `header_value`.
std::string_view BearerToken(std::string_view header_value);

// Whether the verified scopes include every one of `required` (true when `required` is empty).
bool HasScopes(const VerifiedJwt& jwt, const std::vector<std::string>& required);

}  // namespace moatless::gateway
