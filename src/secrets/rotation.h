// Rotation: AWS Secrets Manager's four-step rotation protocol, run by the platform.
//
// A rotation moves a secret to a new value in four steps, each run on the secret's rotation
// function with the AWS event shape {"SecretId": ARN, "ClientRequestToken": TOKEN, "Step": S}:
//   createSecret  make the new value and store it as version TOKEN labelled AWSPENDING;
//   setSecret     set it in the system the secret is for (ALTER ROLE ... PASSWORD, ...);
//   testSecret    check that the new value works there;
//   finishSecret  move AWSCURRENT to TOKEN (AWSPREVIOUS follows) and drop AWSPENDING.
// Before the first step the rotator creates version TOKEN without a value, labelled AWSPENDING
// (what AWS rotation functions check for). Every step must be idempotent.
//
// The Rotator persists where a rotation is (the token and the next step) in the secret's row
// after every step, so a rotation interrupted by a crash resumes at the step that did not finish.
// A failing step leaves AWSCURRENT where it is; the rotation is abandoned (AWSPENDING removed from
// its version) and retried later with a NEW token — so a pending value that does not work is never
// retried, a new one is made — with the attempts, the failure and its time recorded
// (DescribeSecret's rotation state) and reported to `on_failure` (an alert event). After
// kMaxRotationAttempts failures in a row it waits for the next scheduled rotation.
//
// Schedules: RotationRules.AutomaticallyAfterDays (1..1000), or ScheduleExpression
// `rate(N days)` / `rate(N hours)` (at least 4 hours) / `cron(min hour day-of-month month
// day-of-week year)` in UTC (minutes and hours as numbers, lists, ranges, `*` and `*/n`; `?` for
// the unused day field).
//
// Thread-safe. RunDue is meant to be called by one worker at a time (the daemon's rotation loop);
// it runs rotations one after another.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/random.h"
#include "core/status.h"
#include "secrets/secret_store.h"

namespace moatless::secrets {

inline constexpr std::string_view kCreateSecret = kCreateStep;
inline constexpr std::string_view kSetSecret = "setSecret";
inline constexpr std::string_view kTestSecret = "testSecret";
inline constexpr std::string_view kFinishSecret = "finishSecret";
inline constexpr std::int64_t kMaxRotationAttempts = 5;

// The rotation function a built-in rotation names instead of a Lambda ARN: single-user password
// rotation of a PostgreSQL role (postgres_rotation.h).
inline constexpr std::string_view kPostgresRotationArn = "moatless:rotation:postgresql-single-user";

struct RotationEvent {
  std::string secret_arn;
  std::string token;
  std::string step;
};

// Runs one step on the rotation function `rotation_arn` names (a function's ARN, or a built-in
// rotation). An error is the step's failure, with a message that says why (never a value).
using RunRotationStep =
    std::function<core::Status(const std::string& rotation_arn, const RotationEvent& event)>;

// The next time a schedule fires after `after_ms` (unix ms); InvalidParameterException for a
// schedule that is malformed or fires more often than every 4 hours.
core::Result<std::int64_t> NextRotation(const RotationRules& rules, std::int64_t after_ms);
// Checks a schedule without computing it (RotateSecret's input).
core::Status ValidateRotationRules(const RotationRules& rules);

class Rotator {
 public:
  struct Options {
    // Waits before attempt n+1 after n failures: retry_delay * 2^(n-1), at most 1 hour.
    std::chrono::milliseconds retry_delay{std::chrono::minutes(1)};
    // Called after every failed step (never with a secret value): the alert event.
    std::function<void(const std::string& secret_arn, const std::string& step,
                       const core::Status& error)>
        on_failure;
    // Called after every step that ran, failed or not: the audit trail of rotation steps.
    std::function<void(const RotationEvent& event, const core::Status& outcome)> on_step;
  };
  // `store`, `clock`, `random` and the step runner must outlive the rotator.
  Rotator(SecretStore& store, const core::Clock& clock, core::Random& random,
          RunRotationStep run_step, Options options);

  // RotateSecret: sets the rotation function (if given) and the schedule (if given), enables
  // rotation, and (rotate_immediately) starts a rotation to version `token` (a new UUID when
  // empty) that RunDue will carry out. InvalidRequestException if no rotation function is set,
  // or if a rotation is already in progress to another token. Returns the token.
  core::Result<std::string> Rotate(const std::string& arn,
                                   const std::optional<std::string>& rotation_arn,
                                   const std::optional<RotationRules>& rules,
                                   bool rotate_immediately, std::string token);
  // CancelRotateSecret: disables rotation and abandons a rotation in progress (AWSPENDING is
  // removed from its version); returns the abandoned token ("" if none).
  core::Result<std::string> Cancel(const std::string& arn);

  // Carries out every rotation that is due: those in progress whose next attempt has come, and
  // those whose schedule has fired. Returns how many rotations completed. `stopping` (optional)
  // is asked before every step: once it says true, RunDue returns, and the rotation it was in
  // resumes at its next step on the next call (after a restart, say).
  core::Result<std::size_t> RunDue(const std::function<bool()>& stopping = {});

 private:
  // Runs the steps of the rotation in progress on `arn` until it finishes, a step fails, or
  // `stopping` says true (kAborted).
  core::Status Continue(const std::string& arn, const std::function<bool()>& stopping);

  SecretStore& store_;
  const core::Clock& clock_;
  core::Random& random_;
  RunRotationStep run_step_;
  Options options_;
};

}  // namespace moatless::secrets
