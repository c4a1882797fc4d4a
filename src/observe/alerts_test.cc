#include "observe/alerts.h"

#include <gtest/gtest.h>

namespace moatless::observe {
namespace {

using std::chrono::seconds;

// The function families as the function host registers them.
class AlertsTest : public ::testing::Test {
 protected:
  AlertsTest()
      : invocations_(metrics_.Counter("moatless_function_invocations_total", "x",
                                      {"function", "version", "outcome"})),
        errors_(metrics_.Counter("moatless_function_errors_total", "x",
                                 {"function", "version", "type"})),
        duration_(
            metrics_.Histogram("moatless_function_duration_seconds", "x", {"function", "version"})),
        requests_(
            metrics_.Counter("moatless_gateway_requests_total", "x", {"api", "route", "status"})) {}

  // `ok` successful and `failed` failed invocations of `fn`.
  void Run(const std::string& fn, int ok, int failed) {
    invocations_.WithLabels({fn, "1", "ok"}).Add(ok);
    invocations_.WithLabels({fn, "1", "error"}).Add(failed);
    errors_.WithLabels({fn, "1", "Function"}).Add(failed);
  }

  // Advances both clocks and evaluates.
  std::vector<AlertTransition> Tick(seconds step = seconds(10)) {
    wall_ += step;
    mono_ += step;
    return evaluator_.Evaluate(wall_, mono_);
  }

  static AlertRule ErrorRate(std::string id = "shop/prod/pay-errors") {
    return AlertRule{.id = std::move(id),
                     .metric = AlertMetric::kErrorRate,
                     .function = "shop_prod_pay",
                     .threshold = 0.1,
                     .window = seconds(60),
                     .for_duration = seconds(30)};
  }

  MetricsRegistry metrics_;
  CounterFamily& invocations_;
  CounterFamily& errors_;
  HistogramFamily& duration_;
  CounterFamily& requests_;
  AlertEvaluator evaluator_{metrics_};
  core::WallTime wall_ = core::WallTime(seconds(1'800'000'000));
  core::MonoTime mono_ = core::MonoTime(seconds(1000));
};

TEST_F(AlertsTest, MetricNamesRoundTrip) {
  for (const std::string_view name :
       {"invocations", "errors", "error_rate", "throttles", "duration_p99_ms", "cold_start_rate",
        "denials", "rotation_failures"}) {
    const auto metric = ParseAlertMetric(name);
    ASSERT_TRUE(metric.has_value()) << name;
    EXPECT_EQ(AlertMetricName(*metric), name);
  }
  EXPECT_FALSE(ParseAlertMetric("latency").has_value());
  EXPECT_EQ(ErrorRate().Describe(), "error_rate of function shop_prod_pay > 0.1 over 60s for 30s");
}

TEST_F(AlertsTest, FiresOnceAfterForThenResolvesWhenErrorsStop) {
  ASSERT_TRUE(evaluator_.SetRules({ErrorRate()}, wall_).empty());
  EXPECT_TRUE(Tick().empty());  // the first sample
  // A window of data is needed before anything changes, even with errors.
  Run("shop_prod_pay", 5, 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Tick().empty());
  Run("shop_prod_pay", 5, 5);
  EXPECT_TRUE(Tick().empty());  // 60 s of data now: the condition holds → pending
  EXPECT_EQ(evaluator_.Statuses()[0].state, AlertState::kPending);
  EXPECT_NEAR(*evaluator_.Statuses()[0].value, 0.5, 1e-9);
  Run("shop_prod_pay", 5, 5);
  EXPECT_TRUE(Tick().empty());
  Run("shop_prod_pay", 5, 5);
  EXPECT_TRUE(Tick().empty());
  Run("shop_prod_pay", 5, 5);
  auto fired = Tick();  // held for 30 s
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].kind, AlertTransition::kFiring);
  EXPECT_EQ(fired[0].rule.id, "shop/prod/pay-errors");
  EXPECT_EQ(evaluator_.Statuses()[0].state, AlertState::kFiring);
  // Still failing: no second notification.
  for (int i = 0; i < 10; ++i) {
    Run("shop_prod_pay", 5, 5);
    EXPECT_TRUE(Tick().empty());
  }
  // Errors stop, traffic goes on: once the window no longer holds enough errors, resolved.
  std::vector<AlertTransition> resolved;
  for (int i = 0; i < 10 && resolved.empty(); ++i) {
    Run("shop_prod_pay", 10, 0);
    resolved = Tick();
  }
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].kind, AlertTransition::kResolved);
  EXPECT_LE(*resolved[0].value, 0.1);
  EXPECT_EQ(evaluator_.Statuses()[0].state, AlertState::kInactive);
  for (int i = 0; i < 10; ++i) {
    Run("shop_prod_pay", 10, 0);
    EXPECT_TRUE(Tick().empty());
  }
}

TEST_F(AlertsTest, ABriefSpikeShorterThanForNeverFires) {
  ASSERT_TRUE(evaluator_.SetRules({ErrorRate()}, wall_).empty());
  for (int i = 0; i < 7; ++i) {
    Run("shop_prod_pay", 10, 0);
    EXPECT_TRUE(Tick().empty());
  }
  Run("shop_prod_pay", 0, 10);
  EXPECT_TRUE(Tick().empty());
  EXPECT_EQ(evaluator_.Statuses()[0].state, AlertState::kPending);
  for (int i = 0; i < 10; ++i) {
    Run("shop_prod_pay", 100, 0);
    EXPECT_TRUE(Tick().empty());
  }
  EXPECT_EQ(evaluator_.Statuses()[0].state, AlertState::kInactive);
}

TEST_F(AlertsTest, ARestoredFiringAlertNeitherRefiresNorResolvesOnRestartedCounters) {
  // Before the restart it was firing; the new process's counters start at zero.
  AlertEvaluator restarted(metrics_);
  ASSERT_TRUE(restarted.SetRules({ErrorRate()}, wall_).empty());
  restarted.Restore({AlertStatus{.rule_id = "shop/prod/pay-errors",
                                 .state = AlertState::kFiring,
                                 .since = wall_ - seconds(600)}});
  // Still failing after the restart: never a second kFiring.
  for (int i = 0; i < 12; ++i) {
    Run("shop_prod_pay", 1, 3);
    wall_ += seconds(10);
    mono_ += seconds(10);
    EXPECT_TRUE(restarted.Evaluate(wall_, mono_).empty()) << i;
    EXPECT_EQ(restarted.Statuses()[0].state, AlertState::kFiring);
  }
  // It resolves once, when the errors stop.
  int resolved = 0;
  for (int i = 0; i < 12; ++i) {
    Run("shop_prod_pay", 5, 0);
    wall_ += seconds(10);
    mono_ += seconds(10);
    for (const AlertTransition& t : restarted.Evaluate(wall_, mono_)) {
      EXPECT_EQ(t.kind, AlertTransition::kResolved);
      EXPECT_EQ(t.firing_since, core::WallTime(seconds(1'800'000'000)) - seconds(600));
      ++resolved;
    }
  }
  EXPECT_EQ(resolved, 1);
}

TEST_F(AlertsTest, RedefiningOrRemovingAFiringRuleResolvesIt) {
  AlertRule rule = ErrorRate();
  rule.for_duration = seconds(0);
  ASSERT_TRUE(evaluator_.SetRules({rule}, wall_).empty());
  Tick();
  Run("shop_prod_pay", 0, 10);
  for (int i = 0; i < 6; ++i) Tick();
  ASSERT_EQ(evaluator_.Statuses()[0].state, AlertState::kFiring);
  // The same definition again keeps its state.
  EXPECT_TRUE(evaluator_.SetRules({rule}, wall_).empty());
  EXPECT_EQ(evaluator_.Statuses()[0].state, AlertState::kFiring);
  rule.threshold = 0.9;
  const auto changed = evaluator_.SetRules({rule}, wall_);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].kind, AlertTransition::kResolved);
  EXPECT_EQ(evaluator_.Statuses()[0].state, AlertState::kInactive);
}

TEST_F(AlertsTest, CountsRoutesAndBelowThresholds) {
  AlertRule server_errors{.id = "shop/prod/5xx",
                          .metric = AlertMetric::kErrors,
                          .api = "shop/prod",
                          .route = "GET /pay",
                          .threshold = 2,
                          .window = seconds(20)};
  AlertRule quiet{.id = "shop/prod/quiet",
                  .metric = AlertMetric::kInvocations,
                  .api = "shop/prod",
                  .below = true,
                  .threshold = 1,
                  .window = seconds(20)};
  ASSERT_TRUE(evaluator_.SetRules({server_errors, quiet}, wall_).empty());
  Tick();
  requests_.WithLabels({"shop/prod", "GET /pay", "5xx"}).Add(3);
  requests_.WithLabels({"shop/prod", "GET /other", "5xx"}).Add(100);  // another route
  Tick();
  const auto fired = Tick();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].rule.id, "shop/prod/5xx");
  EXPECT_EQ(*fired[0].value, 3);
  // No requests at all over the next 20 s: the "below" rule fires; the 5xx one resolves.
  const auto next = Tick();
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].rule.id, "shop/prod/5xx");
  EXPECT_EQ(next[0].kind, AlertTransition::kResolved);
  EXPECT_EQ(next[1].rule.id, "shop/prod/quiet");
  EXPECT_EQ(next[1].kind, AlertTransition::kFiring);
}

TEST_F(AlertsTest, P99InterpolatesWithinTheBucketLikeHistogramQuantile) {
  const std::vector<double> bounds = {0.1, 0.2, 0.4};
  // 100 observations: 50 ≤ 0.1 s, 40 in (0.1, 0.2], 10 in (0.2, 0.4].
  const std::vector<double> older = {0, 0, 0, 0};
  const std::vector<double> newer = {50, 90, 100, 100};
  // rank 99 lies in the third bucket: 0.2 + 0.2 * (99 - 90) / 10 = 0.38 s.
  EXPECT_NEAR(*AlertEvaluator::ValueOf(AlertMetric::kDurationP99Ms, bounds, older, newer), 380,
              1e-6);
  // Nothing observed in the window: no value.
  EXPECT_FALSE(
      AlertEvaluator::ValueOf(AlertMetric::kDurationP99Ms, bounds, newer, newer).has_value());
  // In +Inf: the highest finite bound.
  EXPECT_NEAR(*AlertEvaluator::ValueOf(AlertMetric::kDurationP99Ms, bounds, older, {0, 0, 0, 10}),
              400, 1e-6);
  // A counter that restarted counts from zero.
  EXPECT_EQ(*AlertEvaluator::ValueOf(AlertMetric::kErrors, {}, {50}, {7}), 7);
  EXPECT_FALSE(AlertEvaluator::ValueOf(AlertMetric::kErrorRate, {}, {1, 5}, {1, 5}).has_value());

  // Through the registry: a function's duration histogram across its versions.
  AlertRule slow{.id = "shop/prod/slow",
                 .metric = AlertMetric::kDurationP99Ms,
                 .function = "shop_prod_pay",
                 .threshold = 1000,
                 .window = seconds(10)};
  ASSERT_TRUE(evaluator_.SetRules({slow}, wall_).empty());
  Tick();
  for (int i = 0; i < 100; ++i) duration_.WithLabels({"shop_prod_pay", "1"}).Observe(2.0);
  const auto fired = Tick();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_GT(*fired[0].value, 1000);
}

}  // namespace
}  // namespace moatless::observe
