// SecretStore: the secrets of one account and region, with the semantics of AWS Secrets Manager —
// names and ARNs (NAME-XXXXXX, six random characters), versions whose ids are the callers'
// idempotency tokens, staging labels (AWSCURRENT, AWSPREVIOUS, AWSPENDING and custom ones, each on
// at most one version of its secret), scheduled deletion with a recovery window, tags, resource
// policies — stored in the platform's store and sealed by the MasterKeyring (keyring.h).
//
// Every operation is one store transaction (durable writes), so a crash leaves either all of it or
// none of it: a version is never visible without its value, a label never points nowhere, and a
// write acknowledged to a caller survives. Authorisation and auditing are the caller's (the
// Secrets Manager API in services/secrets_api.h): this class trusts that the caller may do what
// it asks.
//
// Methods that take an `arn` accept any secret id Describe accepts (callers pass the ARN that
// Describe returned, which they authorised on).
//
// Errors are Status values carrying the AWS error type the API returns
// (ResourceNotFoundException, InvalidParameterException, InvalidRequestException,
// ResourceExistsException, LimitExceededException, InvalidNextTokenException, DecryptionFailure).
// Messages never contain a secret value.
//
// Thread-safe: any number of threads may call any method at once (the store serialises writers).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "secrets/keyring.h"
#include "store/database.h"

namespace moatless::secrets {

inline constexpr std::string_view kCurrent = "AWSCURRENT";
inline constexpr std::string_view kPrevious = "AWSPREVIOUS";
inline constexpr std::string_view kPending = "AWSPENDING";
// The first step of a rotation (rotation.h has all four).
inline constexpr std::string_view kCreateStep = "createSecret";

// Limits of the AWS service model (and of AWS's quotas where the model has none).
inline constexpr std::size_t kMaxNameBytes = 512;
inline constexpr std::size_t kMaxValueBytes = 65536;
inline constexpr std::size_t kMaxDescriptionBytes = 2048;
inline constexpr std::size_t kMaxLabelsPerVersion = 20;
inline constexpr std::size_t kMaxTags = 50;
inline constexpr std::size_t kMaxResourcePolicyBytes = 20480;
// Versions without a label are deleted, oldest first, beyond this many.
inline constexpr std::size_t kMaxDeprecatedVersions = 100;

struct Tag {
  std::string key;
  std::string value;
  friend bool operator==(const Tag&, const Tag&) = default;
};

struct RotationRules {
  std::int64_t automatically_after_days = 0;  // 0: not set
  std::string schedule_expression;            // "rate(30 days)", "cron(...)"; empty: not set
  std::string duration;                       // the rotation window, "3h"; empty: not set
  friend bool operator==(const RotationRules&, const RotationRules&) = default;
};

// A rotation in progress (or the last one that failed), persisted with the secret.
struct RotationState {
  std::string token;      // the version being rotated to (AWSPENDING); empty: none
  std::string next_step;  // "createSecret", "setSecret", "testSecret", "finishSecret"
  std::int64_t attempts = 0;
  std::string last_error;  // why the last attempt failed; empty: it did not
  std::int64_t last_error_ms = 0;
  std::string last_error_step;  // the step that failed
  friend bool operator==(const RotationState&, const RotationState&) = default;
};

// One secret's metadata: what DescribeSecret returns.
struct SecretInfo {
  std::string arn;
  std::string name;
  std::string description;
  std::string kms_key_id;
  std::vector<Tag> tags;
  std::string resource_policy;  // empty: none
  std::int64_t created_ms = 0;
  std::int64_t changed_ms = 0;
  std::int64_t accessed_ms = 0;  // midnight UTC of the last day it was read; 0: never
  std::int64_t deleted_ms = 0;   // when deletion was scheduled; 0: not scheduled
  std::int64_t purge_ms = 0;     // when it will be deleted for good; 0: not scheduled
  bool rotation_enabled = false;
  std::string rotation_lambda_arn;
  RotationRules rotation_rules;
  std::int64_t last_rotated_ms = 0;
  std::int64_t next_rotation_ms = 0;
  RotationState rotation;
  std::int64_t rotation_due_ms = 0;  // when the rotator acts next; 0: not scheduled
  // Version id -> its labels, for the versions that have at least one.
  std::map<std::string, std::vector<std::string>> version_stages;

  bool deleted() const { return deleted_ms != 0; }
  // The version a label is on, or nullptr.
  const std::string* VersionWith(std::string_view label) const;
};

// A secret an app's manifest declares (manifest/deployer.h applies it).
struct SecretDeclaration {
  std::string name;  // STAGE/APP/NAME
  std::string description;
  std::vector<Tag> tags;
  std::string rotation_function;  // a function ARN; empty: no rotation
  RotationRules rotation_rules;
  std::int64_t next_rotation_ms = 0;  // when the first scheduled rotation is due; 0: none
  std::string resource_policy;        // empty: the secret's policy is left as it is
};

// Six random characters of A-Za-z0-9: what follows a secret's name in its ARN.
std::string NewArnSuffix(core::Random& random);

// A value to write: a SecretString or a SecretBinary.
struct NewValue {
  ValueKind kind = ValueKind::kNone;  // kNone: no value
  core::SecretBytes bytes;
};

struct SecretValue {
  std::string arn;
  std::string name;
  std::string version_id;
  std::vector<std::string> stages;
  std::int64_t created_ms = 0;
  ValueKind kind = ValueKind::kString;
  core::SecretBytes value;
};

// A read of a value prepared in one transaction, not yet decrypted: the secret (to decide about
// access on), and either what to decrypt or why there is nothing to read.
struct PreparedRead {
  SecretInfo secret;
  core::Status error;  // set: the value cannot be read (deleted, no such version or label)
  SecretValue value;   // everything but the bytes
  SealedValue sealed;
  std::int64_t version_accessed_ms = 0;
};

struct VersionInfo {
  std::string version_id;
  std::vector<std::string> stages;
  std::int64_t created_ms = 0;
  std::int64_t accessed_ms = 0;
};

struct CreateRequest {
  std::string name;
  std::string description;
  std::string kms_key_id;
  std::vector<Tag> tags;
  NewValue value;
  std::string token;  // the first version's id; generated when empty
  // The six characters after the name in the ARN (A-Za-z0-9); drawn at random when empty.
  std::string arn_suffix;
};

// What a write produced: the secret, and the version it wrote (empty when none).
struct WriteResult {
  std::string arn;
  std::string name;
  std::string version_id;
  std::vector<std::string> stages;
};

struct ListFilter {
  std::string key;                  // name, description, tag-key, tag-value, primary-region,
                                    // owning-service, all
  std::vector<std::string> values;  // prefixes; a leading '!' negates
};

struct ListRequest {
  bool include_planned_deletion = false;
  std::vector<ListFilter> filters;
  std::string sort_by = "created-date";  // name, created-date, last-accessed-date,
                                         // last-changed-date
  bool ascending = false;                // AWS lists newest first unless asked otherwise
  std::size_t max_results = 100;
  std::string next_token;
};

struct ListPage {
  std::vector<SecretInfo> secrets;
  std::string next_token;  // empty: no more
};

class SecretStore {
 public:
  struct Options {
    std::string region;
    std::string account;
  };
  // `db` (migrated to the platform schema), `env` and `keyring` must outlive the store.
  SecretStore(store::Database& db, core::Env& env, const MasterKeyring& keyring, Options options);

  const std::string& region() const { return options_.region; }
  const std::string& account() const { return options_.account; }
  // "arn:aws:secretsmanager:REGION:ACCOUNT:secret:" — the ARN of a secret is this, its name, '-'
  // and six random characters.
  std::string ArnPrefix() const;

  // Finds a secret by name, full ARN, or ARN without its random suffix. Secrets scheduled for
  // deletion are found (and say so in deleted()). ResourceNotFoundException if there is none.
  core::Result<SecretInfo> Describe(std::string_view secret_id) const;

  // CreateSecret. Repeating a request with the same token and value returns what the first one did.
  core::Result<WriteResult> Create(CreateRequest request);

  // PutSecretValue (and UpdateSecret with a value). `stages` empty: AWSCURRENT, which moves from
  // the version that had it, and that version becomes AWSPREVIOUS. Otherwise exactly the given
  // labels, moved from wherever they were. A repeated token with the same value returns the
  // existing version; with another value, ResourceExistsException.
  core::Result<WriteResult> PutValue(const std::string& arn, NewValue value, std::string token,
                                     std::vector<std::string> stages);

  // GetSecretValue: by version id, by label (AWSCURRENT when neither is given), or both if they
  // name the same version. Records the day of access. PrepareRead then FinishRead.
  core::Result<SecretValue> GetValue(const std::string& arn, std::string_view version_id,
                                     std::string_view stage);
  // GetValue in two halves, so that the API authorises on what one transaction read before any
  // decryption: PrepareRead fails only when the secret does not exist (or the store fails);
  // FinishRead returns the prepared error, or decrypts and records the day of access.
  core::Result<PreparedRead> PrepareRead(std::string_view secret_id, std::string_view version_id,
                                         std::string_view stage) const;
  core::Result<SecretValue> FinishRead(PreparedRead read);

  // UpdateSecret's metadata part: the fields given are replaced.
  core::Status UpdateMetadata(const std::string& arn, const std::optional<std::string>& description,
                              const std::optional<std::string>& kms_key_id);

  // ListSecretVersionIds: newest first; without include_deprecated only versions with a label.
  core::Result<std::vector<VersionInfo>> ListVersions(const std::string& arn,
                                                      bool include_deprecated) const;

  // UpdateSecretVersionStage.
  core::Status MoveLabel(const std::string& arn, const std::string& label,
                         const std::string& remove_from, const std::string& move_to);

  // DeleteSecret with a recovery window of 7 to 30 days: the secret stays, unreadable, until then.
  core::Result<SecretInfo> ScheduleDeletion(const std::string& arn, std::int64_t window_days);
  // DeleteSecret with ForceDeleteWithoutRecovery: gone now, with every version. Returns when
  // (unix milliseconds).
  core::Result<std::int64_t> DeleteNow(const std::string& arn);
  // RestoreSecret: cancels a scheduled deletion (nothing to do if none is scheduled).
  core::Status Restore(const std::string& arn);
  // Deletes for good the secrets whose recovery window has ended; returns their ARNs.
  core::Result<std::vector<std::string>> PurgeDue();

  core::Status TagResource(const std::string& arn, const std::vector<Tag>& tags);
  core::Status UntagResource(const std::string& arn, const std::vector<std::string>& keys);

  // Stores the resource policy as given (the caller validated it); empty deletes it.
  core::Status SetResourcePolicy(const std::string& arn, const std::string& policy);

  // ListSecrets: filtered, sorted, a page at a time.
  core::Result<ListPage> List(const ListRequest& request) const;

  // How many master key versions the store has recorded (0 for a new installation): whether a
  // keyring without versions may create its first one (MasterKeyring::Open's create_first).
  static core::Result<std::int64_t> RecordedMasterKeys(store::Database& db);
  // Records the keyring's versions beside the secrets (with their check values) and checks that
  // the keyring is the one the secrets were sealed with: kFailedPrecondition, naming the version,
  // if a key file was replaced by another key, or if versions are wrapped under a master key
  // version the keyring does not have. Call once before serving.
  core::Status AdoptKeyring();
  // Marks the master key versions older than the current one that no version is wrapped under
  // any more as retired; returns them (their key files may then be removed once no backup needs
  // them).
  core::Result<std::vector<std::int64_t>> RetireUnusedKeys();

  // Inside the caller's transaction (a deployment): creates the declared secret without a value if
  // it does not exist, otherwise updates its description, tags and rotation settings (rotation
  // off when the declaration has no function; a rotation in progress is left to finish) and, when
  // the declaration has one, its resource policy (the caller reviewed it). Never
  // writes a value. InvalidRequestException for a secret scheduled for deletion. Returns its ARN.
  core::Result<std::string> DeclareIn(store::Transaction& tx, const SecretDeclaration& secret);

  // --- rotation (rotation.h drives these) ---------------------------------------------------

  // RotateSecret's bookkeeping, in one transaction: sets the rotation function and rules (those
  // given), enables rotation, sets NextRotationDate (next_rotation_ms, 0: none) and, with a
  // token, begins a rotation to it: version `token` is created without a value and labelled
  // AWSPENDING, and the rotation state says createSecret is next. InvalidRequestException if a
  // rotation to another token is in progress; the same token again changes nothing.
  core::Status ConfigureRotation(const std::string& arn, const std::optional<std::string>& lambda,
                                 const std::optional<RotationRules>& rules,
                                 std::int64_t next_rotation_ms, const std::string& token);
  // Begins a rotation the rotator starts on its own (a schedule fired, or a retry).
  core::Status BeginRotation(const std::string& arn, const std::string& token);
  // Records that the rotation in progress reached `state.next_step`.
  core::Status SaveRotationState(const std::string& arn, const RotationState& state);
  // Ends the rotation in progress. Succeeded: LastRotatedDate = now, NextRotationDate =
  // next_rotation_ms, the state cleared. Failed: AWSPENDING is removed from the token's version
  // (which is deleted if it holds no value), `failed` (attempts, last error) is kept, and the
  // rotator acts again at retry_at_ms (0: at the next scheduled rotation).
  core::Status EndRotation(const std::string& arn, bool succeeded, const RotationState& failed,
                           std::int64_t next_rotation_ms, std::int64_t retry_at_ms);
  // CancelRotateSecret: disables rotation and abandons a rotation in progress as EndRotation
  // does on failure (without counting an attempt). Returns the abandoned token ("" if none).
  core::Result<std::string> DisableRotation(const std::string& arn);
  // The secrets (not scheduled for deletion) the rotator has to act on now, soonest first.
  core::Result<std::vector<std::string>> DueRotations(std::size_t limit) const;

  // Re-wraps the data keys of up to `batch` versions that are not wrapped under the keyring's
  // current master key version; returns how many it re-wrapped (0: all are). Each batch is one
  // transaction, so readers are never blocked for long and a crash loses at most the batch.
  core::Result<std::size_t> RewrapBatch(std::size_t batch);
  // How many versions are wrapped under each master key version.
  core::Result<std::map<std::int64_t, std::int64_t>> CountByKeyVersion() const;

  // Checks a name: 1..512 of A-Za-z0-9/_+=.@- (InvalidParameterException otherwise).
  static core::Status ValidateName(std::string_view name);
  // Checks a staging label: 1..256 characters.
  static core::Status ValidateLabel(std::string_view label);

 private:
  core::Result<SecretInfo> Load(store::Transaction& tx, std::string_view secret_id) const;
  core::Result<SecretInfo> LoadForChange(store::Transaction& tx, const std::string& arn) const;
  // Writes version_id with `value` sealed under a new data key (creating it, or filling the
  // value-less version a rotation made).
  core::Status InsertVersion(store::Transaction& tx, const SecretInfo& secret,
                             const std::string& version_id, const NewValue& value,
                             std::int64_t now_ms);
  // Whether version_id's stored value (`kind`, `sealed`) is `value`; a version without a value
  // holds none.
  core::Result<bool> Holds(const std::string& arn, const std::string& version_id, ValueKind kind,
                           const SealedValue& sealed, const NewValue& value) const;
  // Puts `labels` on version_id, taking them from other versions; AWSCURRENT moving leaves
  // AWSPREVIOUS on the version it left.
  core::Status AttachLabels(store::Transaction& tx, SecretInfo& secret,
                            const std::string& version_id, const std::vector<std::string>& labels);
  core::Status DropDeprecatedVersions(store::Transaction& tx, const std::string& arn);
  core::Status Touch(store::Transaction& tx, const std::string& arn, std::int64_t now_ms);
  // Creates version `token` without a value (if it does not exist) and labels it AWSPENDING.
  core::Status PendingVersion(store::Transaction& tx, SecretInfo& secret, const std::string& token,
                              std::int64_t now_ms);
  // Removes AWSPENDING from `token`'s version and deletes that version if it holds no value.
  core::Status DropPending(store::Transaction& tx, SecretInfo& secret, const std::string& token);
  std::int64_t NowMs() const;

  store::Database& db_;
  core::Env& env_;
  const MasterKeyring& keyring_;
  const Options options_;
};

}  // namespace moatless::secrets
