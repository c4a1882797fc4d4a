// AWS Signature Version 4: server-side verification of signed requests (Authorization header and
// presigned query), plus the building blocks (canonical request, string to sign, signing key)
// and a small client signer used by tests and the CLI. Reference:
// shared/reference/secrets-sigv4-gateway-waf.md §1.3; the behaviour matches the official
// aws-signing-test-suite/v4 vectors.
//
// This is a pure library: it does no I/O, keeps no state and looks nothing up. The caller finds
// the secret for ParsedSignature::access_key_id (and checks that the key is active and, for
// temporary credentials, that the security token is valid) before calling VerifySignature().
// Every function is thread-safe. HttpRequestView borrows: the strings it points to must outlive
// the calls it is passed to. Secret key material travels only as core::SecretBytes and never
// appears in a Status message; neither does the signature the verifier computed.
//
// Errors carry the AWS error type in Status::aws_type() (constants below):
//   MissingAuthenticationToken (403)  no Authorization header and no presigned query parameters
//   IncompleteSignature (400)         malformed Authorization / presigned parameters, bad scope
//                                     terminator or date format, `host` (or the date header) or
//                                     a present X-Amz-Security-Token not among SignedHeaders
//   RequestTimeTooSkewed (403)        request time outside now ± max_skew
//   AccessDenied (403)                presigned request expired, or X-Amz-Expires > 7 days
//   SignatureDoesNotMatch (403)       scope date/region/service wrong, a signed header absent,
//                                     or the signature differs
//   XAmzContentSHA256Mismatch (400)   declared X-Amz-Content-Sha256 differs from the body's hash
//   InvalidArgument (400)             X-Amz-Content-Sha256 neither a SHA-256 hex nor
//                                     UNSIGNED-PAYLOAD
//   NotImplemented (501)              STREAMING-* (chunk-signed) payloads
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace moatless::identity {

inline constexpr std::string_view kSigV4Algorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kSigV4Terminator = "aws4_request";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// The longest lifetime a presigned request may declare (7 days).
inline constexpr std::int64_t kMaxPresignExpiresSeconds = 604800;

// AWS error type names (Status::aws_type()) produced by this module.
inline constexpr std::string_view kMissingAuthenticationToken = "MissingAuthenticationToken";
inline constexpr std::string_view kIncompleteSignature = "IncompleteSignature";
inline constexpr std::string_view kRequestTimeTooSkewed = "RequestTimeTooSkewed";
inline constexpr std::string_view kAccessDenied = "AccessDenied";
inline constexpr std::string_view kSignatureDoesNotMatch = "SignatureDoesNotMatch";
inline constexpr std::string_view kXAmzContentSha256Mismatch = "XAmzContentSHA256Mismatch";

// What the verifier needs from an HTTP request. All views are borrowed.
struct HttpRequestView {
  std::string_view method;  // "GET"
  // Raw origin-form request-target: path and optional "?query", as received (still
  // percent-encoded).
  std::string_view target;
  // As received, in order; names in any case; repeated names allowed. A folded (obsolete
  // multi-line) value may keep its line breaks: they count as whitespace.
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  // The payload; hashed when no X-Amz-Content-Sha256 is declared.
  std::string_view body;
};

// The signature parameters of a request, from its Authorization header or presigned query.
struct ParsedSignature {
  std::string access_key_id;
  std::string date;                         // credential scope date, YYYYMMDD
  std::string region;                       // credential scope region
  std::string service;                      // credential scope service
  std::string terminator;                   // always kSigV4Terminator once parsed
  std::vector<std::string> signed_headers;  // as listed by the client (lowercase when valid)
  std::string signature;                    // hex, as given
  // The request time in ISO 8601 basic form (YYYYMMDD'T'HHMMSS'Z'), from X-Amz-Date, else from
  // the Date header (header form only).
  std::string amz_date;
  core::WallTime request_time;
  // Lowercase name of the header amz_date came from ("x-amz-date" or "date"); empty when it came
  // from the presigned query.
  std::string date_header;
  std::optional<std::string> security_token;  // X-Amz-Security-Token (header or query)
  bool presigned = false;
  std::optional<std::int64_t> expires_seconds;  // X-Amz-Expires (presigned only)
  // The declared X-Amz-Content-Sha256 (header, or query when presigned) or, if none was
  // declared, hex(sha256(body)).
  std::string payload_hash;
  bool payload_hash_declared = false;
};

// Step 1: the structure of the signature only (no key, no clock). Fails with
// MissingAuthenticationToken or IncompleteSignature.
core::Result<ParsedSignature> ParseSignature(const HttpRequestView& request);

struct VerifyOptions {
  core::WallTime now;  // pass clock.Now()
  std::chrono::seconds max_skew{900};
  std::string_view expected_region;   // empty: any
  std::string_view expected_service;  // empty: any
  // Remove dot segments and collapse repeated slashes before encoding the path (every service
  // but S3).
  bool normalize_path = true;
  // Encode the received (already encoded) path once more, as every service but S3 does. When
  // false the path is decoded first and encoded once (S3).
  bool double_encode_path = true;
  // Check a declared X-Amz-Content-Sha256 against the body. Set to false only when the caller
  // streams the body and checks the hash itself.
  bool verify_payload_hash = true;
  // Accept an X-Amz-Security-Token header that is not among SignedHeaders (some IoT clients add
  // it after signing). Off: such requests fail with IncompleteSignature.
  bool allow_unsigned_security_token = false;
};

// Steps 2+: checks scope, time, required signed headers, rebuilds the canonical request from the
// raw request and the client's SignedHeaders, compares the signature in constant time, then
// checks the declared payload hash against the body.
core::Status VerifySignature(const HttpRequestView& request, const ParsedSignature& signature,
                             const core::SecretBytes& secret_access_key,
                             const VerifyOptions& options);
// The same with the signing key already derived (SigningKey of the secret and the signature's
// date, region and service), for callers that cache it.
core::Status VerifySignatureWithSigningKey(const HttpRequestView& request,
                                           const ParsedSignature& signature,
                                           const core::SecretBytes& signing_key,
                                           const VerifyOptions& options);

// ---- Building blocks -------------------------------------------------------------------------

struct CanonicalOptions {
  bool normalize_path = true;
  bool double_encode_path = true;
  // Presigned form: X-Amz-Signature is left out of the canonical query string.
  bool presigned = false;
};

// RFC 3986 percent-encoding keeping only the unreserved set A-Z a-z 0-9 - _ . ~ (and '/' when
// keep_slash), with uppercase hex digits.
std::string UriEncode(std::string_view bytes, bool keep_slash);
// The canonical URI of a raw (percent-encoded) request path.
std::string CanonicalUri(std::string_view raw_path, const CanonicalOptions& options);
// The canonical query string of a raw query (without the '?').
std::string CanonicalQueryString(std::string_view raw_query, const CanonicalOptions& options);
// "name:value\n" lines for the signed headers, in the order listed. Fails (SignatureDoesNotMatch)
// if a signed header is absent from the request.
core::Result<std::string> CanonicalHeaders(const HttpRequestView& request,
                                           std::span<const std::string> signed_headers);
core::Result<std::string> CanonicalRequest(const HttpRequestView& request,
                                           std::span<const std::string> signed_headers,
                                           std::string_view payload_hash,
                                           const CanonicalOptions& options);
std::string CredentialScope(std::string_view date, std::string_view region,
                            std::string_view service);
std::string StringToSign(std::string_view amz_date, std::string_view credential_scope,
                         std::string_view canonical_request);
core::SecretBytes SigningKey(const core::SecretBytes& secret_access_key, std::string_view date,
                             std::string_view region, std::string_view service);
// Lowercase hex HMAC-SHA256(signing_key, string_to_sign).
std::string SignatureHex(const core::SecretBytes& signing_key, std::string_view string_to_sign);
std::string Sha256Hex(std::string_view bytes);

// ISO 8601 basic form YYYYMMDD'T'HHMMSS'Z' (UTC), as in X-Amz-Date.
std::optional<core::WallTime> ParseAmzDate(std::string_view text);
std::string FormatAmzDate(core::WallTime time);

// ---- Client side (tests, CLI) ------------------------------------------------------------------

struct SigningParams {
  std::string_view access_key_id;
  std::string_view region;
  std::string_view service;
  core::WallTime time;
  std::optional<std::string_view> security_token;  // temporary credentials
  // Header form: add X-Amz-Content-Sha256 with the body's hash (and sign it).
  bool add_content_sha256 = false;
  CanonicalOptions canonical;
};

// Header form: returns the headers to add to the request, in order: X-Amz-Date,
// [X-Amz-Security-Token], [x-amz-content-sha256], Authorization. Every header of the request is
// signed except the hop-by-hop ones botocore skips (user-agent, expect, transfer-encoding, ...).
// An X-Amz-Content-Sha256 already on the request (e.g. UNSIGNED-PAYLOAD) is used as the payload
// hash. Fails (InvalidArgument) without a Host header or if the request is already signed.
core::Result<std::vector<std::pair<std::string, std::string>>> SignRequest(
    const HttpRequestView& request, const SigningParams& params,
    const core::SecretBytes& secret_access_key);

// Query (presigned) form: returns the request-target with X-Amz-Algorithm, X-Amz-Credential,
// X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires, [X-Amz-Security-Token], X-Amz-Signature
// appended. The payload hash is the body's.
core::Result<std::string> PresignRequest(const HttpRequestView& request,
                                         const SigningParams& params,
                                         const core::SecretBytes& secret_access_key,
                                         std::chrono::seconds expires);

}  // namespace moatless::identity
