#include "app/function_host.h"

#include <string_view>

namespace moatless::app {
namespace {

// Function output, one log record per line, without the trailing newline.
template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    fn(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

}  // namespace

FunctionHost::FunctionHost(Deps deps) : deps_(std::move(deps)) {
  if (deps_.metrics != nullptr) metrics_ = std::make_unique<FunctionMetrics>(*deps_.metrics);
  registry_ = std::make_unique<runtime::FunctionRegistry>(deps_.db, deps_.env.clock());
  api_ = std::make_unique<runtime::RuntimeApi>(
      deps_.io, deps_.env.random(), deps_.env.clock(),
      [aws = &deps_.aws, pool = deps_.blocking](http::Request& req, http::RequestContext& ctx) {
        return aws->Serve(req, ctx, pool);
      });
  egress_ = std::make_unique<runtime::EgressProxy>(
      deps_.io,
      runtime::EgressProxyOptions{.on_refusal = [log = deps_.log](const runtime::EgressRefusal& r) {
        log.Warn("egress refused", {{"function", r.function},
                                    {"environment", r.environment_id},
                                    {"scheme", r.scheme},
                                    {"host", r.host},
                                    {"port", static_cast<std::int64_t>(r.port)},
                                    {"reason", r.reason}});
      }});
  const FunctionSettings& s = deps_.settings;
  invoker_ = std::make_unique<runtime::Invoker>(
      deps_.sandboxer, *api_, deps_.env.random(), deps_.env.clock(),
      runtime::InvokerOptions{
          .runtimes_dir = deps_.runtimes_dir,
          .region = deps_.region,
          .account_id = deps_.account_id,
          .max_idle_per_version = s.concurrency.platform_limit,
          .concurrency = s.concurrency,
          .egress = egress_.get(),
          .freeze_after = s.freeze_after,
          .idle_timeout = s.idle_timeout,
          .on_invocation = [this](
                               const runtime::FunctionConfig& function,
                               const runtime::InvokeResult& result) { Record(function, result); },
          .on_environment_start =
              [this](const runtime::FunctionConfig&, const core::Status& status) {
                if (metrics_) metrics_->EnvironmentStart(status);
              },
          .credentials =
              [this](const runtime::FunctionConfig& function, const std::string& environment_id) {
                return IssueCredentials(function, environment_id);
              },
      });
  events_ = std::make_unique<runtime::EventQueue>(
      deps_.db, *registry_, deps_.env.clock(), deps_.env.random(),
      [this](const runtime::FunctionConfig& function, std::string payload,
             const std::string& request_id) {
        return Invoke(function, std::move(payload), request_id);
      },
      runtime::EventQueueOptions{
          .workers = s.event_workers,
          .retry_delays = s.event_retry_delays,
          .on_outcome = [log = deps_.log](const runtime::EventOutcome& o) {
            const observe::Logger l = log.WithRequestId(o.request_id);
            if (o.succeeded) {
              l.Info("event invocation done",
                     {{"function", o.function_name}, {"attempt", o.attempt}});
            } else {
              l.Warn(o.final ? "event invocation failed, given up"
                             : "event invocation failed, will retry",
                     {{"function", o.function_name}, {"attempt", o.attempt}, {"error", o.error}});
            }
          }});
  events_->Start();
  if (metrics_) metrics_->Watch(*invoker_, invoker_->gate(), *events_);
  lambda_ = std::make_unique<services::LambdaApi>(services::LambdaApi::Deps{
      .functions = *this, .region = deps_.region, .account_id = deps_.account_id});
  // Every invocation that may run or wait for a slot has a thread to wait on.
  invocations_ = std::make_unique<boost::asio::thread_pool>(s.concurrency.platform_limit +
                                                            s.concurrency.max_queued);
  deps_.aws.AttachLambda(lambda_.get(), invocations_.get());
}

FunctionHost::~FunctionHost() {
  metrics_.reset();  // its collector reads the invoker and the event queue
  deps_.aws.DetachLambda();
  invocations_->join();
  events_->Stop();
  invoker_.reset();  // environments first: their listeners belong to the Runtime API and proxy
  egress_.reset();
  api_.reset();
}

core::Result<runtime::FunctionConfig> FunctionHost::Resolve(std::string_view name,
                                                            std::string_view qualifier) {
  return registry_->Get(name, qualifier);
}

core::Result<runtime::InvokeResult> FunctionHost::Invoke(const runtime::FunctionConfig& function,
                                                         std::string payload,
                                                         std::string request_id,
                                                         std::string client_context) {
  auto result = invoker_->Invoke(function, std::move(payload), std::move(request_id),
                                 std::move(client_context));
  if (!result.ok() && result.status().aws_type() == "TooManyRequestsException") {
    if (metrics_) metrics_->Throttle(function);
    deps_.log.Warn("invocation throttled",
                   {{"function", function.name}, {"error", result.status().message()}});
  }
  return result;
}

core::Status FunctionHost::Enqueue(std::string_view name, std::string_view qualifier,
                                   std::string payload, std::string request_id) {
  return events_->Enqueue(name, qualifier, std::move(payload), std::move(request_id)).status();
}

void FunctionHost::Record(const runtime::FunctionConfig& function,
                          const runtime::InvokeResult& result) {
  if (deps_.function_logs != nullptr) deps_.function_logs->Record(function, result);
  const observe::Logger log = deps_.log.WithRequestId(result.request_id);
  ForEachLine(result.log, [&](std::string_view line) {
    if (line.starts_with("REPORT ")) return;  // logged below, with its fields
    log.Info("function output", {{"function", function.name}, {"line", line}});
  });
  const std::string_view outcome = FunctionMetrics::Outcome(result);
  log.Info("invocation",
           {{"function", function.name},
            {"version", result.version},
            {"outcome", outcome},
            {"duration_ms", static_cast<double>(result.duration.count()) / 1000.0},
            {"init_duration_ms", static_cast<double>(result.init_duration.count()) / 1000.0},
            {"cold_start", result.cold_start},
            {"max_memory_mb", static_cast<std::int64_t>(result.peak_memory_bytes >> 20)},
            {"error_type", result.function_error.value_or("")}});
  if (metrics_) metrics_->Invocation(function, result);
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
