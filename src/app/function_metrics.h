// FunctionMetrics: the moatless_function_* and moatless_sandbox_* metric families, recorded by the
// FunctionHost for every invocation, throttle and environment start, and refreshed from the
// invoker's state (warm environments, running and queued invocations, event queue depth) each
// time the registry is exposed.
//
// Labels are bounded: a function's name and version come from the registry (deployed code, not
// requests), and an error's type label is the platform's errorType ("Sandbox.Timedout",
// "Runtime.*") or "Function" for any error the handler raised — the handler's own errorType is
// free text (the log line has it) and would let a request mint label values. See
// docs/observability.md for the OpenTelemetry mapping.
//
// Thread-safe. Destroy it before the invoker and event queue its collector reads.
#pragma once

#include <set>
#include <string>

#include "core/status.h"
#include "observe/metrics.h"
#include "runtime/event_queue.h"
#include "runtime/function.h"
#include "runtime/invoker.h"

namespace moatless::app {

class FunctionMetrics {
 public:
  explicit FunctionMetrics(observe::MetricsRegistry& registry);

  // Starts refreshing the gauges from these (they must outlive this object).
  void Watch(const runtime::Invoker& invoker, runtime::ConcurrencyGate& gate,
             const runtime::EventQueue& events);

  void Invocation(const runtime::FunctionConfig& function, const runtime::InvokeResult& result);
  void Throttle(const runtime::FunctionConfig& function);
  void EnvironmentStart(const core::Status& status);

  // The error type label of a failed invocation (see above); empty for a successful one.
  static std::string ErrorTypeLabel(const runtime::InvokeResult& result);
  // "ok", "error" or "timeout".
  static std::string_view Outcome(const runtime::InvokeResult& result);

 private:
  void Collect(const runtime::Invoker& invoker, runtime::ConcurrencyGate& gate,
               const runtime::EventQueue& events);

  observe::MetricsRegistry& registry_;
  observe::CounterFamily& invocations_;
  observe::CounterFamily& errors_;
  observe::CounterFamily& throttles_;
  observe::CounterFamily& cold_starts_;
  observe::HistogramFamily& duration_;
  observe::HistogramFamily& init_duration_;
  observe::HistogramFamily& peak_memory_;
  observe::GaugeFamily& concurrent_;
  observe::GaugeFamily& environments_;
  observe::GaugeFamily& queued_;
  observe::GaugeFamily& event_queue_;
  observe::CounterFamily& sandbox_starts_;
  // Functions that had a concurrency series: set back to 0 once they run nothing. Only the
  // collector (serialised by the registry) touches it.
  std::set<std::string> seen_running_;
  observe::MetricsRegistry::CollectorHandle collector_;  // last: removed first
};

}  // namespace moatless::app
