#include "services/aws_endpoint.h"

#include <utility>

#include "core/clock.h"
#include "services/query_protocol.h"

namespace moatless::services {
namespace {

constexpr std::string_view kStsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/";

// "203.0.113.7:51234" -> "203.0.113.7"; "[2001:db8::1]:51234" -> "2001:db8::1"; "unix" -> "".
std::string SourceIp(std::string_view remote) {
  if (remote.starts_with("[")) {
    const std::size_t end = remote.find(']');
    return end == std::string_view::npos ? std::string() : std::string(remote.substr(1, end - 1));
  }
  const std::size_t colon = remote.rfind(':');
  if (colon == std::string_view::npos) return {};
  return std::string(remote.substr(0, colon));
}

// AWS answers authentication failures with 403, malformed signatures with 400.
http::HttpStatus StatusFor(const core::Status& status) {
  if (status.code() == core::StatusCode::kUnauthenticated) return http::HttpStatus::forbidden;
  return static_cast<http::HttpStatus>(core::HttpStatusFor(status.code()));
}

http::Response XmlResponse(const http::Request& request, http::HttpStatus status,
                           const http::RequestContext& context, std::string body) {
  http::Response response(status, request.version());
  response.set(http::Field::content_type, "text/xml");
  response.set("x-amzn-RequestId", context.request_id);
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

http::Response QueryError(const http::Request& request, const http::RequestContext& context,
                          const core::Status& status, std::string_view ns = kStsNamespace) {
  return XmlResponse(request, StatusFor(status), context,
                     QueryErrorXml(status, context.request_id, ns));
}

std::string_view NamespaceOf(std::string_view service) {
  return service == "iam" ? kIamNamespace : kStsNamespace;
}

// The form of a Query request: the POST body, or the GET query string.
std::string_view FormOf(const http::Request& request) {
  if (request.method() == http::Verb::post) return request.body();
  const std::string_view target = request.target();
  const std::size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

void CredentialsXml(XmlWriter& xml, const identity::TemporaryCredentials& creds) {
  xml.Begin("Credentials")
      .Leaf("AccessKeyId", creds.access_key_id)
      .Leaf("SecretAccessKey", creds.secret_access_key.Reveal())
      .Leaf("SessionToken", creds.session_token)
      .Leaf("Expiration",
            core::FormatRfc3339(core::WallTime(std::chrono::seconds(creds.expires_at))))
      .End();
}

std::string Statements(const policy::EvaluationResult& result) {
  std::string out;
  for (const policy::StatementRef& ref : result.statements) {
    if (!out.empty()) out += "; ";
    out += std::string(policy::LayerName(ref.layer)) + " " + ref.policy + " " +
           (ref.sid ? "Sid " + *ref.sid : "statement " + std::to_string(ref.index));
  }
  return out;
}

}  // namespace

AwsEndpoint::AwsEndpoint(Deps deps) : deps_(deps) {}

core::Status AwsEndpoint::Audit(const http::RequestContext& context, std::string actor,
                                std::string action, std::string resource,
                                observe::AuditOutcome outcome, std::string reason) {
  observe::AuditRecord record;
  record.actor = std::move(actor);
  record.action = std::move(action);
  record.resource = std::move(resource);
  record.outcome = outcome;
  record.request_id = context.request_id;
  record.reason = std::move(reason);
  record.fields["source_ip"] = SourceIp(context.remote);
  return deps_.audit.Append(record);
}

http::Response AwsEndpoint::Handle(const http::Request& request,
                                   const http::RequestContext& context) {
  identity::HttpRequestView view{
      .method = request.method_string(), .target = request.target(), .body = request.body()};
  for (const auto& field : request) view.headers.emplace_back(field.name_string(), field.value());

  // Decode the operation first (no trust needed for that), so that even a refused request is
  // audited with the action it asked for.
  auto query = ParseQueryRequest(FormOf(request));
  auto signature = identity::ParseSignature(view);
  const std::string service = signature.ok() ? signature->service : "sts";
  const std::string_view ns = NamespaceOf(service);
  const std::string action = service + ":" + (query.ok() ? query->action : std::string("*"));

  if (!signature.ok()) {
    const core::Status audited =
        Audit(context, "anonymous", action, "", observe::AuditOutcome::kDenied,
              signature.status().message());
    return QueryError(request, context, audited.ok() ? signature.status() : audited);
  }
  if (service != "sts" && service != "iam") {
    core::Status unknown = core::InvalidArgumentError("moatless does not serve the service '" +
                                                      signature->service + "' here")
                               .WithAwsType("InvalidAction");
    const core::Status audited = Audit(context, "access-key:" + signature->access_key_id, action,
                                       "", observe::AuditOutcome::kDenied, unknown.message());
    return QueryError(request, context, audited.ok() ? unknown : audited, ns);
  }
  identity::RequestOrigin origin{.source_ip = SourceIp(context.remote),
                                 .secure_transport = context.tls};
  auto caller = deps_.authenticator.Authenticate(view, *signature, origin, service);
  if (!caller.ok()) {
    const core::Status audited =
        Audit(context, "access-key:" + signature->access_key_id, action, "",
              observe::AuditOutcome::kDenied,
              std::string(caller.status().aws_type()) + ": " + caller.status().message());
    return QueryError(request, context, audited.ok() ? caller.status() : audited, ns);
  }
  if (!query.ok()) {
    const core::Status audited = Audit(context, caller->arn, action, "",
                                       observe::AuditOutcome::kError, query.status().message());
    return QueryError(request, context, audited.ok() ? query.status() : audited, ns);
  }
  if (service == "iam") return HandleIam(request, context, *caller, origin, *query);
  return HandleSts(request, context, *caller, origin, *query);
}

http::Response AwsEndpoint::HandleSts(const http::Request& request,
                                      const http::RequestContext& context,
                                      const identity::Caller& caller,
                                      const identity::RequestOrigin& origin,
                                      const QueryRequest& query) {
  const std::string& op = query.action;
  const std::string action = "sts:" + op;
  XmlWriter xml;
  auto fail = [&](const core::Status& status, std::string resource) {
    const bool denied = status.aws_type() == "AccessDenied";
    const core::Status audited = Audit(
        context, caller.arn, action, std::move(resource),
        denied ? observe::AuditOutcome::kDenied : observe::AuditOutcome::kError, status.message());
    return QueryError(request, context, audited.ok() ? status : audited);
  };

  if (op == "GetCallerIdentity") {
    const identity::CallerIdentity id = deps_.sts.GetCallerIdentity(caller);
    if (core::Status s = Audit(context, caller.arn, action, caller.arn,
                               observe::AuditOutcome::kAllowed, "always allowed");
        !s.ok()) {
      return QueryError(request, context, s);
    }
    xml.Begin("GetCallerIdentityResponse", kStsNamespace)
        .Begin("GetCallerIdentityResult")
        .Leaf("Arn", id.arn)
        .Leaf("UserId", id.user_id)
        .Leaf("Account", id.account)
        .End();
  } else if (op == "AssumeRole") {
    identity::AssumeRoleRequest assume;
    auto role_arn = query.Require("RoleArn");
    auto session_name = query.Require("RoleSessionName");
    if (!role_arn.ok()) return fail(role_arn.status(), "");
    if (!session_name.ok()) return fail(session_name.status(), *role_arn);
    assume.role_arn = *role_arn;
    assume.role_session_name = *session_name;
    auto duration = query.GetInt("DurationSeconds");
    if (!duration.ok()) return fail(duration.status(), assume.role_arn);
    assume.duration_seconds = *duration;
    assume.policy = query.Get("Policy");
    assume.tags = query.Tags();
    identity::StsDecision decision;
    auto assumed = deps_.sts.AssumeRole(caller, assume, origin, &decision);
    if (!assumed.ok()) {
      if (!decision.action.empty()) {
        const core::Status audited =
            Audit(context, caller.arn, action, assume.role_arn, observe::AuditOutcome::kDenied,
                  assumed.status().message() + (decision.result.statements.empty()
                                                    ? std::string()
                                                    : " [" + Statements(decision.result) + "]"));
        return QueryError(request, context, audited.ok() ? assumed.status() : audited);
      }
      return fail(assumed.status(), assume.role_arn);
    }
    if (core::Status s = Audit(context, caller.arn, action, assume.role_arn,
                               observe::AuditOutcome::kAllowed, Statements(decision.result));
        !s.ok()) {
      return QueryError(request, context, s);
    }
    xml.Begin("AssumeRoleResponse", kStsNamespace).Begin("AssumeRoleResult");
    CredentialsXml(xml, assumed->credentials);
    xml.Begin("AssumedRoleUser")
        .Leaf("AssumedRoleId", assumed->assumed_role_id)
        .Leaf("Arn", assumed->assumed_role_arn)
        .End()
        .End();
  } else if (op == "GetSessionToken") {
    auto duration = query.GetInt("DurationSeconds");
    if (!duration.ok()) return fail(duration.status(), caller.arn);
    auto creds = deps_.sts.GetSessionToken(caller, *duration);
    if (!creds.ok()) return fail(creds.status(), caller.arn);
    if (core::Status s = Audit(context, caller.arn, action, caller.arn,
                               observe::AuditOutcome::kAllowed, "own credentials");
        !s.ok()) {
      return QueryError(request, context, s);
    }
    xml.Begin("GetSessionTokenResponse", kStsNamespace).Begin("GetSessionTokenResult");
    CredentialsXml(xml, *creds);
    xml.End();
  } else {
    return fail(core::InvalidArgumentError("Could not find operation " + op + " for STS")
                    .WithAwsType("InvalidAction"),
                "");
  }
  xml.Begin("ResponseMetadata").Leaf("RequestId", context.request_id).End();
  return XmlResponse(request, http::HttpStatus::ok, context, xml.Finish());
}

http::Response AwsEndpoint::HandleIam(const http::Request& request,
                                      const http::RequestContext& context,
                                      const identity::Caller& caller,
                                      const identity::RequestOrigin& origin,
                                      const QueryRequest& query) {
  const std::string action = "iam:" + query.action;
  auto target = deps_.iam.Resolve(query, caller);
  if (!target.ok()) {
    const core::Status audited = Audit(context, caller.arn, action, "",
                                       observe::AuditOutcome::kError, target.status().message());
    return QueryError(request, context, audited.ok() ? target.status() : audited, kIamNamespace);
  }
  // Authorise before anything runs; the decision is recorded before the action happens.
  policy::RequestContext decision_context = identity::RequestContextFor(
      caller, origin, target->action, target->resource, deps_.clock.Now(), deps_.region);
  for (const auto& [key, value] : target->context_keys) decision_context.context.Set(key, value);
  const policy::EvaluationResult decision = policy::Evaluate(decision_context, caller.policies);
  const std::string deciding = Statements(decision);
  if (!decision.allowed()) {
    core::Status denied =
        core::PermissionDeniedError(decision.Message(decision_context)).WithAwsType("AccessDenied");
    const core::Status audited =
        Audit(context, caller.arn, target->action, target->resource, observe::AuditOutcome::kDenied,
              denied.message() + (deciding.empty() ? "" : " [" + deciding + "]") +
                  (decision.error.empty() ? "" : " (" + decision.error + ")"));
    return QueryError(request, context, audited.ok() ? denied : audited, kIamNamespace);
  }
  if (core::Status s = Audit(context, caller.arn, target->action, target->resource,
                             observe::AuditOutcome::kAllowed, deciding);
      !s.ok()) {
    return QueryError(request, context, s, kIamNamespace);
  }
  XmlWriter xml;
  xml.Begin(query.action + "Response", kIamNamespace);
  if (core::Status run = deps_.iam.Run(query, caller, xml); !run.ok()) {
    Audit(context, caller.arn, target->action, target->resource, observe::AuditOutcome::kError,
          std::string(run.aws_type()) + ": " + run.message())
        .IgnoreError();  // the allowed decision is on record; the failure is reported to the caller
    return QueryError(request, context, run, kIamNamespace);
  }
  xml.Begin("ResponseMetadata").Leaf("RequestId", context.request_id).End();
  return XmlResponse(request, http::HttpStatus::ok, context, xml.Finish());
}

}  // namespace moatless::services
