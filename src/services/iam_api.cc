#include "services/iam_api.h"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <map>
#include <utility>

namespace moatless::services {
namespace {

using identity::PrincipalType;

core::Status Validation(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("ValidationError");
}

// IAM returns policy documents URL-encoded (clients decode them).
std::string UrlEncode(std::string_view text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

// UserName, or the calling user's own name when it is omitted (as IAM does).
core::Result<std::string> UserNameOf(const QueryRequest& request, const identity::Caller& caller) {
  if (auto name = request.Get("UserName")) return *name;
  if (!caller.user_name.empty()) return caller.user_name;
  return Validation("UserName is required when the caller is not an IAM user");
}

core::Status PolicyError(core::Status status) {
  if (status.code() == core::StatusCode::kInvalidArgument &&
      status.aws_type() != "ValidationError") {
    return core::InvalidArgumentError(status.message()).WithAwsType("MalformedPolicyDocument");
  }
  return status;
}

void TagsXml(XmlWriter& xml, const std::map<std::string, std::string>& tags) {
  if (tags.empty()) return;
  xml.Begin("Tags");
  for (const auto& [k, v] : tags) xml.Begin("member").Leaf("Key", k).Leaf("Value", v).End();
  xml.End();
}

void BoundaryXml(XmlWriter& xml, const identity::Principal& p) {
  if (!p.boundary_arn) return;
  xml.Begin("PermissionsBoundary")
      .Leaf("PermissionsBoundaryType", "Policy")
      .Leaf("PermissionsBoundaryArn", *p.boundary_arn)
      .End();
}

void UserXml(XmlWriter& xml, std::string_view element, const identity::Principal& user) {
  xml.Begin(element)
      .Leaf("Path", "/")
      .Leaf("UserName", user.name)
      .Leaf("UserId", user.id)
      .Leaf("Arn", user.arn)
      .Leaf("CreateDate", user.created_at);
  BoundaryXml(xml, user);
  TagsXml(xml, user.tags);
  xml.End();
}

void RoleXml(XmlWriter& xml, std::string_view element, const identity::Principal& role) {
  xml.Begin(element)
      .Leaf("Path", "/")
      .Leaf("RoleName", role.name)
      .Leaf("RoleId", role.id)
      .Leaf("Arn", role.arn)
      .Leaf("CreateDate", role.created_at)
      .Leaf("AssumeRolePolicyDocument", UrlEncode(role.trust_policy.value_or("")))
      .Leaf("MaxSessionDuration", std::to_string(role.max_session_seconds));
  BoundaryXml(xml, role);
  TagsXml(xml, role.tags);
  xml.End();
}

void KeyXml(XmlWriter& xml, std::string_view user, const identity::AccessKeyInfo& key) {
  xml.Leaf("UserName", user)
      .Leaf("AccessKeyId", key.id)
      .Leaf("Status", identity::KeyStatusName(key.status))
      .Leaf("CreateDate", key.created_at);
}

core::Result<const identity::NamedPolicy*> FindPolicy(const identity::Principal& p,
                                                      std::string_view name) {
  for (const identity::NamedPolicy& policy : p.policies) {
    if (policy.name == name) return &policy;
  }
  return core::NotFoundError("The " + std::string(identity::PrincipalTypeName(p.type)) +
                             " policy with name " + std::string(name) + " cannot be found.")
      .WithAwsType("NoSuchEntity");
}

enum class On { kUser, kRole, kPolicy, kUsers, kRoles, kPolicies };

struct Operation {
  std::string_view action;
  On on;  // what the resource ARN names
};

const std::map<std::string, Operation, std::less<>>& Operations() {
  static const auto* ops = new std::map<std::string, Operation, std::less<>>{
      {"CreateUser", {"iam:CreateUser", On::kUser}},
      {"GetUser", {"iam:GetUser", On::kUser}},
      {"ListUsers", {"iam:ListUsers", On::kUsers}},
      {"DeleteUser", {"iam:DeleteUser", On::kUser}},
      {"PutUserPolicy", {"iam:PutUserPolicy", On::kUser}},
      {"GetUserPolicy", {"iam:GetUserPolicy", On::kUser}},
      {"ListUserPolicies", {"iam:ListUserPolicies", On::kUser}},
      {"DeleteUserPolicy", {"iam:DeleteUserPolicy", On::kUser}},
      {"AttachUserPolicy", {"iam:AttachUserPolicy", On::kUser}},
      {"DetachUserPolicy", {"iam:DetachUserPolicy", On::kUser}},
      {"ListAttachedUserPolicies", {"iam:ListAttachedUserPolicies", On::kUser}},
      {"PutUserPermissionsBoundary", {"iam:PutUserPermissionsBoundary", On::kUser}},
      {"DeleteUserPermissionsBoundary", {"iam:DeleteUserPermissionsBoundary", On::kUser}},
      {"CreateAccessKey", {"iam:CreateAccessKey", On::kUser}},
      {"ListAccessKeys", {"iam:ListAccessKeys", On::kUser}},
      {"UpdateAccessKey", {"iam:UpdateAccessKey", On::kUser}},
      {"DeleteAccessKey", {"iam:DeleteAccessKey", On::kUser}},
      {"CreateRole", {"iam:CreateRole", On::kRole}},
      {"GetRole", {"iam:GetRole", On::kRole}},
      {"ListRoles", {"iam:ListRoles", On::kRoles}},
      {"DeleteRole", {"iam:DeleteRole", On::kRole}},
      {"PutRolePolicy", {"iam:PutRolePolicy", On::kRole}},
      {"GetRolePolicy", {"iam:GetRolePolicy", On::kRole}},
      {"ListRolePolicies", {"iam:ListRolePolicies", On::kRole}},
      {"DeleteRolePolicy", {"iam:DeleteRolePolicy", On::kRole}},
      {"AttachRolePolicy", {"iam:AttachRolePolicy", On::kRole}},
      {"DetachRolePolicy", {"iam:DetachRolePolicy", On::kRole}},
      {"ListAttachedRolePolicies", {"iam:ListAttachedRolePolicies", On::kRole}},
      {"PutRolePermissionsBoundary", {"iam:PutRolePermissionsBoundary", On::kRole}},
      {"DeleteRolePermissionsBoundary", {"iam:DeleteRolePermissionsBoundary", On::kRole}},
      {"CreatePolicy", {"iam:CreatePolicy", On::kPolicy}},
      {"GetPolicy", {"iam:GetPolicy", On::kPolicy}},
      {"GetPolicyVersion", {"iam:GetPolicyVersion", On::kPolicy}},
      {"ListPolicies", {"iam:ListPolicies", On::kPolicies}},
      {"DeletePolicy", {"iam:DeletePolicy", On::kPolicy}},
  };
  return *ops;
}

void ManagedPolicyXml(XmlWriter& xml, std::string_view element, const identity::ManagedPolicy& p) {
  xml.Begin(element)
      .Leaf("PolicyName", p.name)
      .Leaf("PolicyId", p.id)
      .Leaf("Arn", p.arn)
      .Leaf("Path", "/")
      .Leaf("DefaultVersionId", "v1")
      .Leaf("AttachmentCount", std::to_string(p.attachment_count))
      .Leaf("PermissionsBoundaryUsageCount", "0")
      .Leaf("IsAttachable", "true")
      .Leaf("Description", p.description)
      .Leaf("CreateDate", p.created_at)
      .Leaf("UpdateDate", p.updated_at)
      .End();
}

void AttachedXml(XmlWriter& xml, const identity::Principal& p) {
  xml.Begin("AttachedPolicies");
  for (const identity::ManagedPolicy& m : p.attached) {
    xml.Begin("member").Leaf("PolicyName", m.name).Leaf("PolicyArn", m.arn).End();
  }
  xml.End().Leaf("IsTruncated", "false");
}

}  // namespace

IamApi::IamApi(identity::Directory& directory) : directory_(directory) {}

core::Result<IamApi::Target> IamApi::Resolve(const QueryRequest& request,
                                             const identity::Caller& caller) const {
  auto it = Operations().find(request.action);
  if (it == Operations().end()) {
    return core::InvalidArgumentError("Could not find operation " + request.action + " for IAM")
        .WithAwsType("InvalidAction");
  }
  const Operation& op = it->second;
  Target target{.action = std::string(op.action), .resource = {}, .context_keys = {}};
  const std::string prefix = "arn:aws:iam::" + directory_.account_id() + ":";
  switch (op.on) {
    case On::kUsers:
      target.resource = prefix + "user/*";
      break;
    case On::kRoles:
      target.resource = prefix + "role/*";
      break;
    case On::kPolicies:
      target.resource = prefix + "policy/*";
      break;
    case On::kUser: {
      ASSIGN_OR_RETURN(const std::string name, UserNameOf(request, caller));
      RETURN_IF_ERROR(identity::ValidatePrincipalName(name).Annotate("UserName"));
      target.resource = directory_.UserArn(name);
      break;
    }
    case On::kRole: {
      ASSIGN_OR_RETURN(const std::string name, request.Require("RoleName"));
      RETURN_IF_ERROR(identity::ValidatePrincipalName(name).Annotate("RoleName"));
      target.resource = directory_.RoleArn(name);
      break;
    }
    case On::kPolicy: {
      if (request.action == "CreatePolicy") {
        ASSIGN_OR_RETURN(const std::string name, request.Require("PolicyName"));
        RETURN_IF_ERROR(identity::ValidatePrincipalName(name).Annotate("PolicyName"));
        target.resource = directory_.PolicyArn(name);
      } else {
        ASSIGN_OR_RETURN(target.resource, request.Require("PolicyArn"));
      }
      break;
    }
  }
  if (op.on == On::kUser || op.on == On::kRole) {
    if (auto policy_arn = request.Get("PolicyArn"))
      target.context_keys["iam:PolicyARN"] = *policy_arn;
    if (auto boundary = request.Get("PermissionsBoundary")) {
      target.context_keys["iam:PermissionsBoundary"] = *boundary;
    }
  }
  return target;
}

core::Status IamApi::Run(const QueryRequest& request, const identity::Caller& caller,
                         XmlWriter& xml) const {
  const std::string& op = request.action;
  const std::string result = op + "Result";
  auto user_name = [&] { return UserNameOf(request, caller); };

  if (op == "CreateUser") {
    ASSIGN_OR_RETURN(const std::string name, request.Require("UserName"));
    ASSIGN_OR_RETURN(identity::Principal user, directory_.CreateUser(name, request.Tags()));
    if (auto boundary = request.Get("PermissionsBoundary")) {
      if (core::Status set = directory_.SetBoundaryPolicy(PrincipalType::kUser, name, *boundary);
          !set.ok()) {
        directory_.Delete(PrincipalType::kUser, name).IgnoreError();  // all or nothing
        return set;
      }
      ASSIGN_OR_RETURN(user, directory_.Get(PrincipalType::kUser, name));
    }
    xml.Begin(result);
    UserXml(xml, "User", user);
    xml.End();
  } else if (op == "GetUser") {
    ASSIGN_OR_RETURN(const std::string name, user_name());
    ASSIGN_OR_RETURN(const identity::Principal user, directory_.Get(PrincipalType::kUser, name));
    xml.Begin(result);
    UserXml(xml, "User", user);
    xml.End();
  } else if (op == "ListUsers" || op == "ListRoles") {
    const bool users = op == "ListUsers";
    ASSIGN_OR_RETURN(const auto list,
                     directory_.List(users ? PrincipalType::kUser : PrincipalType::kRole));
    xml.Begin(result).Begin(users ? "Users" : "Roles");
    for (const identity::Principal& p : list) {
      if (users) {
        UserXml(xml, "member", p);
      } else {
        RoleXml(xml, "member", p);
      }
    }
    xml.End().Leaf("IsTruncated", "false").End();
  } else if (op == "DeleteUser") {
    ASSIGN_OR_RETURN(const std::string name, request.Require("UserName"));
    RETURN_IF_ERROR(directory_.Delete(PrincipalType::kUser, name));
  } else if (op == "PutUserPolicy" || op == "PutRolePolicy") {
    const PrincipalType type = op == "PutUserPolicy" ? PrincipalType::kUser : PrincipalType::kRole;
    ASSIGN_OR_RETURN(const std::string name,
                     request.Require(type == PrincipalType::kUser ? "UserName" : "RoleName"));
    ASSIGN_OR_RETURN(const std::string policy_name, request.Require("PolicyName"));
    ASSIGN_OR_RETURN(const std::string document, request.Require("PolicyDocument"));
    RETURN_IF_ERROR(PolicyError(directory_.PutPolicy(type, name, policy_name, document)));
  } else if (op == "GetUserPolicy" || op == "GetRolePolicy") {
    const PrincipalType type = op == "GetUserPolicy" ? PrincipalType::kUser : PrincipalType::kRole;
    const char* name_param = type == PrincipalType::kUser ? "UserName" : "RoleName";
    ASSIGN_OR_RETURN(const std::string name, request.Require(name_param));
    ASSIGN_OR_RETURN(const std::string policy_name, request.Require("PolicyName"));
    ASSIGN_OR_RETURN(const identity::Principal p, directory_.Get(type, name));
    ASSIGN_OR_RETURN(const identity::NamedPolicy* policy, FindPolicy(p, policy_name));
    xml.Begin(result)
        .Leaf(name_param, name)
        .Leaf("PolicyName", policy->name)
        .Leaf("PolicyDocument", UrlEncode(policy->document))
        .End();
  } else if (op == "ListUserPolicies" || op == "ListRolePolicies") {
    const PrincipalType type =
        op == "ListUserPolicies" ? PrincipalType::kUser : PrincipalType::kRole;
    ASSIGN_OR_RETURN(const std::string name,
                     request.Require(type == PrincipalType::kUser ? "UserName" : "RoleName"));
    ASSIGN_OR_RETURN(const identity::Principal p, directory_.Get(type, name));
    xml.Begin(result).Begin("PolicyNames");
    for (const identity::NamedPolicy& policy : p.policies) xml.Leaf("member", policy.name);
    xml.End().Leaf("IsTruncated", "false").End();
  } else if (op == "DeleteUserPolicy" || op == "DeleteRolePolicy") {
    const PrincipalType type =
        op == "DeleteUserPolicy" ? PrincipalType::kUser : PrincipalType::kRole;
    ASSIGN_OR_RETURN(const std::string name,
                     request.Require(type == PrincipalType::kUser ? "UserName" : "RoleName"));
    ASSIGN_OR_RETURN(const std::string policy_name, request.Require("PolicyName"));
    RETURN_IF_ERROR(directory_.DeletePolicy(type, name, policy_name));
  } else if (op == "CreateAccessKey") {
    ASSIGN_OR_RETURN(const std::string name, user_name());
    ASSIGN_OR_RETURN(const identity::AccessKeyWithSecret key, directory_.CreateAccessKey(name));
    xml.Begin(result).Begin("AccessKey");
    KeyXml(xml, name, key.info);
    xml.Leaf("SecretAccessKey", key.secret.Reveal()).End().End();
  } else if (op == "ListAccessKeys") {
    ASSIGN_OR_RETURN(const std::string name, user_name());
    ASSIGN_OR_RETURN(const auto keys, directory_.ListAccessKeys(name));
    xml.Begin(result).Begin("AccessKeyMetadata");
    for (const identity::AccessKeyInfo& key : keys) {
      xml.Begin("member");
      KeyXml(xml, name, key);
      xml.End();
    }
    xml.End().Leaf("IsTruncated", "false").End();
  } else if (op == "UpdateAccessKey") {
    ASSIGN_OR_RETURN(const std::string name, user_name());
    ASSIGN_OR_RETURN(const std::string key_id, request.Require("AccessKeyId"));
    ASSIGN_OR_RETURN(const std::string status, request.Require("Status"));
    if (status != "Active" && status != "Inactive") {
      return Validation("Status must be Active or Inactive");
    }
    RETURN_IF_ERROR(directory_.SetAccessKeyStatus(
        name, key_id,
        status == "Active" ? identity::KeyStatus::kActive : identity::KeyStatus::kInactive));
  } else if (op == "DeleteAccessKey") {
    ASSIGN_OR_RETURN(const std::string name, user_name());
    ASSIGN_OR_RETURN(const std::string key_id, request.Require("AccessKeyId"));
    RETURN_IF_ERROR(directory_.DeleteAccessKey(name, key_id));
  } else if (op == "CreateRole") {
    ASSIGN_OR_RETURN(const std::string name, request.Require("RoleName"));
    ASSIGN_OR_RETURN(const std::string trust, request.Require("AssumeRolePolicyDocument"));
    ASSIGN_OR_RETURN(const std::optional<std::int64_t> max_session,
                     request.GetInt("MaxSessionDuration"));
    auto role = directory_.CreateRole(name, trust, max_session.value_or(3600), request.Tags());
    if (!role.ok()) return PolicyError(role.status());
    if (auto boundary = request.Get("PermissionsBoundary")) {
      if (core::Status set = directory_.SetBoundaryPolicy(PrincipalType::kRole, name, *boundary);
          !set.ok()) {
        directory_.Delete(PrincipalType::kRole, name).IgnoreError();  // all or nothing
        return set;
      }
      role = directory_.Get(PrincipalType::kRole, name);
      if (!role.ok()) return role.status();
    }
    xml.Begin(result);
    RoleXml(xml, "Role", *role);
    xml.End();
  } else if (op == "GetRole") {
    ASSIGN_OR_RETURN(const std::string name, request.Require("RoleName"));
    ASSIGN_OR_RETURN(const identity::Principal role, directory_.Get(PrincipalType::kRole, name));
    xml.Begin(result);
    RoleXml(xml, "Role", role);
    xml.End();
  } else if (op == "DeleteRole") {
    ASSIGN_OR_RETURN(const std::string name, request.Require("RoleName"));
    RETURN_IF_ERROR(directory_.Delete(PrincipalType::kRole, name));
  } else if (op == "AttachUserPolicy" || op == "AttachRolePolicy" || op == "DetachUserPolicy" ||
             op == "DetachRolePolicy") {
    const PrincipalType type =
        op.find("User") != std::string::npos ? PrincipalType::kUser : PrincipalType::kRole;
    ASSIGN_OR_RETURN(const std::string name,
                     request.Require(type == PrincipalType::kUser ? "UserName" : "RoleName"));
    ASSIGN_OR_RETURN(const std::string policy_arn, request.Require("PolicyArn"));
    RETURN_IF_ERROR(op.starts_with("Attach") ? directory_.AttachPolicy(type, name, policy_arn)
                                             : directory_.DetachPolicy(type, name, policy_arn));
  } else if (op == "ListAttachedUserPolicies" || op == "ListAttachedRolePolicies") {
    const PrincipalType type =
        op == "ListAttachedUserPolicies" ? PrincipalType::kUser : PrincipalType::kRole;
    ASSIGN_OR_RETURN(const std::string name,
                     request.Require(type == PrincipalType::kUser ? "UserName" : "RoleName"));
    ASSIGN_OR_RETURN(const identity::Principal p, directory_.Get(type, name));
    xml.Begin(result);
    AttachedXml(xml, p);
    xml.End();
  } else if (op == "PutUserPermissionsBoundary" || op == "PutRolePermissionsBoundary" ||
             op == "DeleteUserPermissionsBoundary" || op == "DeleteRolePermissionsBoundary") {
    const PrincipalType type =
        op.find("User") != std::string::npos ? PrincipalType::kUser : PrincipalType::kRole;
    ASSIGN_OR_RETURN(const std::string name,
                     request.Require(type == PrincipalType::kUser ? "UserName" : "RoleName"));
    std::optional<std::string> boundary;
    if (op.starts_with("Put")) {
      ASSIGN_OR_RETURN(boundary, request.Require("PermissionsBoundary"));
    }
    RETURN_IF_ERROR(directory_.SetBoundaryPolicy(
        type, name, boundary ? std::optional<std::string_view>(*boundary) : std::nullopt));
  } else if (op == "CreatePolicy") {
    ASSIGN_OR_RETURN(const std::string name, request.Require("PolicyName"));
    ASSIGN_OR_RETURN(const std::string document, request.Require("PolicyDocument"));
    auto policy =
        directory_.CreateManagedPolicy(name, document, request.Get("Description").value_or(""));
    if (!policy.ok()) return PolicyError(policy.status());
    xml.Begin(result);
    ManagedPolicyXml(xml, "Policy", *policy);
    xml.End();
  } else if (op == "GetPolicy") {
    ASSIGN_OR_RETURN(const std::string arn, request.Require("PolicyArn"));
    ASSIGN_OR_RETURN(const identity::ManagedPolicy policy, directory_.GetManagedPolicy(arn));
    xml.Begin(result);
    ManagedPolicyXml(xml, "Policy", policy);
    xml.End();
  } else if (op == "GetPolicyVersion") {
    ASSIGN_OR_RETURN(const std::string arn, request.Require("PolicyArn"));
    ASSIGN_OR_RETURN(const std::string version, request.Require("VersionId"));
    ASSIGN_OR_RETURN(const identity::ManagedPolicy policy, directory_.GetManagedPolicy(arn));
    if (version != "v1") {
      return core::NotFoundError("Policy " + arn + " version " + version + " does not exist.")
          .WithAwsType("NoSuchEntity");
    }
    xml.Begin(result)
        .Begin("PolicyVersion")
        .Leaf("Document", UrlEncode(policy.document))
        .Leaf("VersionId", "v1")
        .Leaf("IsDefaultVersion", "true")
        .Leaf("CreateDate", policy.created_at)
        .End()
        .End();
  } else if (op == "ListPolicies") {
    ASSIGN_OR_RETURN(const auto policies, directory_.ListManagedPolicies());
    xml.Begin(result).Begin("Policies");
    for (const identity::ManagedPolicy& p : policies) ManagedPolicyXml(xml, "member", p);
    xml.End().Leaf("IsTruncated", "false").End();
  } else if (op == "DeletePolicy") {
    ASSIGN_OR_RETURN(const std::string arn, request.Require("PolicyArn"));
    RETURN_IF_ERROR(directory_.DeleteManagedPolicy(arn));
  } else {
    return core::InvalidArgumentError("Could not find operation " + op + " for IAM")
        .WithAwsType("InvalidAction");
  }
  return core::Status::Ok();
}

}  // namespace moatless::services
