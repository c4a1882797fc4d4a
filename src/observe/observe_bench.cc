// Micro-benchmarks of the observe hot paths. Built only with -DMOATLESS_BUILD_BENCH=ON:
//   build/src/observe/observe_bench --benchmark_filter=...
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/clock.h"
#include "core/secret_bytes.h"
#include "observe/audit_log.h"
#include "observe/logger.h"
#include "observe/metrics.h"

namespace moatless::observe {
namespace {

void BM_CounterWithLabelsLookupAndInc(benchmark::State& state) {
  static MetricsRegistry registry;
  static CounterFamily& family = registry.Counter("bench_requests_total", "r", {"method", "code"});
  for (auto _ : state) family.WithLabels({"GET", "200"}).Inc();
}
BENCHMARK(BM_CounterWithLabelsLookupAndInc)->ThreadRange(1, 4);

void BM_CounterCachedInc(benchmark::State& state) {
  static MetricsRegistry registry;
  static Counter& counter =
      registry.Counter("bench_cached_total", "r", {"method"}).WithLabels({"GET"});
  for (auto _ : state) counter.Inc();
}
BENCHMARK(BM_CounterCachedInc)->ThreadRange(1, 4);

void BM_HistogramObserve(benchmark::State& state) {
  static MetricsRegistry registry;
  static Histogram& histogram =
      registry.Histogram("bench_seconds", "s", {"route"}).WithLabels({"/"});
  double v = 0.0001;
  for (auto _ : state) {
    histogram.Observe(v);
    v = v > 20 ? 0.0001 : v * 1.7;
  }
}
BENCHMARK(BM_HistogramObserve)->ThreadRange(1, 4);

void BM_Expose100Series(benchmark::State& state) {
  MetricsRegistry registry;
  auto& counters = registry.Counter("bench_c_total", "c", {"route", "code"});
  auto& histograms = registry.Histogram("bench_h_seconds", "h", {"route"});
  for (int i = 0; i < 80; ++i) {
    counters.WithLabels({"/r" + std::to_string(i % 40), i < 40 ? "200" : "500"}).Add(i);
  }
  for (int i = 0; i < 20; ++i) histograms.WithLabels({"/r" + std::to_string(i)}).Observe(0.01 * i);
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string out = registry.Expose();
    bytes = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Expose100Series);

void BM_LogLineFormat(benchmark::State& state) {
  core::FakeClock clock;
  MemorySink sink;
  const Logger logger = Logger(sink, clock)
                            .WithRequestId("5f0c8a3e-6f1d-4a57-9d1e-3b2a1c0d9e8f")
                            .With({{"function", "resize-image"}});
  for (auto _ : state) {
    const std::string line = logger.FormatLine(
        LogLevel::kInfo, "invocation finished",
        std::initializer_list<LogField>{{"duration_ms", 12}, {"cold", false}, {"status", 200}});
    benchmark::DoNotOptimize(line.data());
  }
}
BENCHMARK(BM_LogLineFormat);

// Durable appends: each iteration waits for its fdatasync (shared with concurrent threads).
void BM_AuditAppendDurable(benchmark::State& state) {
  static std::unique_ptr<AuditLog> log;
  static core::RealClock clock;
  static std::string dir;
  if (state.thread_index() == 0) {
    char tmpl[] = "/tmp/observe_bench_XXXXXX";
    dir = ::mkdtemp(tmpl);
    auto opened =
        AuditLog::Open(dir + "/audit.log", core::SecretBytes(std::string(32, 'k')), clock);
    if (!opened.ok()) {
      state.SkipWithError(opened.status().ToString().c_str());
      return;
    }
    log = std::move(*opened);
  }
  AuditRecord record;
  record.actor = "arn:moatless:iam::default:role/fn-resize";
  record.action = "secretsmanager:GetSecretValue";
  record.resource = "arn:moatless:secretsmanager::default:secret/db";
  record.outcome = AuditOutcome::kAllowed;
  record.request_id = "5f0c8a3e-6f1d-4a57-9d1e-3b2a1c0d9e8f";
  record.fields = {{"stage", "prod"}};
  for (auto _ : state) {
    if (log == nullptr || !log->Append(record).ok()) {
      state.SkipWithError("append failed");
      break;
    }
  }
  if (state.thread_index() == 0) {
    log.reset();
    const std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) state.SkipWithError("cleanup failed");
  }
}
BENCHMARK(BM_AuditAppendDurable)->ThreadRange(1, 8)->UseRealTime();

}  // namespace
}  // namespace moatless::observe
