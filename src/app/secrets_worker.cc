#include "app/secrets_worker.h"

#include <boost/json.hpp>
#include <utility>

#include "core/arn.h"
#include "core/ids.h"

namespace moatless::app {
namespace {

constexpr std::string_view kRotationActor = "moatless:secrets-rotation";

}  // namespace

RotationSteps::RotationSteps(Deps deps) : deps_(std::move(deps)) {
  if (deps_.metrics != nullptr) {
    failures_ = &deps_.metrics->Counter("moatless_secret_rotation_failures_total",
                                        "Secret rotation steps that failed, by step.", {"step"});
  }
}

core::Status RotationSteps::Run(const std::string& rotation_arn,
                                const secrets::RotationEvent& event) {
  // Nothing runs that could not be recorded.
  if (core::Status health = deps_.audit.Health(); !health.ok()) {
    return core::UnavailableError("the audit log cannot record the step: " + health.message());
  }
  if (rotation_arn == secrets::kPostgresRotationArn) {
    if (!deps_.postgres) {
      return core::UnavailableError("the built-in PostgreSQL rotation is not available here");
    }
    return deps_.postgres(event);
  }
  return Invoke(rotation_arn, event);
}

core::Status RotationSteps::Invoke(const std::string& rotation_arn,
                                   const secrets::RotationEvent& event) {
  if (deps_.functions == nullptr) {
    return core::UnavailableError("functions cannot run on this host, so the rotation function " +
                                  rotation_arn + " cannot be invoked");
  }
  // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER], or a bare name.
  std::string name = rotation_arn;
  std::string qualifier;
  if (rotation_arn.starts_with("arn:")) {
    auto arn = core::Arn::Parse(rotation_arn);
    if (!arn.ok() || arn->service != "lambda" || arn->ResourceType() != "function") {
      return core::InvalidArgumentError("the rotation function " + rotation_arn +
                                        " is not a function ARN");
    }
    name = std::string(arn->ResourceId());
    if (const std::size_t colon = name.find(':'); colon != std::string::npos) {
      qualifier = name.substr(colon + 1);
      name.resize(colon);
    }
  }
  ASSIGN_OR_RETURN(runtime::FunctionConfig function, deps_.functions->Resolve(name, qualifier));
  const std::string payload = boost::json::serialize(boost::json::object{
      {"SecretId", event.secret_arn}, {"ClientRequestToken", event.token}, {"Step", event.step}});
  ASSIGN_OR_RETURN(runtime::InvokeResult result,
                   deps_.functions->Invoke(function, payload, core::NewUuid(deps_.random), ""));
  if (result.function_error) {
    // The function's own error message says why (rotation functions do not put values there).
    std::string message = "the rotation function failed";
    boost::system::error_code ec;
    const boost::json::value body = boost::json::parse(result.payload, ec);
    if (!ec && body.is_object() && body.as_object().contains("errorMessage") &&
        body.as_object().at("errorMessage").is_string()) {
      message += ": " + std::string(body.as_object().at("errorMessage").as_string());
    }
    if (message.size() > 1000) message.resize(1000);
    return core::FailedPreconditionError(message);
  }
  return core::Status::Ok();
}

void RotationSteps::Audit(const secrets::RotationEvent& event, const core::Status& outcome) {
  observe::AuditRecord record;
  record.actor = std::string(kRotationActor);
  record.action = "secretsmanager:RotationStep";
  record.resource = event.secret_arn;
  record.outcome = outcome.ok() ? observe::AuditOutcome::kAllowed : observe::AuditOutcome::kError;
  record.reason = outcome.ok() ? event.step + " done" : event.step + ": " + outcome.message();
  record.fields = {{"version_id", event.token}, {"step", event.step}};
  if (core::Status s = deps_.audit.Append(record); !s.ok()) {
    deps_.log.Error("audit record of a rotation step lost",
                    {{"secret", event.secret_arn}, {"error", s.message()}});
  }
}

void RotationSteps::Alert(const std::string& secret_arn, const std::string& step,
                          const core::Status& error) {
  if (failures_ != nullptr) failures_->WithLabels({step}).Inc();
  deps_.log.Error("secret rotation failed", {{"alert", "secret_rotation_failed"},
                                             {"secret", secret_arn},
                                             {"step", step},
                                             {"error", error.message()}});
}

SecretsWorker::SecretsWorker(Deps deps) : deps_(std::move(deps)), thread_([this] { Loop(); }) {}

SecretsWorker::~SecretsWorker() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SecretsWorker::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void SecretsWorker::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    RunOnce();
    lock.lock();
    cv_.wait_for(lock, deps_.interval, [this] { return stopping_ || woken_; });
    woken_ = false;
  }
}

void SecretsWorker::RunOnce() {
  // Nothing happens that could not be recorded.
  if (!deps_.audit.Health().ok()) return;
  auto rotated = deps_.rotator.RunDue([this] {
    std::lock_guard lock(mu_);
    return stopping_;
  });
  if (!rotated.ok()) {
    deps_.log.Error("looking for due secret rotations failed",
                    {{"error", rotated.status().message()}});
  }
  auto purged = deps_.store.PurgeDue();
  if (!purged.ok()) {
    deps_.log.Error("deleting secrets past their recovery window failed",
                    {{"error", purged.status().message()}});
    return;
  }
  for (const std::string& arn : *purged) {
    observe::AuditRecord record;
    record.actor = "moatless:secrets";
    record.action = "secretsmanager:PurgeSecret";
    record.resource = arn;
    record.outcome = observe::AuditOutcome::kAllowed;
    record.reason = "recovery window ended";
    deps_.audit.Append(record).IgnoreError();  // the log reports its own failures
    deps_.log.Info("secret deleted at the end of its recovery window", {{"secret", arn}});
  }
}

}  // namespace moatless::app
