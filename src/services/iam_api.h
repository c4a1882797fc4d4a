// IamApi: the IAM-style administration operations over the Query protocol (namespace
// https://iam.amazonaws.com/doc/2010-05-08/), on identity::Directory.
//
//   users:        CreateUser, GetUser, ListUsers, DeleteUser
//   inline policies: PutUserPolicy, GetUserPolicy, ListUserPolicies, DeleteUserPolicy,
//                 PutRolePolicy, GetRolePolicy, ListRolePolicies, DeleteRolePolicy
//   access keys:  CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey
//   roles:        CreateRole, GetRole, ListRoles, DeleteRole
//
// Each operation names the IAM action and the resource ARN it acts on (Find + Operation), so the
// endpoint authorises it with the policy engine before Run is called; Run never sees an
// unauthorised request. Responses and errors follow IAM's XML shapes and error codes
// (NoSuchEntity, EntityAlreadyExists, LimitExceeded, MalformedPolicyDocument, ValidationError).
// Stateless apart from the Directory; thread-safe.
#pragma once

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
