#include "app/function_metrics.h"

#include <boost/json.hpp>

namespace moatless::app {
namespace {

bool IsPlatformErrorType(std::string_view type) {
  if (type.size() > 64) return false;
  if (!type.starts_with("Runtime.") && !type.starts_with("Sandbox.")) return false;
  for (const char c : type) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.')) {
      return false;
    }
  }
  return true;
}

double Seconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1e6; }

}  // namespace

FunctionMetrics::FunctionMetrics(observe::MetricsRegistry& registry)
    : registry_(registry),
      invocations_(registry.Counter(
          "moatless_function_invocations_total",
          "Function invocations that ran, by function, version and outcome (ok, error, timeout).",
          {"function", "version", "outcome"})),
      errors_(registry.Counter("moatless_function_errors_total",
                               "Failed invocations by function, version and error type "
                               "(Sandbox.Timedout, Runtime.*, or Function for an error "
                               "the handler raised).",
                               {"function", "version", "type"})),
      throttles_(registry.Counter("moatless_function_throttles_total",
                                  "Invocations refused with TooManyRequestsException (concurrency "
                                  "limits), by function and version.",
                                  {"function", "version"})),
      cold_starts_(registry.Counter("moatless_function_cold_starts_total",
                                    "Invocations that started a new execution environment.",
                                    {"function", "version"})),
      duration_(registry.Histogram("moatless_function_duration_seconds",
                                   "Invocation duration (REPORT Duration).",
                                   {"function", "version"})),
      init_duration_(registry.Histogram(
          "moatless_function_init_duration_seconds",
          "Cold starts: sandbox start to the runtime's first request (REPORT Init Duration).",
          {"function", "version"})),
      peak_memory_(registry.Histogram(
          "moatless_function_peak_memory_bytes",
          "Peak memory of the execution environment during an invocation (REPORT Max Memory "
          "Used).",
          {"function", "version"}, observe::ExponentialBuckets(16.0 * (1 << 20), 2, 10))),
      concurrent_(registry.Gauge("moatless_function_concurrent_executions",
                                 "Invocations running now, by function.", {"function"})),
      environments_(registry.Gauge("moatless_function_environments",
                                   "Execution environments by state: busy (running an "
                                   "invocation), idle (warm), frozen (warm, cgroup-frozen).",
                                   {"state"})),
      queued_(registry.Gauge("moatless_function_queued_invocations",
                             "Invocations waiting for a concurrency slot.")),
      event_queue_(registry.Gauge("moatless_function_event_queue_depth",
                                  "Event (asynchronous) invocations stored and not yet done.")),
      sandbox_starts_(registry.Counter(
          "moatless_sandbox_starts_total",
          "Execution environments started (result=ok) or that failed to start (result=error).",
          {"result"})) {}

void FunctionMetrics::Watch(const runtime::Invoker& invoker, runtime::ConcurrencyGate& gate,
                            const runtime::EventQueue& events) {
  collector_ =
      registry_.AddCollector([this, &invoker, &gate, &events] { Collect(invoker, gate, events); });
}

void FunctionMetrics::Collect(const runtime::Invoker& invoker, runtime::ConcurrencyGate& gate,
                              const runtime::EventQueue& events) {
  const std::map<std::string, std::size_t> running = gate.RunningByFunction();
  for (const std::string& name : seen_running_) {
    if (!running.contains(name)) concurrent_.WithLabels({name}).Set(0);
  }
  std::size_t busy = 0;
  for (const auto& [name, count] : running) {
    concurrent_.WithLabels({name}).Set(static_cast<double>(count));
    seen_running_.insert(name);
    busy += count;
  }
  const runtime::Invoker::PoolStats pool = invoker.Pool();
  environments_.WithLabels({"busy"}).Set(static_cast<double>(busy));
  environments_.WithLabels({"idle"}).Set(static_cast<double>(pool.idle - pool.frozen));
  environments_.WithLabels({"frozen"}).Set(static_cast<double>(pool.frozen));
  queued_.Set(static_cast<double>(gate.queued()));
  event_queue_.Set(static_cast<double>(events.Pending()));
}

std::string_view FunctionMetrics::Outcome(const runtime::InvokeResult& result) {
  if (!result.function_error) return "ok";
  return result.report.find("Status: timeout") != std::string::npos ? "timeout" : "error";
}

std::string FunctionMetrics::ErrorTypeLabel(const runtime::InvokeResult& result) {
  if (!result.function_error) return "";
  if (Outcome(result) == "timeout") return "Sandbox.Timedout";
  // The error body's errorType: the platform's own types are kept; anything else is the handler's.
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(result.payload, ec);
  const boost::json::object* object = ec ? nullptr : body.if_object();
  const boost::json::value* type = object != nullptr ? object->if_contains("errorType") : nullptr;
  if (type != nullptr && type->is_string() && IsPlatformErrorType(type->as_string())) {
    return std::string(type->as_string());
  }
  return "Function";
}

void FunctionMetrics::Invocation(const runtime::FunctionConfig& function,
                                 const runtime::InvokeResult& result) {
  const std::string_view outcome = Outcome(result);
  concurrent_.WithLabels({function.name});  // exposed as 0 until a collection sees it running
  invocations_.WithLabels({function.name, result.version, outcome}).Inc();
  if (result.function_error) {
    errors_.WithLabels({function.name, result.version, ErrorTypeLabel(result)}).Inc();
  }
  duration_.WithLabels({function.name, result.version}).Observe(Seconds(result.duration));
  peak_memory_.WithLabels({function.name, result.version})
      .Observe(static_cast<double>(result.peak_memory_bytes));
  if (result.cold_start) {
    cold_starts_.WithLabels({function.name, result.version}).Inc();
    init_duration_.WithLabels({function.name, result.version})
        .Observe(Seconds(result.init_duration));
  }
}

void FunctionMetrics::Throttle(const runtime::FunctionConfig& function) {
  throttles_.WithLabels({function.name, function.version}).Inc();
}

void FunctionMetrics::EnvironmentStart(const core::Status& status) {
  sandbox_starts_.WithLabels({status.ok() ? "ok" : "error"}).Inc();
}

}  // namespace moatless::app
