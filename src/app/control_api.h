// ControlApi: the daemon's own HTTP surface on the control listener — /healthz (liveness),
// /readyz (readiness: the store answers, the audit log can still write, not draining) and
// /metrics (Prometheus; bearer token or loopback clients only), the AWS-compatible service APIs at
// / (services::AwsEndpoint: SigV4, STS, IAM), Lambda's Invoke under /2015-03-31/functions/ and the
// app API under /moatless/v1/ (manifest/app_api.h) — plus the instrumentation every listener
// shares: per-route request metrics, connection-level reject counters and the access log.
//
// Build it once before serving; Handler()/AccessHook() results may then be called from any I/O
// thread concurrently (the router is read-only, metrics are atomic, the logger is thread-safe).
// The ControlApi must outlive every server using its handlers.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <string>

#include "core/secret_bytes.h"
#include "http/router.h"
#include "http/server_options.h"
#include "http/types.h"
#include "observe/audit_log.h"
#include "observe/logger.h"
#include "observe/metrics.h"
#include "services/aws_endpoint.h"
#include "store/database.h"

namespace moatless::app {

class ControlApi {
 public:
  struct Deps {
    const observe::Logger& log;
    observe::MetricsRegistry& metrics;
    observe::AuditLog& audit;
    store::Database& db;
    bool access_log = true;
    // The AWS-compatible service APIs (SigV4), served at POST / and GET / when given.
    services::AwsEndpoint* aws = nullptr;
    // Where the service APIs' work runs: it may block on the store, so it leaves the I/O threads
    // free (waiting for durable audit records holds no thread). Null: inline.
    boost::asio::thread_pool* blocking = nullptr;
    // /metrics: null serves it to loopback clients only (others get 403); otherwise every client
    // must present it as `Authorization: Bearer TOKEN` (401 without, compared in constant time).
    const core::SecretBytes* metrics_token = nullptr;
    // false: /metrics is served by MetricsHandler() on a listener of its own, not by Handler().
    bool metrics_on_control = true;
  };
  explicit ControlApi(Deps deps);
  ControlApi(const ControlApi&) = delete;
  ControlApi& operator=(const ControlApi&) = delete;

  // The control listener's handler.
  http::Handler Handler(std::string listener);
  // A metrics listener's handler: /metrics and /healthz only.
  http::Handler MetricsHandler(std::string listener);
  // Access log and reject counters for a listener's Server::on_access.
  std::function<void(const http::AccessRecord&)> AccessHook(std::string listener);
  void SetReady(bool ready);

 private:
  // A coroutine: `listener` is taken by value because a reference parameter would outlive the
  // caller's temporary once the coroutine suspends. `req` and `ctx` are owned by the server for
  // the whole exchange.
  http::asio::awaitable<http::Response> Instrumented(const http::Router& router,
                                                     std::string listener, http::Request& req,
                                                     http::RequestContext& ctx);
  http::Response Healthz(const http::RequestContext& ctx) const;
  http::Response Readyz(const http::RequestContext& ctx) const;
  http::Response Metrics(const http::Request& req, const http::RequestContext& ctx) const;

  Deps deps_;
  http::Router router_;
  http::Router metrics_router_;
  std::atomic<bool> ready_{false};
  observe::CounterFamily& requests_;
  observe::HistogramFamily& durations_;
  observe::CounterFamily& rejects_;
  observe::GaugeFamily& ready_gauge_;
};

}  // namespace moatless::app
