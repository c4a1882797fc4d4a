// GatewayHost: the public gateway wired to the rest of the platform — the APIs the deployer
// stored (loaded at start, replaced after every deployment through Apply), API keys and usage
// plans on the platform store, SigV4 through the platform's authenticator, decisions in the audit
// log, and functions run by the FunctionHost once it exists (until then, and on hosts that cannot
// isolate functions, integrations answer 503).
//
// It owns the gateway's blocking pool and a thread that flushes quota counts every
// `flush_interval` (and once more on destruction), so a restart keeps them; a crash loses at most
// the counts of one interval. Built by the composition root before the deployer (which reports
// to Apply) and destroyed after the gateway's server has stopped. Thread-safe.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "app/function_host.h"
#include "core/env.h"
#include "gateway/api_keys.h"
#include "gateway/gateway.h"
#include "gateway/usage_meter.h"
#include "identity/authenticator.h"
#include "observe/audit_log.h"
#include "observe/logger.h"
#include "observe/metrics.h"
#include "store/database.h"

namespace moatless::app {

class GatewayHost final : private gateway::Functions {
 public:
  struct Deps {
    store::Database& db;
    core::Env& env;
    identity::Authenticator& authenticator;
    observe::AuditLog& audit;
    observe::Logger log;
    observe::MetricsRegistry* metrics = nullptr;
    gateway::GatewayOptions options;
    int threads = 32;
    std::chrono::milliseconds flush_interval{1000};
  };
  explicit GatewayHost(Deps deps);
  ~GatewayHost() override;
  GatewayHost(const GatewayHost&) = delete;
  GatewayHost& operator=(const GatewayHost&) = delete;

  // Loads the WAF rules (FailedPrecondition when they are missing or broken: start-up must fail
  // rather than serve without them), then every stored API; an API that does not load is logged
  // and not served (the others are). Call once, before serving.
  core::Status Start();

  // From now on integrations run on `functions` (null: 503). Call before serving.
  void SetFunctions(FunctionHost* functions) { functions_ = functions; }
  // The deployer's on_api_applied.
  void Apply(const gateway::ApiConfig& config);

  http::Handler Handler() { return gateway_->AsHandler(); }
  // Lets the requests on the gateway's pool finish (their functions must still exist) and writes
  // the quota counts. Call after the gateway's server stopped; the destructor does it otherwise.
  void Stop();
  gateway::ApiKeyStore& keys() { return keys_; }

 private:
  core::Result<runtime::InvokeResult> Invoke(std::string_view function, std::int64_t version,
                                             std::string payload, std::string request_id) override;
  void FlushLoop();

  Deps deps_;
  std::atomic<FunctionHost*> functions_{nullptr};
  gateway::ApiKeyStore keys_;
  gateway::UsageMeter usage_;
  boost::asio::thread_pool pool_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread flusher_;
};

}  // namespace moatless::app
