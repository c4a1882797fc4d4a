#include "app/instrumented_database.h"

#include <chrono>

namespace moatless::app {

InstrumentedDatabase::InstrumentedDatabase(store::Database& inner,
                                           observe::MetricsRegistry& metrics)
    : inner_(inner),
      duration_(metrics.Histogram(
          "moatless_store_transaction_duration_seconds",
          "Store transactions, from their start to commit or rollback, by backend, access (read, "
          "write) and outcome (ok or the error code).",
          {"backend", "access", "outcome"})) {}

core::Status InstrumentedDatabase::Transact(const store::TransactionOptions& options,
                                            const store::TransactionFn& fn) {
  const auto start = std::chrono::steady_clock::now();
  core::Status status = inner_.Transact(options, fn);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  const std::string_view access = options.access == store::Access::kReadOnly ? "read" : "write";
  const std::string outcome = status.ok() ? "ok" : std::string(core::StatusCodeName(status.code()));
  duration_.WithLabels({inner_.backend_name(), access, outcome}).Observe(elapsed.count());
  return status;
}

}  // namespace moatless::app
