#include "services/json_protocol.h"

#include <utility>

#include "core/base64.h"

namespace moatless::services {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxDepth = 32;

std::string LowerCamel(std::string_view member) {
  std::string out(member);
  if (!out.empty() && out[0] >= 'A' && out[0] <= 'Z')
    out[0] = static_cast<char>(out[0] - 'A' + 'a');
  return out;
}

core::Status SerializationError(std::string_view member, std::string_view expected) {
  return core::InvalidArgumentError("Unexpected JSON type for " + LowerCamel(member) +
                                    ": expected " + std::string(expected))
      .WithAwsType("SerializationException");
}

core::Status LengthError(std::string_view member, std::size_t length, std::size_t min,
                         std::size_t max) {
  if (length < min) {
    return ValidationError(
        member, "Member must have length greater than or equal to " + std::to_string(min));
  }
  return ValidationError(member,
                         "Member must have length less than or equal to " + std::to_string(max));
}

// Counts UTF-8 code points (AWS lengths are in characters); the text was validated by the parser.
std::size_t Characters(std::string_view text) {
  std::size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace

core::Status ValidationError(std::string_view member, std::string_view constraint) {
  return core::InvalidArgumentError("1 validation error detected: Value at '" + LowerCamel(member) +
                                    "' failed to satisfy constraint: " + std::string(constraint))
      .WithAwsType("ValidationException");
}

bool IsJsonRequest(const http::Request& request) {
  return request.find("X-Amz-Target") != request.end();
}

std::string_view JsonTargetPrefix(const http::Request& request) {
  auto it = request.find("X-Amz-Target");
  if (it == request.end()) return {};
  const std::string_view target = it->value();
  const std::size_t dot = target.find('.');
  return dot == std::string_view::npos ? std::string_view() : target.substr(0, dot);
}

core::Result<JsonRequest> ParseJsonRequest(const http::Request& request) {
  auto it = request.find("X-Amz-Target");
  std::string_view target;
  if (it != request.end()) target = it->value();
  const std::size_t dot = target.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == target.size() ||
      request.method() != http::Verb::post) {
    return core::InvalidArgumentError(
               "Operation is not supported (send POST / with X-Amz-Target: "
               "<service>.<Operation>).")
        .WithAwsType("UnknownOperationException");
  }
  JsonRequest out;
  out.prefix = std::string(target.substr(0, dot));
  out.operation = std::string(target.substr(dot + 1));
  const std::string_view body = request.body();
  if (body.empty()) return out;
  json::parse_options options;
  options.max_depth = kMaxDepth;
  boost::system::error_code ec;
  json::value parsed = json::parse(body, ec, json::storage_ptr(), options);
  if (ec || !parsed.is_object()) {
    return core::InvalidArgumentError("The request body is not a JSON object.")
        .WithAwsType("SerializationException");
  }
  out.body = std::move(parsed.as_object());
  return out;
}

double EpochSeconds(std::int64_t unix_ms) { return static_cast<double>(unix_ms) / 1000.0; }

std::string JsonErrorType(const core::Status& status) {
  const std::string_view type = status.aws_type();
  if (type == "InvalidClientTokenId") return "UnrecognizedClientException";
  if (type == "SignatureDoesNotMatch" || type == "RequestTimeTooSkewed") {
    return "InvalidSignatureException";
  }
  if (type == "IncompleteSignature") return "IncompleteSignatureException";
  if (type == "MissingAuthenticationToken") return "MissingAuthenticationTokenException";
  if (type == "ExpiredToken") return "ExpiredTokenException";
  if (type == "AccessDenied") return "AccessDeniedException";
  if (type == "ServiceUnavailable") return "ServiceUnavailableException";
  if (type == "InternalFailure" && status.code() == core::StatusCode::kInternal) {
    return "InternalServiceError";
  }
  return std::string(type);
}

http::Response JsonResponse(const http::Request& request, const http::RequestContext& context,
                            const json::value& body) {
  http::Response response(http::HttpStatus::ok, request.version());
  response.set(http::Field::content_type, "application/x-amz-json-1.1");
  response.set("x-amzn-RequestId", context.request_id);
  response.body() = json::serialize(body);
  response.prepare_payload();
  return response;
}

http::Response JsonError(const http::Request& request, const http::RequestContext& context,
                         const core::Status& status) {
  const std::string type = JsonErrorType(status);
  http::HttpStatus code = http::HttpStatus::bad_request;
  if (status.code() == core::StatusCode::kUnavailable) {
    code = http::HttpStatus::service_unavailable;
  } else if (status.code() == core::StatusCode::kInternal && type != "DecryptionFailure") {
    code = http::HttpStatus::internal_server_error;
  }
  http::Response response(code, request.version());
  response.set(http::Field::content_type, "application/x-amz-json-1.1");
  response.set("x-amzn-RequestId", context.request_id);
  response.set("x-amzn-ErrorType", type);
  response.body() = json::serialize(json::object{{"__type", type}, {"message", status.message()}});
  response.prepare_payload();
  return response;
}

const json::value* JsonInput::Find(std::string_view member) const {
  const json::value* value = body_.if_contains(member);
  return value == nullptr || value->is_null() ? nullptr : value;
}

core::Result<std::optional<std::string>> JsonInput::String(std::string_view member,
                                                           std::size_t min_length,
                                                           std::size_t max_length) const {
  const json::value* value = Find(member);
  if (value == nullptr) return std::optional<std::string>();
  if (!value->is_string()) return SerializationError(member, "a string");
  const std::string_view text = value->as_string();
  const std::size_t length = Characters(text);
  if (length < min_length || length > max_length) {
    return LengthError(member, length, min_length, max_length);
  }
  return std::optional<std::string>(std::string(text));
}

core::Result<std::string> JsonInput::RequiredString(std::string_view member, std::size_t min_length,
                                                    std::size_t max_length) const {
  ASSIGN_OR_RETURN(std::optional<std::string> value, String(member, min_length, max_length));
  if (!value) return ValidationError(member, "Member must not be null");
  return std::move(*value);
}

core::Result<std::optional<std::string>> JsonInput::Enum(
    std::string_view member, const std::vector<std::string_view>& allowed) const {
  ASSIGN_OR_RETURN(std::optional<std::string> value, String(member, 0, 1024));
  if (!value) return value;
  for (std::string_view candidate : allowed) {
    if (*value == candidate) return value;
  }
  std::string set;
  for (std::string_view candidate : allowed)
    set += (set.empty() ? "" : ", ") + std::string(candidate);
  return ValidationError(member, "Member must satisfy enum value set: [" + set + "]");
}

core::Result<std::optional<core::SecretBytes>> JsonInput::SecretString(
    std::string_view member, std::size_t min_length, std::size_t max_length) const {
  const json::value* value = Find(member);
  if (value == nullptr) return std::optional<core::SecretBytes>();
  if (!value->is_string()) return SerializationError(member, "a string");
  const std::string_view text = value->as_string();
  const std::size_t length = Characters(text);
  if (length < min_length || length > max_length) {
    return LengthError(member, length, min_length, max_length);
  }
  return std::optional<core::SecretBytes>(core::SecretBytes(text));
}

core::Result<std::optional<core::SecretBytes>> JsonInput::Blob(std::string_view member,
                                                               std::size_t min_length,
                                                               std::size_t max_length) const {
  const json::value* value = Find(member);
  if (value == nullptr) return std::optional<core::SecretBytes>();
  if (!value->is_string()) return SerializationError(member, "a base64 string");
  std::optional<std::string> decoded = core::Base64Decode(value->as_string());
  if (!decoded) return SerializationError(member, "valid base64");
  core::SecretBytes bytes = core::SecretBytes::TakeFrom(*decoded);
  if (bytes.size() < min_length || bytes.size() > max_length) {
    return LengthError(member, bytes.size(), min_length, max_length);
  }
  return std::optional<core::SecretBytes>(std::move(bytes));
}

core::Result<std::optional<bool>> JsonInput::Bool(std::string_view member) const {
  const json::value* value = Find(member);
  if (value == nullptr) return std::optional<bool>();
  if (!value->is_bool()) return SerializationError(member, "a boolean");
  return std::optional<bool>(value->as_bool());
}

core::Result<std::optional<std::int64_t>> JsonInput::Int(std::string_view member, std::int64_t min,
                                                         std::int64_t max) const {
  const json::value* value = Find(member);
  if (value == nullptr) return std::optional<std::int64_t>();
  std::int64_t n = 0;
  if (value->is_int64()) {
    n = value->as_int64();
  } else if (value->is_uint64() && value->as_uint64() <= static_cast<std::uint64_t>(max)) {
    n = static_cast<std::int64_t>(value->as_uint64());
  } else if (value->is_uint64()) {
    n = max + (max < INT64_MAX ? 1 : 0);
  } else {
    return SerializationError(member, "an integer");
  }
  if (n < min) {
    return ValidationError(
        member, "Member must have value greater than or equal to " + std::to_string(min));
  }
  if (n > max) {
    return ValidationError(member,
                           "Member must have value less than or equal to " + std::to_string(max));
  }
  return std::optional<std::int64_t>(n);
}

core::Result<std::optional<std::vector<std::string>>> JsonInput::StringList(
    std::string_view member, std::size_t min_items, std::size_t max_items, std::size_t min_length,
    std::size_t max_length) const {
  const json::value* value = Find(member);
  if (value == nullptr) return std::optional<std::vector<std::string>>();
  if (!value->is_array()) return SerializationError(member, "a list");
  const json::array& items = value->as_array();
  if (items.size() < min_items || items.size() > max_items) {
    return LengthError(member, items.size(), min_items, max_items);
  }
  std::vector<std::string> out;
  for (const json::value& item : items) {
    if (!item.is_string()) return SerializationError(member, "a list of strings");
    const std::string_view text = item.as_string();
    const std::size_t length = Characters(text);
    if (length < min_length || length > max_length) {
      return ValidationError(member,
                             "Member must satisfy constraint: [Member must have length "
                             "between " +
                                 std::to_string(min_length) + " and " + std::to_string(max_length) +
                                 "]");
    }
    out.emplace_back(text);
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

core::Result<const json::array*> JsonInput::ObjectList(std::string_view member,
                                                       std::size_t min_items,
                                                       std::size_t max_items) const {
  const json::value* value = Find(member);
  if (value == nullptr) return static_cast<const json::array*>(nullptr);
  if (!value->is_array()) return SerializationError(member, "a list");
  const json::array& items = value->as_array();
  if (items.size() < min_items || items.size() > max_items) {
    return LengthError(member, items.size(), min_items, max_items);
  }
  for (const json::value& item : items) {
    if (!item.is_object()) return SerializationError(member, "a list of structures");
  }
  return &items;
}

core::Result<const json::object*> JsonInput::Object(std::string_view member) const {
  const json::value* value = Find(member);
  if (value == nullptr) return static_cast<const json::object*>(nullptr);
  if (!value->is_object()) return SerializationError(member, "a structure");
  return &value->as_object();
}

}  // namespace moatless::services
