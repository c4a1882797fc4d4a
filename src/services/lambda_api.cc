#include "services/lambda_api.h"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <vector>

#include "core/base64.h"
#include "http/path.h"

namespace moatless::services {
namespace {

constexpr std::size_t kMaxEventPayloadBytes = 256 * 1024;

core::Status InvalidParameter(std::string message) {
  return core::InvalidArgumentError(std::move(message))
      .WithAwsType("InvalidParameterValueException");
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

// The value of `name` in a query string ("" when absent).
core::Result<std::string> QueryParam(std::string_view target, std::string_view name) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return std::string();
  for (std::string_view pair : Split(target.substr(q + 1), '&')) {
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    return http::PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
  }
  return std::string();
}

bool ValidQualifier(std::string_view q) {
  if (q == "$LATEST") return true;
  if (q.empty() || q.size() > 128) return false;
  for (const char c : q) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

LambdaApi::LambdaApi(Deps deps) : deps_(std::move(deps)) {}

bool LambdaApi::Handles(const http::Request& request) {
  return request.target().starts_with(kLambdaPathPrefix);
}

core::Result<LambdaApi::Target> LambdaApi::Decode(const http::Request& request) const {
  std::string_view path = request.target();
  path = path.substr(0, path.find('?'));
  path.remove_prefix(std::min(path.size(), kLambdaPathPrefix.size()));
  constexpr std::string_view kInvocations = "/invocations";
  if (!path.ends_with(kInvocations) || request.method() != http::Verb::post) {
    return core::NotFoundError("moatless serves only the Invoke operation of the Lambda API")
        .WithAwsType("UnknownOperationException");
  }
  path.remove_suffix(kInvocations.size());
  if (path.find('/') != std::string_view::npos) {
    return core::NotFoundError("moatless serves only the Invoke operation of the Lambda API")
        .WithAwsType("UnknownOperationException");
  }
  ASSIGN_OR_RETURN(const std::string name_or_arn, http::PercentDecode(path));
  ASSIGN_OR_RETURN(const std::string qualifier_param, QueryParam(request.target(), "Qualifier"));

  Target target;
  target.action = "lambda:InvokeFunction";
  const std::vector<std::string_view> parts = Split(name_or_arn, ':');
  if (parts[0] == "arn") {
    // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    if (parts.size() < 7 || parts.size() > 8 || parts[2] != "lambda" || parts[5] != "function") {
      return InvalidParameter("FunctionName is not a function ARN: " + name_or_arn);
    }
    if (parts[3] != deps_.region || parts[4] != deps_.account_id) {
      return core::NotFoundError("Function not found: " + name_or_arn)
          .WithAwsType("ResourceNotFoundException");
    }
    target.function = parts[6];
    if (parts.size() == 8) target.qualifier = parts[7];
  } else if (parts.size() <= 2) {
    target.function = parts[0];
    if (parts.size() == 2) target.qualifier = parts[1];
  } else {
    return InvalidParameter("FunctionName must be a name, NAME:QUALIFIER or a function ARN");
  }
  if (!qualifier_param.empty()) {
    if (!target.qualifier.empty() && target.qualifier != qualifier_param) {
      return InvalidParameter(
          "The derived qualifier from the function name does not match the "
          "specified qualifier.");
    }
    target.qualifier = qualifier_param;
  }
  runtime::FunctionConfig shape;
  shape.name = target.function;
  if (target.function.empty() || target.function.size() > 64 ||
      target.function.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_") != std::string::npos) {
    return InvalidParameter("FunctionName must be 1-64 of [A-Za-z0-9-_]");
  }
  if (!target.qualifier.empty() && !ValidQualifier(target.qualifier)) {
    return InvalidParameter("Qualifier must be $LATEST or a version number");
  }
  target.resource = runtime::FunctionArn(shape, deps_.region, deps_.account_id);
  if (!target.qualifier.empty()) target.resource += ":" + target.qualifier;
  return target;
}

core::Result<RestTarget> ParseRestTarget(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return core::InvalidArgumentError("the request target is not a valid path");
  RestTarget parsed;
  std::size_t index = 0;
  for (const std::string segment : url->segments()) {
    if (index++ < 2) continue;  // "moatless", "v1"
    parsed.segments.push_back(segment);
  }
  for (const auto& param : url->params()) parsed.query[param.key] = param.value;
  return parsed;
}

http::Response RestJsonError(const http::Request& request, const http::RequestContext& context,
                             const core::Status& status) {
  int code = core::HttpStatusFor(status.code());
  if (status.code() == core::StatusCode::kUnauthenticated) code = 403;
  if (status.aws_type() == "RequestTooLargeException") code = 413;
  http::Response response(static_cast<http::HttpStatus>(code), request.version());
  response.set(http::Field::content_type, "application/json");
  response.set("x-amzn-RequestId", context.request_id);
  response.set("x-amzn-ErrorType", status.aws_type());
  if (code == 429) response.set(http::Field::retry_after, "1");
  response.body() = boost::json::serialize(boost::json::object{
      {"Type", code >= 500 ? "Service" : "User"}, {"message", status.message()}});
  response.prepare_payload();
  return response;
}

http::Response LambdaApi::Error(const http::Request& request, const http::RequestContext& context,
                                const core::Status& status) {
  return RestJsonError(request, context, status);
}

http::Response LambdaApi::Run(const http::Request& request, const http::RequestContext& context,
                              const Target& target) {
  const std::string_view type_header = request["X-Amz-Invocation-Type"];
  const std::string_view type = type_header.empty() ? "RequestResponse" : type_header;
  const std::string_view log_type = request["X-Amz-Log-Type"];
  if (type != "RequestResponse" && type != "Event" && type != "DryRun") {
    return Error(
        request, context,
        InvalidParameter("X-Amz-Invocation-Type must be RequestResponse, Event or DryRun"));
  }
  if (!log_type.empty() && log_type != "None" && log_type != "Tail") {
    return Error(request, context, InvalidParameter("X-Amz-Log-Type must be None or Tail"));
  }
  std::string payload = request.body();
  const std::size_t limit = type == "Event" ? kMaxEventPayloadBytes : kMaxSyncPayloadBytes;
  if (payload.size() > limit) {
    return Error(
        request, context,
        core::InvalidArgumentError("Request must be smaller than " + std::to_string(limit) +
                                   " bytes for the " + std::string(type) + " invocation type")
            .WithAwsType("RequestTooLargeException"));
  }
  if (payload.empty()) payload = "{}";
  std::string client_context;
  if (const std::string_view encoded = request["X-Amz-Client-Context"]; !encoded.empty()) {
    std::optional<std::string> decoded = core::Base64Decode(encoded);
    boost::system::error_code json_error;
    if (decoded) boost::json::parse(*decoded, json_error);
    if (encoded.size() > 3583 || !decoded || json_error) {
      return Error(request, context,
                   InvalidParameter("X-Amz-Client-Context must be base64-encoded JSON of at most "
                                    "3583 bytes"));
    }
    client_context = std::move(*decoded);
  }
  boost::system::error_code ec;
  boost::json::parse(payload, ec);
  if (ec) {
    return Error(
        request, context,
        core::InvalidArgumentError("Could not parse request body into json: " + ec.message())
            .WithAwsType("InvalidRequestContentException"));
  }

  if (type == "Event") {
    // The event runs under this request's id: the one the caller is given.
    const core::Status queued = deps_.functions.Enqueue(target.function, target.qualifier,
                                                        std::move(payload), context.request_id);
    if (!queued.ok()) return Error(request, context, queued);
    http::Response response(http::HttpStatus::accepted, request.version());
    response.set("x-amzn-RequestId", context.request_id);
    response.prepare_payload();
    return response;
  }
  auto function = deps_.functions.Resolve(target.function, target.qualifier);
  if (!function.ok()) return Error(request, context, function.status());
  if (type == "DryRun") {
    http::Response response(http::HttpStatus::no_content, request.version());
    response.set("x-amzn-RequestId", context.request_id);
    return response;
  }
  auto result = deps_.functions.Invoke(*function, std::move(payload), context.request_id,
                                       std::move(client_context));
  if (!result.ok()) return Error(request, context, result.status());
  http::Response response(http::HttpStatus::ok, request.version());
  response.set(http::Field::content_type, "application/json");
  response.set("x-amzn-RequestId", context.request_id);
  response.set("X-Amz-Executed-Version", result->version);
  if (result->function_error) response.set("X-Amz-Function-Error", *result->function_error);
  if (log_type == "Tail") response.set("X-Amz-Log-Result", core::Base64Encode(result->LogTail()));
  response.body() = std::move(result->payload);
  response.prepare_payload();
  return response;
}

}  // namespace moatless::services
