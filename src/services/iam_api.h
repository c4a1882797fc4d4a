// IamApi: the IAM-style administration operations over the Query protocol (namespace
// https://iam.amazonaws.com/doc/2010-05-08/), on identity::Directory.
//
//   users:        CreateUser, GetUser, ListUsers, DeleteUser
//   inline policies: PutUserPolicy, GetUserPolicy, ListUserPolicies, DeleteUserPolicy,
//                 PutRolePolicy, GetRolePolicy, ListRolePolicies, DeleteRolePolicy
//   access keys:  CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey
//   roles:        CreateRole, GetRole, ListRoles, DeleteRole
//   managed policies: CreatePolicy, GetPolicy, GetPolicyVersion, ListPolicies, DeletePolicy,
//                 Attach/Detach/ListAttached User|Role Policies,
//                 Put/Delete User|Role PermissionsBoundary
//
// The condition keys IAM defines for these operations are set for the decision:
// iam:PolicyARN (attach/detach) and iam:PermissionsBoundary (boundary operations, and CreateUser /
// CreateRole with a PermissionsBoundary), so that a policy can let a deployer create principals
// only under a given boundary — the standard guard against privilege escalation.
//
// Each operation names the IAM action and the resource ARN it acts on (Find + Operation), so the
// endpoint authorises it with the policy engine before Run is called; Run never sees an
// unauthorised request. Responses and errors follow IAM's XML shapes and error codes
// (NoSuchEntity, EntityAlreadyExists, LimitExceeded, MalformedPolicyDocument, ValidationError).
// Stateless apart from the Directory; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/status.h"
#include "identity/authenticator.h"
#include "identity/directory.h"
#include "services/query_protocol.h"

namespace moatless::services {

inline constexpr std::string_view kIamNamespace = "https://iam.amazonaws.com/doc/2010-05-08/";

class IamApi {
 public:
  explicit IamApi(identity::Directory& directory);

  // The IAM action ("iam:CreateUser") and the resource ARN an operation acts on; InvalidAction
  // for an unknown operation, MissingParameter / ValidationError for bad input.
  struct Target {
    std::string action;
    std::string resource;
    std::map<std::string, std::string> context_keys;  // iam:PolicyARN, iam:PermissionsBoundary
  };
  core::Result<Target> Resolve(const QueryRequest& request, const identity::Caller& caller) const;

  // Runs an authorised operation; returns the response document (without ResponseMetadata, which
  // the caller appends before finishing the document).
  core::Status Run(const QueryRequest& request, const identity::Caller& caller,
                   XmlWriter& xml) const;

 private:
  identity::Directory& directory_;
};

}  // namespace moatless::services
