// FunctionHost: the function runtime wired to the rest of the platform — each execution
// environment's role credentials come from STS (CredentialsForEnvironment: a session of the
// function's role, bound to that environment, issuance audited), and the platform's AWS service
// endpoint answers on every environment's own listener, with the environment as the request's
// origin, so the credentials work there and nowhere else.
//
// Built by the composition root after the service endpoint; destroy it before them. Thread-safe as
// the Invoker is.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <string>

#include "core/env.h"
#include "http/io_pool.h"
#include "identity/sts.h"
#include "observe/audit_log.h"
#include "runtime/invoker.h"
#include "runtime/runtime_api.h"
#include "sandbox/sandbox.h"
#include "services/aws_endpoint.h"

namespace moatless::app {

class FunctionHost {
 public:
  struct Deps {
    sandbox::Sandboxer& sandboxer;
    http::IoPool& io;  // serves the Runtime API listeners
    core::Env& env;
    identity::Sts& sts;
    services::AwsEndpoint& aws;
    observe::AuditLog& audit;
    boost::asio::thread_pool* blocking = nullptr;  // the service endpoint's pool
    std::string runtimes_dir;
    std::string region = "local";
    std::string account_id = "000000000000";
  };
  explicit FunctionHost(Deps deps);
  ~FunctionHost();
  FunctionHost(const FunctionHost&) = delete;
  FunctionHost& operator=(const FunctionHost&) = delete;

  runtime::Invoker& invoker() { return *invoker_; }

 private:
  core::Result<runtime::ContainerCredentials> IssueCredentials(
      const runtime::FunctionConfig& function, const std::string& environment_id);

  Deps deps_;
  std::unique_ptr<runtime::RuntimeApi> api_;
  std::unique_ptr<runtime::Invoker> invoker_;
};

}  // namespace moatless::app
