#include "identity/directory.h"

#include <sodium.h>

#include <boost/json.hpp>
#include <utility>

#include "core/clock.h"
#include "core/ids.h"
#include "policy/parser.h"

namespace moatless::identity {
namespace {

constexpr std::string_view kSecretPurpose = "moatless.identity.access-key-secret.v1";
constexpr std::size_t kSecretRandomBytes = 30;  // 40 base64 characters, like AWS's secrets

std::string TagsToJson(const std::map<std::string, std::string>& tags) {
  boost::json::object out;
  for (const auto& [k, v] : tags) out[k] = v;
  return boost::json::serialize(out);
}

core::Result<std::map<std::string, std::string>> TagsFromJson(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return core::InternalError("stored tags are not a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& [k, value] : v.as_object()) {
    if (!value.is_string()) return core::InternalError("a stored tag value is not a string");
    out.emplace(std::string(k), std::string(value.as_string()));
  }
  return out;
}

core::Status ValidateTags(const std::map<std::string, std::string>& tags) {
  if (tags.size() > 50) return core::InvalidArgumentError("at most 50 tags are allowed");
  for (const auto& [k, v] : tags) {
    if (k.empty() || k.size() > 128) {
      return core::InvalidArgumentError("a tag key must be 1-128 characters");
    }
    if (v.size() > 256)
      return core::InvalidArgumentError("tag '" + k + "': value over 256 characters");
    if (k.starts_with("aws:"))
      return core::InvalidArgumentError("tag keys may not start with 'aws:'");
  }
  return core::Status::Ok();
}

core::Status ValidateDocument(std::string_view document, policy::PolicyType type,
                              std::string_view what) {
  policy::ParseOptions options;
  options.type = type;
  options.max_document_bytes = 10 * 1024;  // IAM's largest (role policy) quota
  auto parsed = policy::ParsePolicy(document, options);
  if (!parsed.ok()) return parsed.status().Annotate(what);
  return core::Status::Ok();
}

constexpr std::string_view kPolicyColumns =
    "m.arn AS arn, m.name AS name, m.id AS id, m.document AS document, "
    "m.description AS description, m.created_at AS created_at, m.updated_at AS updated_at";

core::Result<ManagedPolicy> ReadManagedPolicy(store::Transaction& tx, const store::Row& row) {
  ManagedPolicy p;
  ASSIGN_OR_RETURN(p.arn, row.GetText("arn"));
  ASSIGN_OR_RETURN(p.name, row.GetText("name"));
  ASSIGN_OR_RETURN(p.id, row.GetText("id"));
  ASSIGN_OR_RETURN(p.document, row.GetText("document"));
  ASSIGN_OR_RETURN(p.description, row.GetText("description"));
  ASSIGN_OR_RETURN(p.created_at, row.GetText("created_at"));
  ASSIGN_OR_RETURN(p.updated_at, row.GetText("updated_at"));
  ASSIGN_OR_RETURN(store::Row n, tx.QueryOne("SELECT COUNT(*) AS n FROM policy_attachments WHERE "
                                             "policy_arn = ?",
                                             {p.arn}));
  ASSIGN_OR_RETURN(p.attachment_count, n.GetInt("n"));
  return p;
}

core::Result<Principal> ReadPrincipal(store::Transaction& tx, const store::Row& row) {
  Principal p;
  ASSIGN_OR_RETURN(const std::string kind, row.GetText("kind"));
  p.type = kind == "role"   ? PrincipalType::kRole
           : kind == "root" ? PrincipalType::kRoot
                            : PrincipalType::kUser;
  ASSIGN_OR_RETURN(p.name, row.GetText("name"));
  ASSIGN_OR_RETURN(p.arn, row.GetText("arn"));
  ASSIGN_OR_RETURN(p.id, row.GetText("id"));
  ASSIGN_OR_RETURN(const std::string tags, row.GetText("tags"));
  ASSIGN_OR_RETURN(p.tags, TagsFromJson(tags));
  ASSIGN_OR_RETURN(p.boundary, row.Get<std::optional<std::string>>("boundary"));
  ASSIGN_OR_RETURN(p.boundary_arn, row.Get<std::optional<std::string>>("boundary_arn"));
  ASSIGN_OR_RETURN(p.trust_policy, row.Get<std::optional<std::string>>("trust_policy"));
  ASSIGN_OR_RETURN(p.max_session_seconds, row.GetInt("max_session_seconds"));
  ASSIGN_OR_RETURN(p.created_at, row.GetText("created_at"));
  ASSIGN_OR_RETURN(std::vector<store::Row> policies,
                   tx.Query("SELECT name, document FROM principal_policies WHERE principal_arn = ? "
                            "ORDER BY name",
                            {p.arn}));
  for (const store::Row& r : policies) {
    NamedPolicy np;
    ASSIGN_OR_RETURN(np.name, r.GetText("name"));
    ASSIGN_OR_RETURN(np.document, r.GetText("document"));
    p.policies.push_back(std::move(np));
  }
  ASSIGN_OR_RETURN(
      std::vector<store::Row> attached,
      tx.Query("SELECT " + std::string(kPolicyColumns) +
                   " FROM managed_policies m JOIN policy_attachments a ON a.policy_arn = m.arn "
                   "WHERE a.principal_arn = ? ORDER BY m.name",
               {p.arn}));
  for (const store::Row& r : attached) {
    ASSIGN_OR_RETURN(ManagedPolicy mp, ReadManagedPolicy(tx, r));
    p.attached.push_back(std::move(mp));
  }
  if (p.boundary_arn) {
    ASSIGN_OR_RETURN(
        store::Row b,
        tx.QueryOne("SELECT document FROM managed_policies WHERE arn = ?", {*p.boundary_arn}));
    ASSIGN_OR_RETURN(p.boundary, b.Get<std::optional<std::string>>("document"));
  }
  return p;
}

core::Result<AccessKeyInfo> ReadKeyInfo(const store::Row& row) {
  AccessKeyInfo info;
  ASSIGN_OR_RETURN(info.id, row.GetText("id"));
  ASSIGN_OR_RETURN(info.user_arn, row.GetText("principal_arn"));
  ASSIGN_OR_RETURN(const std::string status, row.GetText("status"));
  info.status = status == "Active" ? KeyStatus::kActive : KeyStatus::kInactive;
  ASSIGN_OR_RETURN(info.created_at, row.GetText("created_at"));
  ASSIGN_OR_RETURN(info.last_used_at, row.Get<std::optional<std::string>>("last_used_at"));
  ASSIGN_OR_RETURN(info.last_used_service,
                   row.Get<std::optional<std::string>>("last_used_service"));
  return info;
}

constexpr std::string_view kPrincipalColumns =
    "kind, name, arn, id, tags, boundary, boundary_arn, trust_policy, max_session_seconds, "
    "created_at";
constexpr std::string_view kKeyColumns =
    "id, principal_arn, sealed_secret, status, created_at, last_used_at, last_used_service";

std::string NotFoundMessage(PrincipalType type, std::string_view name) {
  return std::string(PrincipalTypeName(type)) + " '" + std::string(name) + "' does not exist";
}

}  // namespace

std::string_view PrincipalTypeName(PrincipalType type) {
  switch (type) {
    case PrincipalType::kRoot:
      return "root";
    case PrincipalType::kUser:
      return "user";
    case PrincipalType::kRole:
      return "role";
  }
  return "user";
}

std::string_view KeyStatusName(KeyStatus status) {
  return status == KeyStatus::kActive ? "Active" : "Inactive";
}

core::Status ValidateAccountId(std::string_view account_id) {
  if (account_id.size() != 12 || account_id.find_first_not_of("0123456789") != std::string::npos) {
    return core::InvalidArgumentError("an account id is 12 digits, not \"" +
                                      std::string(account_id.substr(0, 40)) + "\"");
  }
  return core::Status::Ok();
}

core::Status ValidatePrincipalName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return core::InvalidArgumentError("a name must be 1-64 characters");
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("+=,.@_-").find(c) != std::string_view::npos;
    if (!ok) {
      return core::InvalidArgumentError("name '" + std::string(name) +
                                        "' may hold only letters, digits and +=,.@_-");
    }
  }
  return core::Status::Ok();
}

Directory::Directory(store::Database& db, core::Env& env, const core::AeadKey& master_key,
                     DirectoryOptions options)
    : db_(db),
      env_(env),
      secret_key_(master_key.Derive(kSecretPurpose)),
      options_(std::move(options)) {}

std::string Directory::ArnOf(PrincipalType type, std::string_view name) const {
  if (type == PrincipalType::kRoot) return RootArn();
  return "arn:aws:iam::" + options_.account_id + ":" + std::string(PrincipalTypeName(type)) + "/" +
         std::string(name);
}
std::string Directory::UserArn(std::string_view name) const {
  return ArnOf(PrincipalType::kUser, name);
}
std::string Directory::RoleArn(std::string_view name) const {
  return ArnOf(PrincipalType::kRole, name);
}
std::string Directory::RootArn() const { return "arn:aws:iam::" + options_.account_id + ":root"; }
core::Status Directory::Write(const store::TransactionFn& fn) {
  core::Status status = db_.Write(fn);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return status;
}

std::string Directory::Now() const { return core::FormatRfc3339(env_.clock().Now()); }

core::Result<Principal> Directory::CreateUser(std::string_view name,
                                              std::map<std::string, std::string> tags) {
  return Create(PrincipalType::kUser, name, std::nullopt, 3600, std::move(tags));
}

core::Result<Principal> Directory::CreateRole(std::string_view name, std::string_view trust_policy,
                                              std::int64_t max_session_seconds,
                                              std::map<std::string, std::string> tags) {
  if (max_session_seconds < 900 || max_session_seconds > 43200) {
    return core::InvalidArgumentError("a role's maximum session duration must be 900-43200 s");
  }
  RETURN_IF_ERROR(ValidateDocument(trust_policy, policy::PolicyType::kTrust, "trust policy"));
  return Create(PrincipalType::kRole, name, trust_policy, max_session_seconds, std::move(tags));
}

core::Result<Principal> Directory::Create(PrincipalType type, std::string_view name,
                                          std::optional<std::string_view> trust_policy,
                                          std::int64_t max_session_seconds,
                                          std::map<std::string, std::string> tags) {
  RETURN_IF_ERROR(ValidatePrincipalName(name));
  RETURN_IF_ERROR(ValidateTags(tags));
  const std::string arn = ArnOf(type, name);
  const std::string id =
      (type == PrincipalType::kUser ? "AIDA" : "AROA") + core::RandomBase32(env_.random(), 17);
  const std::string created = Now();
  const std::string tags_json = TagsToJson(tags);
  const std::optional<std::string> trust =
      trust_policy ? std::optional<std::string>(std::string(*trust_policy)) : std::nullopt;
  core::Status written = Write([&](store::Transaction& tx) -> core::Status {
    return tx
        .Exec(
            "INSERT INTO principals (kind, name, arn, id, tags, boundary, trust_policy, "
            "max_session_seconds, created_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
            {std::string(PrincipalTypeName(type)), std::string(name), arn, id, tags_json, trust,
             max_session_seconds, created})
        .status();
  });
  if (written.code() == core::StatusCode::kAlreadyExists) {
    return core::AlreadyExistsError(std::string(PrincipalTypeName(type)) + " '" +
                                    std::string(name) + "' already exists")
        .WithAwsType("EntityAlreadyExists");
  }
  RETURN_IF_ERROR(written);
  return Get(type, name);
}

core::Status Directory::ApplyRole(store::Transaction& tx, const RoleDefinition& definition) {
  RETURN_IF_ERROR(ValidatePrincipalName(definition.name));
  RETURN_IF_ERROR(ValidateTags(definition.tags));
  RETURN_IF_ERROR(
      ValidateDocument(definition.trust_policy, policy::PolicyType::kTrust, "trust policy"));
  RETURN_IF_ERROR(
      ValidateDocument(definition.boundary, policy::PolicyType::kBoundary, "permissions boundary"));
  for (const NamedPolicy& p : definition.policies) {
    RETURN_IF_ERROR(ValidatePrincipalName(p.name).Annotate("policy name"));
    RETURN_IF_ERROR(
        ValidateDocument(p.document, policy::PolicyType::kIdentity, "policy '" + p.name + "'"));
  }
  const std::string arn = RoleArn(definition.name);
  const std::string tags = TagsToJson(definition.tags);
  ASSIGN_OR_RETURN(std::optional<store::Row> existing,
                   tx.QueryOptional("SELECT tags FROM principals WHERE arn = ?", {arn}));
  if (existing) {
    ASSIGN_OR_RETURN(const std::string current, existing->GetText("tags"));
    ASSIGN_OR_RETURN(const auto current_tags, TagsFromJson(current));
    if (current_tags != definition.tags) {
      return core::AlreadyExistsError("role '" + definition.name +
                                      "' already exists and is not managed by this deployment")
          .WithAwsType("EntityAlreadyExists");
    }
    RETURN_IF_ERROR(tx.Exec(
        "UPDATE principals SET trust_policy = ?, boundary = ?, boundary_arn = NULL WHERE arn = ?",
        {definition.trust_policy, definition.boundary, arn}));
    RETURN_IF_ERROR(tx.Exec("DELETE FROM principal_policies WHERE principal_arn = ?", {arn}));
  } else {
    const std::string id = "AROA" + core::RandomBase32(env_.random(), 17);
    RETURN_IF_ERROR(tx.Exec(
        "INSERT INTO principals (kind, name, arn, id, tags, boundary, trust_policy, "
        "max_session_seconds, created_at) VALUES ('role', ?, ?, ?, ?, ?, ?, 3600, ?)",
        {definition.name, arn, id, tags, definition.boundary, definition.trust_policy, Now()}));
  }
  for (const NamedPolicy& p : definition.policies) {
    RETURN_IF_ERROR(
        tx.Exec("INSERT INTO principal_policies (principal_arn, name, document) VALUES (?, ?, ?)",
                {arn, p.name, p.document}));
  }
  return core::Status::Ok();
}

core::Status Directory::DeleteRoleIn(store::Transaction& tx, std::string_view name) {
  return tx.Exec("DELETE FROM principals WHERE arn = ?", {RoleArn(name)}).status();
}

core::Result<Principal> Directory::EnsureRoot() {
  const std::string arn = RootArn();
  const std::string id = "AIDA" + core::RandomBase32(env_.random(), 17);
  const std::string created = Now();
  RETURN_IF_ERROR(Write([&](store::Transaction& tx) -> core::Status {
    return tx
        .Exec(
            "INSERT INTO principals (kind, name, arn, id, tags, boundary, trust_policy, "
            "max_session_seconds, created_at) VALUES ('root', 'root', ?, ?, '{}', NULL, NULL, "
            "3600, ?) ON CONFLICT (arn) DO NOTHING",
            {arn, id, created})
        .status();
  }));
  return GetByArn(arn);
}

core::Result<Principal> Directory::Get(PrincipalType type, std::string_view name) const {
  return GetByArn(ArnOf(type, name));
}

core::Result<Principal> Directory::GetByArn(std::string_view arn) const {
  return store::TransactValue(db_, {.access = store::Access::kReadOnly},
                              [&](store::Transaction& tx) -> core::Result<Principal> {
                                ASSIGN_OR_RETURN(
                                    std::optional<store::Row> row,
                                    tx.QueryOptional("SELECT " + std::string(kPrincipalColumns) +
                                                         " FROM principals WHERE arn = ?",
                                                     {std::string(arn)}));
                                if (!row) {
                                  return core::NotFoundError("no principal " + std::string(arn))
                                      .WithAwsType("NoSuchEntity");
                                }
                                return ReadPrincipal(tx, *row);
                              });
}

core::Result<std::vector<Principal>> Directory::List(PrincipalType type) const {
  return store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<std::vector<Principal>> {
        ASSIGN_OR_RETURN(std::vector<store::Row> rows,
                         tx.Query("SELECT " + std::string(kPrincipalColumns) +
                                      " FROM principals WHERE kind = ? ORDER BY name LIMIT 10000",
                                  {std::string(PrincipalTypeName(type))}));
        std::vector<Principal> out;
        for (const store::Row& row : rows) {
          ASSIGN_OR_RETURN(Principal p, ReadPrincipal(tx, row));
          out.push_back(std::move(p));
        }
        return out;
      });
}

core::Status Directory::Delete(PrincipalType type, std::string_view name) {
  if (type == PrincipalType::kRoot) {
    return core::FailedPreconditionError("the account root cannot be deleted");
  }
  ASSIGN_OR_RETURN(const std::int64_t deleted, WriteValue([&](store::Transaction& tx) {
                     return tx.Exec("DELETE FROM principals WHERE arn = ?", {ArnOf(type, name)});
                   }));
  if (deleted == 0)
    return core::NotFoundError(NotFoundMessage(type, name)).WithAwsType("NoSuchEntity");
  return core::Status::Ok();
}

core::Status Directory::PutPolicy(PrincipalType type, std::string_view principal,
                                  std::string_view name, std::string_view document) {
  RETURN_IF_ERROR(ValidatePrincipalName(name).Annotate("policy name"));
  RETURN_IF_ERROR(ValidateDocument(document, policy::PolicyType::kIdentity,
                                   "policy '" + std::string(name) + "'"));
  const std::string arn = ArnOf(type, principal);
  return Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(std::optional<store::Row> exists,
                     tx.QueryOptional("SELECT arn FROM principals WHERE arn = ?", {arn}));
    if (!exists)
      return core::NotFoundError(NotFoundMessage(type, principal)).WithAwsType("NoSuchEntity");
    return tx
        .Exec(
            "INSERT INTO principal_policies (principal_arn, name, document) VALUES (?, ?, ?) "
            "ON CONFLICT (principal_arn, name) DO UPDATE SET document = excluded.document",
            {arn, std::string(name), std::string(document)})
        .status();
  });
}

core::Status Directory::DeletePolicy(PrincipalType type, std::string_view principal,
                                     std::string_view name) {
  ASSIGN_OR_RETURN(const std::int64_t deleted, WriteValue([&](store::Transaction& tx) {
                     return tx.Exec(
                         "DELETE FROM principal_policies WHERE principal_arn = ? AND name = ?",
                         {ArnOf(type, principal), std::string(name)});
                   }));
  if (deleted == 0) {
    return core::NotFoundError("policy '" + std::string(name) + "' is not attached to " +
                               std::string(PrincipalTypeName(type)) + " '" +
                               std::string(principal) + "'")
        .WithAwsType("NoSuchEntity");
  }
  return core::Status::Ok();
}

core::Status Directory::SetBoundary(PrincipalType type, std::string_view principal,
                                    std::optional<std::string_view> document) {
  if (document) {
    RETURN_IF_ERROR(
        ValidateDocument(*document, policy::PolicyType::kBoundary, "permissions boundary"));
  }
  const std::optional<std::string> value =
      document ? std::optional<std::string>(std::string(*document)) : std::nullopt;
  ASSIGN_OR_RETURN(const std::int64_t updated, WriteValue([&](store::Transaction& tx) {
                     return tx.Exec(
                         "UPDATE principals SET boundary = ?, boundary_arn = NULL WHERE arn = ?",
                         {value, ArnOf(type, principal)});
                   }));
  if (updated == 0)
    return core::NotFoundError(NotFoundMessage(type, principal)).WithAwsType("NoSuchEntity");
  return core::Status::Ok();
}

core::Status Directory::SetBoundaryPolicy(PrincipalType type, std::string_view principal,
                                          std::optional<std::string_view> policy_arn) {
  const std::string arn = ArnOf(type, principal);
  const std::optional<std::string> value =
      policy_arn ? std::optional<std::string>(std::string(*policy_arn)) : std::nullopt;
  return Write([&](store::Transaction& tx) -> core::Status {
    if (value) {
      ASSIGN_OR_RETURN(
          std::optional<store::Row> policy,
          tx.QueryOptional("SELECT document FROM managed_policies WHERE arn = ?", {*value}));
      if (!policy) {
        return core::NotFoundError("Policy " + *value + " does not exist or is not attachable.")
            .WithAwsType("NoSuchEntity");
      }
      ASSIGN_OR_RETURN(const std::string document, policy->GetText("document"));
      // A boundary document must be valid as a boundary (it was validated as an identity
      // policy, which is the same grammar).
      RETURN_IF_ERROR(
          ValidateDocument(document, policy::PolicyType::kBoundary, "permissions boundary"));
    }
    ASSIGN_OR_RETURN(
        const std::int64_t updated,
        tx.Exec("UPDATE principals SET boundary = NULL, boundary_arn = ? WHERE arn = ?",
                {value, arn}));
    if (updated == 0) {
      return core::NotFoundError(NotFoundMessage(type, principal)).WithAwsType("NoSuchEntity");
    }
    return core::Status::Ok();
  });
}

std::string Directory::PolicyArn(std::string_view name) const {
  return "arn:aws:iam::" + options_.account_id + ":policy/" + std::string(name);
}

core::Result<ManagedPolicy> Directory::CreateManagedPolicy(std::string_view name,
                                                           std::string_view document,
                                                           std::string_view description) {
  RETURN_IF_ERROR(ValidatePrincipalName(name).Annotate("policy name"));
  if (description.size() > 1000) {
    return core::InvalidArgumentError("a description is at most 1000 characters");
  }
  policy::ParseOptions options;
  options.type = policy::PolicyType::kIdentity;
  options.max_document_bytes = 6144;  // IAM's quota for a managed policy
  if (auto parsed = policy::ParsePolicy(document, options); !parsed.ok()) {
    return parsed.status().Annotate("policy '" + std::string(name) + "'");
  }
  const std::string arn = PolicyArn(name);
  const std::string id = "ANPA" + core::RandomBase32(env_.random(), 17);
  const std::string now = Now();
  core::Status written = Write([&](store::Transaction& tx) -> core::Status {
    return tx
        .Exec(
            "INSERT INTO managed_policies (arn, name, id, document, description, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            {arn, std::string(name), id, std::string(document), std::string(description), now, now})
        .status();
  });
  if (written.code() == core::StatusCode::kAlreadyExists) {
    return core::AlreadyExistsError("A policy called " + std::string(name) + " already exists.")
        .WithAwsType("EntityAlreadyExists");
  }
  RETURN_IF_ERROR(written);
  return GetManagedPolicy(arn);
}

core::Result<ManagedPolicy> Directory::GetManagedPolicy(std::string_view arn) const {
  return store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<ManagedPolicy> {
        ASSIGN_OR_RETURN(std::optional<store::Row> row,
                         tx.QueryOptional("SELECT " + std::string(kPolicyColumns) +
                                              " FROM managed_policies m WHERE m.arn = ?",
                                          {std::string(arn)}));
        if (!row) {
          return core::NotFoundError("Policy " + std::string(arn) + " was not found.")
              .WithAwsType("NoSuchEntity");
        }
        return ReadManagedPolicy(tx, *row);
      });
}

core::Result<std::vector<ManagedPolicy>> Directory::ListManagedPolicies() const {
  return store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<std::vector<ManagedPolicy>> {
        ASSIGN_OR_RETURN(std::vector<store::Row> rows,
                         tx.Query("SELECT " + std::string(kPolicyColumns) +
                                  " FROM managed_policies m ORDER BY m.name LIMIT 10000"));
        std::vector<ManagedPolicy> out;
        for (const store::Row& row : rows) {
          ASSIGN_OR_RETURN(ManagedPolicy p, ReadManagedPolicy(tx, row));
          out.push_back(std::move(p));
        }
        return out;
      });
}

core::Status Directory::DeleteManagedPolicy(std::string_view arn) {
  return Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(store::Row uses,
                     tx.QueryOne("SELECT (SELECT COUNT(*) FROM policy_attachments WHERE "
                                 "policy_arn = ?) + (SELECT COUNT(*) FROM principals WHERE "
                                 "boundary_arn = ?) AS n",
                                 {std::string(arn), std::string(arn)}));
    ASSIGN_OR_RETURN(const std::int64_t n, uses.GetInt("n"));
    if (n > 0) {
      return core::FailedPreconditionError(
                 "Cannot delete a policy attached to entities or used as a permissions boundary.")
          .WithAwsType("DeleteConflict");
    }
    ASSIGN_OR_RETURN(const std::int64_t deleted,
                     tx.Exec("DELETE FROM managed_policies WHERE arn = ?", {std::string(arn)}));
    if (deleted == 0) {
      return core::NotFoundError("Policy " + std::string(arn) + " was not found.")
          .WithAwsType("NoSuchEntity");
    }
    return core::Status::Ok();
  });
}

core::Status Directory::AttachPolicy(PrincipalType type, std::string_view principal,
                                     std::string_view policy_arn) {
  const std::string arn = ArnOf(type, principal);
  return Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(std::optional<store::Row> who,
                     tx.QueryOptional("SELECT arn FROM principals WHERE arn = ?", {arn}));
    if (!who)
      return core::NotFoundError(NotFoundMessage(type, principal)).WithAwsType("NoSuchEntity");
    ASSIGN_OR_RETURN(std::optional<store::Row> policy,
                     tx.QueryOptional("SELECT arn FROM managed_policies WHERE arn = ?",
                                      {std::string(policy_arn)}));
    if (!policy) {
      return core::NotFoundError("Policy " + std::string(policy_arn) +
                                 " does not exist or is not attachable.")
          .WithAwsType("NoSuchEntity");
    }
    ASSIGN_OR_RETURN(store::Row count,
                     tx.QueryOne("SELECT COUNT(*) AS n FROM policy_attachments WHERE "
                                 "principal_arn = ? AND policy_arn <> ?",
                                 {arn, std::string(policy_arn)}));
    ASSIGN_OR_RETURN(const std::int64_t n, count.GetInt("n"));
    if (n >= 10) {
      return core::ResourceExhaustedError("Cannot exceed quota for PoliciesPerUser: 10")
          .WithAwsType("LimitExceeded");
    }
    return tx
        .Exec(
            "INSERT INTO policy_attachments (principal_arn, policy_arn) VALUES (?, ?) "
            "ON CONFLICT (principal_arn, policy_arn) DO NOTHING",
            {arn, std::string(policy_arn)})
        .status();
  });
}

core::Status Directory::DetachPolicy(PrincipalType type, std::string_view principal,
                                     std::string_view policy_arn) {
  ASSIGN_OR_RETURN(const std::int64_t deleted, WriteValue([&](store::Transaction& tx) {
                     return tx.Exec(
                         "DELETE FROM policy_attachments WHERE principal_arn = ? AND "
                         "policy_arn = ?",
                         {ArnOf(type, principal), std::string(policy_arn)});
                   }));
  if (deleted == 0) {
    return core::NotFoundError("Policy " + std::string(policy_arn) + " was not attached.")
        .WithAwsType("NoSuchEntity");
  }
  return core::Status::Ok();
}

core::Result<AccessKeyWithSecret> Directory::CreateAccessKey(std::string_view user) {
  RETURN_IF_ERROR(ValidatePrincipalName(user));
  return CreateAccessKeyFor(UserArn(user), "user '" + std::string(user) + "'");
}

core::Result<AccessKeyWithSecret> Directory::CreateRootAccessKey() {
  return CreateAccessKeyFor(RootArn(), "the root user");
}

core::Result<AccessKeyWithSecret> Directory::CreateAccessKeyFor(const std::string& arn,
                                                                std::string_view label) {
  AccessKeyWithSecret out;
  out.info.id = "AKIA" + core::RandomBase32(env_.random(), 16);
  out.info.user_arn = arn;
  out.info.created_at = Now();
  {
    std::array<std::uint8_t, kSecretRandomBytes> raw{};
    env_.random().Fill(raw);
    std::string encoded(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_ORIGINAL),
                        '\0');
    sodium_bin2base64(encoded.data(), encoded.size(), raw.data(), raw.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    encoded.resize(std::char_traits<char>::length(encoded.c_str()));
    sodium_memzero(raw.data(), raw.size());
    out.secret = core::SecretBytes::TakeFrom(encoded);
  }
  const std::string sealed = secret_key_.Seal(out.secret.Reveal(), out.info.id, env_.random());
  core::Status written = Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(std::optional<store::Row> exists,
                     tx.QueryOptional("SELECT arn FROM principals WHERE arn = ?", {arn}));
    if (!exists) {
      return core::NotFoundError(std::string(label) + " does not exist")
          .WithAwsType("NoSuchEntity");
    }
    ASSIGN_OR_RETURN(
        store::Row count,
        tx.QueryOne("SELECT COUNT(*) AS n FROM access_keys WHERE principal_arn = ?", {arn}));
    ASSIGN_OR_RETURN(const std::int64_t n, count.GetInt("n"));
    if (n >= options_.max_keys_per_user) {
      return core::ResourceExhaustedError(std::string(label) + " already has " + std::to_string(n) +
                                          " access keys; delete one first")
          .WithAwsType("LimitExceeded");
    }
    return tx
        .Exec(
            "INSERT INTO access_keys (id, principal_arn, sealed_secret, status, created_at) "
            "VALUES (?, ?, ?, 'Active', ?)",
            {out.info.id, arn, store::Value::FromBytes(sealed), out.info.created_at})
        .status();
  });
  RETURN_IF_ERROR(written);
  return out;
}

core::Result<std::vector<AccessKeyInfo>> Directory::ListAccessKeys(std::string_view user) const {
  return ListKeysFor(UserArn(user), "user '" + std::string(user) + "'");
}

core::Result<std::vector<AccessKeyInfo>> Directory::ListRootAccessKeys() const {
  return ListKeysFor(RootArn(), "the root user");
}

core::Result<std::vector<AccessKeyInfo>> Directory::ListKeysFor(const std::string& arn,
                                                                std::string_view label) const {
  return store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<std::vector<AccessKeyInfo>> {
        ASSIGN_OR_RETURN(std::optional<store::Row> exists,
                         tx.QueryOptional("SELECT arn FROM principals WHERE arn = ?", {arn}));
        if (!exists) {
          return core::NotFoundError(std::string(label) + " does not exist")
              .WithAwsType("NoSuchEntity");
        }
        ASSIGN_OR_RETURN(std::vector<store::Row> rows,
                         tx.Query("SELECT " + std::string(kKeyColumns) +
                                      " FROM access_keys WHERE principal_arn = ? ORDER BY "
                                      "created_at, id LIMIT 100",
                                  {arn}));
        std::vector<AccessKeyInfo> out;
        for (const store::Row& row : rows) {
          ASSIGN_OR_RETURN(AccessKeyInfo info, ReadKeyInfo(row));
          out.push_back(std::move(info));
        }
        return out;
      });
}

core::Status Directory::SetAccessKeyStatus(std::string_view user, std::string_view key_id,
                                           KeyStatus status) {
  ASSIGN_OR_RETURN(const std::int64_t updated, WriteValue([&](store::Transaction& tx) {
                     return tx.Exec(
                         "UPDATE access_keys SET status = ? WHERE id = ? AND principal_arn = ?",
                         {std::string(KeyStatusName(status)), std::string(key_id), UserArn(user)});
                   }));
  if (updated == 0) {
    return core::NotFoundError("user '" + std::string(user) + "' has no access key " +
                               std::string(key_id))
        .WithAwsType("NoSuchEntity");
  }
  return core::Status::Ok();
}

core::Status Directory::DeleteAccessKey(std::string_view user, std::string_view key_id) {
  return DeleteKeyFor(UserArn(user), key_id, "user '" + std::string(user) + "'");
}

core::Status Directory::DeleteRootAccessKey(std::string_view key_id) {
  return DeleteKeyFor(RootArn(), key_id, "the root user");
}

core::Status Directory::DeleteKeyFor(const std::string& arn, std::string_view key_id,
                                     std::string_view label) {
  ASSIGN_OR_RETURN(const std::int64_t deleted, WriteValue([&](store::Transaction& tx) {
                     return tx.Exec("DELETE FROM access_keys WHERE id = ? AND principal_arn = ?",
                                    {std::string(key_id), arn});
                   }));
  if (deleted == 0) {
    return core::NotFoundError(std::string(label) + " has no access key " + std::string(key_id))
        .WithAwsType("NoSuchEntity");
  }
  return core::Status::Ok();
}

core::Result<AccessKeyWithSecret> Directory::ResolveAccessKey(std::string_view key_id) const {
  return store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<AccessKeyWithSecret> {
        ASSIGN_OR_RETURN(std::optional<store::Row> row,
                         tx.QueryOptional("SELECT " + std::string(kKeyColumns) +
                                              " FROM access_keys WHERE id = ?",
                                          {std::string(key_id)}));
        if (!row) {
          return core::UnauthenticatedError(
                     "The security token included in the request is invalid.")
              .WithAwsType("InvalidClientTokenId");
        }
        AccessKeyWithSecret out;
        ASSIGN_OR_RETURN(out.info, ReadKeyInfo(*row));
        ASSIGN_OR_RETURN(const store::Blob sealed, row->GetBlob("sealed_secret"));
        ASSIGN_OR_RETURN(
            out.secret,
            secret_key_.Open(
                std::string_view(reinterpret_cast<const char*>(sealed.data()), sealed.size()),
                out.info.id));
        return out;
      });
}

core::Status Directory::RecordKeyUse(std::string_view key_id, std::string_view service) {
  return db_.Write(
      [&](store::Transaction& tx) -> core::Status {
        return tx
            .Exec("UPDATE access_keys SET last_used_at = ?, last_used_service = ? WHERE id = ?",
                  {Now(), std::string(service), std::string(key_id)})
            .status();
      },
      store::Durability::kNormal);
}

}  // namespace moatless::identity
