#include "app/audit_api.h"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>

#include "core/secret_bytes.h"
#include "observe/audit_query.h"

namespace moatless::app {
namespace {

constexpr std::string_view kPrefix = "/moatless/v1/audit";

std::string_view PathOf(const http::Request& request) {
  const std::string_view target(request.target().data(), request.target().size());
  return target.substr(0, target.find('?'));
}

http::Response Json(const http::Request& request, const http::RequestContext& context,
                    std::string body) {
  http::Response response(http::HttpStatus::ok, request.version());
  response.set(http::Field::content_type, "application/json");
  response.set("x-amzn-RequestId", context.request_id);
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

core::Status Validation(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("ValidationException");
}

core::Result<std::uint64_t> Number(const std::string& name, const std::string& text) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Validation(name + " must be a non-negative integer");
  }
  return n;
}

core::Result<observe::AuditQuery> ReadQuery(const http::Request& request,
                                            const core::Clock& clock) {
  auto url = boost::urls::parse_origin_form(request.target());
  if (!url) return Validation("the request target is not a valid URL");
  observe::AuditQuery q;
  for (const auto& param : url->params()) {
    const std::string key = param.key;
    const std::string value = param.value;
    if (key == "principal") {
      q.principal = value;
    } else if (key == "action") {
      q.action = value;
    } else if (key == "resource") {
      q.resource = value;
    } else if (key == "decision") {
      q.outcome = value == "deny" ? "denied" : value == "allow" ? "allowed" : value;
    } else if (key == "since" || key == "until") {
      auto t = observe::ParseAuditTime(value, clock.Now());
      if (!t.ok()) return Validation(key + ": " + t.status().message());
      (key == "since" ? q.since : q.until) = *t;
    } else if (key == "field") {
      const auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) return Validation("field must be KEY=VALUE");
      q.fields[value.substr(0, eq)] = value.substr(eq + 1);
    } else if (key == "limit") {
      ASSIGN_OR_RETURN(const std::uint64_t limit, Number(key, value));
      if (limit < 1 || limit > observe::kMaxAuditQueryLimit) {
        return Validation("limit must be 1.." + std::to_string(observe::kMaxAuditQueryLimit));
      }
      q.limit = static_cast<std::size_t>(limit);
    } else if (key == "after") {
      ASSIGN_OR_RETURN(q.after_seq, Number(key, value));
    } else {
      return Validation("unknown query parameter \"" + key + "\"");
    }
  }
  return q;
}

}  // namespace

bool AuditApi::Handles(const http::Request& request) const {
  const std::string_view path = PathOf(request);
  return path == kPrefix || path.starts_with(std::string(kPrefix) + "/");
}

core::Result<services::RestJsonService::Target> AuditApi::Decode(
    const http::Request& request) const {
  const std::string arn = "arn:aws:moatless:" + deps_.region + ":" + deps_.account_id + ":audit";
  const std::string_view path = PathOf(request);
  if (path == std::string(kPrefix) + "/records" && request.method() == http::Verb::get) {
    return Target{"moatless:QueryAuditLog", arn};
  }
  if (path == std::string(kPrefix) + "/hash" && request.method() == http::Verb::post) {
    return Target{"moatless:HashAuditValue", arn};
  }
  return core::NotFoundError("no such operation: " + std::string(request.method_string()) + " " +
                             std::string(path))
      .WithAwsType("UnknownOperationException");
}

http::Response AuditApi::Run(const http::Request& request, const http::RequestContext& context,
                             const Target& target, const std::string& /*caller_arn*/) {
  auto fail = [&](const core::Status& status) {
    return services::RestJsonError(request, context, status);
  };
  if (target.action == "moatless:HashAuditValue") {
    boost::system::error_code ec;
    const boost::json::value body = boost::json::parse(request.body(), ec);
    const boost::json::string* value = nullptr;
    if (!ec && body.is_object()) {
      if (const auto* v = body.as_object().if_contains("Value"); v != nullptr && v->is_string()) {
        value = &v->as_string();
      }
    }
    // The message never repeats the body: it may hold the secret.
    if (value == nullptr) return fail(Validation("the body must be {\"Value\": \"...\"}"));
    const std::string hmac =
        deps_.audit.Hmac(core::SecretBytes(std::string(value->data(), value->size())));
    return Json(request, context, boost::json::serialize(boost::json::object{{"Hmac", hmac}}));
  }

  auto query = ReadQuery(request, deps_.clock);
  if (!query.ok()) return fail(query.status());
  auto page = observe::QueryAuditLog(deps_.audit.path(), *query);
  if (!page.ok()) {
    if (page.status().code() == core::StatusCode::kInvalidArgument) {
      return fail(Validation(page.status().message()));
    }
    return fail(page.status());
  }
  // The records go out as they are stored (each line is a JSON object), not re-serialised.
  std::string body = "{\"Records\":[";
  for (std::size_t i = 0; i < page->lines.size(); ++i) {
    if (i > 0) body += ',';
    body += page->lines[i];
  }
  body += ']';
  if (page->next_after.has_value()) {
    body += ",\"NextToken\":\"" + std::to_string(*page->next_after) + "\"";
  }
  body += '}';
  return Json(request, context, std::move(body));
}

}  // namespace moatless::app
