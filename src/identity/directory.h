// Directory: the platform's principals — IAM-style users and roles — with their named identity
// policies, permissions boundaries, tags, role trust policies, and users' long-term access keys.
//
// Everything lives in the store (migration 2 of store/schema.cc), in durable transactions. ARNs
// have the AWS shape with the configured account id: arn:aws:iam::<account>:user/<name>,
// arn:aws:iam::<account>:role/<name>; ids are AIDA.../AROA... like AWS's unique ids. Policy
// documents are validated with the policy engine before they are stored (identity type for
// identity policies and boundaries, trust type for trust policies), so what is stored always
// compiles.
//
// Access keys: AKIA... ids with 40-character secrets. The secret is returned once, by
// CreateAccessKey, and stored only sealed (core::AeadKey, XChaCha20-Poly1305) under a key derived
// from the master key, with the key id as associated data: the server must recover it to verify
// SigV4 signatures (HMAC), so it cannot be hashed, and a copy of the database alone reveals
// nothing. A user holds at most two keys. ResolveAccessKey is the SigV4 lookup; an unknown id is
// kUnauthenticated / InvalidClientTokenId, as AWS says.
//
// Thread-safe: all state is in the store; methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/aead.h"
#include "core/env.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "store/database.h"

namespace moatless::identity {

// kRoot: the account root user (arn:aws:iam::<account>:root), created once by `moatless init`.
enum class PrincipalType { kRoot, kUser, kRole };

struct NamedPolicy {
  std::string name;
  std::string document;  // IAM policy JSON, validated
  friend bool operator==(const NamedPolicy&, const NamedPolicy&) = default;
};

// A customer-managed policy: a named, standalone document that can be attached to users and
// roles or serve as their permissions boundary.
struct ManagedPolicy {
  std::string name;
  std::string arn;  // arn:aws:iam::<account>:policy/<name>
  std::string id;   // ANPA...
  std::string document;
  std::string description;
  std::string created_at;
  std::string updated_at;
  std::int64_t attachment_count = 0;  // users and roles it is attached to
};

struct Principal {
  PrincipalType type = PrincipalType::kUser;
  std::string name;
  std::string arn;
  std::string id;  // AIDA... / AROA...
  std::map<std::string, std::string> tags;
  // The effective permissions boundary document: the managed policy named by boundary_arn, or an
  // inline document.
  std::optional<std::string> boundary;
  std::optional<std::string> boundary_arn;
  std::optional<std::string> trust_policy;  // roles only
  std::int64_t max_session_seconds = 3600;  // roles: the longest session AssumeRole may grant
  std::string created_at;                   // RFC 3339
  std::vector<NamedPolicy> policies;        // inline identity policies, by name
  std::vector<ManagedPolicy> attached;      // attached managed policies, by name
};

enum class KeyStatus { kActive, kInactive };

// A role as a deployment wants it to be (Directory::ApplyRole).
struct RoleDefinition {
  std::string name;
  std::string trust_policy;
  std::vector<NamedPolicy> policies;  // replaces every inline policy of the role
  std::string boundary;               // the permissions boundary document (required)
  // Marks the role as the owner's; an existing role without exactly these tags is not replaced.
  std::map<std::string, std::string> tags;
};

struct AccessKeyInfo {
  std::string id;        // AKIA...
  std::string user_arn;  // the owning user's (or the root's) ARN
  KeyStatus status = KeyStatus::kActive;
  std::string created_at;
  std::optional<std::string> last_used_at;
  std::optional<std::string> last_used_service;
};

struct AccessKeyWithSecret {
  AccessKeyInfo info;
  core::SecretBytes secret;
};

struct DirectoryOptions {
  std::string account_id = "000000000000";
  std::int64_t max_keys_per_user = 2;
};

class Directory {
 public:
  // master_key: the platform master key; the directory derives its own subkey from it.
  Directory(store::Database& db, core::Env& env, const core::AeadKey& master_key,
            DirectoryOptions options = {});

  const std::string& account_id() const { return options_.account_id; }
  std::string UserArn(std::string_view name) const;
  std::string RoleArn(std::string_view name) const;

  core::Result<Principal> CreateUser(std::string_view name,
                                     std::map<std::string, std::string> tags = {});
  // trust_policy: who may assume the role (a trust policy document); max_session_seconds in
  // [900, 43200] as in IAM.
  core::Result<Principal> CreateRole(std::string_view name, std::string_view trust_policy,
                                     std::int64_t max_session_seconds = 3600,
                                     std::map<std::string, std::string> tags = {});
  core::Result<Principal> Get(PrincipalType type, std::string_view name) const;
  core::Result<Principal> GetByArn(std::string_view arn) const;
  core::Result<std::vector<Principal>> List(PrincipalType type) const;
  // Deletes the principal with its policies and keys.
  core::Status Delete(PrincipalType type, std::string_view name);

  // Adds or replaces an identity policy of a principal.
  core::Status PutPolicy(PrincipalType type, std::string_view principal, std::string_view name,
                         std::string_view document);
  core::Status DeletePolicy(PrincipalType type, std::string_view principal, std::string_view name);
  // Sets (document) or removes (nullopt) the permissions boundary.
  core::Status SetBoundary(PrincipalType type, std::string_view principal,
                           std::optional<std::string_view> document);
  // Makes a managed policy the permissions boundary (nullopt removes any boundary).
  core::Status SetBoundaryPolicy(PrincipalType type, std::string_view principal,
                                 std::optional<std::string_view> policy_arn);

  // Customer-managed policies. Delete fails with DeleteConflict while the policy is attached or
  // serves as a boundary. A principal holds at most 10 attached policies (IAM's quota).
  std::string PolicyArn(std::string_view name) const;
  core::Result<ManagedPolicy> CreateManagedPolicy(std::string_view name, std::string_view document,
                                                  std::string_view description = {});
  core::Result<ManagedPolicy> GetManagedPolicy(std::string_view arn) const;
  core::Result<std::vector<ManagedPolicy>> ListManagedPolicies() const;
  core::Status DeleteManagedPolicy(std::string_view arn);
  core::Status AttachPolicy(PrincipalType type, std::string_view principal,
                            std::string_view policy_arn);
  core::Status DetachPolicy(PrincipalType type, std::string_view principal,
                            std::string_view policy_arn);

  // Inside a caller's write transaction, so that roles change together with what uses them (an
  // app deployment): creates the role, or brings an existing one to the definition — trust
  // policy, exactly these inline policies, this boundary (managed policy attachments are left
  // alone). Every document is validated first. An existing role whose tags differ from
  // definition.tags belongs to someone else: kAlreadyExists (EntityAlreadyExists), nothing
  // changed. Call NoteWrite() once the transaction has committed (or failed).
  core::Status ApplyRole(store::Transaction& tx, const RoleDefinition& definition);
  // Deletes a role inside a caller's write transaction; a role that does not exist is not an
  // error. Call NoteWrite() afterwards.
  core::Status DeleteRoleIn(store::Transaction& tx, std::string_view name);
  // Moves generation() on after a transaction of ApplyRole / DeleteRoleIn.
  void NoteWrite() { generation_.fetch_add(1, std::memory_order_acq_rel); }

  // The account root: created on first call, returned as is afterwards.
  core::Result<Principal> EnsureRoot();
  std::string RootArn() const;

  // The secret is in the result only; it cannot be read back later.
  core::Result<AccessKeyWithSecret> CreateAccessKey(std::string_view user);
  core::Result<AccessKeyWithSecret> CreateRootAccessKey();
  core::Result<std::vector<AccessKeyInfo>> ListAccessKeys(std::string_view user) const;
  core::Result<std::vector<AccessKeyInfo>> ListRootAccessKeys() const;
  core::Status SetAccessKeyStatus(std::string_view user, std::string_view key_id, KeyStatus status);
  core::Status DeleteAccessKey(std::string_view user, std::string_view key_id);
  core::Status DeleteRootAccessKey(std::string_view key_id);

  // Incremented after every change of principals, policies or keys (not by RecordKeyUse). A
  // reader that took generation() before reading may cache what it read until the number moves.
  // Valid as long as this Directory is the store's only writer (the data directory's lock
  // guarantees it for the embedded store).
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // For request authentication: the key (active or not: the caller decides) and its secret.
  core::Result<AccessKeyWithSecret> ResolveAccessKey(std::string_view key_id) const;
  // Records that a key was used just now, for which service (last-used tracking).
  core::Status RecordKeyUse(std::string_view key_id, std::string_view service);

 private:
  core::Result<Principal> Create(PrincipalType type, std::string_view name,
                                 std::optional<std::string_view> trust_policy,
                                 std::int64_t max_session_seconds,
                                 std::map<std::string, std::string> tags);
  std::string ArnOf(PrincipalType type, std::string_view name) const;
  core::Result<AccessKeyWithSecret> CreateAccessKeyFor(const std::string& arn,
                                                       std::string_view label);
  core::Result<std::vector<AccessKeyInfo>> ListKeysFor(const std::string& arn,
                                                       std::string_view label) const;
  core::Status DeleteKeyFor(const std::string& arn, std::string_view key_id,
                            std::string_view label);
  std::string Now() const;
  // A read-write transaction, then generation_ moves on (whatever the outcome).
  core::Status Write(const store::TransactionFn& fn);
  template <typename F>
  auto WriteValue(F&& fn) {
    auto result = store::TransactValue(db_, {}, std::forward<F>(fn));
    generation_.fetch_add(1, std::memory_order_acq_rel);
    return result;
  }

  store::Database& db_;
  core::Env& env_;
  core::AeadKey secret_key_;  // seals access-key secrets
  DirectoryOptions options_;
  std::atomic<std::uint64_t> generation_{0};
};

std::string_view PrincipalTypeName(PrincipalType type);  // "root" / "user" / "role"
std::string_view KeyStatusName(KeyStatus status);        // "Active" / "Inactive"
// An AWS account id: exactly 12 digits.
core::Status ValidateAccountId(std::string_view account_id);
// IAM's rule for user and role names: 1-64 of [A-Za-z0-9+=,.@_-].
core::Status ValidatePrincipalName(std::string_view name);

}  // namespace moatless::identity
