#include "services/aws_endpoint.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <utility>

#include "core/check.h"
#include "core/clock.h"
#include "services/query_protocol.h"

namespace moatless::services {
namespace {

// Completes `token` with the Status of WhenDurable(seq), on the token's own executor (the writer
// thread that learns it never runs the continuation).
template <typename CompletionToken>
auto AsyncWaitDurable(observe::AuditLog& audit, std::uint64_t seq, CompletionToken&& token) {
  return http::asio::async_initiate<CompletionToken, void(core::Status)>(
      [&audit, seq](auto handler) {
        using Handler = decltype(handler);
        auto executor = http::asio::get_associated_executor(handler);
        // WhenDurable takes a copyable function; the handler is move-only.
        auto shared = std::make_shared<Handler>(std::move(handler));
        audit.WhenDurable(seq, [shared, work = http::asio::make_work_guard(executor)](
                                   core::Status status) mutable {
          http::asio::post(work.get_executor(), [shared, status = std::move(status)]() mutable {
            std::move (*shared)(std::move(status));
          });
          work.reset();
        });
      },
      token);
}

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
  return q == std::string_view::npos ? target.substr(target.size()) : target.substr(q + 1);
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

// What a caller learns when its request cannot be recorded: that nothing was done, not the log's
// path or the system error (/readyz and the moatless_audit_write_failures_total metric tell the
// operator). OK stays OK.
core::Status AuditFailure(const core::Status& status) {
  if (status.ok() || status.code() == core::StatusCode::kInvalidArgument) return status;
  return core::UnavailableError(
             "the request could not be recorded in the audit log, so it was not carried out")
      .WithAwsType("ServiceUnavailable");
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

AwsEndpoint::AwsEndpoint(Deps deps) : deps_(deps) {
  if (deps_.metrics != nullptr) {
    decisions_ = &deps_.metrics->Counter(
        "moatless_service_decisions_total",
        "Decisions on service API requests, as audited: by service (the action's prefix), action "
        "and decision (allowed, denied, error). Requests that were not authenticated are counted "
        "with action=\"unauthenticated\" and services not served here as service=\"other\", so "
        "unsigned traffic cannot mint label values.",
        {"service", "action", "decision"});
  }
}

void AwsEndpoint::AttachLambda(LambdaApi* lambda, boost::asio::thread_pool* pool) {
  lambda_ = lambda;
  lambda_pool_ = pool;
}

http::Response AwsEndpoint::ErrorFor(const Exchange& ex, const core::Status& status) {
  if (ex.json) return JsonError(ex.request, ex.context, status);
  if (ex.rest_json) return LambdaApi::Error(ex.request, ex.context, status);
  return QueryError(ex.request, ex.context, status, ex.ns);
}

core::Status AwsEndpoint::Audit(Exchange& ex, std::string actor, std::string action,
                                std::string resource, observe::AuditOutcome outcome,
                                std::string reason, std::map<std::string, std::string> fields) {
  const http::RequestContext& context = ex.context;
  observe::AuditRecord record;
  record.fields = std::move(fields);
  record.actor = std::move(actor);
  record.action = std::move(action);
  record.resource = std::move(resource);
  record.outcome = outcome;
  record.request_id = context.request_id;
  record.reason = std::move(reason);
  record.fields["source_ip"] = SourceIp(context.remote);
  if (!ex.access_key_id.empty()) {
    record.sensitive_fields.emplace("access_key_id", core::SecretBytes(ex.access_key_id));
  }
  if (!context.environment.empty()) record.fields["environment"] = context.environment;
  if (decisions_ != nullptr) {
    const std::string_view act = record.action;
    std::string_view service = act.substr(0, std::min(act.find(':'), act.size()));
    if (service != "sts" && service != "iam" && service != "secretsmanager" &&
        service != "lambda" && service != "moatless" && service != "execute-api") {
      service = "other";  // the signing name of a request for a service not served here
    }
    const bool authenticated = record.actor.starts_with("arn:");
    decisions_
        ->WithLabels({service, authenticated ? act : std::string_view("unauthenticated"),
                      observe::AuditOutcomeName(outcome)})
        .Inc();
  }
  auto seq = deps_.audit.Sequence(record);
  if (!seq.ok()) return AuditFailure(seq.status());
  ex.audit_seq = std::max(ex.audit_seq, *seq);
  return core::Status::Ok();
}

AwsEndpoint::Answer AwsEndpoint::Process(const http::Request& request,
                                         const http::RequestContext& context) {
  Exchange ex{.request = request, .context = context};
  http::Response response = Dispatch(ex);
  return Answer{.response = std::move(response),
                .audit_seq = ex.audit_seq,
                .ns = ex.ns,
                .rest_json = ex.rest_json,
                .json = ex.json};
}

http::Response AwsEndpoint::Handle(const http::Request& request,
                                   const http::RequestContext& context) {
  Answer answer = Process(request, context);
  if (answer.audit_seq == 0) return std::move(answer.response);
  const core::Status durable = AuditFailure(deps_.audit.WaitDurable(answer.audit_seq));
  if (durable.ok()) return std::move(answer.response);
  return ErrorFor(Exchange{.request = request,
                           .context = context,
                           .ns = answer.ns,
                           .rest_json = answer.rest_json,
                           .json = answer.json},
                  durable);
}

http::asio::awaitable<http::Response> AwsEndpoint::Serve(http::Request& request,
                                                         http::RequestContext& context,
                                                         boost::asio::thread_pool* blocking) {
  // request and context outlive the spawned work: this coroutine waits for it. (No co_await
  // inside a conditional expression or a call's arguments: g++ 12 mis-destroys such temporaries.)
  Answer answer;
  // Lambda invocations block for as long as they run: they have a pool of their own.
  if (LambdaApi::Handles(request)) {
    if (boost::asio::thread_pool* pool = lambda_pool_.load(); pool != nullptr) blocking = pool;
  }
  if (blocking == nullptr) {
    answer = Process(request, context);
  } else {
    answer = co_await http::asio::co_spawn(
        blocking->get_executor(),
        [this, &request, &context]() -> http::asio::awaitable<Answer> {
          co_return Process(request, context);
        },
        http::asio::use_awaitable);
  }
  if (answer.audit_seq == 0) co_return std::move(answer.response);
  const core::Status written =
      co_await AsyncWaitDurable(deps_.audit, answer.audit_seq, http::asio::use_awaitable);
  const core::Status durable = AuditFailure(written);
  if (!durable.ok()) {
    co_return ErrorFor(Exchange{.request = request,
                                .context = context,
                                .ns = answer.ns,
                                .rest_json = answer.rest_json,
                                .json = answer.json},
                       durable);
  }
  co_return std::move(answer.response);
}

void AwsEndpoint::AttachService(RestJsonService* service) {
  MOATLESS_CHECK(service != nullptr, "AttachService(nullptr)");
  for (std::atomic<RestJsonService*>& slot : services_) {
    RestJsonService* expected = nullptr;
    if (slot.compare_exchange_strong(expected, service)) return;
  }
  MOATLESS_CHECK(false, "more than kMaxServices services attached");
}

void AwsEndpoint::DetachService(RestJsonService* service) {
  for (std::atomic<RestJsonService*>& slot : services_) {
    RestJsonService* expected = service;
    slot.compare_exchange_strong(expected, nullptr);
  }
}

http::Response AwsEndpoint::Dispatch(Exchange& ex) {
  const http::Request& request = ex.request;
  const http::RequestContext& context = ex.context;
  identity::HttpRequestView view{
      .method = request.method_string(), .target = request.target(), .body = request.body()};
  for (const auto& field : request) view.headers.emplace_back(field.name_string(), field.value());

  // Decode the operation first (no trust needed for that), so that even a refused request is
  // audited with the action it asked for.
  for (const std::atomic<RestJsonService*>& slot : services_) {
    RestJsonService* attached = slot.load();
    if (attached != nullptr && attached->Handles(request)) {
      ex.service = attached;
      break;
    }
  }
  ex.rest_json = LambdaApi::Handles(request) || ex.service != nullptr;
  ex.json = !ex.rest_json && IsJsonRequest(request);
  auto signature = identity::ParseSignature(view);
  core::Result<QueryRequest> query = core::InvalidArgumentError("not a Query request");
  core::Result<LambdaApi::Target> lambda_target =
      core::UnavailableError("functions cannot run on this host").WithAwsType("ServiceException");
  std::string action;
  std::string service;
  core::Result<RestJsonService::Target> service_target =
      core::InvalidArgumentError("not a request of an attached service");
  core::Result<JsonRequest> json_call = core::InvalidArgumentError("not a JSON request");
  if (ex.json) {
    service = std::string(JsonTargetPrefix(request));
    json_call = ParseJsonRequest(request);
    action = service + ":" + (json_call.ok() ? json_call->operation : std::string("*"));
  } else if (ex.service != nullptr) {
    service = std::string(ex.service->signing_name());
    service_target = ex.service->Decode(request);
    action = service_target.ok() ? service_target->action : service + ":*";
  } else if (ex.rest_json) {
    service = "lambda";
    ex.lambda = lambda_.load();
    if (ex.lambda != nullptr) lambda_target = ex.lambda->Decode(request);
    action = lambda_target.ok() ? lambda_target->action : "lambda:InvokeFunction";
  } else {
    query = ParseQueryRequest(FormOf(request));
    service = signature.ok() ? signature->service : "sts";
    action = service + ":" + (query.ok() ? query->action : std::string("*"));
  }
  const std::string_view ns = NamespaceOf(service);
  ex.ns = ns;

  if (!signature.ok()) {
    const core::Status audited = Audit(ex, "anonymous", action, "", observe::AuditOutcome::kDenied,
                                       signature.status().message());
    return ErrorFor(ex, audited.ok() ? signature.status() : audited);
  }
  ex.access_key_id = signature->access_key_id;
  bool served = signature->service == "sts" || signature->service == "iam";
  if (ex.rest_json) served = signature->service == service;
  if (ex.json) {
    served =
        signature->service == service && service == "secretsmanager" && deps_.secrets != nullptr;
  }
  if (!served) {
    core::Status unknown = core::InvalidArgumentError("moatless does not serve the service '" +
                                                      signature->service + "' here")
                               .WithAwsType("InvalidAction");
    const core::Status audited = Audit(ex, "access-key:" + signature->access_key_id, action, "",
                                       observe::AuditOutcome::kDenied, unknown.message());
    return ErrorFor(ex, audited.ok() ? unknown : audited);
  }
  identity::RequestOrigin origin{.source_ip = SourceIp(context.remote),
                                 .secure_transport = context.tls};
  if (!context.environment.empty()) origin.environment = context.environment;
  auto caller = deps_.authenticator.Authenticate(view, *signature, origin, service);
  if (!caller.ok()) {
    const core::Status audited = Audit(
        ex, "access-key:" + signature->access_key_id, action, "", observe::AuditOutcome::kDenied,
        std::string(caller.status().aws_type()) + ": " + caller.status().message());
    return ErrorFor(ex, audited.ok() ? caller.status() : audited);
  }
  if (ex.json) {
    if (!json_call.ok()) {
      const core::Status audited = Audit(ex, caller->arn, action, "", observe::AuditOutcome::kError,
                                         json_call.status().message());
      return ErrorFor(ex, audited.ok() ? json_call.status() : audited);
    }
    return HandleSecrets(ex, *caller, origin, *json_call);
  }
  if (ex.service != nullptr) {
    if (!service_target.ok()) {
      const core::Status audited = Audit(ex, caller->arn, action, "", observe::AuditOutcome::kError,
                                         service_target.status().message());
      return ErrorFor(ex, audited.ok() ? service_target.status() : audited);
    }
    if (core::Status s =
            AuthoriseRest(ex, *caller, origin, service_target->action, service_target->resource);
        !s.ok()) {
      return ErrorFor(ex, s);
    }
    return ex.service->Run(request, context, *service_target, caller->arn);
  }
  if (ex.rest_json) {
    if (!lambda_target.ok()) {
      const core::Status audited = Audit(ex, caller->arn, action, "", observe::AuditOutcome::kError,
                                         lambda_target.status().message());
      return ErrorFor(ex, audited.ok() ? lambda_target.status() : audited);
    }
    return HandleLambda(ex, *caller, origin, *lambda_target);
  }
  if (!query.ok()) {
    const core::Status audited =
        Audit(ex, caller->arn, action, "", observe::AuditOutcome::kError, query.status().message());
    return ErrorFor(ex, audited.ok() ? query.status() : audited);
  }
  if (service == "iam") return HandleIam(ex, *caller, origin, *query);
  return HandleSts(ex, *caller, origin, *query);
}

http::Response AwsEndpoint::HandleSts(Exchange& ex, const identity::Caller& caller,
                                      const identity::RequestOrigin& origin,
                                      const QueryRequest& query) {
  const http::Request& request = ex.request;
  const http::RequestContext& context = ex.context;
  const std::string& op = query.action;
  const std::string action = "sts:" + op;
  XmlWriter xml;
  auto fail = [&](const core::Status& status, std::string resource) {
    const bool denied = status.aws_type() == "AccessDenied";
    const core::Status audited = Audit(
        ex, caller.arn, action, std::move(resource),
        denied ? observe::AuditOutcome::kDenied : observe::AuditOutcome::kError, status.message());
    return QueryError(request, context, audited.ok() ? status : audited);
  };

  if (op == "GetCallerIdentity") {
    const identity::CallerIdentity id = deps_.sts.GetCallerIdentity(caller);
    if (core::Status s = Audit(ex, caller.arn, action, caller.arn, observe::AuditOutcome::kAllowed,
                               "always allowed");
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
            Audit(ex, caller.arn, action, assume.role_arn, observe::AuditOutcome::kDenied,
                  assumed.status().message() + (decision.result.statements.empty()
                                                    ? std::string()
                                                    : " [" + Statements(decision.result) + "]"));
        return QueryError(request, context, audited.ok() ? assumed.status() : audited);
      }
      return fail(assumed.status(), assume.role_arn);
    }
    if (core::Status s = Audit(ex, caller.arn, action, assume.role_arn,
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
    if (core::Status s = Audit(ex, caller.arn, action, caller.arn, observe::AuditOutcome::kAllowed,
                               "own credentials");
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

http::Response AwsEndpoint::HandleIam(Exchange& ex, const identity::Caller& caller,
                                      const identity::RequestOrigin& origin,
                                      const QueryRequest& query) {
  const http::Request& request = ex.request;
  const http::RequestContext& context = ex.context;
  const std::string action = "iam:" + query.action;
  auto target = deps_.iam.Resolve(query, caller);
  if (!target.ok()) {
    const core::Status audited =
        Audit(ex, caller.arn, action, "", observe::AuditOutcome::kError, target.status().message());
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
        Audit(ex, caller.arn, target->action, target->resource, observe::AuditOutcome::kDenied,
              denied.message() + (deciding.empty() ? "" : " [" + deciding + "]") +
                  (decision.error.empty() ? "" : " (" + decision.error + ")"));
    return QueryError(request, context, audited.ok() ? denied : audited, kIamNamespace);
  }
  // IAM operations change what the store holds: the allowed decision is durable before they run.
  if (core::Status s = Audit(ex, caller.arn, target->action, target->resource,
                             observe::AuditOutcome::kAllowed, deciding);
      !s.ok() || !(s = AuditFailure(deps_.audit.WaitDurable(ex.audit_seq))).ok()) {
    return QueryError(request, context, s, kIamNamespace);
  }
  XmlWriter xml;
  xml.Begin(query.action + "Response", kIamNamespace);
  if (core::Status run = deps_.iam.Run(query, caller, xml); !run.ok()) {
    Audit(ex, caller.arn, target->action, target->resource, observe::AuditOutcome::kError,
          std::string(run.aws_type()) + ": " + run.message())
        .IgnoreError();  // the allowed decision is on record; the failure is reported to the caller
    return QueryError(request, context, run, kIamNamespace);
  }
  xml.Begin("ResponseMetadata").Leaf("RequestId", context.request_id).End();
  return XmlResponse(request, http::HttpStatus::ok, context, xml.Finish());
}

// The endpoint's side of a Secrets Manager operation: decisions by the policy engine over the
// caller's policies and the secret's resource policy, records in the audit log.
class AwsEndpoint::SecretsScope final : public AccessScope {
 public:
  SecretsScope(AwsEndpoint& endpoint, Exchange& ex, const identity::Caller& caller,
               const identity::RequestOrigin& origin)
      : endpoint_(endpoint), ex_(ex), caller_(caller), origin_(origin) {}

  const std::string& caller_arn() const override { return caller_.arn; }

  core::Result<std::string> Authorise(const Target& target, bool record_allowed) override {
    policy::RequestContext request =
        identity::RequestContextFor(caller_, origin_, target.action, target.resource,
                                    endpoint_.deps_.clock.Now(), endpoint_.deps_.region);
    request.resource_tags = target.resource_tags;
    for (const auto& [key, value] : target.context) request.context.Set(key, value);
    for (const auto& [key, values] : target.multi_context) request.context.SetMulti(key, values);
    policy::PolicySet policies = caller_.policies;
    if (!target.resource_policy.empty()) {
      auto compiled = policy::CompiledPolicy::FromJson(target.resource_policy, "resource policy",
                                                       {.type = policy::PolicyType::kResource});
      if (!compiled.ok()) {
        // Fail closed: a stored policy that no longer parses grants nothing and denies all.
        core::Status denied =
            core::PermissionDeniedError("the resource policy of " + target.resource +
                                        " cannot be evaluated, so access is denied")
                .WithAwsType("AccessDeniedException");
        const core::Status audited = endpoint_.Audit(
            ex_, caller_.arn, target.action, target.resource, observe::AuditOutcome::kDenied,
            denied.message() + " (" + compiled.status().message() + ")");
        return audited.ok() ? denied : audited;
      }
      policies.resource = *compiled;
    }
    const policy::EvaluationResult decision = policy::Evaluate(request, policies);
    std::string deciding = Statements(decision);
    if (!decision.allowed()) {
      core::Status denied = core::PermissionDeniedError(decision.Message(request))
                                .WithAwsType("AccessDeniedException");
      const core::Status audited = endpoint_.Audit(
          ex_, caller_.arn, target.action, target.resource, observe::AuditOutcome::kDenied,
          denied.message() + (deciding.empty() ? "" : " [" + deciding + "]") +
              (decision.error.empty() ? "" : " (" + decision.error + ")"));
      return audited.ok() ? denied : audited;
    }
    if (record_allowed) {
      core::Status s = endpoint_.Audit(ex_, caller_.arn, target.action, target.resource,
                                       observe::AuditOutcome::kAllowed, deciding);
      if (s.ok()) s = AuditFailure(endpoint_.deps_.audit.WaitDurable(ex_.audit_seq));
      if (!s.ok()) return s;
    }
    return deciding;
  }

  core::Status Record(const Target& target, observe::AuditOutcome outcome, std::string reason,
                      std::map<std::string, std::string> fields) override {
    return endpoint_.Audit(ex_, caller_.arn, target.action, target.resource, outcome,
                           std::move(reason), std::move(fields));
  }

 private:
  AwsEndpoint& endpoint_;
  Exchange& ex_;
  const identity::Caller& caller_;
  const identity::RequestOrigin& origin_;
};

http::Response AwsEndpoint::HandleSecrets(Exchange& ex, const identity::Caller& caller,
                                          const identity::RequestOrigin& origin,
                                          const JsonRequest& call) {
  SecretsScope scope(*this, ex, caller, origin);
  return deps_.secrets->Handle(ex.request, ex.context, call, scope);
}

http::Response AwsEndpoint::HandleLambda(Exchange& ex, const identity::Caller& caller,
                                         const identity::RequestOrigin& origin,
                                         const LambdaApi::Target& target) {
  if (core::Status s = AuthoriseRest(ex, caller, origin, target.action, target.resource); !s.ok()) {
    return ErrorFor(ex, s);
  }
  return ex.lambda->Run(ex.request, ex.context, target);
}

core::Status AwsEndpoint::AuthoriseRest(Exchange& ex, const identity::Caller& caller,
                                        const identity::RequestOrigin& origin,
                                        const std::string& action, const std::string& resource) {
  policy::RequestContext decision_context = identity::RequestContextFor(
      caller, origin, action, resource, deps_.clock.Now(), deps_.region);
  const policy::EvaluationResult decision = policy::Evaluate(decision_context, caller.policies);
  const std::string deciding = Statements(decision);
  if (!decision.allowed()) {
    core::Status denied = core::PermissionDeniedError(decision.Message(decision_context))
                              .WithAwsType("AccessDeniedException");
    const core::Status audited =
        Audit(ex, caller.arn, action, resource, observe::AuditOutcome::kDenied,
              denied.message() + (deciding.empty() ? "" : " [" + deciding + "]") +
                  (decision.error.empty() ? "" : " (" + decision.error + ")"));
    return audited.ok() ? denied : audited;
  }
  // What runs next has effects of its own: the allowed decision is durable before it does.
  core::Status s =
      Audit(ex, caller.arn, action, resource, observe::AuditOutcome::kAllowed, deciding);
  if (s.ok()) s = AuditFailure(deps_.audit.WaitDurable(ex.audit_seq));
  return s;
}

}  // namespace moatless::services
