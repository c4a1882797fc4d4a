#include "http/status_response.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace moatless::http {

void PreparePayload(Response& res) {
  const unsigned code = res.result_int();
  if (code / 100 == 1 || code == 204 || code == 304) res.body().clear();
  res.prepare_payload();  // cannot throw now: the only throwing case is a body on those statuses
}

Response ErrorResponse(HttpStatus status, std::string_view aws_type, std::string_view message,
                       std::string_view request_id) {
  boost::json::object body;
  body["__type"] = aws_type;
  body["message"] = message;
  Response res(status, 11);
  res.set(Field::content_type, kAwsJsonContentType);
  res.set(kErrorTypeHeader, aws_type);
  if (!request_id.empty()) res.set(kRequestIdHeader, request_id);
  res.body() = boost::json::serialize(body);
  PreparePayload(res);
  return res;
}

Response StatusResponse(const core::Status& status, std::string_view request_id) {
  if (status.ok()) {
    return StatusResponse(core::InternalError("an error response was built for a success"),
                          request_id);
  }
  return ErrorResponse(static_cast<HttpStatus>(core::HttpStatusFor(status.code())),
                       status.aws_type(), status.message(), request_id);
}

Response MethodNotAllowedResponse(std::string_view allow, std::string_view request_id) {
  Response res = ErrorResponse(HttpStatus::method_not_allowed, "MethodNotAllowedException",
                               "the method is not allowed for this resource", request_id);
  res.set(Field::allow, allow);
  return res;
}

Response JsonResponse(HttpStatus status, const boost::json::value& body,
                      std::string_view content_type) {
  return JsonResponse(status, boost::json::serialize(body), content_type);
}

Response JsonResponse(HttpStatus status, std::string serialized_json,
                      std::string_view content_type) {
  Response res(status, 11);
  res.set(Field::content_type, content_type);
  res.body() = std::move(serialized_json);
  PreparePayload(res);
  return res;
}

Response TextResponse(HttpStatus status, std::string text) {
  Response res(status, 11);
  res.set(Field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(text);
  PreparePayload(res);
  return res;
}

}  // namespace moatless::http
