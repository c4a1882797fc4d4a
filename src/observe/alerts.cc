#include "observe/alerts.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace moatless::observe {
namespace {

struct MetricName {
  AlertMetric metric;
  std::string_view name;
};
constexpr MetricName kMetricNames[] = {
    {AlertMetric::kInvocations, "invocations"},
    {AlertMetric::kErrors, "errors"},
    {AlertMetric::kErrorRate, "error_rate"},
    {AlertMetric::kThrottles, "throttles"},
    {AlertMetric::kDurationP99Ms, "duration_p99_ms"},
    {AlertMetric::kColdStartRate, "cold_start_rate"},
    {AlertMetric::kDenials, "denials"},
    {AlertMetric::kRotationFailures, "rotation_failures"},
};

// The families the rules read (registered by the function host, the gateway and the secrets
// worker; docs/observability.md lists them).
constexpr std::string_view kFunctionInvocations = "moatless_function_invocations_total";
constexpr std::string_view kFunctionErrors = "moatless_function_errors_total";
constexpr std::string_view kFunctionThrottles = "moatless_function_throttles_total";
constexpr std::string_view kFunctionColdStarts = "moatless_function_cold_starts_total";
constexpr std::string_view kFunctionDuration = "moatless_function_duration_seconds";
constexpr std::string_view kGatewayRequests = "moatless_gateway_requests_total";
constexpr std::string_view kGatewayThrottles = "moatless_gateway_throttles_total";
constexpr std::string_view kGatewayDenials = "moatless_gateway_auth_denials_total";
constexpr std::string_view kGatewayDuration = "moatless_gateway_request_duration_seconds";
constexpr std::string_view kRotationFailures = "moatless_secret_rotation_failures_total";

bool IsRate(AlertMetric metric) {
  return metric == AlertMetric::kErrorRate || metric == AlertMetric::kColdStartRate;
}

std::string Seconds(std::chrono::seconds s) { return std::to_string(s.count()) + "s"; }

}  // namespace

std::string_view AlertMetricName(AlertMetric metric) {
  for (const MetricName& m : kMetricNames) {
    if (m.metric == metric) return m.name;
  }
  return "unknown";
}

std::optional<AlertMetric> ParseAlertMetric(std::string_view name) {
  for (const MetricName& m : kMetricNames) {
    if (m.name == name) return m.metric;
  }
  return std::nullopt;
}

std::string_view AlertStateName(AlertState state) {
  switch (state) {
    case AlertState::kInactive:
      return "inactive";
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
  }
  return "inactive";
}

std::optional<AlertState> ParseAlertState(std::string_view name) {
  for (const AlertState s : {AlertState::kInactive, AlertState::kPending, AlertState::kFiring}) {
    if (AlertStateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string AlertRule::Describe() const {
  std::ostringstream out;
  out << AlertMetricName(metric) << " of ";
  if (!function.empty()) {
    out << "function " << function;
  } else if (!route.empty()) {
    out << "route " << route << " of " << api;
  } else if (!api.empty()) {
    out << "API " << api;
  } else {
    out << "the platform";
  }
  out << (below ? " < " : " > ") << threshold << " over " << Seconds(window);
  if (for_duration.count() > 0) out << " for " << Seconds(for_duration);
  return out.str();
}

std::vector<AlertTransition> AlertEvaluator::SetRules(std::vector<AlertRule> rules,
                                                      core::WallTime now) {
  std::vector<AlertTransition> out;
  std::map<std::string, Tracked> next;
  for (const AlertRule& rule : rules) {
    const auto it = tracked_.find(rule.id);
    if (it != tracked_.end() && it->second.rule == rule) {
      next.emplace(rule.id, std::move(it->second));
      tracked_.erase(it);
    } else {
      Tracked fresh{.rule = rule, .status = {.rule_id = rule.id}};
      next.emplace(rule.id, std::move(fresh));
    }
  }
  for (const auto& [id, old] : tracked_) {  // removed or redefined
    if (old.status.state == AlertState::kFiring) {
      out.push_back({.kind = AlertTransition::kResolved,
                     .rule = old.rule,
                     .value = std::nullopt,
                     .at = now,
                     .firing_since = old.status.since});
    }
  }
  tracked_ = std::move(next);
  rules_ = std::move(rules);
  return out;
}

void AlertEvaluator::Restore(const std::vector<AlertStatus>& statuses) {
  for (const AlertStatus& status : statuses) {
    const auto it = tracked_.find(status.rule_id);
    if (it == tracked_.end() || status.state == AlertState::kInactive) continue;
    it->second.status = status;
  }
}

std::vector<AlertStatus> AlertEvaluator::Statuses() const {
  std::vector<AlertStatus> out;
  for (const AlertRule& rule : rules_) out.push_back(tracked_.at(rule.id).status);
  return out;
}

double AlertEvaluator::Sum(std::string_view family,
                           const std::map<std::string, std::string>& match) const {
  const auto reading = metrics_.Read(family);
  if (!reading) return 0;
  double total = 0;
  for (const SeriesReading& series : reading->series) {
    bool matches = true;
    for (const auto& [label, value] : match) {
      const auto pos = std::find(reading->label_names.begin(), reading->label_names.end(), label);
      if (pos == reading->label_names.end() ||
          series.label_values[static_cast<std::size_t>(pos - reading->label_names.begin())] !=
              value) {
        matches = false;
        break;
      }
    }
    if (matches) total += series.value;
  }
  return total;
}

std::vector<double> AlertEvaluator::Components(const AlertRule& rule,
                                               std::vector<double>* bounds) const {
  std::map<std::string, std::string> scope;
  const bool on_function = !rule.function.empty();
  if (on_function) {
    scope["function"] = rule.function;
  } else {
    if (!rule.api.empty()) scope["api"] = rule.api;
    if (!rule.route.empty()) scope["route"] = rule.route;
  }
  std::map<std::string, std::string> server_errors = scope;
  server_errors["status"] = "5xx";
  const std::string_view invocations = on_function ? kFunctionInvocations : kGatewayRequests;
  switch (rule.metric) {
    case AlertMetric::kInvocations:
      return {Sum(invocations, scope)};
    case AlertMetric::kErrors:
      return {on_function ? Sum(kFunctionErrors, scope) : Sum(kGatewayRequests, server_errors)};
    case AlertMetric::kErrorRate:
      return {on_function ? Sum(kFunctionErrors, scope) : Sum(kGatewayRequests, server_errors),
              Sum(invocations, scope)};
    case AlertMetric::kThrottles:
      return {Sum(on_function ? kFunctionThrottles : kGatewayThrottles, scope)};
    case AlertMetric::kColdStartRate:
      return {Sum(kFunctionColdStarts, scope), Sum(invocations, scope)};
    case AlertMetric::kDenials:
      return {Sum(kGatewayDenials, scope)};
    case AlertMetric::kRotationFailures:
      return {Sum(kRotationFailures, {})};
    case AlertMetric::kDurationP99Ms: {
      const auto reading = metrics_.Read(on_function ? kFunctionDuration : kGatewayDuration);
      std::vector<double> cumulative;
      if (!reading) return cumulative;
      for (const SeriesReading& series : reading->series) {
        bool matches = true;
        for (const auto& [label, value] : scope) {
          const auto pos =
              std::find(reading->label_names.begin(), reading->label_names.end(), label);
          matches =
              matches && pos != reading->label_names.end() &&
              series.label_values[static_cast<std::size_t>(pos - reading->label_names.begin())] ==
                  value;
        }
        if (!matches || !series.histogram) continue;
        const Histogram::Snapshot& h = *series.histogram;
        if (cumulative.empty()) {
          cumulative.assign(h.cumulative.size(), 0);
          *bounds = h.bounds;
        }
        for (std::size_t i = 0; i < h.cumulative.size() && i < cumulative.size(); ++i) {
          cumulative[i] += static_cast<double>(h.cumulative[i]);
        }
      }
      return cumulative;
    }
  }
  return {};
}

std::optional<double> AlertEvaluator::ValueOf(AlertMetric metric, const std::vector<double>& bounds,
                                              const std::vector<double>& older,
                                              const std::vector<double>& newer) {
  // A counter that went down restarted: its increase is what it counted since.
  const auto increase = [&](std::size_t i) {
    const double before = i < older.size() ? older[i] : 0;
    const double now = i < newer.size() ? newer[i] : 0;
    return now >= before ? now - before : now;
  };
  if (metric == AlertMetric::kDurationP99Ms) {
    const std::optional<double> seconds =
        HistogramQuantile(0.99, bounds, CumulativeIncrease(older, newer));
    if (!seconds) return std::nullopt;
    return *seconds * 1000;
  }
  if (IsRate(metric)) {
    const double total = increase(1);
    if (total <= 0) return std::nullopt;
    return increase(0) / total;
  }
  return increase(0);
}

std::vector<AlertTransition> AlertEvaluator::Evaluate(core::WallTime now, core::MonoTime mono) {
  std::vector<AlertTransition> out;
  for (const AlertRule& rule : rules_) {
    Tracked& t = tracked_.at(rule.id);
    std::vector<double> bounds;
    t.samples.push_back({.at = mono, .components = Components(rule, &bounds)});
    if (!bounds.empty()) t.bounds = std::move(bounds);
    // Keep one sample at or before the window's start, and everything after it.
    const core::MonoTime start = mono - rule.window;
    while (t.samples.size() > 1 && t.samples[1].at <= start) t.samples.pop_front();
    if (t.samples.front().at > start) continue;  // not a whole window of data yet: no change
    const std::optional<double> value =
        ValueOf(rule.metric, t.bounds, t.samples.front().components, t.samples.back().components);
    t.status.value = value;
    t.status.evaluated = now;
    const bool holds =
        value.has_value() && (rule.below ? *value < rule.threshold : *value > rule.threshold);
    AlertStatus& s = t.status;
    if (holds) {
      if (s.state == AlertState::kInactive) {
        s.state = AlertState::kPending;
        s.since = now;
      }
      if (s.state == AlertState::kPending && now - s.since >= rule.for_duration) {
        s.state = AlertState::kFiring;
        s.since = now;
        out.push_back({.kind = AlertTransition::kFiring,
                       .rule = rule,
                       .value = value,
                       .at = now,
                       .firing_since = now});
      }
    } else if (s.state == AlertState::kFiring) {
      out.push_back({.kind = AlertTransition::kResolved,
                     .rule = rule,
                     .value = value,
                     .at = now,
                     .firing_since = s.since});
      s.state = AlertState::kInactive;
      s.since = now;
    } else if (s.state == AlertState::kPending) {
      s.state = AlertState::kInactive;
      s.since = now;
    }
  }
  return out;
}

}  // namespace moatless::observe
