#include "app/logs_api.h"

#include <boost/json.hpp>
#include <charconv>
#include <map>
#include <vector>

namespace moatless::app {
namespace {

constexpr std::string_view kPrefix = "/moatless/v1/functions/";
constexpr std::size_t kDefaultLimit = 1000;
constexpr std::size_t kMaxLimit = 10000;

using Parsed = services::RestTarget;

core::Status Validation(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("ValidationException");
}

}  // namespace

bool LogsApi::Handles(const http::Request& request) const {
  return request.target().starts_with(kPrefix);
}

core::Result<services::RestJsonService::Target> LogsApi::Decode(
    const http::Request& request) const {
  ASSIGN_OR_RETURN(const Parsed p, services::ParseRestTarget(request.target()));
  const std::vector<std::string>& s = p.segments;
  if (s.size() != 3 || s[0] != "functions" || s[2] != "logs" ||
      request.method() != http::Verb::get) {
    return core::NotFoundError("no such operation: " + std::string(request.method_string()) + " " +
                               std::string(request.target().substr(0, request.target().find('?'))))
        .WithAwsType("UnknownOperationException");
  }
  if (core::Status valid = ValidateLogName(s[1]); !valid.ok()) {
    return Validation(valid.message());
  }
  return Target{"moatless:GetFunctionLogs",
                "arn:aws:lambda:" + deps_.region + ":" + deps_.account_id + ":function:" + s[1]};
}

http::Response LogsApi::Run(const http::Request& request, const http::RequestContext& context,
                            const Target&, const std::string&) {
  auto fail = [&](const core::Status& status) {
    return services::RestJsonError(request, context, status);
  };
  auto parsed = services::ParseRestTarget(request.target());
  if (!parsed.ok()) return fail(Validation(parsed.status().message()));
  const std::string& name = parsed->segments[1];
  auto exists = deps_.function_exists(name);
  if (!exists.ok()) return fail(exists.status());
  if (!*exists && !deps_.logs.HasLog(name)) {
    return fail(core::NotFoundError("function not found: " + name)
                    .WithAwsType("ResourceNotFoundException"));
  }

  observe::LogQuery query;
  const auto& q = parsed->query;
  for (const char* key : {"since", "until"}) {
    auto it = q.find(key);
    if (it == q.end() || it->second.empty()) continue;
    auto when = observe::ParseRfc3339(it->second);
    if (!when.ok()) return fail(Validation(std::string(key) + ": " + when.status().message()));
    (std::string_view(key) == "since" ? query.since : query.until) = *when;
  }
  if (auto it = q.find("requestId"); it != q.end()) query.request_id = it->second;
  if (auto it = q.find("filter"); it != q.end()) query.filter = it->second;
  if (auto it = q.find("cursor"); it != q.end()) query.cursor = it->second;
  query.limit = kDefaultLimit;
  if (auto it = q.find("limit"); it != q.end()) {
    const std::string& text = it->second;
    std::size_t limit = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (ec != std::errc() || end != text.data() + text.size() || limit < 1 || limit > kMaxLimit) {
      return fail(Validation("limit must be 1-" + std::to_string(kMaxLimit)));
    }
    query.limit = limit;
  }
  if (query.request_id.size() > 256 || query.filter.size() > 1024) {
    return fail(Validation("requestId or filter too long"));
  }

  auto page = deps_.logs.Read(name, query);
  if (!page.ok()) {
    return fail(page.status().code() == core::StatusCode::kInvalidArgument
                    ? Validation(page.status().message())
                    : page.status());
  }
  boost::json::array events;
  events.reserve(page->entries.size());
  for (boost::json::object& e : page->entries) events.emplace_back(std::move(e));
  const boost::json::object body{{"Events", std::move(events)},
                                 {"NextCursor", page->next_cursor},
                                 {"More", page->more},
                                 {"Gap", page->gap}};
  http::Response response(http::HttpStatus::ok, request.version());
  response.set(http::Field::content_type, "application/json");
  response.set("x-amzn-RequestId", context.request_id);
  response.body() = boost::json::serialize(body);
  response.prepare_payload();
  return response;
}

}  // namespace moatless::app
