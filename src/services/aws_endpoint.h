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
// the caller's identity policies, boundary and session policy; over REST-JSON, once attached,
// Lambda's Invoke (lambda_api.h: requests under /2015-03-31/functions/), authorised as
// lambda:InvokeFunction on the function's ARN and run on the pool attached with it; and one more
// attached REST-JSON service (rest_service.h; the app API under /moatless/), authorised on the
// action and resource it decodes; over JSON 1.1 (`X-Amz-Target: secretsmanager.*`), Secrets
// Manager (secrets_api.h), each operation authorised by the caller's policies together with the
// secret's resource policy.
//
// Every response waits for the request's audit records to be durable (a decision is on disk before
// anyone learns of it); operations that change stored state wait for the allowed decision's record
// before they run. Serve() does the waiting without holding a thread; Handle() blocks. Both are
// thread-safe (the dependencies are). The endpoint must outlive the servers that call it.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/types.h"
#include "identity/authenticator.h"
#include "identity/sts.h"
#include "observe/audit_log.h"
#include "observe/metrics.h"
#include "services/iam_api.h"
#include "services/json_protocol.h"
#include "services/lambda_api.h"
#include "services/query_protocol.h"
#include "services/rest_service.h"
#include "services/secrets_api.h"

namespace moatless::services {

inline constexpr std::string_view kStsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/";

class AwsEndpoint {
 public:
  struct Deps {
    identity::Authenticator& authenticator;
    identity::Sts& sts;
    IamApi& iam;
    observe::AuditLog& audit;
    const core::Clock& clock;
    std::string region;                           // for aws:RequestedRegion
    SecretsApi* secrets = nullptr;                // null: Secrets Manager requests are refused
    observe::MetricsRegistry* metrics = nullptr;  // null: no decision metrics
  };
  explicit AwsEndpoint(Deps deps);

  // Serves one request: the work runs on `blocking` (inline when null; it may read and write the
  // store), then the coroutine waits, holding no thread, until the request's audit records are
  // durable and releases the response; if they cannot be made durable the answer is that error.
  // `request` and `context` must live until the coroutine completes.
  http::asio::awaitable<http::Response> Serve(http::Request& request, http::RequestContext& context,
                                              boost::asio::thread_pool* blocking);
  // The same, blocking the calling thread.
  http::Response Handle(const http::Request& request, const http::RequestContext& context);

  // Serves the Lambda API from now on; its requests run on `pool` (invocations block a thread
  // for as long as they run). Until then, and after DetachLambda, they are answered 503. The
  // owner of `lambda` and `pool` detaches them, then lets the pool finish its work, before
  // destroying them.
  void AttachLambda(LambdaApi* lambda, boost::asio::thread_pool* pool);
  void DetachLambda() { AttachLambda(nullptr, nullptr); }

  // Serves another REST-JSON service (the app API, the observability API) from now on: requests
  // it Handles() are authenticated with its signing name, authorised on the action and resource it
  // decodes, and run on the blocking pool. The first attached service that Handles() a request
  // gets it. At most kMaxServices at once (a fatal check). DetachService stops serving it (its
  // requests are then answered like unknown ones); the owner detaches it before destroying it.
  static constexpr std::size_t kMaxServices = 8;
  void AttachService(RestJsonService* service);
  void DetachService(RestJsonService* service);

 private:
  // One request on its way through the endpoint.
  struct Exchange {
    const http::Request& request;
    const http::RequestContext& context;
    std::uint64_t audit_seq = 0;          // the last audit record appended; 0: none
    std::string_view ns = kStsNamespace;  // the XML namespace of the service's errors
    bool rest_json = false;               // errors in REST-JSON shape (Lambda), not Query XML
    bool json = false;                    // errors in JSON 1.1 shape (Secrets Manager)
    LambdaApi* lambda = nullptr;          // the Lambda API this request uses, if attached
    RestJsonService* service = nullptr;   // the attached service this request is for, if any
    // The access key id the request is signed with, once read: its records carry it as the
    // sensitive field access_key_id (only its HMAC is stored; `moatless audit hash` finds it).
    std::string access_key_id;
  };
  // What the work produced: the response, to be released once record audit_seq is durable.
  struct Answer {
    http::Response response;
    std::uint64_t audit_seq = 0;
    std::string_view ns = kStsNamespace;
    bool rest_json = false;
    bool json = false;
  };
  class SecretsScope;
  Answer Process(const http::Request& request, const http::RequestContext& context);
  http::Response Dispatch(Exchange& ex);
  http::Response HandleSts(Exchange& ex, const identity::Caller& caller,
                           const identity::RequestOrigin& origin, const QueryRequest& query);
  http::Response HandleIam(Exchange& ex, const identity::Caller& caller,
                           const identity::RequestOrigin& origin, const QueryRequest& query);
  http::Response HandleSecrets(Exchange& ex, const identity::Caller& caller,
                               const identity::RequestOrigin& origin, const JsonRequest& call);
  http::Response HandleLambda(Exchange& ex, const identity::Caller& caller,
                              const identity::RequestOrigin& origin,
                              const LambdaApi::Target& target);
  // Evaluates the caller's policies for action on resource; records the decision and, when it
  // allows, waits until the record is durable (the request has effects of its own). The error
  // (AccessDeniedException, already audited) when it does not allow.
  core::Status AuthoriseRest(Exchange& ex, const identity::Caller& caller,
                             const identity::RequestOrigin& origin, const std::string& action,
                             const std::string& resource);
  // The error in the exchange's protocol.
  static http::Response ErrorFor(const Exchange& ex, const core::Status& status);
  // Sequences the audit record of a decision (Exchange::audit_seq); a failure fails the request
  // (nothing is done that is not recorded).
  core::Status Audit(Exchange& ex, std::string actor, std::string action, std::string resource,
                     observe::AuditOutcome outcome, std::string reason,
                     std::map<std::string, std::string> fields = {});

  Deps deps_;
  // Read once per request (a request that began before DetachLambda finishes with what it read).
  std::atomic<LambdaApi*> lambda_{nullptr};
  std::atomic<boost::asio::thread_pool*> lambda_pool_{nullptr};
  std::array<std::atomic<RestJsonService*>, kMaxServices> services_{};
  observe::CounterFamily* decisions_ = nullptr;
};

}  // namespace moatless::services
