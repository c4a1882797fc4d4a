// AwsEndpoint: the single HTTP entry point of the AWS-compatible service APIs. Every request is
// authenticated (SigV4, identity::Authenticator) before anything else; the credential scope's
// service selects the service; the protocol layer decodes the operation; the operation is
// authorised (by the policy engine, or for STS by its own documented rules) before its handler
// runs; every decision, allowed or denied, is appended to the audit log with the principal,
// action, resource, source address and deciding statements; errors are answered in the
// protocol's AWS shape with the AWS error code.
//
// Served today, over the Query protocol: STS (GetCallerIdentity, AssumeRole, GetSessionToken) and
// IAM administration (iam_api.h), every IAM operation authorised by the policy engine against
// the caller's identity policies, boundary and session policy.
//
// Handle() is synchronous and thread-safe (its dependencies are); it may block on the audit log's
// durable append. The endpoint must outlive the servers that call it.
#pragma once

#include <string>
#include <string_view>

#include "http/types.h"
#include "identity/authenticator.h"
#include "identity/sts.h"
#include "observe/audit_log.h"
#include "services/iam_api.h"
#include "services/query_protocol.h"

namespace moatless::services {

class AwsEndpoint {
 public:
  struct Deps {
    identity::Authenticator& authenticator;
    identity::Sts& sts;
    IamApi& iam;
    observe::AuditLog& audit;
    const core::Clock& clock;
    std::string region;  // for aws:RequestedRegion
  };
  explicit AwsEndpoint(Deps deps);

  http::Response Handle(const http::Request& request, const http::RequestContext& context);

 private:
  http::Response HandleSts(const http::Request& request, const http::RequestContext& context,
                           const identity::Caller& caller, const identity::RequestOrigin& origin,
                           const QueryRequest& query);
  http::Response HandleIam(const http::Request& request, const http::RequestContext& context,
                           const identity::Caller& caller, const identity::RequestOrigin& origin,
                           const QueryRequest& query);
  // Appends the audit record of a decision; a failed append fails the request (nothing is done
  // that is not recorded).
  core::Status Audit(const http::RequestContext& context, std::string actor, std::string action,
                     std::string resource, observe::AuditOutcome outcome, std::string reason);

  Deps deps_;
};

}  // namespace moatless::services
