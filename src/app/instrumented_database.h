// InstrumentedDatabase: a store::Database that forwards every transaction to another one and
// records how long it took in moatless_store_transaction_duration_seconds{backend, access,
// outcome} (access: read or write; outcome: ok, or the error code's name). The composition root
// wraps the platform's database in one, so every repository's latency is measured without the
// store knowing about metrics.
//
// Thread-safe as the wrapped database is; it must outlive this object.
#pragma once

#include "observe/metrics.h"
#include "store/database.h"

namespace moatless::app {

class InstrumentedDatabase final : public store::Database {
 public:
  InstrumentedDatabase(store::Database& inner, observe::MetricsRegistry& metrics);

  core::Status Transact(const store::TransactionOptions& options,
                        const store::TransactionFn& fn) override;
  core::Status Close() override { return inner_.Close(); }
  std::string_view backend_name() const override { return inner_.backend_name(); }

 private:
  store::Database& inner_;
  observe::HistogramFamily& duration_;
};

}  // namespace moatless::app
