// Metrics: a registry of counter, gauge and histogram families rendered in the Prometheus text
// exposition format 0.0.4.
//
// The composition root owns one MetricsRegistry and passes it (by reference) to the modules that
// record metrics; there is no global registry. A module registers its families once, at
// construction, and keeps the returned references: families and their series live as long as the
// registry and never move. Registering is a code path, not a request path, so a bad metric or label
// name, or the same name registered twice with a different type, label names, buckets or help, is
// a bug and fails a MOATLESS_CHECK; registering the exact same family again returns the existing
// one.
//
// Recording is cheap: `family.WithLabels({"GET", "200"})` looks the series up (a shared lock and a
// map lookup; keep the returned reference when the label values are fixed) and the series' Inc /
// Add / Set / Observe are lock-free atomics. Families without labels record directly.
//
// Label values may come from requests, so a family holds at most `max_series_per_family` series
// (10,000 by default). Past the cap, new label sets share one overflow series whose label values
// are all "__overflow__", and `moatless_metrics_series_dropped_total{metric="<family>"}` counts the
// refused lookups: a label explosion costs accuracy, never memory. Label values that are not valid
// UTF-8 are repaired (U+FFFD) so the exposition stays parseable.
//
// Everything here is thread-safe. Expose() sees each series atomically per value; a histogram read
// during concurrent Observe() calls may see a `_sum` that lags its buckets by the in-flight
// observations (`_count` always equals the `+Inf` bucket).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moatless::observe {

// Content-Type of Expose()'s output.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";
// Label value of every label of a family's overflow series.
inline constexpr std::string_view kOverflowLabelValue = "__overflow__";
inline constexpr std::size_t kDefaultMaxSeriesPerFamily = 10000;
// The registry's own counter of label sets refused by a family's series cap.
inline constexpr std::string_view kSeriesDroppedMetric = "moatless_metrics_series_dropped_total";

// Bucket upper bounds for request latency in seconds: 0.5 ms to 30 s.
std::vector<double> DefaultLatencyBuckets();
// `count` bounds: start, start + width, ...
std::vector<double> LinearBuckets(double start, double width, int count);
// `count` bounds: start, start * factor, ... (start > 0, factor > 1).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// Prometheus naming rules: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__" (reserved for Prometheus itself).
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);

// A sample value as the exposition format writes it: "NaN", "+Inf", "-Inf"; integral values of
// magnitude below 2^53 as integers ("42"); anything else as the shortest text that reads back to
// the same double, in the style of Go's strconv.FormatFloat(v, 'g', -1, 64) that the reference
// client uses ("0.005", "1.2345675e+06", "1e-05").
std::string FormatPrometheusValue(double value);

// A monotonically increasing value (requests served, bytes sent).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Inc() { whole_.fetch_add(1, std::memory_order_relaxed); }
  // delta >= 0 (a negative or NaN delta is a bug: counters never go down).
  void Add(double delta);
  double Value() const;

 private:
  // Whole increments are counted exactly in an integer (no rounding past 2^53, and a cheaper
  // atomic than a floating-point compare-and-swap loop); fractional ones in a double.
  std::atomic<std::uint64_t> whole_{0};
  std::atomic<double> fraction_{0.0};
};

// A value that goes up and down (queue depth, pool size, temperature).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  void Sub(double delta) { value_.fetch_sub(delta, std::memory_order_relaxed); }
  void Inc() { Add(1.0); }
  void Dec() { Sub(1.0); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets with fixed upper bounds (inclusive, as Prometheus' `le`), plus
// their sum and count.
class Histogram {
 public:
  // `bounds` (strictly increasing, finite) must outlive the histogram: its family owns them.
  explicit Histogram(std::span<const double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // NaN counts in the +Inf bucket (and makes the sum NaN), as in the reference client.
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;             // without the implicit +Inf
    std::vector<std::uint64_t> cumulative;  // bounds.size() + 1 entries; the last is +Inf
    double sum = 0.0;
    std::uint64_t count = 0;  // == cumulative.back()
  };
  Snapshot Read() const;

 private:
  std::span<const double> bounds_;
  // bounds_.size() + 1 non-cumulative counts; the last is the +Inf bucket.
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<double> sum_{0.0};
};

enum class MetricType { kCounter, kGauge, kHistogram };

// The q-quantile (0 < q <= 1) of observations counted in cumulative buckets (`cumulative` has
// bounds.size() + 1 entries, the last for +Inf), as Prometheus' histogram_quantile computes it:
// linear interpolation within the bucket holding the rank; in the +Inf bucket, the highest finite
// bound. None without observations.
std::optional<double> HistogramQuantile(double q, const std::vector<double>& bounds,
                                        const std::vector<double>& cumulative);
// What cumulative bucket counts gained from `older` to `newer`; all of `newer` if any count went
// down (the process restarted in between).
std::vector<double> CumulativeIncrease(const std::vector<double>& older,
                                       const std::vector<double>& newer);

// One series' current value, for code that evaluates metrics (alert rules, `moatless top`) rather
// than exposing them. `label_values` follow the family's label names.
struct SeriesReading {
  std::vector<std::string> label_values;
  double value = 0.0;                            // counters and gauges
  std::optional<Histogram::Snapshot> histogram;  // histograms
};

class CounterFamily;

namespace internal {

// Orders label-value lists of any string-like element type, so a lookup by a list of
// string_views needs no allocation.
struct LabelValuesLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    auto ai = a.begin();
    auto bi = b.begin();
    for (; ai != a.end() && bi != b.end(); ++ai, ++bi) {
      const int c = std::string_view(*ai).compare(std::string_view(*bi));
      if (c != 0) return c < 0;
    }
    return ai == a.end() && bi != b.end();
  }
};

// What every family shares: identity, rendering, the series cap.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  MetricType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends the family's HELP, TYPE and sample lines; nothing if it has no series.
  virtual void Render(std::string& out) const = 0;
  // Number of distinct label sets held, not counting the overflow series.
  virtual std::size_t SeriesCount() const = 0;
  // Appends a reading of every series (the overflow series last).
  virtual void ReadSeries(std::vector<SeriesReading>& out) const = 0;

 protected:
  FamilyBase(MetricType type, std::string name, std::string help,
             std::vector<std::string> label_names, std::size_t max_series, CounterFamily* dropped);

  void RenderHeader(std::string& out) const;
  // `{a="x",b="y"` (no closing brace) or empty, for a series with these label values.
  std::string LabelPrefix(std::span<const std::string> values) const;
  void CountDropped() const;

  const MetricType type_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::size_t max_series_;

 private:
  CounterFamily* const dropped_;  // null for the dropped-series family itself
};

template <typename Series>
class FamilyOf : public FamilyBase {
 public:
  // The series for these label values (one per label name, in order; a wrong count is a bug),
  // created on first use; past the series cap, the overflow series.
  Series& WithLabels(std::initializer_list<std::string_view> values) {
    return Lookup(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Series& WithLabels(std::span<const std::string_view> values) { return Lookup(values); }
  Series& WithLabels(std::span<const std::string> values) { return Lookup(values); }
  Series& WithLabels(const std::vector<std::string>& values) {
    return Lookup(std::span<const std::string>(values));
  }

  std::size_t SeriesCount() const override;
  void Render(std::string& out) const override;
  void ReadSeries(std::vector<SeriesReading>& out) const override;

 protected:
  using FamilyBase::FamilyBase;
  // The series of a family without labels (created at registration, so it is exposed as 0).
  Series& Unlabelled() const;
  void CreateUnlabelled();
  virtual std::unique_ptr<Series> NewSeries() const = 0;
  virtual void RenderSeries(std::string& out, const std::string& label_prefix,
                            const Series& series) const = 0;
  static SeriesReading ReadOne(std::vector<std::string> values, const Series& series);

 private:
  Series& Lookup(std::span<const std::string_view> values);
  Series& Lookup(std::span<const std::string> values);
  template <typename Values>
  Series& LookupImpl(const Values& values);
  Series& SlowLookup(std::vector<std::string> values);

  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Series>, LabelValuesLess> series_;
  std::unique_ptr<Series> overflow_;
  Series* unlabelled_ = nullptr;  // set once at registration, read without the lock
};

}  // namespace internal

class CounterFamily final : public internal::FamilyOf<Counter> {
 public:
  // Only for a family without labels (else a bug).
  void Inc() { Unlabelled().Inc(); }
  void Add(double delta) { Unlabelled().Add(delta); }
  double Value() const { return Unlabelled().Value(); }

 private:
  friend class MetricsRegistry;
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names,
                std::size_t max_series, CounterFamily* dropped);
  std::unique_ptr<Counter> NewSeries() const override;
  void RenderSeries(std::string& out, const std::string& label_prefix,
                    const Counter& series) const override;
};

class GaugeFamily final : public internal::FamilyOf<Gauge> {
 public:
  // Only for a family without labels (else a bug).
  void Set(double value) { Unlabelled().Set(value); }
  void Add(double delta) { Unlabelled().Add(delta); }
  void Sub(double delta) { Unlabelled().Sub(delta); }
  void Inc() { Unlabelled().Inc(); }
  void Dec() { Unlabelled().Dec(); }
  double Value() const { return Unlabelled().Value(); }

 private:
  friend class MetricsRegistry;
  GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names,
              std::size_t max_series, CounterFamily* dropped);
  std::unique_ptr<Gauge> NewSeries() const override;
  void RenderSeries(std::string& out, const std::string& label_prefix,
                    const Gauge& series) const override;
};

class HistogramFamily final : public internal::FamilyOf<Histogram> {
 public:
  // Only for a family without labels (else a bug).
  void Observe(double value) { Unlabelled().Observe(value); }
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  friend class MetricsRegistry;
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::size_t max_series, CounterFamily* dropped, std::vector<double> bounds);
  std::unique_ptr<Histogram> NewSeries() const override;
  void RenderSeries(std::string& out, const std::string& label_prefix,
                    const Histogram& series) const override;

  const std::vector<double> bounds_;
  std::vector<std::string> le_values_;  // formatted bounds, then "+Inf"
};

class MetricsRegistry {
 public:
  struct Options {
    std::size_t max_series_per_family = kDefaultMaxSeriesPerFamily;
  };

  MetricsRegistry();
  explicit MetricsRegistry(Options options);
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  // Registers (or returns the identical existing) family. `help` is one line of documentation;
  // `label_names` may be empty. Histogram bounds are strictly increasing and finite (a trailing
  // +Inf is implied and may be given); "le" is not a histogram label name.
  CounterFamily& Counter(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& Gauge(std::string_view name, std::string_view help,
                     std::vector<std::string> label_names = {});
  HistogramFamily& Histogram(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names = {},
                             std::vector<double> bounds = DefaultLatencyBuckets());

  // The whole registry in text exposition format 0.0.4: families sorted by name, series by label
  // values (the overflow series last), no family without series. Runs the collectors first.
  std::string Expose() const;

  // Runs the collectors (see AddCollector), as Expose() does first.
  void Collect() const;

  // The series of one family (empty if it is not registered), with its label names. Does not run
  // the collectors.
  struct FamilyReading {
    MetricType type = MetricType::kCounter;
    std::vector<std::string> label_names;
    std::vector<SeriesReading> series;
  };
  std::optional<FamilyReading> Read(std::string_view name) const;
  // Every registered family's name, sorted, and its help line.
  std::vector<std::pair<std::string, std::string>> Families() const;

  // A collector refreshes gauges whose value is a state held elsewhere (warm environments, queue
  // depths) just before each Expose(), instead of the state's owner updating them on every change.
  // It runs on the thread calling Expose() and must be quick and must not call Expose(). It is
  // removed when its handle is destroyed; destroy the handle before anything the collector uses.
  class CollectorHandle {
   public:
    CollectorHandle() = default;
    CollectorHandle(CollectorHandle&& other) noexcept;
    CollectorHandle& operator=(CollectorHandle&& other) noexcept;
    ~CollectorHandle();

   private:
    friend class MetricsRegistry;
    CollectorHandle(const MetricsRegistry* registry, std::uint64_t id)
        : registry_(registry), id_(id) {}
    const MetricsRegistry* registry_ = nullptr;
    std::uint64_t id_ = 0;
  };
  [[nodiscard]] CollectorHandle AddCollector(std::function<void()> collect);

 private:
  template <typename F, typename Make>
  F& Register(MetricType type, std::string_view name, std::string_view help,
              std::vector<std::string> label_names, const std::vector<double>& bounds, Make make);

  const Options options_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<internal::FamilyBase>, std::less<>> families_;
  // Sample names (`x`, `x_bucket`, `x_sum`, `x_count`) taken, so two families cannot render
  // colliding lines.
  std::map<std::string, std::string, std::less<>> sample_names_;
  CounterFamily* dropped_ = nullptr;
  // Held while collectors run, so that a handle's destructor waits for a running collection.
  mutable std::mutex collectors_mu_;
  mutable std::map<std::uint64_t, std::function<void()>> collectors_;
  std::uint64_t next_collector_ = 1;
};

}  // namespace moatless::observe
