#include "secrets/secret_store.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <set>
#include <utility>

#include "core/base64.h"
#include "core/ids.h"

namespace moatless::secrets {
namespace {

namespace json = boost::json;

constexpr std::int64_t kDayMs = 24 * 60 * 60 * 1000;
constexpr std::string_view kListTokenPrefix = "moatless.secrets.list.v1:";

constexpr std::string_view kSecretColumns =
    "arn, name, description, kms_key_id, tags, resource_policy, created_ms, changed_ms, "
    "accessed_ms, deleted_ms, purge_ms, rotation_lambda_arn, rotation_rules, rotation_enabled, "
    "last_rotated_ms, next_rotation_ms, rotation, rotation_due_ms";

core::Status NotFound() {
  return core::NotFoundError("Secrets Manager can't find the specified secret.")
      .WithAwsType("ResourceNotFoundException");
}
core::Status InvalidParameter(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("InvalidParameterException");
}
core::Status InvalidRequest(std::string message) {
  return core::FailedPreconditionError(std::move(message)).WithAwsType("InvalidRequestException");
}
core::Status MarkedForDeletion() {
  return InvalidRequest(
      "You can't perform this operation on the secret because it was marked for deletion.");
}
core::Status LimitExceeded(std::string message) {
  return core::ResourceExhaustedError(std::move(message)).WithAwsType("LimitExceededException");
}
core::Status CorruptRow(std::string_view arn, std::string_view what) {
  return core::InternalError("the stored " + std::string(what) + " of secret " + std::string(arn) +
                             " is unreadable")
      .WithAwsType("InternalServiceError");
}

std::string TagsJson(const std::vector<Tag>& tags) {
  json::array out;
  for (const Tag& tag : tags) out.push_back(json::object{{"Key", tag.key}, {"Value", tag.value}});
  return json::serialize(out);
}

core::Result<std::vector<Tag>> ParseTags(std::string_view arn, const std::string& text) {
  boost::system::error_code ec;
  json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_array()) return CorruptRow(arn, "tags");
  std::vector<Tag> out;
  for (const json::value& item : parsed.as_array()) {
    const json::object* tag = item.if_object();
    if (tag == nullptr || !tag->contains("Key") || !tag->at("Key").is_string() ||
        !tag->contains("Value") || !tag->at("Value").is_string()) {
      return CorruptRow(arn, "tags");
    }
    out.push_back(Tag{.key = std::string(tag->at("Key").as_string()),
                      .value = std::string(tag->at("Value").as_string())});
  }
  return out;
}

std::string StateJson(const RotationState& state) {
  return json::serialize(json::object{{"token", state.token},
                                      {"next_step", state.next_step},
                                      {"attempts", state.attempts},
                                      {"last_error", state.last_error},
                                      {"last_error_ms", state.last_error_ms},
                                      {"last_error_step", state.last_error_step}});
}

std::string RulesJson(const RotationRules& rules) {
  json::object out;
  if (rules.automatically_after_days != 0) {
    out["AutomaticallyAfterDays"] = rules.automatically_after_days;
  }
  if (!rules.schedule_expression.empty()) out["ScheduleExpression"] = rules.schedule_expression;
  if (!rules.duration.empty()) out["Duration"] = rules.duration;
  return json::serialize(out);
}

// Reads a JSON object column written by RulesJson / StateJson (missing members keep defaults).
core::Result<json::object> ParseObject(std::string_view arn, std::string_view what,
                                       const std::string& text) {
  boost::system::error_code ec;
  json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_object()) return CorruptRow(arn, what);
  return std::move(parsed.as_object());
}

std::string StringMember(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}
std::int64_t IntMember(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  return v != nullptr && v->is_int64() ? v->as_int64() : 0;
}

core::Result<SecretInfo> SecretFromRow(const store::Row& row) {
  SecretInfo info;
  ASSIGN_OR_RETURN(info.arn, row.GetText("arn"));
  ASSIGN_OR_RETURN(info.name, row.GetText("name"));
  ASSIGN_OR_RETURN(info.description, row.GetText("description"));
  ASSIGN_OR_RETURN(info.kms_key_id, row.GetText("kms_key_id"));
  ASSIGN_OR_RETURN(std::string tags, row.GetText("tags"));
  ASSIGN_OR_RETURN(info.tags, ParseTags(info.arn, tags));
  ASSIGN_OR_RETURN(info.resource_policy, row.GetText("resource_policy"));
  ASSIGN_OR_RETURN(info.created_ms, row.GetInt("created_ms"));
  ASSIGN_OR_RETURN(info.changed_ms, row.GetInt("changed_ms"));
  ASSIGN_OR_RETURN(info.accessed_ms, row.GetInt("accessed_ms"));
  ASSIGN_OR_RETURN(info.deleted_ms, row.GetInt("deleted_ms"));
  ASSIGN_OR_RETURN(info.purge_ms, row.GetInt("purge_ms"));
  ASSIGN_OR_RETURN(info.rotation_lambda_arn, row.GetText("rotation_lambda_arn"));
  ASSIGN_OR_RETURN(std::string rules_text, row.GetText("rotation_rules"));
  ASSIGN_OR_RETURN(json::object rules, ParseObject(info.arn, "rotation rules", rules_text));
  info.rotation_rules.automatically_after_days = IntMember(rules, "AutomaticallyAfterDays");
  info.rotation_rules.schedule_expression = StringMember(rules, "ScheduleExpression");
  info.rotation_rules.duration = StringMember(rules, "Duration");
  ASSIGN_OR_RETURN(info.rotation_enabled, row.GetBool("rotation_enabled"));
  ASSIGN_OR_RETURN(info.last_rotated_ms, row.GetInt("last_rotated_ms"));
  ASSIGN_OR_RETURN(info.next_rotation_ms, row.GetInt("next_rotation_ms"));
  ASSIGN_OR_RETURN(std::string state_text, row.GetText("rotation"));
  ASSIGN_OR_RETURN(json::object state, ParseObject(info.arn, "rotation state", state_text));
  info.rotation.token = StringMember(state, "token");
  info.rotation.next_step = StringMember(state, "next_step");
  info.rotation.attempts = IntMember(state, "attempts");
  info.rotation.last_error = StringMember(state, "last_error");
  info.rotation.last_error_ms = IntMember(state, "last_error_ms");
  info.rotation.last_error_step = StringMember(state, "last_error_step");
  ASSIGN_OR_RETURN(info.rotation_due_ms, row.GetInt("rotation_due_ms"));
  return info;
}

// Fills version_stages of every secret in `secrets` (by ARN) from `rows` of secret_stages.
core::Status AddStages(const std::vector<store::Row>& rows,
                       std::map<std::string, SecretInfo*>& secrets) {
  for (const store::Row& row : rows) {
    ASSIGN_OR_RETURN(std::string arn, row.GetText("secret_arn"));
    ASSIGN_OR_RETURN(std::string label, row.GetText("label"));
    ASSIGN_OR_RETURN(std::string version, row.GetText("version_id"));
    auto it = secrets.find(arn);
    if (it != secrets.end()) it->second->version_stages[version].push_back(std::move(label));
  }
  return core::Status::Ok();
}

// The staging labels in the order AWS lists them: AWSCURRENT, AWSPENDING, AWSPREVIOUS, then the
// others in byte order.
void SortLabels(std::vector<std::string>& labels) {
  auto rank = [](const std::string& label) {
    if (label == kCurrent) return 0;
    if (label == kPending) return 1;
    if (label == kPrevious) return 2;
    return 3;
  };
  std::sort(labels.begin(), labels.end(), [&](const std::string& a, const std::string& b) {
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
  });
}

// A version row's value as stored (columns kind, key_version, wrapped_key, sealed_value).
struct StoredValue {
  ValueKind kind = ValueKind::kNone;
  SealedValue sealed;
};
core::Result<StoredValue> ReadStored(const store::Row& row) {
  StoredValue out;
  ASSIGN_OR_RETURN(std::int64_t kind, row.GetInt("kind"));
  out.kind = static_cast<ValueKind>(kind);
  ASSIGN_OR_RETURN(out.sealed.key_version, row.GetInt("key_version"));
  ASSIGN_OR_RETURN(auto wrapped, row.GetBlob("wrapped_key"));
  ASSIGN_OR_RETURN(auto sealed, row.GetBlob("sealed_value"));
  out.sealed.wrapped_key.assign(wrapped.begin(), wrapped.end());
  out.sealed.sealed_value.assign(sealed.begin(), sealed.end());
  return out;
}

// The stored value of version `version_id` of `arn`, if that version exists.
core::Result<std::optional<StoredValue>> StoredVersion(store::Transaction& tx,
                                                       const std::string& arn,
                                                       const std::string& version_id) {
  ASSIGN_OR_RETURN(auto row, tx.QueryOptional("SELECT kind, key_version, wrapped_key, "
                                              "sealed_value FROM secret_versions WHERE "
                                              "secret_arn = ? AND version_id = ?",
                                              {arn, version_id}));
  if (!row) return std::optional<StoredValue>();
  ASSIGN_OR_RETURN(StoredValue stored, ReadStored(*row));
  return std::optional<StoredValue>(std::move(stored));
}

bool StartsWith(std::string_view text, std::string_view prefix, bool fold_case) {
  if (prefix.size() > text.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = text[i];
    char b = prefix[i];
    if (fold_case) {
      if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
      if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    }
    if (a != b) return false;
  }
  return true;
}

// Whether `secret` has an attribute (as the filter key selects) that starts with `prefix`.
bool AttributeMatches(const SecretInfo& secret, std::string_view key, std::string_view prefix) {
  if (key == "name") return StartsWith(secret.name, prefix, false);
  if (key == "description") return StartsWith(secret.description, prefix, true);
  if (key == "tag-key" || key == "tag-value") {
    return std::any_of(secret.tags.begin(), secret.tags.end(), [&](const Tag& tag) {
      return StartsWith(key == "tag-key" ? tag.key : tag.value, prefix, false);
    });
  }
  if (key == "all") {
    return StartsWith(secret.name, prefix, true) || StartsWith(secret.description, prefix, true) ||
           std::any_of(secret.tags.begin(), secret.tags.end(), [&](const Tag& tag) {
             return StartsWith(tag.key, prefix, true) || StartsWith(tag.value, prefix, true);
           });
  }
  return false;  // primary-region, owning-service: no secret here has one
}

bool FilterMatches(const SecretInfo& secret, const ListFilter& filter) {
  return std::any_of(filter.values.begin(), filter.values.end(), [&](const std::string& value) {
    if (value.starts_with("!")) {
      return !AttributeMatches(secret, filter.key, std::string_view(value).substr(1));
    }
    return AttributeMatches(secret, filter.key, value);
  });
}

}  // namespace

std::string NewArnSuffix(core::Random& random) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string suffix;
  for (int i = 0; i < 6; ++i) suffix += kAlphabet[random.Uniform(kAlphabet.size())];
  return suffix;
}

const std::string* SecretInfo::VersionWith(std::string_view label) const {
  for (const auto& [version, labels] : version_stages) {
    if (std::find(labels.begin(), labels.end(), label) != labels.end()) return &version;
  }
  return nullptr;
}

SecretStore::SecretStore(store::Database& db, core::Env& env, const MasterKeyring& keyring,
                         Options options)
    : db_(db), env_(env), keyring_(keyring), options_(std::move(options)) {}

std::string SecretStore::ArnPrefix() const {
  return "arn:aws:secretsmanager:" + options_.region + ":" + options_.account + ":secret:";
}

std::int64_t SecretStore::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             env_.clock().Now().time_since_epoch())
      .count();
}

core::Status SecretStore::ValidateName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return InvalidParameter("Invalid name. The name must be 1 to 512 characters long.");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '/' || c == '_' || c == '+' || c == '=' || c == '.' || c == '@' ||
                    c == '-';
    if (!ok) {
      return InvalidParameter(
          "Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
          "following: /_+=.@-");
    }
  }
  return core::Status::Ok();
}

core::Status SecretStore::ValidateLabel(std::string_view label) {
  if (label.empty() || label.size() > 256) {
    return InvalidParameter("A staging label must be 1 to 256 characters long.");
  }
  return core::Status::Ok();
}

core::Result<SecretInfo> SecretStore::Load(store::Transaction& tx,
                                           std::string_view secret_id) const {
  const std::string select = "SELECT " + std::string(kSecretColumns) + " FROM secrets WHERE ";
  std::optional<store::Row> row;
  if (secret_id.starts_with("arn:")) {
    ASSIGN_OR_RETURN(row, tx.QueryOptional(select + "arn = ?", {secret_id}));
    // An ARN without its random suffix names the secret of that name in this account and region.
    const std::string prefix = ArnPrefix();
    if (!row && secret_id.starts_with(prefix) && secret_id.size() > prefix.size()) {
      ASSIGN_OR_RETURN(row,
                       tx.QueryOptional(select + "name = ?", {secret_id.substr(prefix.size())}));
    }
  } else {
    ASSIGN_OR_RETURN(row, tx.QueryOptional(select + "name = ?", {secret_id}));
  }
  if (!row) return NotFound();
  ASSIGN_OR_RETURN(SecretInfo info, SecretFromRow(*row));
  ASSIGN_OR_RETURN(auto stages, tx.Query("SELECT secret_arn, label, version_id FROM secret_stages "
                                         "WHERE secret_arn = ?",
                                         {info.arn}));
  std::map<std::string, SecretInfo*> by_arn{{info.arn, &info}};
  RETURN_IF_ERROR(AddStages(stages, by_arn));
  for (auto& [version, labels] : info.version_stages) SortLabels(labels);
  return info;
}

core::Result<SecretInfo> SecretStore::LoadForChange(store::Transaction& tx,
                                                    const std::string& arn) const {
  ASSIGN_OR_RETURN(SecretInfo info, Load(tx, arn));
  if (info.deleted()) return MarkedForDeletion();
  return info;
}

core::Result<SecretInfo> SecretStore::Describe(std::string_view secret_id) const {
  return store::TransactValue(db_, {.access = store::Access::kReadOnly},
                              [&](store::Transaction& tx) { return Load(tx, secret_id); });
}

core::Result<bool> SecretStore::Holds(const std::string& arn, const std::string& version_id,
                                      ValueKind kind, const SealedValue& sealed,
                                      const NewValue& value) const {
  if (kind == ValueKind::kNone || kind != value.kind) return false;
  ASSIGN_OR_RETURN(core::SecretBytes bytes, keyring_.Open(arn, version_id, kind, sealed));
  return bytes.ConstantTimeEquals(value.bytes);
}

core::Status SecretStore::InsertVersion(store::Transaction& tx, const SecretInfo& secret,
                                        const std::string& version_id, const NewValue& value,
                                        std::int64_t now_ms) {
  const SealedValue sealed = keyring_.Seal(secret.arn, version_id, value.kind, value.bytes);
  return tx
      .Exec(
          "INSERT INTO secret_versions (secret_arn, version_id, created_ms, accessed_ms, kind, "
          "key_version, wrapped_key, sealed_value) VALUES (?, ?, ?, 0, ?, ?, ?, ?) "
          "ON CONFLICT (secret_arn, version_id) DO UPDATE SET created_ms = excluded.created_ms, "
          "kind = excluded.kind, key_version = excluded.key_version, "
          "wrapped_key = excluded.wrapped_key, sealed_value = excluded.sealed_value",
          {secret.arn, version_id, now_ms, static_cast<std::int64_t>(value.kind),
           sealed.key_version, store::Value::FromBytes(sealed.wrapped_key),
           store::Value::FromBytes(sealed.sealed_value)})
      .status();
}

core::Status SecretStore::AttachLabels(store::Transaction& tx, SecretInfo& secret,
                                       const std::string& version_id,
                                       const std::vector<std::string>& labels) {
  constexpr std::string_view kUpsert =
      "INSERT INTO secret_stages (secret_arn, label, version_id) VALUES (?, ?, ?) "
      "ON CONFLICT (secret_arn, label) DO UPDATE SET version_id = excluded.version_id";
  auto move = [&](const std::string& label, const std::string& to) -> core::Status {
    RETURN_IF_ERROR(tx.Exec(kUpsert, {secret.arn, label, to}).status());
    for (auto& [version, held] : secret.version_stages) {
      std::erase(held, label);
    }
    secret.version_stages[to].push_back(label);
    return core::Status::Ok();
  };
  for (const std::string& label : labels) {
    const std::string* holder = secret.VersionWith(label);
    if (holder != nullptr && *holder == version_id) continue;
    if (label == kCurrent && holder != nullptr) {
      // AWSPREVIOUS follows AWSCURRENT's old version, wherever it was before.
      const std::string left = *holder;
      RETURN_IF_ERROR(move(std::string(kPrevious), left));
    }
    RETURN_IF_ERROR(move(label, version_id));
  }
  std::erase_if(secret.version_stages, [](const auto& entry) { return entry.second.empty(); });
  auto it = secret.version_stages.find(version_id);
  if (it != secret.version_stages.end() && it->second.size() > kMaxLabelsPerVersion) {
    return LimitExceeded("A version can have at most 20 staging labels.");
  }
  return core::Status::Ok();
}

core::Status SecretStore::DropDeprecatedVersions(store::Transaction& tx, const std::string& arn) {
  ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT v.version_id AS version_id FROM secret_versions v "
                                       "WHERE v.secret_arn = ? AND NOT EXISTS (SELECT 1 FROM "
                                       "secret_stages s WHERE s.secret_arn = v.secret_arn AND "
                                       "s.version_id = v.version_id) "
                                       "ORDER BY v.created_ms DESC, v.version_id DESC",
                                       {arn}));
  for (std::size_t i = kMaxDeprecatedVersions; i < rows.size(); ++i) {
    ASSIGN_OR_RETURN(std::string version, rows[i].GetText("version_id"));
    RETURN_IF_ERROR(tx.Exec("DELETE FROM secret_versions WHERE secret_arn = ? AND version_id = ?",
                            {arn, version})
                        .status());
  }
  return core::Status::Ok();
}

core::Status SecretStore::Touch(store::Transaction& tx, const std::string& arn,
                                std::int64_t now_ms) {
  return tx.Exec("UPDATE secrets SET changed_ms = ? WHERE arn = ?", {now_ms, arn}).status();
}

core::Result<WriteResult> SecretStore::Create(CreateRequest request) {
  RETURN_IF_ERROR(ValidateName(request.name));
  if (request.tags.size() > kMaxTags) return LimitExceeded("A secret can have at most 50 tags.");
  if (request.value.kind != ValueKind::kNone && request.token.empty()) {
    request.token = core::NewUuid(env_.random());
  }
  WriteResult result;
  const core::Status done = db_.Write([&](store::Transaction& tx) -> core::Status {
    result = WriteResult();
    auto existing = Load(tx, request.name);
    if (existing.ok()) {
      if (existing->deleted()) {
        return InvalidRequest(
            "You can't create this secret because a secret with this name is already scheduled "
            "for deletion.");
      }
      // The same request again (same token, same value): answered as the first time.
      if (!request.token.empty()) {
        ASSIGN_OR_RETURN(auto stored, StoredVersion(tx, existing->arn, request.token));
        if (stored) {
          ASSIGN_OR_RETURN(bool same, Holds(existing->arn, request.token, stored->kind,
                                            stored->sealed, request.value));
          if (same) {
            result = WriteResult{.arn = existing->arn,
                                 .name = existing->name,
                                 .version_id = request.token,
                                 .stages = existing->version_stages[request.token]};
            return core::Status::Ok();
          }
        }
      }
      return core::AlreadyExistsError("The operation failed because the secret " + request.name +
                                      " already exists.")
          .WithAwsType("ResourceExistsException");
    }
    if (existing.status().code() != core::StatusCode::kNotFound) return existing.status();
    SecretInfo secret;
    secret.arn = ArnPrefix() + request.name + "-" +
                 (request.arn_suffix.empty() ? NewArnSuffix(env_.random()) : request.arn_suffix);
    secret.name = request.name;
    const std::int64_t now = NowMs();
    RETURN_IF_ERROR(
        tx.Exec("INSERT INTO secrets (" + std::string(kSecretColumns) +
                    ") VALUES (?, ?, ?, ?, ?, '', ?, ?, 0, 0, 0, '', '{}', 0, 0, 0, ?, 0)",
                {secret.arn, secret.name, request.description, request.kms_key_id,
                 TagsJson(request.tags), now, now, StateJson(RotationState())})
            .status());
    result.arn = secret.arn;
    result.name = secret.name;
    if (request.value.kind != ValueKind::kNone) {
      RETURN_IF_ERROR(InsertVersion(tx, secret, request.token, request.value, now));
      RETURN_IF_ERROR(AttachLabels(tx, secret, request.token, {std::string(kCurrent)}));
      result.version_id = request.token;
      result.stages = {std::string(kCurrent)};
    }
    return core::Status::Ok();
  });
  if (!done.ok()) return done;
  return result;
}

core::Result<WriteResult> SecretStore::PutValue(const std::string& arn, NewValue value,
                                                std::string token,
                                                std::vector<std::string> stages) {
  if (value.kind == ValueKind::kNone) {
    return InvalidParameter("You must provide either SecretString or SecretBinary.");
  }
  if (stages.size() > kMaxLabelsPerVersion) {
    return LimitExceeded("A version can have at most 20 staging labels.");
  }
  for (const std::string& label : stages) RETURN_IF_ERROR(ValidateLabel(label));
  if (stages.empty()) stages.push_back(std::string(kCurrent));
  if (token.empty()) token = core::NewUuid(env_.random());
  WriteResult result;
  const core::Status done = db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    result = WriteResult{.arn = secret.arn, .name = secret.name, .version_id = token};
    ASSIGN_OR_RETURN(auto existing, StoredVersion(tx, secret.arn, token));
    // A version without a value (the one a rotation made) is filled below, like a new one.
    if (existing && existing->kind != ValueKind::kNone) {
      ASSIGN_OR_RETURN(bool same,
                       Holds(secret.arn, token, existing->kind, existing->sealed, value));
      if (!same) {
        return core::AlreadyExistsError(
                   "You can't modify an existing version, you can only create a new version.")
            .WithAwsType("ResourceExistsException");
      }
      result.stages = secret.version_stages[token];
      return core::Status::Ok();  // the same request again
    }
    const std::int64_t now = NowMs();
    RETURN_IF_ERROR(InsertVersion(tx, secret, token, value, now));
    RETURN_IF_ERROR(AttachLabels(tx, secret, token, stages));
    RETURN_IF_ERROR(DropDeprecatedVersions(tx, secret.arn));
    RETURN_IF_ERROR(Touch(tx, secret.arn, now));
    result.stages = secret.version_stages[token];
    SortLabels(result.stages);
    return core::Status::Ok();
  });
  if (!done.ok()) return done;
  return result;
}

core::Result<PreparedRead> SecretStore::PrepareRead(std::string_view secret_id,
                                                    std::string_view version_id,
                                                    std::string_view stage) const {
  PreparedRead out;
  // Why the value cannot be read (once the secret is known): kept, not returned, so that the
  // caller decides about access before it says anything about the secret's versions.
  auto refuse = [&](core::Status why) {
    out.error = std::move(why);
    return core::Status::Ok();
  };
  const core::Status done = db_.Read([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(out.secret, Load(tx, secret_id));
    const SecretInfo& secret = out.secret;
    out.value.arn = secret.arn;
    out.value.name = secret.name;
    if (secret.deleted()) return refuse(MarkedForDeletion());
    if (version_id.empty()) {
      const std::string_view label = stage.empty() ? kCurrent : stage;
      const std::string* holder = secret.VersionWith(label);
      if (holder == nullptr) {
        return refuse(
            core::NotFoundError(
                "Secrets Manager can't find the specified secret value for staging label: " +
                std::string(label))
                .WithAwsType("ResourceNotFoundException"));
      }
      out.value.version_id = *holder;
    } else {
      out.value.version_id = std::string(version_id);
      if (!stage.empty()) {
        const std::string* holder = secret.VersionWith(stage);
        if (holder == nullptr || *holder != version_id) {
          return refuse(
              core::NotFoundError(
                  "Secrets Manager can't find the specified secret value for VersionId: " +
                  std::string(version_id) + " and staging label: " + std::string(stage))
                  .WithAwsType("ResourceNotFoundException"));
        }
      }
    }
    ASSIGN_OR_RETURN(auto row, tx.QueryOptional("SELECT created_ms, accessed_ms, kind, "
                                                "key_version, wrapped_key, sealed_value FROM "
                                                "secret_versions WHERE secret_arn = ? AND "
                                                "version_id = ?",
                                                {secret.arn, out.value.version_id}));
    if (!row) {
      return refuse(core::NotFoundError(
                        "Secrets Manager can't find the specified secret value for VersionId: " +
                        out.value.version_id)
                        .WithAwsType("ResourceNotFoundException"));
    }
    ASSIGN_OR_RETURN(out.value.created_ms, row->GetInt("created_ms"));
    ASSIGN_OR_RETURN(out.version_accessed_ms, row->GetInt("accessed_ms"));
    ASSIGN_OR_RETURN(StoredValue stored, ReadStored(*row));
    if (stored.kind == ValueKind::kNone) {
      return refuse(core::NotFoundError(
                        "Secrets Manager can't find the specified secret value for VersionId: " +
                        out.value.version_id + " (it has no value yet)")
                        .WithAwsType("ResourceNotFoundException"));
    }
    out.value.kind = stored.kind;
    out.sealed = std::move(stored.sealed);
    auto it = secret.version_stages.find(out.value.version_id);
    if (it != secret.version_stages.end()) out.value.stages = it->second;
    return core::Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

core::Result<SecretValue> SecretStore::FinishRead(PreparedRead read) {
  if (!read.error.ok()) return read.error;
  SecretValue out = std::move(read.value);
  ASSIGN_OR_RETURN(out.value, keyring_.Open(out.arn, out.version_id, out.kind, read.sealed));
  // The day of the last access, written at most once a day per secret and version (AWS keeps
  // LastAccessedDate to the day), so that reads stay read-only transactions.
  const std::int64_t today = NowMs() / kDayMs * kDayMs;
  if (read.secret.accessed_ms != today || read.version_accessed_ms != today) {
    // A lost update only loses an access date: not worth failing a read for.
    db_.Write(
           [&](store::Transaction& tx) -> core::Status {
             RETURN_IF_ERROR(
                 tx.Exec("UPDATE secrets SET accessed_ms = ? WHERE arn = ?", {today, out.arn})
                     .status());
             return tx
                 .Exec(
                     "UPDATE secret_versions SET accessed_ms = ? WHERE secret_arn = ? AND "
                     "version_id = ?",
                     {today, out.arn, out.version_id})
                 .status();
           },
           store::Durability::kNormal)
        .IgnoreError();
  }
  return out;
}

core::Result<SecretValue> SecretStore::GetValue(const std::string& arn, std::string_view version_id,
                                                std::string_view stage) {
  ASSIGN_OR_RETURN(PreparedRead read, PrepareRead(arn, version_id, stage));
  return FinishRead(std::move(read));
}

core::Status SecretStore::UpdateMetadata(const std::string& arn,
                                         const std::optional<std::string>& description,
                                         const std::optional<std::string>& kms_key_id) {
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    if (description) {
      RETURN_IF_ERROR(
          tx.Exec("UPDATE secrets SET description = ? WHERE arn = ?", {*description, secret.arn})
              .status());
    }
    if (kms_key_id) {
      RETURN_IF_ERROR(
          tx.Exec("UPDATE secrets SET kms_key_id = ? WHERE arn = ?", {*kms_key_id, secret.arn})
              .status());
    }
    return Touch(tx, secret.arn, NowMs());
  });
}

core::Result<std::vector<VersionInfo>> SecretStore::ListVersions(const std::string& arn,
                                                                 bool include_deprecated) const {
  return store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<std::vector<VersionInfo>> {
        ASSIGN_OR_RETURN(SecretInfo secret, Load(tx, arn));
        ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT version_id, created_ms, accessed_ms FROM "
                                             "secret_versions WHERE secret_arn = ? "
                                             "ORDER BY created_ms DESC, version_id",
                                             {secret.arn}));
        std::vector<VersionInfo> out;
        for (const store::Row& row : rows) {
          VersionInfo version;
          ASSIGN_OR_RETURN(version.version_id, row.GetText("version_id"));
          ASSIGN_OR_RETURN(version.created_ms, row.GetInt("created_ms"));
          ASSIGN_OR_RETURN(version.accessed_ms, row.GetInt("accessed_ms"));
          auto it = secret.version_stages.find(version.version_id);
          if (it != secret.version_stages.end()) version.stages = it->second;
          if (version.stages.empty() && !include_deprecated) continue;
          out.push_back(std::move(version));
        }
        return out;
      });
}

core::Status SecretStore::MoveLabel(const std::string& arn, const std::string& label,
                                    const std::string& remove_from, const std::string& move_to) {
  RETURN_IF_ERROR(ValidateLabel(label));
  if (remove_from.empty() && move_to.empty()) {
    return InvalidParameter("You must specify MoveToVersionId, RemoveFromVersionId or both.");
  }
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    const std::string* found = secret.VersionWith(label);
    const std::string holder = found == nullptr ? std::string() : *found;
    if (!remove_from.empty() && holder != remove_from) {
      return InvalidParameter("The staging label " + label + " is not attached to the version " +
                              remove_from + ".");
    }
    if (move_to.empty()) {
      if (label == kCurrent) {
        return InvalidParameter(
            "You can't remove the staging label AWSCURRENT from a version without moving it to "
            "another version (specify MoveToVersionId).");
      }
      RETURN_IF_ERROR(tx.Exec("DELETE FROM secret_stages WHERE secret_arn = ? AND label = ?",
                              {secret.arn, label})
                          .status());
    } else {
      ASSIGN_OR_RETURN(auto target, tx.QueryOptional("SELECT version_id FROM secret_versions "
                                                     "WHERE secret_arn = ? AND version_id = ?",
                                                     {secret.arn, move_to}));
      if (!target) {
        return InvalidParameter("The secret has no version " + move_to + ".");
      }
      if (!holder.empty() && holder != move_to && remove_from.empty()) {
        return InvalidParameter(
            "The parameter RemoveFromVersionId can't be empty. Staging label " + label +
            " is currently attached to version " + holder +
            ", so you must explicitly reference that version in RemoveFromVersionId.");
      }
      RETURN_IF_ERROR(AttachLabels(tx, secret, move_to, {label}));
    }
    RETURN_IF_ERROR(DropDeprecatedVersions(tx, secret.arn));
    return Touch(tx, secret.arn, NowMs());
  });
}

core::Result<SecretInfo> SecretStore::ScheduleDeletion(const std::string& arn,
                                                       std::int64_t window_days) {
  if (window_days < 7 || window_days > 30) {
    return InvalidParameter(
        "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).");
  }
  return store::TransactValue(db_, {}, [&](store::Transaction& tx) -> core::Result<SecretInfo> {
    ASSIGN_OR_RETURN(SecretInfo secret, Load(tx, arn));
    if (secret.deleted()) {
      return InvalidRequest(
          "You can't delete secret " + secret.name +
          " that is already scheduled for deletion (restore it, or delete it with "
          "ForceDeleteWithoutRecovery).");
    }
    secret.deleted_ms = NowMs();
    secret.purge_ms = secret.deleted_ms + window_days * kDayMs;
    RETURN_IF_ERROR(tx.Exec("UPDATE secrets SET deleted_ms = ?, purge_ms = ? WHERE arn = ?",
                            {secret.deleted_ms, secret.purge_ms, secret.arn})
                        .status());
    return secret;
  });
}

core::Result<std::int64_t> SecretStore::DeleteNow(const std::string& arn) {
  const std::int64_t now = NowMs();
  const core::Status done = db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, Load(tx, arn));
    return tx.Exec("DELETE FROM secrets WHERE arn = ?", {secret.arn}).status();
  });
  if (!done.ok()) return done;
  return now;
}

core::Status SecretStore::Restore(const std::string& arn) {
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, Load(tx, arn));
    return tx.Exec("UPDATE secrets SET deleted_ms = 0, purge_ms = 0 WHERE arn = ?", {secret.arn})
        .status();
  });
}

core::Result<std::vector<std::string>> SecretStore::PurgeDue() {
  const std::int64_t now = NowMs();
  return store::TransactValue(
      db_, {}, [&](store::Transaction& tx) -> core::Result<std::vector<std::string>> {
        ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT arn FROM secrets WHERE purge_ms > 0 AND "
                                             "purge_ms <= ? ORDER BY arn LIMIT 1000",
                                             {now}));
        std::vector<std::string> out;
        for (const store::Row& row : rows) {
          ASSIGN_OR_RETURN(std::string arn, row.GetText("arn"));
          RETURN_IF_ERROR(tx.Exec("DELETE FROM secrets WHERE arn = ?", {arn}).status());
          out.push_back(std::move(arn));
        }
        return out;
      });
}

core::Status SecretStore::TagResource(const std::string& arn, const std::vector<Tag>& tags) {
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    for (const Tag& tag : tags) {
      auto it = std::find_if(secret.tags.begin(), secret.tags.end(),
                             [&](const Tag& t) { return t.key == tag.key; });
      if (it != secret.tags.end()) {
        it->value = tag.value;
      } else {
        secret.tags.push_back(tag);
      }
    }
    if (secret.tags.size() > kMaxTags) return LimitExceeded("A secret can have at most 50 tags.");
    RETURN_IF_ERROR(
        tx.Exec("UPDATE secrets SET tags = ? WHERE arn = ?", {TagsJson(secret.tags), secret.arn})
            .status());
    return Touch(tx, secret.arn, NowMs());
  });
}

core::Status SecretStore::UntagResource(const std::string& arn,
                                        const std::vector<std::string>& keys) {
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    std::erase_if(secret.tags, [&](const Tag& tag) {
      return std::find(keys.begin(), keys.end(), tag.key) != keys.end();
    });
    RETURN_IF_ERROR(
        tx.Exec("UPDATE secrets SET tags = ? WHERE arn = ?", {TagsJson(secret.tags), secret.arn})
            .status());
    return Touch(tx, secret.arn, NowMs());
  });
}

core::Status SecretStore::SetResourcePolicy(const std::string& arn, const std::string& policy) {
  if (policy.size() > kMaxResourcePolicyBytes) {
    return LimitExceeded("A resource policy can be at most 20480 characters long.");
  }
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    RETURN_IF_ERROR(
        tx.Exec("UPDATE secrets SET resource_policy = ? WHERE arn = ?", {policy, secret.arn})
            .status());
    return Touch(tx, secret.arn, NowMs());
  });
}

core::Result<ListPage> SecretStore::List(const ListRequest& request) const {
  std::size_t offset = 0;
  if (!request.next_token.empty()) {
    const std::optional<std::string> decoded = core::Base64Decode(request.next_token);
    bool ok = decoded.has_value() && decoded->starts_with(kListTokenPrefix);
    if (ok) {
      const std::string digits = decoded->substr(kListTokenPrefix.size());
      ok = !digits.empty() && digits.size() < 10 &&
           std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (ok) offset = std::stoul(digits);
    }
    if (!ok) {
      return core::InvalidArgumentError("The NextToken value is not valid.")
          .WithAwsType("InvalidNextTokenException");
    }
  }
  std::vector<SecretInfo> all;
  const core::Status done = db_.Read([&](store::Transaction& tx) -> core::Status {
    all.clear();
    ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT " + std::string(kSecretColumns) +
                                         " FROM secrets ORDER BY arn"));
    for (const store::Row& row : rows) {
      ASSIGN_OR_RETURN(SecretInfo info, SecretFromRow(row));
      all.push_back(std::move(info));
    }
    std::map<std::string, SecretInfo*> by_arn;
    for (SecretInfo& info : all) by_arn.emplace(info.arn, &info);
    ASSIGN_OR_RETURN(auto stages,
                     tx.Query("SELECT secret_arn, label, version_id FROM secret_stages"));
    return AddStages(stages, by_arn);
  });
  if (!done.ok()) return done;
  std::erase_if(all, [&](const SecretInfo& secret) {
    if (secret.deleted() && !request.include_planned_deletion) return true;
    return !std::all_of(request.filters.begin(), request.filters.end(),
                        [&](const ListFilter& filter) { return FilterMatches(secret, filter); });
  });
  auto key = [&](const SecretInfo& s) -> std::int64_t {
    if (request.sort_by == "last-accessed-date") return s.accessed_ms;
    if (request.sort_by == "last-changed-date") return s.changed_ms;
    return s.created_ms;
  };
  std::stable_sort(all.begin(), all.end(), [&](const SecretInfo& a, const SecretInfo& b) {
    if (request.sort_by == "name") {
      return request.ascending ? a.name < b.name : b.name < a.name;
    }
    if (key(a) != key(b)) return request.ascending ? key(a) < key(b) : key(b) < key(a);
    return a.name < b.name;
  });
  ListPage page;
  const std::size_t end = std::min(all.size(), offset + request.max_results);
  for (std::size_t i = offset; i < end; ++i) {
    for (auto& [version, labels] : all[i].version_stages) SortLabels(labels);
    page.secrets.push_back(std::move(all[i]));
  }
  if (end < all.size()) {
    page.next_token = core::Base64Encode(std::string(kListTokenPrefix) + std::to_string(end));
  }
  return page;
}

core::Result<std::string> SecretStore::DeclareIn(store::Transaction& tx,
                                                 const SecretDeclaration& declared) {
  RETURN_IF_ERROR(ValidateName(declared.name));
  const std::int64_t now = NowMs();
  const bool rotates = !declared.rotation_function.empty();
  auto existing = Load(tx, declared.name);
  if (!existing.ok() && existing.status().code() != core::StatusCode::kNotFound) {
    return existing.status();
  }
  if (!existing.ok()) {
    const std::string arn = ArnPrefix() + declared.name + "-" + NewArnSuffix(env_.random());
    RETURN_IF_ERROR(
        tx.Exec("INSERT INTO secrets (" + std::string(kSecretColumns) +
                    ") VALUES (?, ?, ?, '', ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, 0, ?, ?, ?)",
                {arn, declared.name, declared.description, TagsJson(declared.tags),
                 declared.resource_policy, now, now, declared.rotation_function,
                 RulesJson(declared.rotation_rules), static_cast<std::int64_t>(rotates ? 1 : 0),
                 rotates ? declared.next_rotation_ms : 0, StateJson(RotationState()),
                 rotates ? declared.next_rotation_ms : 0})
            .status());
    return arn;
  }
  const SecretInfo& secret = *existing;
  if (secret.deleted()) {
    return InvalidRequest("The secret " + secret.name +
                          " is scheduled for deletion: restore it (moatless secrets restore) "
                          "before deploying an app that declares it.");
  }
  std::vector<Tag> tags = secret.tags;
  for (const Tag& tag : declared.tags) {
    auto it =
        std::find_if(tags.begin(), tags.end(), [&](const Tag& t) { return t.key == tag.key; });
    if (it == tags.end()) {
      tags.push_back(tag);
    } else {
      it->value = tag.value;
    }
  }
  const bool rotation_changed = secret.rotation_enabled != rotates ||
                                secret.rotation_lambda_arn != declared.rotation_function ||
                                secret.rotation_rules != declared.rotation_rules;
  const bool policy_changed =
      !declared.resource_policy.empty() && declared.resource_policy != secret.resource_policy;
  if (secret.description == declared.description && secret.tags == tags && !rotation_changed &&
      !policy_changed) {
    return secret.arn;
  }
  if (policy_changed) {
    RETURN_IF_ERROR(tx.Exec("UPDATE secrets SET resource_policy = ? WHERE arn = ?",
                            {declared.resource_policy, secret.arn})
                        .status());
  }
  RETURN_IF_ERROR(tx.Exec("UPDATE secrets SET description = ?, tags = ?, changed_ms = ? WHERE "
                          "arn = ?",
                          {declared.description, TagsJson(tags), now, secret.arn})
                      .status());
  if (rotation_changed) {
    const std::int64_t next = rotates ? declared.next_rotation_ms : 0;
    std::int64_t due = secret.rotation.token.empty() ? next : secret.rotation_due_ms;
    if (!rotates && !secret.rotation.token.empty()) {
      // Rotation is switched off: the rotation in progress is abandoned, as CancelRotateSecret
      // would (its function is no longer the secret's).
      SecretInfo copy = secret;
      RETURN_IF_ERROR(DropPending(tx, copy, secret.rotation.token));
      RotationState state = secret.rotation;
      state.token.clear();
      state.next_step.clear();
      RETURN_IF_ERROR(
          tx.Exec("UPDATE secrets SET rotation = ? WHERE arn = ?", {StateJson(state), secret.arn})
              .status());
      due = 0;
    }
    RETURN_IF_ERROR(tx.Exec("UPDATE secrets SET rotation_lambda_arn = ?, rotation_rules = ?, "
                            "rotation_enabled = ?, next_rotation_ms = ?, rotation_due_ms = ? "
                            "WHERE arn = ?",
                            {declared.rotation_function, RulesJson(declared.rotation_rules),
                             static_cast<std::int64_t>(rotates ? 1 : 0), next, due, secret.arn})
                        .status());
  }
  return secret.arn;
}

core::Status SecretStore::PendingVersion(store::Transaction& tx, SecretInfo& secret,
                                         const std::string& token, std::int64_t now_ms) {
  RETURN_IF_ERROR(
      tx.Exec("INSERT INTO secret_versions (secret_arn, version_id, created_ms, "
              "accessed_ms, kind, key_version, wrapped_key, sealed_value) VALUES (?, "
              "?, ?, 0, 0, 0, ?, ?) ON CONFLICT (secret_arn, version_id) DO NOTHING",
              {secret.arn, token, now_ms, store::Value::FromBytes(""), store::Value::FromBytes("")})
          .status());
  return AttachLabels(tx, secret, token, {std::string(kPending)});
}

core::Status SecretStore::DropPending(store::Transaction& tx, SecretInfo& secret,
                                      const std::string& token) {
  const std::string* holder = secret.VersionWith(kPending);
  if (holder != nullptr && *holder == token) {
    RETURN_IF_ERROR(tx.Exec("DELETE FROM secret_stages WHERE secret_arn = ? AND label = ?",
                            {secret.arn, std::string(kPending)})
                        .status());
  }
  return tx
      .Exec("DELETE FROM secret_versions WHERE secret_arn = ? AND version_id = ? AND kind = 0",
            {secret.arn, token})
      .status();
}

core::Status SecretStore::ConfigureRotation(const std::string& arn,
                                            const std::optional<std::string>& lambda,
                                            const std::optional<RotationRules>& rules,
                                            std::int64_t next_rotation_ms,
                                            const std::string& token) {
  const std::int64_t now = NowMs();
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    if (!secret.rotation.token.empty() && !token.empty()) {
      if (secret.rotation.token == token) return core::Status::Ok();  // the same request again
      return InvalidRequest(
          "A previous rotation isn't complete. That rotation will be reattempted (or cancel it "
          "with CancelRotateSecret).");
    }
    if (lambda) {
      RETURN_IF_ERROR(
          tx.Exec("UPDATE secrets SET rotation_lambda_arn = ? WHERE arn = ?", {*lambda, secret.arn})
              .status());
    }
    if (rules) {
      RETURN_IF_ERROR(tx.Exec("UPDATE secrets SET rotation_rules = ? WHERE arn = ?",
                              {RulesJson(*rules), secret.arn})
                          .status());
    }
    RotationState state = secret.rotation;
    // A rotation in progress stays due; otherwise the schedule decides.
    std::int64_t due = state.token.empty() ? next_rotation_ms : secret.rotation_due_ms;
    if (!token.empty()) {
      RETURN_IF_ERROR(PendingVersion(tx, secret, token, now));
      state = RotationState{.token = token, .next_step = std::string(kCreateStep)};
      due = now;
    }
    RETURN_IF_ERROR(tx.Exec("UPDATE secrets SET rotation_enabled = 1, next_rotation_ms = ?, "
                            "rotation = ?, rotation_due_ms = ? WHERE arn = ?",
                            {next_rotation_ms, StateJson(state), due, secret.arn})
                        .status());
    return Touch(tx, secret.arn, now);
  });
}

core::Status SecretStore::BeginRotation(const std::string& arn, const std::string& token) {
  const std::int64_t now = NowMs();
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    if (!secret.rotation.token.empty()) {
      return InvalidRequest("A previous rotation isn't complete.");
    }
    RETURN_IF_ERROR(PendingVersion(tx, secret, token, now));
    RotationState state = secret.rotation;  // keeps the attempts and the last error
    state.token = token;
    state.next_step = std::string(kCreateStep);
    return tx
        .Exec("UPDATE secrets SET rotation = ?, rotation_due_ms = ? WHERE arn = ?",
              {StateJson(state), now, secret.arn})
        .status();
  });
}

core::Status SecretStore::SaveRotationState(const std::string& arn, const RotationState& state) {
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, Load(tx, arn));
    return tx.Exec("UPDATE secrets SET rotation = ? WHERE arn = ?", {StateJson(state), secret.arn})
        .status();
  });
}

core::Status SecretStore::EndRotation(const std::string& arn, bool succeeded,
                                      const RotationState& failed, std::int64_t next_rotation_ms,
                                      std::int64_t retry_at_ms) {
  const std::int64_t now = NowMs();
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    ASSIGN_OR_RETURN(SecretInfo secret, Load(tx, arn));
    if (succeeded) {
      return tx
          .Exec(
              "UPDATE secrets SET rotation = ?, last_rotated_ms = ?, next_rotation_ms = ?, "
              "rotation_due_ms = ?, changed_ms = ? WHERE arn = ?",
              {StateJson(RotationState()), now, next_rotation_ms,
               secret.rotation_enabled ? next_rotation_ms : 0, now, secret.arn})
          .status();
    }
    if (!secret.rotation.token.empty()) {
      RETURN_IF_ERROR(DropPending(tx, secret, secret.rotation.token));
    }
    RotationState state = failed;
    state.token.clear();
    state.next_step.clear();
    const std::int64_t due = retry_at_ms != 0 ? retry_at_ms : next_rotation_ms;
    return tx
        .Exec(
            "UPDATE secrets SET rotation = ?, next_rotation_ms = ?, rotation_due_ms = ? "
            "WHERE arn = ?",
            {StateJson(state), next_rotation_ms, secret.rotation_enabled ? due : 0, secret.arn})
        .status();
  });
}

core::Result<std::string> SecretStore::DisableRotation(const std::string& arn) {
  return store::TransactValue(db_, {}, [&](store::Transaction& tx) -> core::Result<std::string> {
    ASSIGN_OR_RETURN(SecretInfo secret, LoadForChange(tx, arn));
    const std::string token = secret.rotation.token;
    if (!token.empty()) RETURN_IF_ERROR(DropPending(tx, secret, token));
    RotationState state = secret.rotation;
    state.token.clear();
    state.next_step.clear();
    RETURN_IF_ERROR(tx.Exec("UPDATE secrets SET rotation_enabled = 0, next_rotation_ms = 0, "
                            "rotation_due_ms = 0, rotation = ? WHERE arn = ?",
                            {StateJson(state), secret.arn})
                        .status());
    RETURN_IF_ERROR(Touch(tx, secret.arn, NowMs()));
    return token;
  });
}

core::Result<std::vector<std::string>> SecretStore::DueRotations(std::size_t limit) const {
  const std::int64_t now = NowMs();
  return store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<std::vector<std::string>> {
        ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT arn FROM secrets WHERE rotation_due_ms > 0 "
                                             "AND rotation_due_ms <= ? AND deleted_ms = 0 "
                                             "ORDER BY rotation_due_ms, arn LIMIT ?",
                                             {now, static_cast<std::int64_t>(limit)}));
        std::vector<std::string> out;
        for (const store::Row& row : rows) {
          ASSIGN_OR_RETURN(std::string arn, row.GetText("arn"));
          out.push_back(std::move(arn));
        }
        return out;
      });
}

core::Result<std::int64_t> SecretStore::RecordedMasterKeys(store::Database& db) {
  return store::TransactValue(db, {.access = store::Access::kReadOnly},
                              [](store::Transaction& tx) -> core::Result<std::int64_t> {
                                ASSIGN_OR_RETURN(auto row, tx.QueryOne("SELECT COUNT(*) AS n FROM "
                                                                       "secret_master_keys"));
                                return row.GetInt("n");
                              });
}

core::Status SecretStore::AdoptKeyring() {
  const std::int64_t now = NowMs();
  return db_.Write([&](store::Transaction& tx) -> core::Status {
    for (std::int64_t version : keyring_.versions()) {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO secret_master_keys (version, created_ms, check_value, "
                              "retired_ms) VALUES (?, ?, ?, 0) ON CONFLICT (version) DO NOTHING",
                              {version, now, keyring_.CheckValue(version)})
                          .status());
    }
    ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT version, check_value FROM secret_master_keys "
                                         "ORDER BY version"));
    for (const store::Row& row : rows) {
      ASSIGN_OR_RETURN(std::int64_t version, row.GetInt("version"));
      ASSIGN_OR_RETURN(std::string check, row.GetText("check_value"));
      if (keyring_.Has(version) && keyring_.CheckValue(version) != check) {
        return core::FailedPreconditionError(
            "secrets master key version " + std::to_string(version) +
            " is not the key this store's secrets were sealed with (the key file was replaced); "
            "restore the original key file");
      }
    }
    ASSIGN_OR_RETURN(auto used,
                     tx.Query("SELECT DISTINCT key_version FROM secret_versions WHERE kind <> 0 "
                              "ORDER BY key_version"));
    for (const store::Row& row : used) {
      ASSIGN_OR_RETURN(std::int64_t version, row.GetInt("key_version"));
      if (!keyring_.Has(version)) {
        return core::FailedPreconditionError(
            "secret values are sealed under secrets master key version " + std::to_string(version) +
            ", whose key file is missing; restore it");
      }
    }
    return core::Status::Ok();
  });
}

core::Result<std::vector<std::int64_t>> SecretStore::RetireUnusedKeys() {
  const std::int64_t current = keyring_.current_version();
  const std::int64_t now = NowMs();
  return store::TransactValue(
      db_, {}, [&](store::Transaction& tx) -> core::Result<std::vector<std::int64_t>> {
        ASSIGN_OR_RETURN(auto rows,
                         tx.Query("SELECT k.version AS version FROM secret_master_keys k WHERE "
                                  "k.version < ? AND k.retired_ms = 0 AND NOT EXISTS (SELECT 1 "
                                  "FROM secret_versions v WHERE v.key_version = k.version) "
                                  "ORDER BY k.version",
                                  {current}));
        std::vector<std::int64_t> out;
        for (const store::Row& row : rows) {
          ASSIGN_OR_RETURN(std::int64_t version, row.GetInt("version"));
          RETURN_IF_ERROR(tx.Exec("UPDATE secret_master_keys SET retired_ms = ? WHERE version = ?",
                                  {now, version})
                              .status());
          out.push_back(version);
        }
        return out;
      });
}

core::Result<std::size_t> SecretStore::RewrapBatch(std::size_t batch) {
  const std::int64_t to = keyring_.current_version();
  return store::TransactValue(db_, {}, [&](store::Transaction& tx) -> core::Result<std::size_t> {
    ASSIGN_OR_RETURN(
        auto rows,
        tx.Query("SELECT secret_arn, version_id, kind, key_version, wrapped_key, "
                 "sealed_value FROM secret_versions WHERE key_version <> ? AND kind <> 0 "
                 "ORDER BY secret_arn, version_id LIMIT ?",
                 {to, static_cast<std::int64_t>(batch)}));
    for (const store::Row& row : rows) {
      ASSIGN_OR_RETURN(std::string arn, row.GetText("secret_arn"));
      ASSIGN_OR_RETURN(std::string version_id, row.GetText("version_id"));
      ASSIGN_OR_RETURN(StoredValue stored, ReadStored(row));
      ASSIGN_OR_RETURN(SealedValue rewrapped,
                       keyring_.Rewrap(arn, version_id, stored.kind, stored.sealed, to));
      RETURN_IF_ERROR(tx.Exec("UPDATE secret_versions SET key_version = ?, wrapped_key = ? "
                              "WHERE secret_arn = ? AND version_id = ?",
                              {to, store::Value::FromBytes(rewrapped.wrapped_key), arn, version_id})
                          .status());
    }
    return rows.size();
  });
}

core::Result<std::map<std::int64_t, std::int64_t>> SecretStore::CountByKeyVersion() const {
  return store::TransactValue(
      db_, {.access = store::Access::kReadOnly},
      [&](store::Transaction& tx) -> core::Result<std::map<std::int64_t, std::int64_t>> {
        ASSIGN_OR_RETURN(auto rows,
                         tx.Query("SELECT key_version, COUNT(*) AS n FROM "
                                  "secret_versions WHERE kind <> 0 GROUP BY key_version"));
        std::map<std::int64_t, std::int64_t> out;
        for (const store::Row& row : rows) {
          ASSIGN_OR_RETURN(std::int64_t version, row.GetInt("key_version"));
          ASSIGN_OR_RETURN(std::int64_t n, row.GetInt("n"));
          out[version] = n;
        }
        return out;
      });
}

}  // namespace moatless::secrets
