#include "manifest/app_api.h"

#include <boost/json.hpp>
#include <charconv>
#include <vector>

namespace moatless::manifest {
namespace {

// What a request's path and query say, decoded.
using Parsed = services::RestTarget;

core::Result<bool> Flag(const Parsed& p, const std::string& name) {
  auto it = p.query.find(name);
  if (it == p.query.end() || it->second == "false") return false;
  if (it->second == "true" || it->second.empty()) return true;
  return core::InvalidArgumentError(name + " must be true or false");
}

core::Result<std::optional<std::int64_t>> Number(const Parsed& p, const std::string& name) {
  auto it = p.query.find(name);
  if (it == p.query.end()) return std::optional<std::int64_t>();
  std::int64_t n = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n < 0) {
    return core::InvalidArgumentError(name + " must be a version number");
  }
  return std::optional<std::int64_t>(n);
}

http::Response Json(const http::Request& request, const http::RequestContext& context,
                    http::HttpStatus status, std::string body) {
  http::Response response(status, request.version());
  response.set(http::Field::content_type, "application/json");
  response.set("x-amzn-RequestId", context.request_id);
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

boost::json::object DeadJson(const std::map<std::string, std::vector<DeadStatement>>& dead) {
  boost::json::array out;
  for (const auto& [function, statements] : dead) {
    for (const DeadStatement& s : statements) {
      out.push_back(boost::json::object{{"Function", function},
                                        {"Index", static_cast<std::int64_t>(s.index)},
                                        {"Statement", s.statement}});
    }
  }
  return boost::json::object{{"DeadStatements", std::move(out)}};
}

boost::json::object FunctionJson(const FunctionDeployment& f) {
  return {{"Name", f.name},        {"FunctionName", f.function_name},
          {"Version", f.version},  {"CodeSha256", f.code_sha256},
          {"RoleArn", f.role_arn}, {"Policy", f.policy}};
}

std::string_view AuthName(AuthSpec::Kind kind) {
  switch (kind) {
    case AuthSpec::Kind::kNone:
      return "none";
    case AuthSpec::Kind::kJwt:
      return "jwt";
    case AuthSpec::Kind::kApiKey:
      return "api_key";
    case AuthSpec::Kind::kAuthorizer:
      return "authorizer";
    case AuthSpec::Kind::kIam:
      return "iam";
  }
  return "?";
}

}  // namespace

std::string DeployOutcomeJson(const DeployOutcome& o) {
  boost::json::array changes;
  for (const Change& c : o.changes) {
    boost::json::array details;
    for (const std::string& d : c.details) details.push_back(boost::json::string(d));
    changes.push_back(boost::json::object{{"Section", c.section},
                                          {"Name", c.name},
                                          {"Kind", ChangeKindName(c.kind)},
                                          {"Details", std::move(details)}});
  }
  boost::json::array functions;
  for (const FunctionDeployment& f : o.functions) functions.push_back(FunctionJson(f));
  boost::json::array pending;
  for (const std::string& p : o.pending) pending.push_back(boost::json::string(p));
  boost::json::object out{{"App", o.app},
                          {"Stage", o.stage},
                          {"Version", o.version},
                          {"PreviousVersion", o.previous_version},
                          {"DryRun", o.dry_run},
                          {"Changed", o.changed},
                          {"BundleSha256", o.bundle_sha256},
                          {"BoundarySource", o.boundary_source},
                          {"Changes", std::move(changes)},
                          {"Functions", std::move(functions)},
                          {"Pending", std::move(pending)}};
  out["DeadStatements"] = DeadJson(o.dead).at("DeadStatements");
  return boost::json::serialize(out);
}

AppApi::AppApi(Deps deps) : deps_(std::move(deps)) {}

namespace {

boost::json::object ApiKeyJson(const gateway::ApiKey& key) {
  return {{"Id", key.id},
          {"App", key.app},
          {"Stage", key.stage},
          {"Plan", key.plan},
          {"Name", key.name},
          {"Enabled", key.enabled},
          {"CreatedAt", core::FormatRfc3339(key.created)},
          {"UpdatedAt", core::FormatRfc3339(key.updated)}};
}

http::Response RunApiKeys(const AppApi::Deps& deps, const http::Request& request,
                          const http::RequestContext& context, const AppApi::Target& target,
                          const Parsed& parsed,
                          const std::function<http::Response(const core::Status&)>& fail) {
  if (deps.keys == nullptr) return fail(core::UnavailableError("API keys are not served here"));
  const std::string& app = parsed.segments[1];
  const std::string& stage = parsed.segments[3];
  boost::json::object body;
  if (request.method() == http::Verb::post || request.method() == http::Verb::patch) {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(request.body(), ec);
    if (ec || !value.is_object())
      return fail(core::InvalidArgumentError("the body is not a JSON object"));
    body = std::move(value.as_object());
  }
  auto text = [&](const char* key) -> core::Result<std::optional<std::string>> {
    const boost::json::value* v = body.if_contains(key);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) return core::InvalidArgumentError(std::string(key) + " must be a string");
    return std::optional<std::string>(std::string(v->as_string()));
  };
  // A plan the live version of the app stage defines.
  auto check_plan = [&](const std::string& plan) -> core::Status {
    ASSIGN_OR_RETURN(std::optional<gateway::ApiConfig> api, deps.deployer.GatewayApiOf(app, stage));
    if (!api || !api->usage_plans.contains(plan)) {
      return core::InvalidArgumentError(
          "usage plan '" + plan + "' is not defined by the live version of " + app + "/" + stage);
    }
    return core::Status::Ok();
  };
  if (target.action == "moatless:CreateApiKey") {
    auto plan = text("Plan");
    auto name = text("Name");
    if (!plan.ok()) return fail(plan.status());
    if (!name.ok()) return fail(name.status());
    if (!*plan) return fail(core::InvalidArgumentError("Plan is required"));
    if (core::Status st = check_plan(**plan); !st.ok()) return fail(st);
    auto created = deps.keys->Create(app, stage, **plan, name->value_or(""));
    if (!created.ok()) return fail(created.status());
    boost::json::object out = ApiKeyJson(created->key);
    out["Value"] = std::string(created->value.Reveal());
    return Json(request, context, http::HttpStatus::created, boost::json::serialize(out));
  }
  if (target.action == "moatless:ListApiKeys") {
    auto keys = deps.keys->List(app, stage);
    if (!keys.ok()) return fail(keys.status());
    boost::json::array out;
    for (const gateway::ApiKey& key : *keys) out.push_back(ApiKeyJson(key));
    return Json(request, context, http::HttpStatus::ok,
                boost::json::serialize(boost::json::object{{"ApiKeys", std::move(out)}}));
  }
  // One key, which must belong to this app stage.
  const std::string& id = parsed.segments[5];
  auto key = deps.keys->Get(id);
  if (key.ok() && (key->app != app || key->stage != stage)) {
    key = core::NotFoundError("no API key " + id + " in " + app + "/" + stage);
  }
  if (!key.ok()) return fail(key.status());
  if (target.action == "moatless:GetApiKey") {
    return Json(request, context, http::HttpStatus::ok, boost::json::serialize(ApiKeyJson(*key)));
  }
  if (target.action == "moatless:DeleteApiKey") {
    if (core::Status st = deps.keys->Delete(id); !st.ok()) return fail(st);
    return Json(request, context, http::HttpStatus::ok, "{}");
  }
  // UpdateApiKey
  auto plan = text("Plan");
  if (!plan.ok()) return fail(plan.status());
  const boost::json::value* enabled = body.if_contains("Enabled");
  if (enabled != nullptr && !enabled->is_bool()) {
    return fail(core::InvalidArgumentError("Enabled must be true or false"));
  }
  if (enabled == nullptr && !*plan) return fail(core::InvalidArgumentError("give Enabled or Plan"));
  if (*plan) {
    if (core::Status st = check_plan(**plan); !st.ok()) return fail(st);
    if (core::Status st = deps.keys->SetPlan(id, **plan); !st.ok()) return fail(st);
  }
  if (enabled != nullptr) {
    if (core::Status st = deps.keys->SetEnabled(id, enabled->as_bool()); !st.ok()) return fail(st);
  }
  auto updated = deps.keys->Get(id);
  if (!updated.ok()) return fail(updated.status());
  return Json(request, context, http::HttpStatus::ok, boost::json::serialize(ApiKeyJson(*updated)));
}

}  // namespace

bool AppApi::Handles(const http::Request& request) const {
  // Only /moatless/v1/apps and below: the rest of /moatless/v1/ belongs to other services.
  constexpr std::string_view kApps = "/moatless/v1/apps";
  const std::string_view target = request.target();
  return target.starts_with(kApps) && (target.size() == kApps.size() ||
                                       target[kApps.size()] == '/' || target[kApps.size()] == '?');
}

core::Result<services::RestJsonService::Target> AppApi::Decode(const http::Request& request) const {
  ASSIGN_OR_RETURN(const Parsed p, services::ParseRestTarget(request.target()));
  const std::vector<std::string>& s = p.segments;
  const http::Verb method = request.method();
  auto unknown = [&] {
    return core::NotFoundError("no such operation: " + std::string(request.method_string()) + " " +
                               std::string(request.target().substr(0, request.target().find('?'))))
        .WithAwsType("UnknownOperationException");
  };
  if (s.size() == 1 && s[0] == "apps" && method == http::Verb::get) {
    return Target{"moatless:ListApps",
                  "arn:aws:moatless:" + deps_.region + ":" + deps_.account_id + ":app/*"};
  }
  if (s.size() < 4 || s[0] != "apps" || s[2] != "stages") return unknown();
  RETURN_IF_ERROR(ValidateAppName(s[1]));
  RETURN_IF_ERROR(ValidateStageName(s[3]));
  const std::string arn = AppArn(deps_.region, deps_.account_id, s[1], s[3]);
  if (s.size() == 4 && method == http::Verb::get) return Target{"moatless:GetApp", arn};
  if (s.size() == 5 && s[4] == "deployments" && method == http::Verb::post) {
    return Target{"moatless:Deploy", arn};
  }
  if (s.size() == 5 && s[4] == "rollback" && method == http::Verb::post) {
    return Target{"moatless:Deploy", arn};
  }
  if (s.size() == 5 && s[4] == "apikeys") {
    if (method == http::Verb::post) return Target{"moatless:CreateApiKey", arn};
    if (method == http::Verb::get) return Target{"moatless:ListApiKeys", arn};
  }
  if (s.size() == 6 && s[4] == "apikeys") {
    if (method == http::Verb::get) return Target{"moatless:GetApiKey", arn};
    if (method == http::Verb::patch) return Target{"moatless:UpdateApiKey", arn};
    if (method == http::Verb::delete_) return Target{"moatless:DeleteApiKey", arn};
  }
  if (s.size() == 5 && s[4] == "boundary") {
    if (method == http::Verb::get) return Target{"moatless:GetBoundary", arn};
    if (method == http::Verb::put) return Target{"moatless:PutBoundary", arn};
    if (method == http::Verb::delete_) return Target{"moatless:DeleteBoundary", arn};
  }
  return unknown();
}

http::Response AppApi::Run(const http::Request& request, const http::RequestContext& context,
                           const Target& target, const std::string& caller_arn) {
  auto fail = [&](const core::Status& status) {
    core::Status typed = status;
    if (status.aws_type() == core::AwsErrorTypeFor(status.code())) {  // no service type yet
      switch (status.code()) {
        case core::StatusCode::kInvalidArgument:
          typed = core::Status(status).WithAwsType("ValidationException");
          break;
        case core::StatusCode::kNotFound:
          typed = core::Status(status).WithAwsType("ResourceNotFoundException");
          break;
        case core::StatusCode::kFailedPrecondition:  // a strict deployment with dead statements
          typed = core::Status(status).WithAwsType("ValidationException");
          break;
        case core::StatusCode::kAborted:
        case core::StatusCode::kAlreadyExists:
          typed = core::Status(status).WithAwsType("ConflictException");
          break;
        default:
          break;
      }
    }
    return services::RestJsonError(request, context, typed);
  };
  auto parsed = services::ParseRestTarget(request.target());
  if (!parsed.ok()) return fail(parsed.status());
  const std::vector<std::string>& s = parsed->segments;
  if (target.action == "moatless:ListApps") {
    auto apps = deps_.deployer.ListApps();
    if (!apps.ok()) return fail(apps.status());
    boost::json::array out;
    for (const AppSummary& a : *apps) {
      out.push_back(boost::json::object{{"App", a.app},
                                        {"Stage", a.stage},
                                        {"LiveVersion", a.live_version},
                                        {"UpdatedAt", a.updated_at}});
    }
    return Json(request, context, http::HttpStatus::ok,
                boost::json::serialize(boost::json::object{{"Apps", std::move(out)}}));
  }
  const std::string& app = s[1];
  const std::string& stage = s[3];
  if (target.action == "moatless:GetApp") {
    auto details = deps_.deployer.GetApp(app, stage);
    if (!details.ok()) return fail(details.status());
    boost::json::array functions;
    for (const FunctionDeployment& f : details->functions) functions.push_back(FunctionJson(f));
    boost::json::array routes;
    for (const RouteSpec& r : details->routes) {
      routes.push_back(boost::json::object{{"Route", r.key()},
                                           {"Function", r.function},
                                           {"Auth", AuthName(r.auth.kind)},
                                           {"Authorizer", r.auth.authorizer},
                                           {"UsagePlan", r.auth.usage_plan}});
    }
    boost::json::array versions;
    for (const AppVersionInfo& v : details->versions) {
      versions.push_back(boost::json::object{{"Version", v.version},
                                             {"CreatedAt", v.created_at},
                                             {"Deployer", v.deployer},
                                             {"Description", v.description},
                                             {"BundleSha256", v.bundle_sha256}});
    }
    return Json(
        request, context, http::HttpStatus::ok,
        boost::json::serialize(boost::json::object{{"App", app},
                                                   {"Stage", stage},
                                                   {"LiveVersion", details->summary.live_version},
                                                   {"UpdatedAt", details->summary.updated_at},
                                                   {"BoundarySource", details->boundary_source},
                                                   {"Functions", std::move(functions)},
                                                   {"Routes", std::move(routes)},
                                                   {"Versions", std::move(versions)}}));
  }
  if (target.action.find("ApiKey") != std::string::npos) {
    return RunApiKeys(deps_, request, context, target, *parsed, fail);
  }
  if (target.action == "moatless:GetBoundary") {
    auto boundary = deps_.deployer.GetBoundary(app, stage);
    if (!boundary.ok()) return fail(boundary.status());
    return Json(request, context, http::HttpStatus::ok,
                boost::json::serialize(boost::json::object{{"Boundary", boundary->first},
                                                           {"Source", boundary->second}}));
  }
  if (target.action == "moatless:PutBoundary") {
    auto dead = deps_.deployer.PutBoundary(app, stage, request.body());
    if (!dead.ok()) return fail(dead.status());
    return Json(request, context, http::HttpStatus::ok, boost::json::serialize(DeadJson(*dead)));
  }
  if (target.action == "moatless:DeleteBoundary") {
    if (core::Status st = deps_.deployer.DeleteBoundary(app, stage); !st.ok()) return fail(st);
    return Json(request, context, http::HttpStatus::ok, "{}");
  }
  // moatless:Deploy: a deployment or a rollback.
  auto dry_run = Flag(*parsed, "dryRun");
  if (!dry_run.ok()) return fail(dry_run.status());
  core::Result<DeployOutcome> outcome = core::InternalError("unreachable");
  if (s[4] == "rollback") {
    auto to = Number(*parsed, "to");
    if (!to.ok()) return fail(to.status());
    outcome = deps_.deployer.Rollback(app, stage, *to, *dry_run, caller_arn);
  } else {
    auto strict = Flag(*parsed, "strict");
    if (!strict.ok()) return fail(strict.status());
    auto expected = Number(*parsed, "expectedVersion");
    if (!expected.ok()) return fail(expected.status());
    outcome = deps_.deployer.Deploy({.app = app,
                                     .stage = stage,
                                     .bundle = request.body(),
                                     .dry_run = *dry_run,
                                     .strict = *strict,
                                     .expected_version = *expected,
                                     .deployer = caller_arn});
  }
  if (!outcome.ok()) return fail(outcome.status());
  return Json(
      request, context,
      outcome->changed && !outcome->dry_run ? http::HttpStatus::created : http::HttpStatus::ok,
      DeployOutcomeJson(*outcome));
}

}  // namespace moatless::manifest
