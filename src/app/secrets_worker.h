// SecretsWorker: the daemon's background work for secrets. Every `interval`, and at once when
// woken (a RotateSecret started a rotation), it carries out the rotations that are due
// (secrets::Rotator::RunDue) and deletes for good the secrets whose recovery window has ended
// (each deletion audited as secretsmanager:PurgeSecret by the platform).
//
// RotationSteps runs one rotation step for the Rotator: built-in rotations in process
// (secrets::kPostgresRotationArn), any other rotation function through the function host with
// the AWS event {"SecretId", "ClientRequestToken", "Step"}; every step is audited
// (secretsmanager:RotationStep, with the version id and step), and every failure is logged as an
// alert event ("secret rotation failed") and counted in moatless_secret_rotation_failures_total.
//
// One thread, owned by the worker, started by the constructor and joined by the destructor; Wake
// is thread-safe. Destroy the worker before what Deps names.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "observe/audit_log.h"
#include "observe/logger.h"
#include "observe/metrics.h"
#include "secrets/rotation.h"
#include "secrets/secret_store.h"
#include "services/lambda_api.h"

namespace moatless::app {

class RotationSteps {
 public:
  struct Deps {
    // Null: only built-in rotations can run (this host cannot run functions).
    services::FunctionBackend* functions = nullptr;
    // Runs the built-in PostgreSQL rotation; null: refused.
    std::function<core::Status(const secrets::RotationEvent&)> postgres;
    observe::AuditLog& audit;
    observe::Logger log;
    observe::MetricsRegistry* metrics = nullptr;
    core::Random& random;
  };
  explicit RotationSteps(Deps deps);

  // The Rotator's RunRotationStep.
  core::Status Run(const std::string& rotation_arn, const secrets::RotationEvent& event);
  // The Rotator's on_step and on_failure hooks.
  void Audit(const secrets::RotationEvent& event, const core::Status& outcome);
  void Alert(const std::string& secret_arn, const std::string& step, const core::Status& error);

 private:
  core::Status Invoke(const std::string& rotation_arn, const secrets::RotationEvent& event);
  Deps deps_;
  observe::CounterFamily* failures_ = nullptr;
};

class SecretsWorker {
 public:
  struct Deps {
    secrets::Rotator& rotator;
    secrets::SecretStore& store;
    observe::AuditLog& audit;
    observe::Logger log;
    std::chrono::milliseconds interval{std::chrono::minutes(1)};
  };
  explicit SecretsWorker(Deps deps);
  ~SecretsWorker();
  SecretsWorker(const SecretsWorker&) = delete;
  SecretsWorker& operator=(const SecretsWorker&) = delete;

  void Wake();

 private:
  void Loop();
  void RunOnce();

  Deps deps_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace moatless::app
