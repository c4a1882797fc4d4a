// Building responses. StatusResponse is the one place a core::Status becomes an HTTP response:
// the status code comes from core::HttpStatusFor, the body is the AWS JSON error shape
// {"__type":"<aws type>","message":"<message>"} and the headers are the ones AWS SDKs read
// (Content-Type application/x-amz-json-1.1, x-amzn-ErrorType, x-amzn-RequestId). The message of
// a Status is shown to clients, which is why Status messages never carry secrets.
// The other helpers build success responses. Stateless; thread-safe.
#pragma once

#include <boost/json/fwd.hpp>
#include <string>
#include <string_view>

#include "core/status.h"
#include "http/types.h"

namespace moatless::http {

inline constexpr std::string_view kAwsJsonContentType = "application/x-amz-json-1.1";
inline constexpr std::string_view kRequestIdHeader = "x-amzn-RequestId";
inline constexpr std::string_view kErrorTypeHeader = "x-amzn-ErrorType";

// The error response for a failed Status. An OK status is a caller bug; it is answered as a 500
// InternalFailure rather than crashing the request path.
Response StatusResponse(const core::Status& status, std::string_view request_id);

// The same shape for a status code core::StatusCode has no name for (e.g. 405, 408, 431).
Response ErrorResponse(HttpStatus status, std::string_view aws_type, std::string_view message,
                       std::string_view request_id);

// 405 with the Allow header listing what the path accepts ("GET, HEAD, POST").
Response MethodNotAllowedResponse(std::string_view allow, std::string_view request_id);

// A JSON success response. The string overload takes an already serialised document.
Response JsonResponse(HttpStatus status, const boost::json::value& body,
                      std::string_view content_type = "application/json");
Response JsonResponse(HttpStatus status, std::string serialized_json,
                      std::string_view content_type = "application/json");

// text/plain; charset=utf-8
Response TextResponse(HttpStatus status, std::string text);

// Sets Content-Length from the body, first dropping the body of a status that cannot have one
// (1xx, 204, 304). Unlike Beast's prepare_payload it never throws.
void PreparePayload(Response& res);

}  // namespace moatless::http
