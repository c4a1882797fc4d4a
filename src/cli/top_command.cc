#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/iam_client.h"
#include "core/clock.h"
#include "observe/metrics.h"

namespace moatless::cli {
namespace {

namespace json = boost::json;

// The families `top` reads (app/function_metrics.h).
constexpr const char* kFamilies[] = {
    "moatless_function_invocations_total", "moatless_function_errors_total",
    "moatless_function_throttles_total",   "moatless_function_cold_starts_total",
    "moatless_function_duration_seconds",  "moatless_function_concurrent_executions"};

// One function's cumulative counters at one moment (summed over its versions).
struct FunctionSample {
  double invocations = 0;
  double errors = 0;
  double throttles = 0;
  double cold_starts = 0;
  double concurrency = 0;
  std::vector<double> bounds;
  std::vector<double> buckets;  // cumulative duration buckets
};

struct Sample {
  std::chrono::steady_clock::time_point at;
  std::map<std::string, FunctionSample> functions;
};

// One reading of the metrics API; nullopt (the reason printed) if there is none.
std::optional<Sample> Fetch(const ClientSettings& settings) {
  std::string target = "/moatless/v1/metrics?";
  for (const char* family : kFamilies) target += std::string("family=") + family + "&";
  target.pop_back();
  const std::optional<json::object> o =
      CallRestJson(settings, http::Verb::get, target, "", "", "top", std::chrono::seconds(30));
  if (!o) return std::nullopt;
  if (!o->contains("Families") || !o->at("Families").is_array()) {
    std::cerr << "moatless top: the server answered no metric families\n";
    return std::nullopt;
  }
  Sample sample{.at = std::chrono::steady_clock::now()};
  for (const json::value& f : o->at("Families").as_array()) {
    const json::object& family = f.as_object();
    const std::string name(family.at("Name").as_string());
    const json::array& label_names = family.at("LabelNames").as_array();
    const auto function_label = std::find(label_names.begin(), label_names.end(), "function");
    if (function_label == label_names.end()) continue;
    const std::size_t index = static_cast<std::size_t>(function_label - label_names.begin());
    for (const json::value& s : family.at("Series").as_array()) {
      const json::object& series = s.as_object();
      const std::string function(series.at("Labels").as_array().at(index).as_string());
      FunctionSample& fs = sample.functions[function];
      const double value = series.at("Value").to_number<double>();
      if (name == "moatless_function_invocations_total") fs.invocations += value;
      if (name == "moatless_function_errors_total") fs.errors += value;
      if (name == "moatless_function_throttles_total") fs.throttles += value;
      if (name == "moatless_function_cold_starts_total") fs.cold_starts += value;
      if (name == "moatless_function_concurrent_executions") fs.concurrency += value;
      if (name == "moatless_function_duration_seconds" && series.contains("Buckets")) {
        const json::array& buckets = series.at("Buckets").as_array();
        if (fs.buckets.empty()) {
          fs.buckets.assign(buckets.size(), 0);
          for (const json::value& b : series.at("Bounds").as_array()) {
            fs.bounds.push_back(b.to_number<double>());
          }
        }
        for (std::size_t i = 0; i < buckets.size() && i < fs.buckets.size(); ++i) {
          fs.buckets[i] += buckets[i].to_number<double>();
        }
      }
    }
  }
  return sample;
}

std::string Fixed(double v, int precision) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << v;
  return out.str();
}

std::string Millis(std::optional<double> seconds) {
  return seconds ? Fixed(*seconds * 1000, 1) : std::string("-");
}

// The table of what happened between two samples.
std::string Table(const Sample& before, const Sample& now, const std::string& prefix) {
  const double dt = std::chrono::duration<double>(now.at - before.at).count();
  std::ostringstream out;
  out << std::left << std::setw(40) << "FUNCTION" << std::right << std::setw(9) << "RPS"
      << std::setw(9) << "ERR/S" << std::setw(7) << "ERR%" << std::setw(9) << "P50 ms"
      << std::setw(9) << "P99 ms" << std::setw(6) << "COLD" << std::setw(10) << "THROTTLED"
      << std::setw(6) << "CONC"
      << "\n";
  const auto delta = [](double a, double b) { return b >= a ? b - a : b; };  // b < a: restarted
  for (const auto& [name, fs] : now.functions) {
    if (!name.starts_with(prefix)) continue;
    const auto it = before.functions.find(name);
    const FunctionSample empty;
    const FunctionSample& old = it == before.functions.end() ? empty : it->second;
    const double invocations = delta(old.invocations, fs.invocations);
    const double errors = delta(old.errors, fs.errors);
    const std::vector<double> window = observe::CumulativeIncrease(old.buckets, fs.buckets);
    out << std::left << std::setw(40) << name.substr(0, 39) << std::right << std::setw(9)
        << Fixed(invocations / dt, 1) << std::setw(9) << Fixed(errors / dt, 1) << std::setw(7)
        << (invocations > 0 ? Fixed(100 * errors / invocations, 1) : std::string("-"))
        << std::setw(9) << Millis(observe::HistogramQuantile(0.5, fs.bounds, window))
        << std::setw(9) << Millis(observe::HistogramQuantile(0.99, fs.bounds, window))
        << std::setw(6) << Fixed(delta(old.cold_starts, fs.cold_starts), 0) << std::setw(10)
        << Fixed(delta(old.throttles, fs.throttles), 0) << std::setw(6) << Fixed(fs.concurrency, 0)
        << "\n";
  }
  return out.str();
}

}  // namespace

TopCommand::TopCommand(CLI::App& parent) {
  command_ = parent.add_subcommand(
      "top",
      "A live view of every function: requests per second, errors, p50/p99 duration, cold "
      "starts, throttles and concurrency over each interval (from the signed metrics API, "
      "moatless:GetMetrics)");
  AddConnectionFlags(command_, connection_);
  command_->add_option("--interval", interval_seconds_, "seconds between refreshes")
      ->check(CLI::Range(0.2, 3600.0));
  command_
      ->add_option("--iterations", iterations_,
                   "stop after this many refreshes (default: until interrupted)")
      ->check(CLI::PositiveNumber);
  command_->add_option("--function", prefix_, "only functions whose name starts with this");
}

int TopCommand::Run(const std::map<std::string, std::string>& environment) {
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless top: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  std::optional<Sample> previous = Fetch(*settings);
  if (!previous) return kExitRuntime;
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  const auto interval =
      std::chrono::milliseconds(static_cast<std::int64_t>(interval_seconds_ * 1000));
  for (std::int64_t i = 0; iterations_ == 0 || i < iterations_; ++i) {
    std::this_thread::sleep_for(interval);
    std::optional<Sample> now = Fetch(*settings);
    if (!now) return kExitRuntime;
    std::string screen = "moatless top  " + settings->endpoint + "  every " +
                         Fixed(interval_seconds_, 1) + " s  " +
                         core::FormatRfc3339(std::chrono::system_clock::now()) + "\n\n" +
                         Table(*previous, *now, prefix_);
    // A terminal is redrawn in place; a pipe gets one table after another.
    std::cout << (terminal ? "\x1b[H\x1b[2J" : (i > 0 ? "\n" : "")) << screen << std::flush;
    previous = std::move(now);
  }
  return kExitOk;
}

}  // namespace moatless::cli
