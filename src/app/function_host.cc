#include "app/function_host.h"

namespace moatless::app {

FunctionHost::FunctionHost(Deps deps) : deps_(std::move(deps)) {
  api_ = std::make_unique<runtime::RuntimeApi>(
      deps_.io, deps_.env.random(), deps_.env.clock(),
      [aws = &deps_.aws, pool = deps_.blocking](http::Request& req, http::RequestContext& ctx) {
        return aws->Serve(req, ctx, pool);
      });
  invoker_ = std::make_unique<runtime::Invoker>(
      deps_.sandboxer, *api_, deps_.env.random(), deps_.env.clock(),
      runtime::InvokerOptions{.runtimes_dir = deps_.runtimes_dir,
                              .region = deps_.region,
                              .account_id = deps_.account_id,
                              .credentials = [this](const runtime::FunctionConfig& function,
                                                    const std::string& environment_id) {
                                return IssueCredentials(function, environment_id);
                              }});
}

FunctionHost::~FunctionHost() {
  invoker_.reset();  // environments first: their listeners belong to the Runtime API
  api_.reset();
}

core::Result<runtime::ContainerCredentials> FunctionHost::IssueCredentials(
    const runtime::FunctionConfig& function, const std::string& environment_id) {
  // The session name says which function and which environment, as the audit log shows it.
  const std::string session = function.name.substr(0, 40) + "-" + environment_id;
  identity::StsDecision decision;
  auto issued = deps_.sts.CredentialsForEnvironment(function.role_arn, session, environment_id, 900,
                                                    &decision);
  observe::AuditRecord record;
  record.actor = "lambda.amazonaws.com";
  record.action = "sts:AssumeRole";
  record.resource = function.role_arn;
  record.outcome = issued.ok() ? observe::AuditOutcome::kAllowed : observe::AuditOutcome::kDenied;
  record.reason = issued.ok() ? "credentials for a function's execution environment"
                              : issued.status().message();
  record.fields = {{"function", function.name}, {"environment", environment_id}};
  // Nothing is handed out that is not recorded.
  RETURN_IF_ERROR(deps_.audit.Append(record));
  if (!issued.ok()) return issued.status();
  return runtime::ContainerCredentials{
      .access_key_id = issued->credentials.access_key_id,
      .secret_access_key = std::move(issued->credentials.secret_access_key),
      .session_token = std::move(issued->credentials.session_token),
      .expires_at = issued->credentials.expires_at};
}

}  // namespace moatless::app
