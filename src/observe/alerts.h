// Alert rules and their evaluation against the metrics registry.
//
// An AlertRule watches one metric of one function, one gateway route or one app's API (error
// rate, p99 duration, throttles, invocations, cold-start rate, auth denials, secret rotation
// failures) over a sliding window and compares it with a threshold. The AlertEvaluator samples
// the registry's counters and histograms on every Evaluate() call, keeps per rule the samples that
// cover its window, and computes the window's increase — so a rule sees "errors in the last 5
// minutes", not totals since start. A counter that went down (the process restarted) counts from
// zero.
//
// States follow Prometheus' alerting rules: inactive → pending when the condition holds, → firing
// once it has held for `for_duration` (at once when that is 0), → inactive again when it no longer
// holds. Evaluate() returns the transitions to notify: kFiring when a rule starts firing,
// kResolved when a firing rule stops. Until a rule's samples span its whole window (after start,
// or after a restart), it has no value and keeps its state: a restarted daemon neither resolves
// nor re-fires an alert on the strength of counters that restarted at zero. Restore() gives back
// states saved before a restart; SetRules() keeps the state of rules whose definition did not
// change.
//
// Not thread-safe: one owner (the alert host) calls it from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "observe/metrics.h"

namespace moatless::observe {

enum class AlertMetric {
  kInvocations,       // requests (routes) or invocations (functions) in the window
  kErrors,            // 5xx answers (routes) or failed invocations (functions)
  kErrorRate,         // errors / invocations (no value without invocations)
  kThrottles,         // usage-plan and route throttles, or concurrency throttles
  kDurationP99Ms,     // 99th percentile latency, from the histogram's buckets
  kColdStartRate,     // cold starts / invocations (functions only)
  kDenials,           // requests refused by authentication (routes or the whole API)
  kRotationFailures,  // failed secret rotation steps (the whole platform)
};
std::string_view AlertMetricName(AlertMetric metric);
std::optional<AlertMetric> ParseAlertMetric(std::string_view name);

struct AlertRule {
  std::string id;  // unique and stable across deployments: "APP/STAGE/NAME"
  AlertMetric metric = AlertMetric::kErrors;
  // What it watches: a function (its platform name, APP_STAGE_NAME), or a route ("GET /x") of an
  // API ("APP/STAGE"), or with neither the whole API (denials) or the platform (rotation).
  std::string function;
  std::string api;
  std::string route;
  bool below = false;  // fires when the value is below the threshold instead of above
  double threshold = 0;
  std::chrono::seconds window{300};
  std::chrono::seconds for_duration{0};
  std::vector<std::string> notify;  // names of the app's webhooks
  // "error_rate of function shop_prod_pay > 0.05 over 300s for 60s"
  std::string Describe() const;
  friend bool operator==(const AlertRule&, const AlertRule&) = default;
};

enum class AlertState { kInactive, kPending, kFiring };
std::string_view AlertStateName(AlertState state);
std::optional<AlertState> ParseAlertState(std::string_view name);

struct AlertStatus {
  std::string rule_id;
  AlertState state = AlertState::kInactive;
  core::WallTime since{};       // when the current state began (pending or firing)
  std::optional<double> value;  // the last value computed; none without enough data
  core::WallTime evaluated{};   // the last evaluation with a value
};

struct AlertTransition {
  enum Kind { kFiring, kResolved };
  Kind kind = kFiring;
  AlertRule rule;
  std::optional<double> value;  // the value that made it fire or resolve
  core::WallTime at{};
  core::WallTime firing_since{};  // for kResolved: when it had started firing
};

class AlertEvaluator {
 public:
  explicit AlertEvaluator(const MetricsRegistry& metrics) : metrics_(metrics) {}

  // Replaces the rules. A rule whose id and definition are unchanged keeps its state and
  // samples; a firing rule that is removed or changed yields kResolved now.
  std::vector<AlertTransition> SetRules(std::vector<AlertRule> rules, core::WallTime now);
  // Puts back states saved earlier (rules not known, or inactive ones, are ignored).
  void Restore(const std::vector<AlertStatus>& statuses);
  // Samples the metrics at `mono` (monotonic time, for windows) and updates every rule.
  std::vector<AlertTransition> Evaluate(core::WallTime now, core::MonoTime mono);

  std::vector<AlertStatus> Statuses() const;
  const std::vector<AlertRule>& rules() const { return rules_; }

  // The window's value from two cumulative samples (exposed for tests): counts are differences;
  // rates divide the first component's increase by the second's; p99 interpolates within the
  // bucket holding the 99th percentile, as Prometheus' histogram_quantile does.
  static std::optional<double> ValueOf(AlertMetric metric, const std::vector<double>& bounds,
                                       const std::vector<double>& older,
                                       const std::vector<double>& newer);

 private:
  struct Sample {
    core::MonoTime at;
    std::vector<double> components;
  };
  struct Tracked {
    AlertRule rule;
    AlertStatus status;
    std::deque<Sample> samples;
    std::vector<double> bounds;  // histogram bounds for p99 rules
  };
  // The rule's cumulative components now (and the histogram bounds for p99 rules).
  std::vector<double> Components(const AlertRule& rule, std::vector<double>* bounds) const;
  double Sum(std::string_view family, const std::map<std::string, std::string>& match) const;

  const MetricsRegistry& metrics_;
  std::vector<AlertRule> rules_;
  std::map<std::string, Tracked> tracked_;  // by rule id
};

}  // namespace moatless::observe
