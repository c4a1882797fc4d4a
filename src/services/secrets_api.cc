#include "services/secrets_api.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "core/base64.h"
#include "secrets/password.h"
#include "secrets/resource_policy.h"

namespace moatless::services {
namespace {

namespace json = boost::json;
using secrets::SecretInfo;
using Target = AccessScope::Target;

constexpr std::size_t kMaxSecretId = 2048;
constexpr std::string_view kPageTokenPrefix = "moatless.secrets.versions.v1:";

core::Status InvalidParameter(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("InvalidParameterException");
}
core::Status InvalidRequest(std::string message) {
  return core::FailedPreconditionError(std::move(message)).WithAwsType("InvalidRequestException");
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

json::array Strings(const std::vector<std::string>& items) {
  json::array out;
  for (const std::string& item : items) out.emplace_back(item);
  return out;
}

json::array TagsJson(const std::vector<secrets::Tag>& tags) {
  json::array out;
  for (const secrets::Tag& tag : tags) {
    out.push_back(json::object{{"Key", tag.key}, {"Value", tag.value}});
  }
  return out;
}

// The members DescribeSecret and ListSecrets' entries share; `stages_member` is what the map of
// versions to labels is called ("VersionIdsToStages" / "SecretVersionsToStages").
json::object SecretJson(const SecretInfo& info, std::string_view stages_member) {
  json::object out{{"ARN", info.arn}, {"Name", info.name}};
  if (!info.description.empty()) out["Description"] = info.description;
  if (!info.kms_key_id.empty()) out["KmsKeyId"] = info.kms_key_id;
  out["RotationEnabled"] = info.rotation_enabled;
  if (!info.rotation_lambda_arn.empty()) out["RotationLambdaARN"] = info.rotation_lambda_arn;
  const secrets::RotationRules& rules = info.rotation_rules;
  if (rules != secrets::RotationRules()) {
    json::object r;
    if (rules.automatically_after_days != 0) {
      r["AutomaticallyAfterDays"] = rules.automatically_after_days;
    }
    if (!rules.schedule_expression.empty()) r["ScheduleExpression"] = rules.schedule_expression;
    if (!rules.duration.empty()) r["Duration"] = rules.duration;
    out["RotationRules"] = std::move(r);
  }
  if (info.last_rotated_ms != 0) out["LastRotatedDate"] = EpochSeconds(info.last_rotated_ms);
  out["LastChangedDate"] = EpochSeconds(info.changed_ms);
  if (info.accessed_ms != 0) out["LastAccessedDate"] = EpochSeconds(info.accessed_ms);
  if (info.deleted_ms != 0) out["DeletedDate"] = EpochSeconds(info.deleted_ms);
  if (info.next_rotation_ms != 0) out["NextRotationDate"] = EpochSeconds(info.next_rotation_ms);
  out["Tags"] = TagsJson(info.tags);
  json::object stages;
  for (const auto& [version, labels] : info.version_stages) stages[version] = Strings(labels);
  out[stages_member] = std::move(stages);
  out["CreatedDate"] = EpochSeconds(info.created_ms);
  // Beyond AWS's members: where a rotation is, and why the last attempt failed.
  if (!info.rotation.token.empty()) {
    out["RotationInProgress"] =
        json::object{{"VersionId", info.rotation.token}, {"NextStep", info.rotation.next_step}};
  }
  if (!info.rotation.last_error.empty()) {
    out["RotationFailure"] = json::object{{"Step", info.rotation.last_error_step},
                                          {"Message", info.rotation.last_error},
                                          {"Date", EpochSeconds(info.rotation.last_error_ms)},
                                          {"Attempts", info.rotation.attempts}};
  }
  return out;
}

// Tags as the API sends them: [{"Key": 1..128, "Value": 0..256}].
core::Result<std::vector<secrets::Tag>> ReadTags(const JsonInput& in, std::string_view member,
                                                 bool required) {
  ASSIGN_OR_RETURN(const json::array* items, in.ObjectList(member, 0, 1000));
  if (items == nullptr) {
    if (required) return ValidationError(member, "Member must not be null");
    return std::vector<secrets::Tag>();
  }
  std::vector<secrets::Tag> out;
  for (const json::value& item : *items) {
    const JsonInput tag(item.as_object());
    ASSIGN_OR_RETURN(std::string key, tag.RequiredString("Key", 1, 128));
    ASSIGN_OR_RETURN(std::optional<std::string> value, tag.String("Value", 0, 256));
    out.push_back(secrets::Tag{.key = std::move(key), .value = value.value_or("")});
  }
  return out;
}

void AddRequestTags(Target& target, const std::vector<secrets::Tag>& tags) {
  std::vector<std::string> keys;
  for (const secrets::Tag& tag : tags) {
    target.context.emplace_back("aws:RequestTag/" + tag.key, tag.value);
    keys.push_back(tag.key);
  }
  target.multi_context.emplace_back("aws:TagKeys", std::move(keys));
}

// The value of a write: SecretString xor SecretBinary (neither: kNone).
core::Result<secrets::NewValue> ReadValue(const JsonInput& in) {
  ASSIGN_OR_RETURN(auto text, in.SecretString("SecretString", 1, secrets::kMaxValueBytes));
  ASSIGN_OR_RETURN(auto binary, in.Blob("SecretBinary", 1, secrets::kMaxValueBytes));
  if (text && binary) {
    return InvalidParameter(
        "You can't specify both a binary secret value and a string secret value in the same "
        "secret.");
  }
  secrets::NewValue value;
  if (text)
    value = secrets::NewValue{.kind = secrets::ValueKind::kString, .bytes = std::move(*text)};
  if (binary) {
    value = secrets::NewValue{.kind = secrets::ValueKind::kBinary, .bytes = std::move(*binary)};
  }
  return value;
}

// An offset page token of ListSecretVersionIds; InvalidNextTokenException if it is not one.
core::Result<std::size_t> PageOffset(const std::optional<std::string>& token) {
  if (!token) return 0;
  const std::optional<std::string> decoded = core::Base64Decode(*token);
  if (decoded && decoded->starts_with(kPageTokenPrefix)) {
    const std::string digits = decoded->substr(kPageTokenPrefix.size());
    if (!digits.empty() && digits.size() < 10 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return static_cast<std::size_t>(std::stoul(digits));
    }
  }
  return core::InvalidArgumentError("The NextToken value is not valid.")
      .WithAwsType("InvalidNextTokenException");
}

// GetSecretValue's answer, and an entry of BatchGetSecretValue's SecretValues.
json::object ValueJson(const secrets::SecretValue& value) {
  json::object out{{"ARN", value.arn},
                   {"Name", value.name},
                   {"VersionId", value.version_id},
                   {"VersionStages", Strings(value.stages)},
                   {"CreatedDate", EpochSeconds(value.created_ms)}};
  if (value.kind == secrets::ValueKind::kBinary) {
    out["SecretBinary"] = core::Base64Encode(value.value.Reveal());
  } else {
    out["SecretString"] = value.value.Reveal();
  }
  return out;
}

// The Filters of ListSecrets and BatchGetSecretValue (`items` may be null: none).
core::Result<std::vector<secrets::ListFilter>> ReadFilters(const json::array* items) {
  std::vector<secrets::ListFilter> out;
  if (items == nullptr) return out;
  for (const json::value& item : *items) {
    const JsonInput filter(item.as_object());
    ASSIGN_OR_RETURN(auto key, filter.Enum("Key", {"description", "name", "tag-key", "tag-value",
                                                   "primary-region", "owning-service", "all"}));
    ASSIGN_OR_RETURN(auto values, filter.StringList("Values", 1, 10, 0, 512));
    out.push_back(secrets::ListFilter{.key = key.value_or(""),
                                      .values = values.value_or(std::vector<std::string>())});
  }
  return out;
}

}  // namespace

// One request on its way through an operation: its input, the scope, and the helpers every
// operation shares (resolve a secret to a target, fail and record, succeed and record).
class SecretsApi::Call {
 public:
  Call(SecretsApi& api, const http::Request& request, const http::RequestContext& context,
       const JsonRequest& call, AccessScope& scope)
      : api_(api),
        request_(request),
        context_(context),
        in_(call.body),
        scope_(scope),
        action_("secretsmanager:" + call.operation) {}

  http::Response Run(const std::string& operation);

 private:
  // The secret a SecretId names, as a target of this call's action. found=false: authorise on
  // what the caller named, then answer ResourceNotFoundException.
  struct Resolved {
    SecretInfo info;
    bool found = false;
    Target target;
  };
  core::Result<Resolved> Resolve(const std::string& secret_id, std::string action = "");
  // The same from a Describe the caller made (or its NotFound).
  core::Result<Resolved> ResolvedFrom(const std::string& secret_id, core::Result<SecretInfo> info,
                                      std::string action = "");
  // Authorises the target; NotFound (recorded) when the secret does not exist.
  core::Status Allow(const Resolved& resolved, bool record_allowed, std::string* deciding);

  // Records the failure (unless it is a denial, recorded already) and answers it.
  http::Response Fail(const Target& target, const core::Status& status);
  // Records success and answers `body` (or the recording's failure).
  http::Response Done(const Target& target, std::string reason,
                      std::map<std::string, std::string> fields, const json::value& body);
  Target Untargeted() const { return Target{.action = action_, .resource = "*"}; }
  http::Response FailInput(const core::Status& status) { return Fail(Untargeted(), status); }

  http::Response CreateSecret();
  http::Response GetSecretValue();
  http::Response BatchGetSecretValue();
  http::Response PutSecretValue();
  http::Response UpdateSecret();
  http::Response DescribeSecret();
  http::Response ListSecrets();
  http::Response ListSecretVersionIds();
  http::Response UpdateSecretVersionStage();
  http::Response DeleteSecret();
  http::Response RestoreSecret();
  http::Response RotateSecret();
  http::Response CancelRotateSecret();
  http::Response TagResource(bool tag);
  http::Response GetResourcePolicy();
  http::Response PutResourcePolicy();
  http::Response DeleteResourcePolicy();
  http::Response ValidateResourcePolicy();
  http::Response GetRandomPassword();
  http::Response RotateMasterKey();
  // One secret of a batch read: its entry, or its error entry.
  void BatchRead(const std::string& secret_id, json::array& values, json::array& errors);
  // A secret-scoped operation with no input besides SecretId and nothing to do but `run`.
  template <typename Fn>
  http::Response Simple(bool changes_state, Fn&& run);

  SecretsApi& api_;
  const http::Request& request_;
  const http::RequestContext& context_;
  const JsonInput in_;
  AccessScope& scope_;
  const std::string action_;
};

SecretsApi::SecretsApi(Deps deps)
    : deps_(std::move(deps)), store_(deps_.store), random_(deps_.random) {}

http::Response SecretsApi::Handle(const http::Request& request, const http::RequestContext& context,
                                  const JsonRequest& call, AccessScope& scope) {
  return Call(*this, request, context, call, scope).Run(call.operation);
}

http::Response SecretsApi::Call::Run(const std::string& op) {
  if (op == "CreateSecret") return CreateSecret();
  if (op == "GetSecretValue") return GetSecretValue();
  if (op == "BatchGetSecretValue") return BatchGetSecretValue();
  if (op == "PutSecretValue") return PutSecretValue();
  if (op == "UpdateSecret") return UpdateSecret();
  if (op == "DescribeSecret") return DescribeSecret();
  if (op == "ListSecrets") return ListSecrets();
  if (op == "ListSecretVersionIds") return ListSecretVersionIds();
  if (op == "UpdateSecretVersionStage") return UpdateSecretVersionStage();
  if (op == "DeleteSecret") return DeleteSecret();
  if (op == "RestoreSecret") return RestoreSecret();
  if (op == "RotateSecret") return RotateSecret();
  if (op == "CancelRotateSecret") return CancelRotateSecret();
  if (op == "TagResource") return TagResource(true);
  if (op == "UntagResource") return TagResource(false);
  if (op == "GetResourcePolicy") return GetResourcePolicy();
  if (op == "PutResourcePolicy") return PutResourcePolicy();
  if (op == "DeleteResourcePolicy") return DeleteResourcePolicy();
  if (op == "ValidateResourcePolicy") return ValidateResourcePolicy();
  if (op == "GetRandomPassword") return GetRandomPassword();
  if (op == "RotateMasterKey") return RotateMasterKey();
  return FailInput(
      core::InvalidArgumentError("Operation " + op + " is not supported by this Secrets Manager.")
          .WithAwsType("UnknownOperationException"));
}

core::Result<SecretsApi::Call::Resolved> SecretsApi::Call::Resolve(const std::string& secret_id,
                                                                   std::string action) {
  return ResolvedFrom(secret_id, api_.store_.Describe(secret_id), std::move(action));
}

core::Result<SecretsApi::Call::Resolved> SecretsApi::Call::ResolvedFrom(
    const std::string& secret_id, core::Result<SecretInfo> info, std::string action) {
  Resolved out;
  out.target.action = action.empty() ? action_ : std::move(action);
  if (!info.ok()) {
    if (info.status().code() != core::StatusCode::kNotFound) return info.status();
    out.target.resource =
        secret_id.starts_with("arn:") ? secret_id : api_.store_.ArnPrefix() + secret_id;
    out.target.context.emplace_back("secretsmanager:SecretId", out.target.resource);
    return out;
  }
  out.found = true;
  out.info = std::move(*info);
  out.target.resource = out.info.arn;
  out.target.resource_policy = out.info.resource_policy;
  for (const secrets::Tag& tag : out.info.tags) {
    out.target.resource_tags[tag.key] = tag.value;
    out.target.context.emplace_back("secretsmanager:ResourceTag/" + tag.key, tag.value);
  }
  out.target.context.emplace_back("secretsmanager:SecretId", out.info.arn);
  return out;
}

core::Status SecretsApi::Call::Allow(const Resolved& resolved, bool record_allowed,
                                     std::string* deciding) {
  ASSIGN_OR_RETURN(std::string statements, scope_.Authorise(resolved.target, record_allowed));
  if (deciding != nullptr) *deciding = std::move(statements);
  if (!resolved.found) {
    return core::NotFoundError("Secrets Manager can't find the specified secret.")
        .WithAwsType("ResourceNotFoundException");
  }
  return core::Status::Ok();
}

http::Response SecretsApi::Call::Fail(const Target& target, const core::Status& status) {
  if (JsonErrorType(status) == "AccessDeniedException") {
    return JsonError(request_, context_, status);  // recorded by Authorise
  }
  const core::Status recorded = scope_.Record(target, observe::AuditOutcome::kError,
                                              JsonErrorType(status) + ": " + status.message(), {});
  return JsonError(request_, context_, recorded.ok() ? status : recorded);
}

http::Response SecretsApi::Call::Done(const Target& target, std::string reason,
                                      std::map<std::string, std::string> fields,
                                      const json::value& body) {
  const core::Status recorded =
      scope_.Record(target, observe::AuditOutcome::kAllowed, std::move(reason), std::move(fields));
  if (!recorded.ok()) return JsonError(request_, context_, recorded);
  return JsonResponse(request_, context_, body);
}

template <typename Fn>
http::Response SecretsApi::Call::Simple(bool changes_state, Fn&& run) {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  std::string deciding;
  if (core::Status s = Allow(*resolved, changes_state, &deciding); !s.ok()) {
    return Fail(resolved->target, s);
  }
  json::object body{{"ARN", resolved->info.arn}, {"Name", resolved->info.name}};
  if (core::Status s = run(*resolved, body); !s.ok()) return Fail(resolved->target, s);
  return Done(resolved->target, deciding, {}, body);
}

http::Response SecretsApi::Call::CreateSecret() {
  auto name = in_.RequiredString("Name", 1, secrets::kMaxNameBytes);
  if (!name.ok()) return FailInput(name.status());
  auto token = in_.String("ClientRequestToken", 32, 64);
  auto description = in_.String("Description", 0, secrets::kMaxDescriptionBytes);
  auto kms = in_.String("KmsKeyId", 0, 2048);
  auto type = in_.String("Type", 0, 256);
  for (const core::Status& s :
       {token.status(), description.status(), kms.status(), type.status()}) {
    if (!s.ok()) return FailInput(s);
  }
  auto tags = ReadTags(in_, "Tags", false);
  if (!tags.ok()) return FailInput(tags.status());
  auto value = ReadValue(in_);
  if (!value.ok()) return FailInput(value.status());
  if (in_.ObjectList("AddReplicaRegions", 0, 100).value_or(nullptr) != nullptr) {
    return FailInput(InvalidRequest("moatless does not replicate secrets to other regions."));
  }
  if (type->has_value() && !(*type)->empty()) {
    return FailInput(InvalidRequest("moatless does not manage external secrets (Type)."));
  }
  if (core::Status s = secrets::SecretStore::ValidateName(*name); !s.ok()) return FailInput(s);
  // The ARN is chosen before the decision, so that the caller is authorised on the secret it
  // would create.
  const std::string suffix = secrets::NewArnSuffix(api_.random_);
  Target target{.action = action_, .resource = api_.store_.ArnPrefix() + *name + "-" + suffix};
  target.context = {{"secretsmanager:Name", *name},
                    {"secretsmanager:SecretId", target.resource},
                    {"secretsmanager:Description", description->value_or("")},
                    {"secretsmanager:KmsKeyId", kms->value_or("")}};
  AddRequestTags(target, *tags);
  auto deciding = scope_.Authorise(target, true);
  if (!deciding.ok()) return Fail(target, deciding.status());
  auto created = api_.store_.Create(secrets::CreateRequest{.name = *name,
                                                           .description = description->value_or(""),
                                                           .kms_key_id = kms->value_or(""),
                                                           .tags = std::move(*tags),
                                                           .value = std::move(*value),
                                                           .token = token->value_or(""),
                                                           .arn_suffix = suffix});
  if (!created.ok()) return Fail(target, created.status());
  target.resource = created->arn;
  json::object body{{"ARN", created->arn}, {"Name", created->name}};
  std::map<std::string, std::string> fields;
  if (!created->version_id.empty()) {
    body["VersionId"] = created->version_id;
    fields = {{"version_id", created->version_id}, {"version_stage", Join(created->stages)}};
  }
  body["ReplicationStatus"] = json::array();
  return Done(target, *deciding, std::move(fields), body);
}

http::Response SecretsApi::Call::GetSecretValue() {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto version_id = in_.String("VersionId", 32, 64);
  if (!version_id.ok()) return FailInput(version_id.status());
  auto stage = in_.String("VersionStage", 1, 256);
  if (!stage.ok()) return FailInput(stage.status());
  // One read transaction: the secret to decide on, and its value (decrypted only once allowed).
  auto read = api_.store_.PrepareRead(*secret_id, version_id->value_or(""), stage->value_or(""));
  core::Result<SecretInfo> info = core::NotFoundError("no such secret");
  if (read.ok()) {
    info = read->secret;
  } else {
    info = read.status();
  }
  auto resolved = ResolvedFrom(*secret_id, std::move(info));
  if (!resolved.ok()) return FailInput(resolved.status());
  Target& target = resolved->target;
  if (version_id->has_value())
    target.context.emplace_back("secretsmanager:VersionId", **version_id);
  if (stage->has_value() || !version_id->has_value()) {
    target.context.emplace_back("secretsmanager:VersionStage",
                                stage->value_or(std::string(secrets::kCurrent)));
  }
  std::string deciding;
  if (core::Status s = Allow(*resolved, false, &deciding); !s.ok()) return Fail(target, s);
  auto value = api_.store_.FinishRead(std::move(*read));
  if (!value.ok()) return Fail(target, value.status());
  const json::object body = ValueJson(*value);
  return Done(target, deciding,
              {{"version_id", value->version_id}, {"version_stage", Join(value->stages)}}, body);
}

void SecretsApi::Call::BatchRead(const std::string& secret_id, json::array& values,
                                 json::array& errors) {
  auto error = [&](const core::Status& status) {
    errors.push_back(json::object{{"SecretId", secret_id},
                                  {"ErrorCode", JsonErrorType(status)},
                                  {"Message", status.message()}});
  };
  auto resolved = Resolve(secret_id, "secretsmanager:GetSecretValue");
  if (!resolved.ok()) return error(resolved.status());
  Target& target = resolved->target;
  target.context.emplace_back("secretsmanager:VersionStage", std::string(secrets::kCurrent));
  std::string deciding;
  auto fail = [&](const core::Status& status) {
    if (JsonErrorType(status) != "AccessDeniedException") {
      scope_
          .Record(target, observe::AuditOutcome::kError,
                  JsonErrorType(status) + ": " + status.message(), {})
          .IgnoreError();  // the entry reports the error; a lost record only loses a failure
    }
    error(status);
  };
  if (core::Status s = Allow(*resolved, false, &deciding); !s.ok()) return fail(s);
  auto value = api_.store_.GetValue(resolved->info.arn, "", "");
  if (!value.ok()) return fail(value.status());
  if (core::Status s = scope_.Record(
          target, observe::AuditOutcome::kAllowed, deciding,
          {{"version_id", value->version_id}, {"version_stage", Join(value->stages)}});
      !s.ok()) {
    return error(s);
  }
  values.push_back(ValueJson(*value));
}

http::Response SecretsApi::Call::BatchGetSecretValue() {
  auto ids = in_.StringList("SecretIdList", 1, 20, 1, kMaxSecretId);
  if (!ids.ok()) return FailInput(ids.status());
  auto filters = in_.ObjectList("Filters", 0, 10);
  if (!filters.ok()) return FailInput(filters.status());
  auto max_results = in_.Int("MaxResults", 1, 20);
  if (!max_results.ok()) return FailInput(max_results.status());
  auto next_token = in_.String("NextToken", 1, 4096);
  if (!next_token.ok()) return FailInput(next_token.status());
  if (ids->has_value() == (*filters != nullptr)) {
    return FailInput(
        InvalidParameter("Either SecretIdList or Filters must be specified, not both."));
  }
  if (ids->has_value() && (max_results->has_value() || next_token->has_value())) {
    return FailInput(
        InvalidParameter("MaxResults and NextToken can only be used together with Filters."));
  }
  auto list_filters = ReadFilters(*filters);
  if (!list_filters.ok()) return FailInput(list_filters.status());
  const Target batch = Untargeted();
  auto deciding = scope_.Authorise(batch, false);
  if (!deciding.ok()) return Fail(batch, deciding.status());
  if (*filters != nullptr) {
    // Filters list secrets: the caller must be allowed to list them (as AWS requires).
    const Target list{.action = "secretsmanager:ListSecrets", .resource = "*"};
    auto listing = scope_.Authorise(list, false);
    if (!listing.ok()) return Fail(list, listing.status());
  }
  json::array values;
  json::array errors;
  json::object body;
  if (ids->has_value()) {
    for (const std::string& id : **ids) BatchRead(id, values, errors);
  } else {
    const secrets::ListRequest list{
        .filters = std::move(*list_filters),
        .max_results = static_cast<std::size_t>(max_results->value_or(20)),
        .next_token = next_token->value_or("")};
    auto page = api_.store_.List(list);
    if (!page.ok()) return Fail(batch, page.status());
    for (const SecretInfo& secret : page->secrets) BatchRead(secret.arn, values, errors);
    if (!page->next_token.empty()) body["NextToken"] = page->next_token;
  }
  body["SecretValues"] = std::move(values);
  body["Errors"] = std::move(errors);
  return Done(batch, *deciding, {}, body);
}

http::Response SecretsApi::Call::PutSecretValue() {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto token = in_.String("ClientRequestToken", 32, 64);
  if (!token.ok()) return FailInput(token.status());
  auto stages = in_.StringList("VersionStages", 1, 20, 1, 256);
  if (!stages.ok()) return FailInput(stages.status());
  auto rotation_token = in_.String("RotationToken", 36, 256);
  if (!rotation_token.ok()) return FailInput(rotation_token.status());
  auto value = ReadValue(in_);
  if (!value.ok()) return FailInput(value.status());
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  if (core::Status s = Allow(*resolved, true, nullptr); !s.ok()) {
    return Fail(resolved->target, s);
  }
  auto written = api_.store_.PutValue(resolved->info.arn, std::move(*value), token->value_or(""),
                                      stages->value_or(std::vector<std::string>()));
  if (!written.ok()) return Fail(resolved->target, written.status());
  return Done(resolved->target, "value written",
              {{"version_id", written->version_id}, {"version_stage", Join(written->stages)}},
              json::object{{"ARN", written->arn},
                           {"Name", written->name},
                           {"VersionId", written->version_id},
                           {"VersionStages", Strings(written->stages)}});
}

http::Response SecretsApi::Call::UpdateSecret() {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto token = in_.String("ClientRequestToken", 32, 64);
  auto description = in_.String("Description", 0, secrets::kMaxDescriptionBytes);
  auto kms = in_.String("KmsKeyId", 0, 2048);
  auto type = in_.String("Type", 0, 256);
  for (const core::Status& s :
       {token.status(), description.status(), kms.status(), type.status()}) {
    if (!s.ok()) return FailInput(s);
  }
  if (type->has_value() && !(*type)->empty()) {
    return FailInput(InvalidRequest("moatless does not manage external secrets (Type)."));
  }
  auto value = ReadValue(in_);
  if (!value.ok()) return FailInput(value.status());
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  Target& target = resolved->target;
  if (description->has_value())
    target.context.emplace_back("secretsmanager:Description", **description);
  if (kms->has_value()) target.context.emplace_back("secretsmanager:KmsKeyId", **kms);
  if (core::Status s = Allow(*resolved, true, nullptr); !s.ok()) return Fail(target, s);
  if (description->has_value() || kms->has_value()) {
    if (core::Status s = api_.store_.UpdateMetadata(resolved->info.arn, *description, *kms);
        !s.ok()) {
      return Fail(target, s);
    }
  }
  json::object body{{"ARN", resolved->info.arn}, {"Name", resolved->info.name}};
  std::map<std::string, std::string> fields;
  if (value->kind != secrets::ValueKind::kNone) {
    auto written =
        api_.store_.PutValue(resolved->info.arn, std::move(*value), token->value_or(""), {});
    if (!written.ok()) return Fail(target, written.status());
    body["VersionId"] = written->version_id;
    fields = {{"version_id", written->version_id}, {"version_stage", Join(written->stages)}};
  }
  return Done(target, "secret updated", std::move(fields), body);
}

http::Response SecretsApi::Call::DescribeSecret() {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  std::string deciding;
  if (core::Status s = Allow(*resolved, false, &deciding); !s.ok()) {
    return Fail(resolved->target, s);
  }
  return Done(resolved->target, deciding, {}, SecretJson(resolved->info, "VersionIdsToStages"));
}

http::Response SecretsApi::Call::ListSecrets() {
  auto include_deleted = in_.Bool("IncludePlannedDeletion");
  auto max_results = in_.Int("MaxResults", 1, 100);
  auto next_token = in_.String("NextToken", 1, 4096);
  auto sort_order = in_.Enum("SortOrder", {"asc", "desc"});
  auto sort_by =
      in_.Enum("SortBy", {"created-date", "last-accessed-date", "last-changed-date", "name"});
  auto filters = in_.ObjectList("Filters", 0, 10);
  for (const core::Status& s : {include_deleted.status(), max_results.status(), next_token.status(),
                                sort_order.status(), sort_by.status(), filters.status()}) {
    if (!s.ok()) return FailInput(s);
  }
  auto list_filters = ReadFilters(*filters);
  if (!list_filters.ok()) return FailInput(list_filters.status());
  const secrets::ListRequest list{
      .include_planned_deletion = include_deleted->value_or(false),
      .filters = std::move(*list_filters),
      .sort_by = sort_by->value_or("created-date"),
      .ascending = sort_order->value_or("desc") == "asc",
      .max_results = static_cast<std::size_t>(max_results->value_or(100)),
      .next_token = next_token->value_or(""),
  };
  const Target target = Untargeted();
  auto deciding = scope_.Authorise(target, false);
  if (!deciding.ok()) return Fail(target, deciding.status());
  auto page = api_.store_.List(list);
  if (!page.ok()) return Fail(target, page.status());
  json::array entries;
  for (const SecretInfo& secret : page->secrets) {
    entries.push_back(SecretJson(secret, "SecretVersionsToStages"));
  }
  json::object body{{"SecretList", std::move(entries)}};
  if (!page->next_token.empty()) body["NextToken"] = page->next_token;
  return Done(target, *deciding, {}, body);
}

http::Response SecretsApi::Call::ListSecretVersionIds() {
  auto max_results = in_.Int("MaxResults", 1, 100);
  if (!max_results.ok()) return FailInput(max_results.status());
  auto next_token = in_.String("NextToken", 1, 4096);
  if (!next_token.ok()) return FailInput(next_token.status());
  auto include_deprecated = in_.Bool("IncludeDeprecated");
  if (!include_deprecated.ok()) return FailInput(include_deprecated.status());
  auto offset = PageOffset(*next_token);
  if (!offset.ok()) return FailInput(offset.status());
  return Simple(false, [&](const Resolved& resolved, json::object& body) -> core::Status {
    ASSIGN_OR_RETURN(auto versions, api_.store_.ListVersions(resolved.info.arn,
                                                             include_deprecated->value_or(false)));
    const std::size_t limit = static_cast<std::size_t>(max_results->value_or(100));
    const std::size_t end = std::min(versions.size(), *offset + limit);
    json::array entries;
    for (std::size_t i = *offset; i < end; ++i) {
      json::object entry{{"VersionId", versions[i].version_id},
                         {"CreatedDate", EpochSeconds(versions[i].created_ms)}};
      if (!versions[i].stages.empty()) entry["VersionStages"] = Strings(versions[i].stages);
      if (versions[i].accessed_ms != 0) {
        entry["LastAccessedDate"] = EpochSeconds(versions[i].accessed_ms);
      }
      entries.push_back(std::move(entry));
    }
    body["Versions"] = std::move(entries);
    if (end < versions.size()) {
      body["NextToken"] = core::Base64Encode(std::string(kPageTokenPrefix) + std::to_string(end));
    }
    return core::Status::Ok();
  });
}

http::Response SecretsApi::Call::UpdateSecretVersionStage() {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto stage = in_.RequiredString("VersionStage", 1, 256);
  auto remove_from = in_.String("RemoveFromVersionId", 32, 64);
  auto move_to = in_.String("MoveToVersionId", 32, 64);
  for (const core::Status& s : {stage.status(), remove_from.status(), move_to.status()}) {
    if (!s.ok()) return FailInput(s);
  }
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  Target& target = resolved->target;
  target.context.emplace_back("secretsmanager:VersionStage", *stage);
  if (core::Status s = Allow(*resolved, true, nullptr); !s.ok()) return Fail(target, s);
  if (core::Status s = api_.store_.MoveLabel(resolved->info.arn, *stage, remove_from->value_or(""),
                                             move_to->value_or(""));
      !s.ok()) {
    return Fail(target, s);
  }
  std::map<std::string, std::string> fields{{"version_stage", *stage}};
  if (move_to->has_value()) fields["version_id"] = **move_to;
  if (remove_from->has_value()) fields["removed_from_version_id"] = **remove_from;
  return Done(target, "label moved", std::move(fields),
              json::object{{"ARN", resolved->info.arn}, {"Name", resolved->info.name}});
}

http::Response SecretsApi::Call::DeleteSecret() {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto window = in_.Int("RecoveryWindowInDays", INT64_MIN, INT64_MAX);
  if (!window.ok()) return FailInput(window.status());
  auto force = in_.Bool("ForceDeleteWithoutRecovery");
  if (!force.ok()) return FailInput(force.status());
  if (window->has_value() && force->value_or(false)) {
    return FailInput(InvalidParameter(
        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."));
  }
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  Target& target = resolved->target;
  target.context.emplace_back("secretsmanager:ForceDeleteWithoutRecovery",
                              force->value_or(false) ? "true" : "false");
  if (window->has_value()) {
    target.context.emplace_back("secretsmanager:RecoveryWindowInDays", std::to_string(**window));
  }
  if (core::Status s = Allow(*resolved, true, nullptr); !s.ok()) return Fail(target, s);
  json::object body{{"ARN", resolved->info.arn}, {"Name", resolved->info.name}};
  if (force->value_or(false)) {
    auto deleted = api_.store_.DeleteNow(resolved->info.arn);
    if (!deleted.ok()) return Fail(target, deleted.status());
    body["DeletionDate"] = EpochSeconds(*deleted);
    return Done(target, "deleted without recovery", {}, body);
  }
  auto scheduled = api_.store_.ScheduleDeletion(resolved->info.arn, window->value_or(30));
  if (!scheduled.ok()) return Fail(target, scheduled.status());
  body["DeletionDate"] = EpochSeconds(scheduled->purge_ms);
  return Done(target, "deletion scheduled", {}, body);
}

http::Response SecretsApi::Call::RestoreSecret() {
  return Simple(true, [&](const Resolved& resolved, json::object&) {
    return api_.store_.Restore(resolved.info.arn);
  });
}

http::Response SecretsApi::Call::RotateSecret() {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto token = in_.String("ClientRequestToken", 32, 64);
  auto function = in_.String("RotationLambdaARN", 0, 2048);
  auto immediately = in_.Bool("RotateImmediately");
  auto rules_object = in_.Object("RotationRules");
  for (const core::Status& s :
       {token.status(), function.status(), immediately.status(), rules_object.status()}) {
    if (!s.ok()) return FailInput(s);
  }
  if (in_.ObjectList("ExternalSecretRotationMetadata", 0, 100).value_or(nullptr) != nullptr) {
    return FailInput(InvalidRequest("moatless does not rotate external secrets."));
  }
  std::optional<secrets::RotationRules> rules;
  if (*rules_object != nullptr) {
    const JsonInput r(**rules_object);
    auto days = r.Int("AutomaticallyAfterDays", 1, 1000);
    auto expression = r.String("ScheduleExpression", 1, 256);
    auto duration = r.String("Duration", 2, 3);
    for (const core::Status& s : {days.status(), expression.status(), duration.status()}) {
      if (!s.ok()) return FailInput(s);
    }
    rules = secrets::RotationRules{.automatically_after_days = days->value_or(0),
                                   .schedule_expression = expression->value_or(""),
                                   .duration = duration->value_or("")};
    if (core::Status s = secrets::ValidateRotationRules(*rules); !s.ok()) return FailInput(s);
  }
  if (function->has_value() && (*function)->empty()) function->reset();
  // A bare function name is the function of that name in this account and region.
  if (function->has_value() && !(*function)->starts_with("arn:") &&
      **function != secrets::kPostgresRotationArn) {
    **function = "arn:aws:lambda:" + api_.store_.region() + ":" + api_.store_.account() +
                 ":function:" + **function;
  }
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  Target& target = resolved->target;
  const std::string rotation_function =
      function->value_or(resolved->found ? resolved->info.rotation_lambda_arn : "");
  if (!rotation_function.empty()) {
    target.context.emplace_back("secretsmanager:RotationLambdaARN", rotation_function);
  }
  if (core::Status s = Allow(*resolved, true, nullptr); !s.ok()) return Fail(target, s);
  // The platform will invoke the rotation function with this secret: the caller must be allowed
  // to invoke it too.
  if (function->has_value() && **function != secrets::kPostgresRotationArn) {
    const Target invoke{.action = "lambda:InvokeFunction", .resource = **function};
    auto allowed = scope_.Authorise(invoke, true);
    if (!allowed.ok()) return Fail(invoke, allowed.status());
  }
  if (api_.deps_.rotator == nullptr) {
    return Fail(target, InvalidRequest("Rotation is not available on this server."));
  }
  auto started = api_.deps_.rotator->Rotate(resolved->info.arn, *function, rules,
                                            immediately->value_or(true), token->value_or(""));
  if (!started.ok()) return Fail(target, started.status());
  if (!started->empty() && api_.deps_.rotation_started) api_.deps_.rotation_started();
  json::object body{{"ARN", resolved->info.arn}, {"Name", resolved->info.name}};
  std::map<std::string, std::string> fields{{"rotation_function", rotation_function}};
  if (!started->empty()) {
    body["VersionId"] = *started;
    fields["version_id"] = *started;
  }
  return Done(target, started->empty() ? "rotation scheduled" : "rotation started",
              std::move(fields), body);
}

http::Response SecretsApi::Call::CancelRotateSecret() {
  if (api_.deps_.rotator == nullptr) {
    return FailInput(InvalidRequest("Rotation is not available on this server."));
  }
  return Simple(true, [&](const Resolved& resolved, json::object& body) -> core::Status {
    ASSIGN_OR_RETURN(std::string abandoned, api_.deps_.rotator->Cancel(resolved.info.arn));
    if (!abandoned.empty()) body["VersionId"] = abandoned;
    return core::Status::Ok();
  });
}

http::Response SecretsApi::Call::TagResource(bool tag) {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  std::vector<secrets::Tag> tags;
  std::vector<std::string> keys;
  if (tag) {
    auto read = ReadTags(in_, "Tags", true);
    if (!read.ok()) return FailInput(read.status());
    tags = std::move(*read);
  } else {
    auto read = in_.StringList("TagKeys", 0, 1000, 1, 128);
    if (!read.ok()) return FailInput(read.status());
    if (!read->has_value()) return FailInput(ValidationError("TagKeys", "Member must not be null"));
    keys = std::move(**read);
  }
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  Target& target = resolved->target;
  if (tag) {
    AddRequestTags(target, tags);
  } else {
    target.multi_context.emplace_back("aws:TagKeys", keys);
  }
  if (core::Status s = Allow(*resolved, true, nullptr); !s.ok()) return Fail(target, s);
  const core::Status done = tag ? api_.store_.TagResource(resolved->info.arn, tags)
                                : api_.store_.UntagResource(resolved->info.arn, keys);
  if (!done.ok()) return Fail(target, done);
  return Done(target, tag ? "tagged" : "untagged", {}, json::object());
}

http::Response SecretsApi::Call::GetResourcePolicy() {
  return Simple(false, [&](const Resolved& resolved, json::object& body) {
    if (!resolved.info.resource_policy.empty()) {
      body["ResourcePolicy"] = resolved.info.resource_policy;
    }
    return core::Status::Ok();
  });
}

http::Response SecretsApi::Call::PutResourcePolicy() {
  auto secret_id = in_.RequiredString("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto document = in_.RequiredString("ResourcePolicy", 1, secrets::kMaxResourcePolicyBytes);
  if (!document.ok()) return FailInput(document.status());
  auto block_public = in_.Bool("BlockPublicPolicy");
  if (!block_public.ok()) return FailInput(block_public.status());
  // Public policies are refused unless the caller explicitly allows them.
  const bool block = block_public->value_or(true);
  auto resolved = Resolve(*secret_id);
  if (!resolved.ok()) return FailInput(resolved.status());
  Target& target = resolved->target;
  target.context.emplace_back("secretsmanager:BlockPublicPolicy", block ? "true" : "false");
  if (core::Status s = Allow(*resolved, true, nullptr); !s.ok()) return Fail(target, s);
  auto review = secrets::ReviewResourcePolicy(*document);
  if (!review.ok()) return Fail(target, review.status());
  for (const secrets::PolicyCheck& failure : review->failures) {
    if (failure.check == "SYNTAX_CHECK") {
      return Fail(target, core::InvalidArgumentError("This resource policy contains a syntax "
                                                     "error: " +
                                                     failure.message)
                              .WithAwsType("MalformedPolicyDocumentException"));
    }
  }
  if (review->is_public && block) {
    return Fail(target, core::PermissionDeniedError(
                            "BlockPublicPolicy is on and this resource policy grants public access "
                            "(every principal is allowed). Name the principals, or set "
                            "BlockPublicPolicy to false.")
                            .WithAwsType("PublicPolicyException"));
  }
  if (core::Status s = api_.store_.SetResourcePolicy(resolved->info.arn, *document); !s.ok()) {
    return Fail(target, s);
  }
  return Done(target, review->is_public ? "public resource policy set" : "resource policy set", {},
              json::object{{"ARN", resolved->info.arn}, {"Name", resolved->info.name}});
}

http::Response SecretsApi::Call::DeleteResourcePolicy() {
  return Simple(true, [&](const Resolved& resolved, json::object&) {
    return api_.store_.SetResourcePolicy(resolved.info.arn, "");
  });
}

http::Response SecretsApi::Call::ValidateResourcePolicy() {
  auto secret_id = in_.String("SecretId", 1, kMaxSecretId);
  if (!secret_id.ok()) return FailInput(secret_id.status());
  auto document = in_.RequiredString("ResourcePolicy", 1, secrets::kMaxResourcePolicyBytes);
  if (!document.ok()) return FailInput(document.status());
  Target target = Untargeted();
  std::string deciding;
  if (secret_id->has_value()) {
    auto resolved = Resolve(**secret_id);
    if (!resolved.ok()) return FailInput(resolved.status());
    target = resolved->target;
    if (core::Status s = Allow(*resolved, false, &deciding); !s.ok()) return Fail(target, s);
  } else {
    auto allowed = scope_.Authorise(target, false);
    if (!allowed.ok()) return Fail(target, allowed.status());
    deciding = *allowed;
  }
  auto review = secrets::ReviewResourcePolicy(*document);
  if (!review.ok()) return Fail(target, review.status());
  json::array errors;
  for (const secrets::PolicyCheck& failure : review->failures) {
    errors.push_back(json::object{{"CheckName", failure.check}, {"ErrorMessage", failure.message}});
  }
  return Done(target, deciding, {},
              json::object{{"PolicyValidationPassed", review->failures.empty()},
                           {"ValidationErrors", std::move(errors)}});
}

http::Response SecretsApi::Call::GetRandomPassword() {
  secrets::PasswordOptions options;
  auto length = in_.Int("PasswordLength", 1, 4096);
  auto exclude = in_.String("ExcludeCharacters", 0, 4096);
  if (!length.ok()) return FailInput(length.status());
  if (!exclude.ok()) return FailInput(exclude.status());
  options.length = length->value_or(32);
  options.exclude_characters = exclude->value_or("");
  for (const auto& [member, flag] : std::initializer_list<std::pair<std::string_view, bool*>>{
           {"ExcludeNumbers", &options.exclude_numbers},
           {"ExcludePunctuation", &options.exclude_punctuation},
           {"ExcludeUppercase", &options.exclude_uppercase},
           {"ExcludeLowercase", &options.exclude_lowercase},
           {"IncludeSpace", &options.include_space},
           {"RequireEachIncludedType", &options.require_each_included_type}}) {
    auto value = in_.Bool(member);
    if (!value.ok()) return FailInput(value.status());
    if (value->has_value()) *flag = **value;
  }
  const Target target = Untargeted();
  auto deciding = scope_.Authorise(target, false);
  if (!deciding.ok()) return Fail(target, deciding.status());
  auto password = secrets::RandomPassword(options, api_.random_);
  if (!password.ok()) return Fail(target, password.status());
  return Done(target, *deciding, {}, json::object{{"RandomPassword", password->Reveal()}});
}

http::Response SecretsApi::Call::RotateMasterKey() {
  const Target target{.action = "moatless:RotateSecretsMasterKey",
                      .resource = "arn:aws:moatless:" + api_.store_.region() + ":" +
                                  api_.store_.account() + ":secrets-master-key"};
  auto deciding = scope_.Authorise(target, true);
  if (!deciding.ok()) return Fail(target, deciding.status());
  if (api_.deps_.keyring == nullptr) {
    return Fail(target, InvalidRequest("The secrets master key cannot be rotated here."));
  }
  auto version = api_.deps_.keyring->AddVersion();
  if (!version.ok()) return Fail(target, version.status());
  if (core::Status s = api_.store_.AdoptKeyring(); !s.ok()) return Fail(target, s);
  std::size_t rewrapped = 0;
  for (;;) {
    auto batch = api_.store_.RewrapBatch(200);
    if (!batch.ok()) return Fail(target, batch.status());
    if (*batch == 0) break;
    rewrapped += *batch;
  }
  auto retired = api_.store_.RetireUnusedKeys();
  if (!retired.ok()) return Fail(target, retired.status());
  json::array retired_json;
  for (std::int64_t v : *retired) retired_json.emplace_back(v);
  return Done(
      target, "secrets master key rotated",
      {{"master_key_version", std::to_string(*version)}, {"rewrapped", std::to_string(rewrapped)}},
      json::object{{"MasterKeyVersion", *version},
                   {"Rewrapped", static_cast<std::int64_t>(rewrapped)},
                   {"RetiredVersions", std::move(retired_json)}});
}

}  // namespace moatless::services
