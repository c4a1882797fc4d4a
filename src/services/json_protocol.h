// The AWS JSON 1.1 protocol (Secrets Manager, and later SQS's JSON form): every operation is a
// `POST /` whose `X-Amz-Target: <prefix>.<Operation>` header names it and whose body is a JSON
// object (`{}` when empty); responses are JSON objects; errors are HTTP 400 (500/503 for the
// service's own faults) with `{"__type": "<Code>", "message": "..."}` and the same code in
// `x-amzn-ErrorType`. Blobs travel as base64 strings, timestamps as epoch seconds (numbers).
//
// JsonInput reads a request's members with the constraints of the service model: a member of the
// wrong JSON type is a SerializationException, a length, range or enum violation a
// ValidationException worded as AWS words it ("1 validation error detected: Value at 'secretId'
// failed to satisfy constraint: ..."); values are never quoted in messages (they may be
// secrets). Stateless free functions and value types; thread-safe.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret_bytes.h"
#include "core/status.h"
#include "http/types.h"

namespace moatless::services {

struct JsonRequest {
  std::string prefix;     // "secretsmanager"
  std::string operation;  // "GetSecretValue"
  boost::json::object body;
};

// Whether a request speaks the JSON protocol (it carries X-Amz-Target).
bool IsJsonRequest(const http::Request& request);
// The prefix of its X-Amz-Target ("secretsmanager"), or empty.
std::string_view JsonTargetPrefix(const http::Request& request);

// Decodes target and body. Errors: UnknownOperationException (no or malformed X-Amz-Target),
// SerializationException (a body that is not one JSON object, or is nested deeper than 32
// levels); the messages never quote the body.
core::Result<JsonRequest> ParseJsonRequest(const http::Request& request);

// A 200 response with `body` serialised.
http::Response JsonResponse(const http::Request& request, const http::RequestContext& context,
                            const boost::json::value& body);
// The error response for `status`: 400 unless the error is the service's own fault (500 for
// kInternal except integrity failures, 503 for kUnavailable); authentication errors are renamed
// to the JSON services' names (InvalidClientTokenId -> UnrecognizedClientException,
// SignatureDoesNotMatch -> InvalidSignatureException, AccessDenied -> AccessDeniedException, ...).
http::Response JsonError(const http::Request& request, const http::RequestContext& context,
                         const core::Status& status);
// The AWS error type the JSON protocol reports for `status` (the renaming above).
std::string JsonErrorType(const core::Status& status);

// A timestamp as the JSON protocol sends it: epoch seconds.
double EpochSeconds(std::int64_t unix_ms);

class JsonInput {
 public:
  explicit JsonInput(const boost::json::object& body) : body_(body) {}

  core::Result<std::optional<std::string>> String(std::string_view member, std::size_t min_length,
                                                  std::size_t max_length) const;
  // The same, kInvalidArgument (ValidationException) when absent.
  core::Result<std::string> RequiredString(std::string_view member, std::size_t min_length,
                                           std::size_t max_length) const;
  // A string that must be one of `allowed`.
  core::Result<std::optional<std::string>> Enum(std::string_view member,
                                                const std::vector<std::string_view>& allowed) const;
  // A secret string: copied into SecretBytes (the JSON text it came from stays the caller's).
  core::Result<std::optional<core::SecretBytes>> SecretString(std::string_view member,
                                                              std::size_t min_length,
                                                              std::size_t max_length) const;
  // A blob: base64 in the body, decoded (lengths apply to the decoded bytes).
  core::Result<std::optional<core::SecretBytes>> Blob(std::string_view member,
                                                      std::size_t min_length,
                                                      std::size_t max_length) const;
  core::Result<std::optional<bool>> Bool(std::string_view member) const;
  core::Result<std::optional<std::int64_t>> Int(std::string_view member, std::int64_t min,
                                                std::int64_t max) const;
  // A list of strings; each string's length is checked too.
  core::Result<std::optional<std::vector<std::string>>> StringList(std::string_view member,
                                                                   std::size_t min_items,
                                                                   std::size_t max_items,
                                                                   std::size_t min_length,
                                                                   std::size_t max_length) const;
  // A list of objects (nullptr when absent).
  core::Result<const boost::json::array*> ObjectList(std::string_view member, std::size_t min_items,
                                                     std::size_t max_items) const;
  // A nested object (nullptr when absent).
  core::Result<const boost::json::object*> Object(std::string_view member) const;

 private:
  const boost::json::value* Find(std::string_view member) const;
  const boost::json::object& body_;
};

// "1 validation error detected: Value at 'secretId' failed to satisfy constraint: <what>"
// (member names lower-camel-cased as AWS reports them).
core::Status ValidationError(std::string_view member, std::string_view constraint);

}  // namespace moatless::services
