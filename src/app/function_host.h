// FunctionHost: the function runtime wired to the rest of the platform.
//
//  - The registry (store) holds every published function version; the Lambda Invoke API on the
//    service endpoint (services::LambdaApi, attached to the AwsEndpoint with a pool of its own)
//    resolves, authorises and runs invocations; Event invocations go through the durable event
//    queue.
//  - Each execution environment's role credentials come from STS (CredentialsForEnvironment: a
//    session of the function's role, bound to that environment, issuance audited), and the
//    platform's AWS service endpoint answers on every environment's own listener, with the
//    environment as the request's origin, so the credentials work there and nowhere else.
//  - Functions that declare egress reach their allowlist through the egress proxy; every refusal
//    is logged ("egress refused").
//  - A function's output is logged line by line with its request id; every invocation's REPORT is
//    logged and counted in moatless_function_* metrics (FunctionMetrics). With function_logs, each
//    invocation's lines also go to the function's own log file (app/log_files.h).
//
// Built by the composition root after the service endpoint and before the servers start serving;
// destroy it after they have stopped and before the endpoint and the IoPool (its listeners need
// the pool running). Thread-safe.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "app/function_metrics.h"
#include "app/log_files.h"
#include "core/env.h"
#include "http/io_pool.h"
#include "identity/sts.h"
#include "observe/audit_log.h"
#include "observe/logger.h"
#include "observe/metrics.h"
#include "runtime/egress_proxy.h"
#include "runtime/event_queue.h"
#include "runtime/function_registry.h"
#include "runtime/invoker.h"
#include "runtime/runtime_api.h"
#include "sandbox/sandbox.h"
#include "services/aws_endpoint.h"
#include "services/lambda_api.h"
#include "store/database.h"

namespace moatless::app {

struct FunctionSettings {
  runtime::ConcurrencyLimits concurrency;
  std::chrono::milliseconds freeze_after{1000};
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  std::size_t event_workers = 2;
  std::vector<std::chrono::milliseconds> event_retry_delays{std::chrono::minutes(1),
                                                            std::chrono::minutes(2)};
};

class FunctionHost final : public services::FunctionBackend {
 public:
  struct Deps {
    sandbox::Sandboxer& sandboxer;
    http::IoPool& io;  // serves the Runtime API listeners
    core::Env& env;
    identity::Sts& sts;
    services::AwsEndpoint& aws;
    observe::AuditLog& audit;
    store::Database& db;
    observe::Logger log;
    observe::MetricsRegistry* metrics = nullptr;   // null: none recorded
    boost::asio::thread_pool* blocking = nullptr;  // the service endpoint's pool
    FunctionLogs* function_logs = nullptr;         // null: no per-function log files
    std::string runtimes_dir;
    std::string region = "local";
    std::string account_id = "000000000000";
    FunctionSettings settings;
  };
  explicit FunctionHost(Deps deps);
  ~FunctionHost() override;
  FunctionHost(const FunctionHost&) = delete;
  FunctionHost& operator=(const FunctionHost&) = delete;

  runtime::FunctionRegistry& registry() { return *registry_; }
  runtime::Invoker& invoker() { return *invoker_; }
  runtime::EventQueue& events() { return *events_; }

  // services::FunctionBackend
  core::Result<runtime::FunctionConfig> Resolve(std::string_view name,
                                                std::string_view qualifier) override;
  core::Result<runtime::InvokeResult> Invoke(const runtime::FunctionConfig& function,
                                             std::string payload, std::string request_id,
                                             std::string client_context = "") override;
  core::Status Enqueue(std::string_view name, std::string_view qualifier, std::string payload,
                       std::string request_id) override;

 private:
  core::Result<runtime::ContainerCredentials> IssueCredentials(
      const runtime::FunctionConfig& function, const std::string& environment_id);
  void Record(const runtime::FunctionConfig& function, const runtime::InvokeResult& result);

  Deps deps_;
  std::unique_ptr<FunctionMetrics> metrics_;  // null without a registry
  std::unique_ptr<runtime::FunctionRegistry> registry_;
  std::unique_ptr<runtime::RuntimeApi> api_;
  std::unique_ptr<runtime::EgressProxy> egress_;
  std::unique_ptr<runtime::Invoker> invoker_;
  std::unique_ptr<runtime::EventQueue> events_;
  std::unique_ptr<services::LambdaApi> lambda_;
  std::unique_ptr<boost::asio::thread_pool> invocations_;  // the Lambda API's requests
};

}  // namespace moatless::app
