// SecretsApi: the AWS Secrets Manager API (JSON 1.1, `X-Amz-Target: secretsmanager.<Op>`, SigV4
// signing name `secretsmanager`) over a secrets::SecretStore, as the AWS SDKs and CLI call it.
//
// The AwsEndpoint authenticates a request, then hands it here with an AccessScope through which
// every operation authorises what it touches and records what it did: the caller's identity
// policies, boundary and session policy together with the secret's own resource policy decide
// each `secretsmanager:<Op>` on the secret's ARN (with the condition keys
// secretsmanager:ResourceTag/<k>, secretsmanager:VersionId, secretsmanager:VersionStage,
// secretsmanager:SecretId, secretsmanager:Name, secretsmanager:Description,
// secretsmanager:KmsKeyId, secretsmanager:BlockPublicPolicy,
// secretsmanager:RecoveryWindowInDays, secretsmanager:ForceDeleteWithoutRecovery,
// aws:RequestTag/<k>, aws:TagKeys and aws:ResourceTag/<k>). A secret that does not exist is
// authorised on the ARN (or name) the caller gave, so a caller without access cannot tell
// whether a secret exists. Operations that change a secret have their allowed decision durably
// recorded before they run; every operation's outcome is recorded with the secret's ARN and, for
// values, the version id and staging labels; a read's value is released only once its record is
// durable (the endpoint waits). Secret values never reach a record, a log line or an error.
//
// Input is checked against the limits of the AWS service model (ValidationException,
// SerializationException) before anything else.
//
// RotateSecret also needs lambda:InvokeFunction on the rotation function it names (the platform
// will invoke that function with the secret), as AWS requires; the built-in rotations
// (secrets::kPostgresRotationArn) need only the secretsmanager permission. DescribeSecret adds,
// beside AWS's members, "RotationInProgress" {VersionId, NextStep} and "RotationFailure" {Step,
// Message, Date, Attempts} (SDKs ignore members they do not know).
//
// One operation is moatless's own: `secretsmanager.RotateMasterKey` (`moatless secrets
// rotate-master-key`), authorised as moatless:RotateSecretsMasterKey on
// arn:aws:moatless:REGION:ACCOUNT:secrets-master-key. It adds a master key version and re-wraps
// every data key under it in batches (reads and writes go on meanwhile; no value is decrypted to
// disk), then retires the versions nothing is wrapped under any more.
//
// Thread-safe: Handle may run on many threads.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "http/types.h"
#include "observe/audit_log.h"
#include "secrets/rotation.h"
#include "secrets/secret_store.h"
#include "services/json_protocol.h"

namespace moatless::services {

// What an operation needs from the endpoint that authenticated its request.
class AccessScope {
 public:
  struct Target {
    std::string action;           // "secretsmanager:GetSecretValue"
    std::string resource;         // the secret's ARN, or "*"
    std::string resource_policy;  // the secret's resource policy; empty: none
    std::map<std::string, std::string> resource_tags;
    std::vector<std::pair<std::string, std::string>> context;  // single-valued condition keys
    std::vector<std::pair<std::string, std::vector<std::string>>> multi_context;
  };
  virtual ~AccessScope() = default;
  virtual const std::string& caller_arn() const = 0;
  // Evaluates the caller's policies and the target's resource policy. A denial is recorded and
  // returned as AccessDeniedException. When allowed: with `record_allowed` the decision is
  // recorded and durable before this returns (the operation changes state); without, nothing is
  // recorded yet and the deciding statements are returned for the Record that follows.
  virtual core::Result<std::string> Authorise(const Target& target, bool record_allowed) = 0;
  // Records what an operation did or why it failed. An error means the result must not be
  // released (it is the error to answer with).
  virtual core::Status Record(const Target& target, observe::AuditOutcome outcome,
                              std::string reason, std::map<std::string, std::string> fields) = 0;
};

class SecretsApi {
 public:
  struct Deps {
    secrets::SecretStore& store;
    core::Random& random;
    // Null: RotateSecret and CancelRotateSecret are refused (InvalidRequestException).
    secrets::Rotator* rotator = nullptr;
    // Called when a rotation was started, so that the rotation worker runs it now.
    std::function<void()> rotation_started;
    // The keyring the store seals with; null: RotateMasterKey is refused.
    secrets::MasterKeyring* keyring = nullptr;
  };
  // What Deps names must outlive the API.
  explicit SecretsApi(Deps deps);

  // Runs one decoded request (its prefix is "secretsmanager").
  http::Response Handle(const http::Request& request, const http::RequestContext& context,
                        const JsonRequest& call, AccessScope& scope);

 private:
  class Call;
  Deps deps_;
  secrets::SecretStore& store_;
  core::Random& random_;
};

}  // namespace moatless::services
