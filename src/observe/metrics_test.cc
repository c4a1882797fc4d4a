#include "observe/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace moatless::observe {
namespace {

TEST(MetricsNamesTest, MetricNames) {
  EXPECT_TRUE(IsValidMetricName("http_requests_total"));
  EXPECT_TRUE(IsValidMetricName("_x"));
  EXPECT_TRUE(IsValidMetricName("job:rate5m"));
  EXPECT_TRUE(IsValidMetricName("a1"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("a b"));
  EXPECT_FALSE(IsValidMetricName("métrique"));
}

TEST(MetricsNamesTest, LabelNames) {
  EXPECT_TRUE(IsValidLabelName("method"));
  EXPECT_TRUE(IsValidLabelName("_private"));
  EXPECT_TRUE(IsValidLabelName("code2"));
  EXPECT_FALSE(IsValidLabelName(""));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("2xx"));
  EXPECT_FALSE(IsValidLabelName("a.b"));
}

TEST(MetricsFormatTest, Values) {
  EXPECT_EQ(FormatPrometheusValue(0), "0");
  EXPECT_EQ(FormatPrometheusValue(-0.0), "0");
  EXPECT_EQ(FormatPrometheusValue(1), "1");
  EXPECT_EQ(FormatPrometheusValue(-3), "-3");
  EXPECT_EQ(FormatPrometheusValue(1234567), "1234567");
  EXPECT_EQ(FormatPrometheusValue(0.005), "0.005");
  EXPECT_EQ(FormatPrometheusValue(2.5), "2.5");
  EXPECT_EQ(FormatPrometheusValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatPrometheusValue(1234567.5), "1.2345675e+06");
  EXPECT_EQ(FormatPrometheusValue(1e-5), "1e-05");
  EXPECT_EQ(FormatPrometheusValue(0.0001), "0.0001");
  EXPECT_EQ(FormatPrometheusValue(1e20), "1e+20");
  EXPECT_EQ(FormatPrometheusValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatPrometheusValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatPrometheusValue(std::nan("")), "NaN");
}

TEST(MetricsTest, EmptyRegistryExposesNothingButNeverFails) {
  MetricsRegistry registry;
  // The dropped-series counter has labels and no series yet, so it is not rendered.
  EXPECT_EQ(registry.Expose(), "");
}

TEST(MetricsTest, ExpositionGolden) {
  MetricsRegistry registry;
  auto& requests = registry.Counter("http_requests_total", "HTTP requests.", {"method", "code"});
  requests.WithLabels({"POST", "500"}).Inc();
  requests.WithLabels({"GET", "200"}).Add(3);
  requests.WithLabels({"GET", "404"}).Inc();

  auto& escaped = registry.Gauge("weird_gauge", "Help with \\ backslash\nand newline.", {"path"});
  escaped.WithLabels({"a\"quoted\\back\nnew"}).Set(-1.5);

  auto& up = registry.Gauge("up", "Whether it is up.");
  up.Set(1);

  auto& latency =
      registry.Histogram("request_seconds", "Request latency.", {"route"}, {0.1, 0.5, 1});
  auto& root = latency.WithLabels({"/"});
  root.Observe(0.0625);
  root.Observe(0.5);  // le is inclusive
  root.Observe(0.75);
  root.Observe(3);

  auto& plain = registry.Histogram("size_bytes", "Sizes.", {}, {100, 1000});
  plain.Observe(10);

  const std::string expected =
      "# HELP http_requests_total HTTP requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"GET\",code=\"200\"} 3\n"
      "http_requests_total{method=\"GET\",code=\"404\"} 1\n"
      "http_requests_total{method=\"POST\",code=\"500\"} 1\n"
      "# HELP request_seconds Request latency.\n"
      "# TYPE request_seconds histogram\n"
      "request_seconds_bucket{route=\"/\",le=\"0.1\"} 1\n"
      "request_seconds_bucket{route=\"/\",le=\"0.5\"} 2\n"
      "request_seconds_bucket{route=\"/\",le=\"1\"} 3\n"
      "request_seconds_bucket{route=\"/\",le=\"+Inf\"} 4\n"
      "request_seconds_sum{route=\"/\"} 4.3125\n"
      "request_seconds_count{route=\"/\"} 4\n"
      "# HELP size_bytes Sizes.\n"
      "# TYPE size_bytes histogram\n"
      "size_bytes_bucket{le=\"100\"} 1\n"
      "size_bytes_bucket{le=\"1000\"} 1\n"
      "size_bytes_bucket{le=\"+Inf\"} 1\n"
      "size_bytes_sum 10\n"
      "size_bytes_count 1\n"
      "# HELP up Whether it is up.\n"
      "# TYPE up gauge\n"
      "up 1\n"
      "# HELP weird_gauge Help with \\\\ backslash\\nand newline.\n"
      "# TYPE weird_gauge gauge\n"
      "weird_gauge{path=\"a\\\"quoted\\\\back\\nnew\"} -1.5\n";
  EXPECT_EQ(registry.Expose(), expected);
  // Deterministic: the same state renders the same bytes.
  EXPECT_EQ(registry.Expose(), expected);
}

TEST(MetricsTest, UnlabelledFamiliesAreExposedAtZero) {
  MetricsRegistry registry;
  registry.Counter("starts_total", "Starts.");
  EXPECT_EQ(registry.Expose(),
            "# HELP starts_total Starts.\n"
            "# TYPE starts_total counter\n"
            "starts_total 0\n");
}

TEST(MetricsTest, CounterArithmetic) {
  MetricsRegistry registry;
  auto& c = registry.Counter("c_total", "c");
  c.Inc();
  c.Add(2);
  c.Add(0.5);
  EXPECT_DOUBLE_EQ(c.Value(), 3.5);
  auto& g = registry.Gauge("g", "g");
  g.Inc();
  g.Inc();
  g.Dec();
  g.Add(10);
  g.Sub(0.25);
  EXPECT_DOUBLE_EQ(g.Value(), 10.75);
}

TEST(MetricsTest, HistogramNaNGoesToInfBucket) {
  MetricsRegistry registry;
  auto& h = registry.Histogram("h", "h", {}, {1});
  h.Observe(std::nan(""));
  const std::string out = registry.Expose();
  EXPECT_NE(out.find("h_bucket{le=\"1\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("h_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("h_sum NaN\n"), std::string::npos) << out;
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(LinearBuckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  const auto defaults = DefaultLatencyBuckets();
  EXPECT_TRUE(std::is_sorted(defaults.begin(), defaults.end()));
  EXPECT_LE(defaults.front(), 0.001);
  EXPECT_GE(defaults.back(), 10);
}

TEST(MetricsTest, TrailingInfBoundIsImplied) {
  MetricsRegistry registry;
  auto& a = registry.Histogram("h", "h", {}, {1, 2, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(a.bounds(), (std::vector<double>{1, 2}));
  // The same registration, spelled with or without +Inf, is the same family.
  EXPECT_EQ(&registry.Histogram("h", "h", {}, {1, 2}), &a);
}

TEST(MetricsTest, ConcurrentIncrementsSumExactly) {
  MetricsRegistry registry;
  auto& family = registry.Counter("ops_total", "ops", {"worker"});
  auto& hist = registry.Histogram("op_seconds", "s", {}, {0.5});
  auto& gauge = registry.Gauge("level", "l");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        family.WithLabels({"shared"}).Inc();
        family.WithLabels({t % 2 == 0 ? "even" : "odd"}).Add(2);
        hist.Observe(i % 2 == 0 ? 0.25 : 1.0);
        gauge.Add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(family.WithLabels({"shared"}).Value(), kThreads * kPerThread);
  EXPECT_EQ(family.WithLabels({"even"}).Value(), 2.0 * (kThreads / 2) * kPerThread);
  EXPECT_EQ(family.WithLabels({"odd"}).Value(), 2.0 * (kThreads / 2) * kPerThread);
  EXPECT_EQ(gauge.Value(), kThreads * kPerThread);
  const Histogram::Snapshot snap = hist.WithLabels(std::vector<std::string>{}).Read();
  EXPECT_EQ(snap.count, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(snap.cumulative[0], static_cast<std::uint64_t>(kThreads * kPerThread / 2));
  EXPECT_DOUBLE_EQ(snap.sum, kThreads * kPerThread / 2 * 1.25);
}

TEST(MetricsTest, ConcurrentSeriesCreationYieldsOneSeriesPerLabelSet) {
  MetricsRegistry registry;
  auto& family = registry.Counter("c_total", "c", {"k"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) family.WithLabels({std::to_string(i)}).Inc();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(family.SeriesCount(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(family.WithLabels({std::to_string(i)}).Value(), 8);
}

TEST(MetricsTest, CardinalityCapSendsNewSeriesToOverflow) {
  MetricsRegistry registry(MetricsRegistry::Options{.max_series_per_family = 3});
  auto& family = registry.Counter("req_total", "r", {"path", "code"});
  for (int i = 0; i < 10; ++i) family.WithLabels({"/p" + std::to_string(i), "200"}).Inc();
  // Existing series keep working past the cap.
  family.WithLabels({"/p0", "200"}).Inc();
  EXPECT_EQ(family.SeriesCount(), 3u);
  Counter& overflow = family.WithLabels({"/never-seen", "500"});
  EXPECT_EQ(&overflow, &family.WithLabels({"/another", "404"}));
  EXPECT_EQ(family.WithLabels({"/p0", "200"}).Value(), 2);
  const std::string out = registry.Expose();
  EXPECT_NE(out.find("req_total{path=\"__overflow__\",code=\"__overflow__\"} 7\n"),
            std::string::npos)
      << out;
  // 7 refused in the loop, 2 more lookups above.
  EXPECT_NE(out.find("moatless_metrics_series_dropped_total{metric=\"req_total\"} 9\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("# TYPE moatless_metrics_series_dropped_total counter\n"), std::string::npos);
}

TEST(MetricsTest, InvalidUtf8LabelValuesAreRepaired) {
  MetricsRegistry registry;
  auto& family = registry.Counter("c_total", "c", {"v"});
  family
      .WithLabels({std::string_view("a\xff"
                                    "b")})
      .Inc();
  family
      .WithLabels({std::string_view("a\xff"
                                    "b")})
      .Inc();
  EXPECT_EQ(family.SeriesCount(), 1u);
  EXPECT_NE(registry.Expose().find("c_total{v=\"a\xEF\xBF\xBD"
                                   "b\"} 2\n"),
            std::string::npos);
}

TEST(MetricsTest, SameRegistrationReturnsSameFamily) {
  MetricsRegistry registry;
  auto& a = registry.Counter("x_total", "x", {"a"});
  auto& b = registry.Counter("x_total", "x", {"a"});
  EXPECT_EQ(&a, &b);
  auto& h1 = registry.Histogram("h_seconds", "h");
  auto& h2 = registry.Histogram("h_seconds", "h");
  EXPECT_EQ(&h1, &h2);
}

using MetricsDeathTest = ::testing::Test;

TEST_F(MetricsDeathTest, ConflictingRegistrationIsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry registry;
  registry.Counter("x_total", "x", {"a"});
  EXPECT_DEATH(registry.Gauge("x_total", "x", {"a"}), "registered twice");
  EXPECT_DEATH(registry.Counter("x_total", "x", {"b"}), "registered twice");
  EXPECT_DEATH(registry.Counter("x_total", "other help", {"a"}), "registered twice");
  registry.Histogram("h", "h", {}, {1, 2});
  EXPECT_DEATH(registry.Histogram("h", "h", {}, {1, 3}), "registered twice");
  // A counter whose name is one of the histogram's sample names.
  EXPECT_DEATH(registry.Counter("h_count", "c"), "already renders");
  EXPECT_DEATH(registry.Counter(kSeriesDroppedMetric, "mine"), "registered twice");
}

TEST_F(MetricsDeathTest, BadNamesAreABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry registry;
  EXPECT_DEATH(registry.Counter("bad-name", "x"), "invalid metric name");
  EXPECT_DEATH(registry.Counter("ok_total", "x", {"__reserved"}), "invalid label name");
  EXPECT_DEATH(registry.Counter("ok_total", "x", {"a", "a"}), "given twice");
  EXPECT_DEATH(registry.Histogram("h", "x", {"le"}), "reserved");
  EXPECT_DEATH(registry.Histogram("h", "x", {}, {2, 1}), "increase");
}

TEST(MetricsReadTest, ReadsEverySeriesOfAFamily) {
  MetricsRegistry registry({.max_series_per_family = 2});
  auto& calls = registry.Counter("calls_total", "x", {"function", "outcome"});
  calls.WithLabels({"a", "ok"}).Add(3);
  calls.WithLabels({"b", "error"}).Inc();
  calls.WithLabels({"c", "ok"}).Inc();  // past the cap: the overflow series
  auto& latency = registry.Histogram("latency_seconds", "x", {}, {0.1, 1});
  latency.Observe(0.05);
  latency.Observe(0.5);
  latency.Observe(5);

  EXPECT_FALSE(registry.Read("nothing_total").has_value());
  const auto counters = registry.Read("calls_total");
  ASSERT_TRUE(counters.has_value());
  EXPECT_EQ(counters->type, MetricType::kCounter);
  EXPECT_EQ(counters->label_names, (std::vector<std::string>{"function", "outcome"}));
  ASSERT_EQ(counters->series.size(), 3u);
  EXPECT_EQ(counters->series[0].label_values, (std::vector<std::string>{"a", "ok"}));
  EXPECT_EQ(counters->series[0].value, 3);
  EXPECT_EQ(counters->series[1].label_values, (std::vector<std::string>{"b", "error"}));
  EXPECT_EQ(counters->series[2].label_values,
            (std::vector<std::string>{"__overflow__", "__overflow__"}));
  EXPECT_FALSE(counters->series[0].histogram.has_value());

  const auto histogram = registry.Read("latency_seconds");
  ASSERT_TRUE(histogram.has_value());
  ASSERT_EQ(histogram->series.size(), 1u);
  ASSERT_TRUE(histogram->series[0].histogram.has_value());
  EXPECT_EQ(histogram->series[0].value, 3);
  EXPECT_EQ(histogram->series[0].histogram->cumulative, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST(MetricsReadTest, QuantilesInterpolateWithinTheirBucket) {
  const std::vector<double> bounds = {0.1, 0.2, 0.4};
  // 100 observations: 50 <= 0.1, 40 in (0.1, 0.2], 10 in (0.2, 0.4].
  const std::vector<double> cumulative = {50, 90, 100, 100};
  EXPECT_NEAR(*HistogramQuantile(0.5, bounds, cumulative), 0.1, 1e-12);
  EXPECT_NEAR(*HistogramQuantile(0.7, bounds, cumulative), 0.15, 1e-12);
  EXPECT_NEAR(*HistogramQuantile(0.99, bounds, cumulative), 0.38, 1e-12);
  EXPECT_EQ(*HistogramQuantile(0.99, bounds, {0, 0, 0, 5}), 0.4);  // all in +Inf
  EXPECT_FALSE(HistogramQuantile(0.5, bounds, {0, 0, 0, 0}).has_value());
  EXPECT_FALSE(HistogramQuantile(0, bounds, cumulative).has_value());
  EXPECT_EQ(CumulativeIncrease({1, 2, 3}, {2, 4, 6}), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(CumulativeIncrease({5, 6, 7}, {1, 1, 2}), (std::vector<double>{1, 1, 2}));
  MetricsRegistry registry;
  registry.Counter("b_total", "B.");
  const auto families = registry.Families();
  ASSERT_FALSE(families.empty());
  EXPECT_NE(std::find(families.begin(), families.end(),
                      std::pair<std::string, std::string>("b_total", "B.")),
            families.end());
}

TEST(MetricsCollectorTest, CollectorsRefreshGaugesBeforeEachExposeUntilRemoved) {
  MetricsRegistry registry;
  auto& warm = registry.Gauge("warm_environments", "x");
  int state = 4;
  int runs = 0;
  {
    MetricsRegistry::CollectorHandle handle = registry.AddCollector([&] {
      ++runs;
      warm.Set(state);
    });
    EXPECT_NE(registry.Expose().find("warm_environments 4\n"), std::string::npos);
    state = 7;
    EXPECT_NE(registry.Expose().find("warm_environments 7\n"), std::string::npos);
    MetricsRegistry::CollectorHandle moved = std::move(handle);
    state = 9;
    EXPECT_NE(registry.Expose().find("warm_environments 9\n"), std::string::npos);
    EXPECT_EQ(runs, 3);
    EXPECT_EQ(registry.Read("warm_environments")->series[0].value, 9);
  }
  state = 1;
  EXPECT_NE(registry.Expose().find("warm_environments 9\n"), std::string::npos);
  EXPECT_EQ(runs, 3);
}

TEST_F(MetricsDeathTest, MisuseIsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry registry;
  auto& labelled = registry.Counter("l_total", "x", {"a"});
  EXPECT_DEATH(labelled.Inc(), "has labels");
  EXPECT_DEATH(labelled.WithLabels({"a", "b"}), "label values expected");
  auto& plain = registry.Counter("p_total", "x");
  EXPECT_DEATH(plain.Add(-1), "negative");
}

}  // namespace
}  // namespace moatless::observe
