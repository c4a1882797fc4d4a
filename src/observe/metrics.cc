#include "observe/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "core/check.h"
#include "observe/utf8.h"

namespace moatless::observe {
namespace {

constexpr double kTwoPow53 = 9007199254740992.0;

bool IsNameChar(char c, bool allow_colon, bool allow_digit) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (allow_digit && c >= '0' && c <= '9') || (allow_colon && c == ':');
}

void AppendEscapedLabelValue(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void AppendEscapedHelp(std::string& out, std::string_view help) {
  for (const char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// The names of the sample lines a family renders; two families may not share one.
std::vector<std::string> SampleNames(MetricType type, std::string_view name) {
  std::vector<std::string> names{std::string(name)};
  if (type == MetricType::kHistogram) {
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      names.push_back(std::string(name) + suffix);
  }
  return names;
}

void ValidateLabelNames(std::string_view metric, const std::vector<std::string>& label_names,
                        MetricType type) {
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    MOATLESS_CHECK(IsValidLabelName(label),
                   "metric " + std::string(metric) + ": invalid label name '" + label + "'");
    MOATLESS_CHECK(type != MetricType::kHistogram || label != "le",
                   "histogram " + std::string(metric) + ": 'le' is reserved for bucket bounds");
    MOATLESS_CHECK(seen.insert(label).second,
                   "metric " + std::string(metric) + ": label '" + label + "' given twice");
  }
}

std::vector<double> NormalizeBounds(std::string_view metric, std::vector<double> bounds) {
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    MOATLESS_CHECK(std::isfinite(bounds[i]),
                   "histogram " + std::string(metric) + ": bucket bounds must be finite");
    MOATLESS_CHECK(i == 0 || bounds[i - 1] < bounds[i],
                   "histogram " + std::string(metric) + ": bucket bounds must increase strictly");
  }
  return bounds;
}

}  // namespace

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  MOATLESS_CHECK(count >= 1 && width > 0, "LinearBuckets: count >= 1 and width > 0");
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  MOATLESS_CHECK(count >= 1 && start > 0 && factor > 1,
                 "ExponentialBuckets: count >= 1, start > 0, factor > 1");
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(count));
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) out.push_back(bound);
  return out;
}

bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !IsNameChar(name[0], /*allow_colon=*/true, /*allow_digit=*/false)) {
    return false;
  }
  return std::all_of(name.begin() + 1, name.end(),
                     [](char c) { return IsNameChar(c, /*allow_colon=*/true, true); });
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsNameChar(name[0], /*allow_colon=*/false, /*allow_digit=*/false)) {
    return false;
  }
  if (name.starts_with("__")) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [](char c) { return IsNameChar(c, /*allow_colon=*/false, true); });
}

std::string FormatPrometheusValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (value == std::trunc(value) && std::fabs(value) < kTwoPow53) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(value));
    return std::string(buf, r.ptr);
  }
  // Go's 'g' with the shortest precision: exponent form when the decimal exponent is < -4 or
  // >= 6 (Go fixes the threshold at 6 for shortest output), else plain decimal.
  const auto sci = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  const std::string_view text(buf, static_cast<std::size_t>(sci.ptr - buf));
  const std::size_t e = text.find('e');
  int exponent = 0;
  std::from_chars(text.data() + e + (text[e + 1] == '+' ? 2 : 1), text.data() + text.size(),
                  exponent);
  if (exponent < -4 || exponent >= 6) return std::string(text);
  const auto fixed = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

// ---- series ----

void Counter::Add(double delta) {
  MOATLESS_CHECK(delta >= 0, "Counter::Add: negative or NaN delta");
  if (delta == std::trunc(delta) && delta < kTwoPow53) {
    whole_.fetch_add(static_cast<std::uint64_t>(delta), std::memory_order_relaxed);
  } else {
    fraction_.fetch_add(delta, std::memory_order_relaxed);
  }
}

double Counter::Value() const {
  return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
         fraction_.load(std::memory_order_relaxed);
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double value) {
  std::size_t index = bounds_.size();
  if (!std::isnan(value)) {
    index = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                     bounds_.begin());
  }
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snap;
  snap.bounds.assign(bounds_.begin(), bounds_.end());
  snap.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snap.cumulative.push_back(running);
  }
  snap.count = running;
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

// ---- families ----

namespace internal {

FamilyBase::FamilyBase(MetricType type, std::string name, std::string help,
                       std::vector<std::string> label_names, std::size_t max_series,
                       CounterFamily* dropped)
    : type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      max_series_(max_series),
      dropped_(dropped) {}

void FamilyBase::RenderHeader(std::string& out) const {
  if (!help_.empty()) {
    out += "# HELP ";
    out += name_;
    out += ' ';
    AppendEscapedHelp(out, help_);
    out += '\n';
  }
  out += "# TYPE ";
  out += name_;
  out += ' ';
  out += TypeName(type_);
  out += '\n';
}

std::string FamilyBase::LabelPrefix(std::span<const std::string> values) const {
  std::string out;
  if (label_names_.empty()) return out;
  out += '{';
  for (std::size_t i = 0; i < label_names_.size(); ++i) {
    if (i > 0) out += ',';
    out += label_names_[i];
    out += "=\"";
    AppendEscapedLabelValue(out, values[i]);
    out += '"';
  }
  return out;
}

void FamilyBase::CountDropped() const {
  if (dropped_ != nullptr) dropped_->WithLabels({std::string_view(name_)}).Inc();
}

template <typename Series>
Series& FamilyOf<Series>::Unlabelled() const {
  MOATLESS_CHECK(unlabelled_ != nullptr,
                 "metric " + name_ + " has labels: record through WithLabels()");
  return *unlabelled_;
}

template <typename Series>
void FamilyOf<Series>::CreateUnlabelled() {
  std::unique_lock lock(mu_);
  auto [it, inserted] = series_.emplace(std::vector<std::string>{}, NewSeries());
  unlabelled_ = it->second.get();
}

template <typename Series>
Series& FamilyOf<Series>::Lookup(std::span<const std::string_view> values) {
  return LookupImpl(values);
}

template <typename Series>
Series& FamilyOf<Series>::Lookup(std::span<const std::string> values) {
  return LookupImpl(values);
}

template <typename Series>
template <typename Values>
Series& FamilyOf<Series>::LookupImpl(const Values& values) {
  MOATLESS_CHECK(values.size() == label_names_.size(),
                 "metric " + name_ + ": " + std::to_string(label_names_.size()) +
                     " label values expected, got " + std::to_string(values.size()));
  {
    std::shared_lock lock(mu_);
    const auto it = series_.find(values);
    if (it != series_.end()) return *it->second;
  }
  std::vector<std::string> key;
  key.reserve(values.size());
  for (const auto& v : values) key.push_back(SanitizeUtf8(v));
  return SlowLookup(std::move(key));
}

template <typename Series>
Series& FamilyOf<Series>::SlowLookup(std::vector<std::string> values) {
  {
    // Past the cap the answer is the overflow series; a shared lock suffices to know that, so a
    // label explosion does not serialise every caller on the exclusive lock.
    std::shared_lock lock(mu_);
    const auto it = series_.find(values);
    if (it != series_.end()) return *it->second;
    if (series_.size() >= max_series_ && overflow_ != nullptr) {
      Series& overflow = *overflow_;
      lock.unlock();
      CountDropped();
      return overflow;
    }
  }
  Series* result = nullptr;
  bool dropped = false;
  {
    std::unique_lock lock(mu_);
    const auto it = series_.find(values);
    if (it != series_.end()) return *it->second;
    if (series_.size() < max_series_) {
      auto inserted = series_.emplace(std::move(values), NewSeries());
      return *inserted.first->second;
    }
    if (overflow_ == nullptr) overflow_ = NewSeries();
    result = overflow_.get();
    dropped = true;
  }
  if (dropped) CountDropped();
  return *result;
}

template <typename Series>
std::size_t FamilyOf<Series>::SeriesCount() const {
  std::shared_lock lock(mu_);
  return series_.size();
}

template <typename Series>
void FamilyOf<Series>::Render(std::string& out) const {
  std::shared_lock lock(mu_);
  if (series_.empty() && overflow_ == nullptr) return;
  RenderHeader(out);
  for (const auto& [values, series] : series_) RenderSeries(out, LabelPrefix(values), *series);
  if (overflow_ != nullptr) {
    const std::vector<std::string> values(label_names_.size(), std::string(kOverflowLabelValue));
    RenderSeries(out, LabelPrefix(values), *overflow_);
  }
}

template <typename Series>
void FamilyOf<Series>::ReadSeries(std::vector<SeriesReading>& out) const {
  std::shared_lock lock(mu_);
  for (const auto& [values, series] : series_) out.push_back(ReadOne(values, *series));
  if (overflow_ != nullptr) {
    out.push_back(
        ReadOne(std::vector<std::string>(label_names_.size(), std::string(kOverflowLabelValue)),
                *overflow_));
  }
}

template <>
SeriesReading FamilyOf<Counter>::ReadOne(std::vector<std::string> values, const Counter& series) {
  return SeriesReading{.label_values = std::move(values), .value = series.Value()};
}

template <>
SeriesReading FamilyOf<Gauge>::ReadOne(std::vector<std::string> values, const Gauge& series) {
  return SeriesReading{.label_values = std::move(values), .value = series.Value()};
}

template <>
SeriesReading FamilyOf<Histogram>::ReadOne(std::vector<std::string> values,
                                           const Histogram& series) {
  Histogram::Snapshot snap = series.Read();
  const double count = static_cast<double>(snap.count);
  return SeriesReading{
      .label_values = std::move(values), .value = count, .histogram = std::move(snap)};
}

template class FamilyOf<Counter>;
template class FamilyOf<Gauge>;
template class FamilyOf<Histogram>;

}  // namespace internal

namespace {

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const std::string& label_prefix, std::string_view value) {
  out += name;
  out += suffix;
  if (!label_prefix.empty()) {
    out += label_prefix;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

CounterFamily::CounterFamily(std::string name, std::string help,
                             std::vector<std::string> label_names, std::size_t max_series,
                             CounterFamily* dropped)
    : FamilyOf(MetricType::kCounter, std::move(name), std::move(help), std::move(label_names),
               max_series, dropped) {
  if (label_names_.empty()) CreateUnlabelled();
}

std::unique_ptr<Counter> CounterFamily::NewSeries() const { return std::make_unique<Counter>(); }

void CounterFamily::RenderSeries(std::string& out, const std::string& label_prefix,
                                 const Counter& series) const {
  AppendSample(out, name_, "", label_prefix, FormatPrometheusValue(series.Value()));
}

GaugeFamily::GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names,
                         std::size_t max_series, CounterFamily* dropped)
    : FamilyOf(MetricType::kGauge, std::move(name), std::move(help), std::move(label_names),
               max_series, dropped) {
  if (label_names_.empty()) CreateUnlabelled();
}

std::unique_ptr<Gauge> GaugeFamily::NewSeries() const { return std::make_unique<Gauge>(); }

void GaugeFamily::RenderSeries(std::string& out, const std::string& label_prefix,
                               const Gauge& series) const {
  AppendSample(out, name_, "", label_prefix, FormatPrometheusValue(series.Value()));
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::size_t max_series,
                                 CounterFamily* dropped, std::vector<double> bounds)
    : FamilyOf(MetricType::kHistogram, std::move(name), std::move(help), std::move(label_names),
               max_series, dropped),
      bounds_(std::move(bounds)) {
  for (const double b : bounds_) le_values_.push_back(FormatPrometheusValue(b));
  le_values_.push_back("+Inf");
  if (label_names_.empty()) CreateUnlabelled();
}

std::unique_ptr<Histogram> HistogramFamily::NewSeries() const {
  return std::make_unique<Histogram>(std::span<const double>(bounds_));
}

void HistogramFamily::RenderSeries(std::string& out, const std::string& label_prefix,
                                   const Histogram& series) const {
  const Histogram::Snapshot snap = series.Read();
  for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
    out += name_;
    out += "_bucket";
    out += label_prefix.empty() ? "{" : label_prefix + ",";
    out += "le=\"";
    out += le_values_[i];
    out += "\"} ";
    out += std::to_string(snap.cumulative[i]);
    out += '\n';
  }
  AppendSample(out, name_, "_sum", label_prefix, FormatPrometheusValue(snap.sum));
  AppendSample(out, name_, "_count", label_prefix, std::to_string(snap.count));
}

std::optional<double> HistogramQuantile(double q, const std::vector<double>& bounds,
                                        const std::vector<double>& cumulative) {
  if (cumulative.empty() || cumulative.back() <= 0 || !(q > 0 && q <= 1)) return std::nullopt;
  const double rank = q * cumulative.back();
  std::size_t b = 0;
  while (b + 1 < cumulative.size() && cumulative[b] < rank) ++b;
  if (b >= bounds.size()) {
    return bounds.empty() ? std::nullopt : std::optional<double>(bounds.back());
  }
  const double lower_bound = b == 0 ? 0 : bounds[b - 1];
  const double below = b == 0 ? 0 : cumulative[b - 1];
  const double in_bucket = cumulative[b] - below;
  const double fraction = in_bucket > 0 ? (rank - below) / in_bucket : 1;
  return lower_bound + (bounds[b] - lower_bound) * fraction;
}

std::vector<double> CumulativeIncrease(const std::vector<double>& older,
                                       const std::vector<double>& newer) {
  bool reset = false;
  for (std::size_t i = 0; i < newer.size(); ++i) {
    reset = reset || newer[i] < (i < older.size() ? older[i] : 0);
  }
  std::vector<double> out(newer.size());
  for (std::size_t i = 0; i < newer.size(); ++i) {
    out[i] = reset ? newer[i] : newer[i] - (i < older.size() ? older[i] : 0);
  }
  return out;
}

// ---- registry ----

MetricsRegistry::MetricsRegistry() : MetricsRegistry(Options{}) {}

MetricsRegistry::MetricsRegistry(Options options) : options_(options) {
  MOATLESS_CHECK(options_.max_series_per_family >= 1, "max_series_per_family must be >= 1");
  dropped_ = &Counter(kSeriesDroppedMetric,
                      "Label sets refused by a metric family's series cap; their observations "
                      "went to the family's __overflow__ series.",
                      {"metric"});
}

MetricsRegistry::~MetricsRegistry() = default;

template <typename F, typename Make>
F& MetricsRegistry::Register(MetricType type, std::string_view name, std::string_view help,
                             std::vector<std::string> label_names,
                             const std::vector<double>& bounds, Make make) {
  MOATLESS_CHECK(IsValidMetricName(name), "invalid metric name '" + std::string(name) + "'");
  ValidateLabelNames(name, label_names, type);
  const std::string clean_help = SanitizeUtf8(help);

  std::lock_guard lock(mu_);
  if (const auto it = families_.find(name); it != families_.end()) {
    internal::FamilyBase& existing = *it->second;
    bool same = existing.type() == type && existing.label_names() == label_names &&
                existing.help() == clean_help;
    if (same && type == MetricType::kHistogram) {
      same = static_cast<HistogramFamily&>(existing).bounds() == bounds;
    }
    MOATLESS_CHECK(same, "metric " + std::string(name) +
                             " registered twice with a different type, labels, help or buckets");
    return static_cast<F&>(existing);
  }
  const std::vector<std::string> samples = SampleNames(type, name);
  for (const std::string& sample : samples) {
    const auto taken = sample_names_.find(sample);
    MOATLESS_CHECK(taken == sample_names_.end(),
                   "metric " + std::string(name) + " would render " + sample + ", which metric " +
                       (taken == sample_names_.end() ? std::string() : taken->second) +
                       " already renders");
  }
  // The dropped-series family counts for the others; it never overflows into itself.
  CounterFamily* dropped = name == kSeriesDroppedMetric ? nullptr : dropped_;
  std::unique_ptr<F> family(make(std::string(name), clean_help, std::move(label_names),
                                 options_.max_series_per_family, dropped));
  F& ref = *family;
  for (const std::string& sample : samples) sample_names_.emplace(sample, std::string(name));
  families_.emplace(std::string(name), std::move(family));
  return ref;
}

CounterFamily& MetricsRegistry::Counter(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names) {
  return Register<CounterFamily>(
      MetricType::kCounter, name, help, std::move(label_names), {},
      [](std::string n, std::string h, std::vector<std::string> l, std::size_t max,
         CounterFamily* dropped) { return new CounterFamily(n, h, l, max, dropped); });
}

GaugeFamily& MetricsRegistry::Gauge(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names) {
  return Register<GaugeFamily>(
      MetricType::kGauge, name, help, std::move(label_names), {},
      [](std::string n, std::string h, std::vector<std::string> l, std::size_t max,
         CounterFamily* dropped) { return new GaugeFamily(n, h, l, max, dropped); });
}

HistogramFamily& MetricsRegistry::Histogram(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names,
                                            std::vector<double> bounds) {
  std::vector<double> normalized = NormalizeBounds(name, std::move(bounds));
  return Register<HistogramFamily>(
      MetricType::kHistogram, name, help, std::move(label_names), normalized,
      [&normalized](std::string n, std::string h, std::vector<std::string> l, std::size_t max,
                    CounterFamily* dropped) {
        return new HistogramFamily(n, h, l, max, dropped, normalized);
      });
}

std::optional<MetricsRegistry::FamilyReading> MetricsRegistry::Read(std::string_view name) const {
  std::lock_guard lock(mu_);
  const auto it = families_.find(name);
  if (it == families_.end()) return std::nullopt;
  FamilyReading reading{.type = it->second->type(), .label_names = it->second->label_names()};
  it->second->ReadSeries(reading.series);
  return reading;
}

std::vector<std::pair<std::string, std::string>> MetricsRegistry::Families() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, family] : families_) out.emplace_back(name, family->help());
  return out;
}

MetricsRegistry::CollectorHandle MetricsRegistry::AddCollector(std::function<void()> collect) {
  MOATLESS_CHECK(collect != nullptr, "AddCollector(nullptr)");
  std::lock_guard lock(collectors_mu_);
  const std::uint64_t id = next_collector_++;
  collectors_.emplace(id, std::move(collect));
  return CollectorHandle(this, id);
}

MetricsRegistry::CollectorHandle::CollectorHandle(CollectorHandle&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), id_(std::exchange(other.id_, 0)) {}

MetricsRegistry::CollectorHandle& MetricsRegistry::CollectorHandle::operator=(
    CollectorHandle&& other) noexcept {
  if (this != &other) {
    CollectorHandle old(std::move(*this));
    registry_ = std::exchange(other.registry_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

MetricsRegistry::CollectorHandle::~CollectorHandle() {
  if (registry_ == nullptr) return;
  std::lock_guard lock(registry_->collectors_mu_);
  registry_->collectors_.erase(id_);
}

void MetricsRegistry::Collect() const {
  std::lock_guard collecting(collectors_mu_);
  for (const auto& [id, collect] : collectors_) collect();
}

std::string MetricsRegistry::Expose() const {
  Collect();
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, family] : families_) family->Render(out);
  return out;
}

}  // namespace moatless::observe
