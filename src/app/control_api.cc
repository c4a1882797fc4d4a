#include "app/control_api.h"

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <chrono>

#include "http/status_response.h"

namespace moatless::app {
namespace {

// The method label: known verbs only, so a client cannot mint label values.
std::string_view MethodLabel(const http::Request& req) {
  return req.method() == http::Verb::unknown ? std::string_view("OTHER")
                                             : std::string_view(req.method_string());
}

// "127.0.0.1:5000", "[::1]:5000", "unix": a client on this host.
bool IsLoopbackClient(std::string_view remote) {
  return remote.starts_with("127.") || remote.starts_with("[::1]:") || remote == "unix" ||
         remote.starts_with("[::ffff:127.");
}

http::Handler Wrap(std::function<http::Response(const http::RequestContext&)> fn) {
  return [fn = std::move(fn)](http::Request&,
                              http::RequestContext& ctx) -> http::asio::awaitable<http::Response> {
    co_return fn(ctx);
  };
}

}  // namespace

ControlApi::ControlApi(Deps deps)
    : deps_(deps),
      requests_(deps.metrics.Counter("moatless_http_requests_total",
                                     "HTTP requests answered, by listener, method, route and code.",
                                     {"listener", "method", "route", "code"})),
      durations_(deps.metrics.Histogram("moatless_http_request_duration_seconds",
                                        "Time from a request's arrival to its response.",
                                        {"listener", "route"})),
      rejects_(
          deps.metrics.Counter("moatless_http_connections_rejected_total",
                               "Requests or connections refused before any handler ran, by reason.",
                               {"listener", "reason"})),
      ready_gauge_(deps.metrics.Gauge("moatless_ready", "1 while /readyz answers 200.")) {
  const auto add = [](http::Router& router, std::string_view method, std::string_view pattern,
                      http::Handler handler) {
    const core::Status status = router.Add(method, pattern, std::move(handler));
    MOATLESS_CHECK(status.ok(), status.ToString());
  };
  add(router_, "GET", "/healthz", Wrap([this](const auto& ctx) { return Healthz(ctx); }));
  add(router_, "GET", "/readyz", Wrap([this](const auto& ctx) { return Readyz(ctx); }));
  const http::Handler metrics = [this](http::Request& req, http::RequestContext& ctx)
      -> http::asio::awaitable<http::Response> { co_return Metrics(req, ctx); };
  if (deps_.metrics_on_control) add(router_, "GET", "/metrics", metrics);
  add(metrics_router_, "GET", "/metrics", metrics);
  add(metrics_router_, "GET", "/healthz", Wrap([this](const auto& ctx) { return Healthz(ctx); }));
  if (deps_.aws != nullptr) {
    http::Handler aws = [endpoint = deps_.aws, pool = deps_.blocking](http::Request& req,
                                                                      http::RequestContext& ctx) {
      return endpoint->Serve(req, ctx, pool);
    };
    add(router_, "POST", "/", aws);
    add(router_, "GET", "/", aws);
    add(router_, "POST", "/2015-03-31/functions/{name}/invocations", aws);
    // The app API (manifest/app_api.h): the endpoint decodes and authorises these.
    add(router_, "GET", "/moatless/v1/apps", aws);
    add(router_, "GET", "/moatless/v1/apps/{app}/stages/{stage}", aws);
    add(router_, "POST", "/moatless/v1/apps/{app}/stages/{stage}/deployments", aws);
    add(router_, "POST", "/moatless/v1/apps/{app}/stages/{stage}/rollback", aws);
    add(router_, "GET", "/moatless/v1/alerts/{app}/{stage}", aws);  // app/alerts_api.h
    add(router_, "GET", "/moatless/v1/metrics", aws);               // app/metrics_api.h
    for (const char* method : {"GET", "PUT", "DELETE"}) {
      add(router_, method, "/moatless/v1/apps/{app}/stages/{stage}/boundary", aws);
    }
    for (const char* method : {"GET", "POST"}) {
      add(router_, method, "/moatless/v1/apps/{app}/stages/{stage}/apikeys", aws);
    }
    for (const char* method : {"GET", "PATCH", "DELETE"}) {
      add(router_, method, "/moatless/v1/apps/{app}/stages/{stage}/apikeys/{id}", aws);
    }
    // The audit API (app/audit_api.h).
    add(router_, "GET", "/moatless/v1/audit/records", aws);
    add(router_, "POST", "/moatless/v1/audit/hash", aws);
    // Function logs (app/logs_api.h).
    add(router_, "GET", "/moatless/v1/functions/{name}/logs", aws);
  }
}

http::Handler ControlApi::Handler(std::string listener) {
  return [this, listener = std::move(listener)](http::Request& req, http::RequestContext& ctx) {
    return Instrumented(router_, listener, req, ctx);
  };
}

http::asio::awaitable<http::Response> ControlApi::Instrumented(const http::Router& router,
                                                               std::string listener,
                                                               http::Request& req,
                                                               http::RequestContext& ctx) {
  const auto start = std::chrono::steady_clock::now();
  std::string route;
  http::Response res = co_await router.Dispatch(req, ctx, &route);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  const std::string code = std::to_string(res.result_int());
  requests_.WithLabels({listener, MethodLabel(req), route, code}).Inc();
  durations_.WithLabels({listener, route}).Observe(elapsed.count());
  co_return res;
}

http::Handler ControlApi::MetricsHandler(std::string listener) {
  return [this, listener = std::move(listener)](http::Request& req, http::RequestContext& ctx) {
    return Instrumented(metrics_router_, listener, req, ctx);
  };
}

std::function<void(const http::AccessRecord&)> ControlApi::AccessHook(std::string listener) {
  return [this, listener = std::move(listener)](const http::AccessRecord& r) {
    if (r.reject != http::RejectReason::kNone) {
      rejects_.WithLabels({listener, http::RejectReasonName(r.reject)}).Inc();
    }
    if (!deps_.access_log) return;
    const std::int64_t us =
        std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count();
    const observe::Logger log = deps_.log.WithRequestId(r.request_id);
    if (r.reject == http::RejectReason::kNone) {
      log.Info("request", {{"listener", r.listener_name},
                           {"method", r.method},
                           {"path", r.path},
                           {"status", r.status},
                           {"duration_us", us},
                           {"bytes_in", r.request_bytes},
                           {"bytes_out", r.response_bytes},
                           {"remote", r.remote},
                           {"tls", r.tls}});
    } else {
      log.Warn("request rejected", {{"listener", r.listener_name},
                                    {"reason", http::RejectReasonName(r.reject)},
                                    {"method", r.method},
                                    {"path", r.path},
                                    {"status", r.status},
                                    {"remote", r.remote},
                                    {"error", r.error}});
    }
  };
}

void ControlApi::SetReady(bool ready) {
  ready_ = ready;
  ready_gauge_.Set(ready ? 1 : 0);
}

http::Response ControlApi::Healthz(const http::RequestContext&) const {
  return http::JsonResponse(http::HttpStatus::ok, std::string(R"({"status":"ok"})"));
}

http::Response ControlApi::Readyz(const http::RequestContext&) const {
  boost::json::object checks;
  bool ok = ready_.load();
  checks["serving"] = ok ? "ok" : "draining";
  const core::Status store = deps_.db.Read(
      [](store::Transaction& tx) -> core::Status { return tx.QueryOne("SELECT 1").status(); });
  checks["store"] = store.ok() ? "ok" : "failing";
  const core::Status audit = deps_.audit.Health();
  checks["audit"] = audit.ok() ? "ok" : "failing";
  ok = ok && store.ok() && audit.ok();
  boost::json::object body{{"status", ok ? "ready" : "not ready"}, {"checks", std::move(checks)}};
  return http::JsonResponse(ok ? http::HttpStatus::ok : http::HttpStatus::service_unavailable,
                            body);
}

http::Response ControlApi::Metrics(const http::Request& req,
                                   const http::RequestContext& ctx) const {
  if (deps_.metrics_token != nullptr) {
    const std::string_view authorization = req[http::Field::authorization];
    constexpr std::string_view kBearer = "Bearer ";
    const bool presented = authorization.size() > kBearer.size() &&
                           boost::beast::iequals(authorization.substr(0, kBearer.size()), kBearer);
    if (!presented || !core::SecretBytes(authorization.substr(kBearer.size()))
                           .ConstantTimeEquals(*deps_.metrics_token)) {
      http::Response res = http::JsonResponse(
          http::HttpStatus::unauthorized,
          std::string(R"({"message":"/metrics needs the bearer token of metrics.token_file"})"));
      res.set(http::Field::www_authenticate, R"(Bearer realm="moatless-metrics")");
      return res;
    }
  } else if (!IsLoopbackClient(ctx.remote)) {
    return http::JsonResponse(
        http::HttpStatus::forbidden,
        std::string(R"({"message":"/metrics answers loopback clients only; set metrics.token_file )"
                    R"(to serve others"})"));
  }
  http::Response res = http::TextResponse(http::HttpStatus::ok, deps_.metrics.Expose());
  res.set(http::Field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  return res;
}

}  // namespace moatless::app
