// UsageMeter: the usage plans of API keys — a token bucket that throttles each key's request
// rate, and a quota of requests per UTC calendar period — checked and counted for every request
// the gateway admits with an API key.
//
// Rate: one token bucket per (key, plan, scope), full (`burst` tokens) when first used, refilled
// at `rate` tokens per second; a request takes one token or is refused. The scope (e.g. a route
// key, for per-method throttling) gives a bucket of its own; "" is the key's plan-wide bucket.
// Buckets measure time with the clock's monotonic time (a wall-clock jump neither refills nor
// drains them) and live in memory only: a restart, or another node, starts them full. That is the
// usual trade-off for throttling, which protects the backend from bursts, not a ledger.
//
// Quota: a count of requests per (key, plan), whatever the scope, in the current period of the
// plan: the UTC day (from 00:00), the ISO week (from Monday 00:00 UTC) or the calendar month (from
// the 1st, 00:00 UTC). When a period begins, the count restarts at 0. In the first period a
// (key, plan) is ever counted in, `quota_offset` requests are counted as already made (AWS's
// QuotaSettings.offset): the meter records that by counting them into the stored row it creates
// then, so "first period" is "there was no row for the (key, plan) yet", which survives restarts,
// and in the store `used` includes the offset during the first period.
//
// A refused request (rate or quota) counts towards neither: it takes no token and no quota.
//
// Persistence of quotas (table `gateway_quota_usage`, one row per key and plan with the start of
// its period in unix milliseconds): a (key, plan)'s row is read the first time this process sees
// it (outside the lock, so other keys are not held up); afterwards counting is in memory only,
// and Flush writes what changed in one durable transaction. Flush adds this process's new
// requests to the stored count (rather than overwriting it) and reads the sum back, so several
// nodes sharing a store converge on the total within a flush interval. The gateway flushes every
// second and at shutdown; requests counted since the last flush are lost if the process crashes —
// at most one flush interval of requests is not charged to the quota. That is the accepted price
// of not writing to disk on every request.
//
// Memory: buckets that are full and unused for kIdleAfter, and quota entries with nothing to flush
// that are unused as long, are dropped by a sweep that runs at most every kSweepEvery inside
// Admit and Flush; they are recreated (a full bucket, the stored count) when next used.
//
// Thread-safe: one mutex guards the in-memory state; Admit holds it for a few map operations and
// does store I/O only for the first load of a (key, plan). Flush is serialised with itself. The
// Database and Clock must outlive the meter.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"
#include "core/status.h"
#include "store/database.h"

namespace moatless::gateway {

enum class QuotaPeriod { kDay, kWeek, kMonth };

struct PlanLimits {
  double rate = 0;          // tokens per second refilled; 0: no rate limit
  std::uint32_t burst = 0;  // bucket size (0 with rate > 0: burst = max(1, ceil(rate)))
  std::optional<std::uint64_t> quota_limit;  // requests per period; none: no quota
  QuotaPeriod period = QuotaPeriod::kDay;
  // Requests subtracted from the limit in the first period (AWS QuotaSettings.offset).
  std::uint64_t quota_offset = 0;
};

struct Admission {
  bool admitted = true;
  enum class Refusal { kNone, kRate, kQuota } refusal = Refusal::kNone;
  // When refused: seconds until a request may pass (≥ 1). For a quota refusal, until the next
  // period begins.
  std::chrono::seconds retry_after{0};
  // Requests left in the period after this one, when there is a quota.
  std::optional<std::uint64_t> quota_remaining;
  core::WallTime quota_resets_at{};  // start of the next period, when there is a quota
};

// The start of the UTC calendar period holding `t`, and of the one after it.
core::WallTime PeriodStart(QuotaPeriod period, core::WallTime t);
core::WallTime NextPeriodStart(QuotaPeriod period, core::WallTime t);

class UsageMeter {
 public:
  static constexpr std::chrono::minutes kIdleAfter{10};
  static constexpr std::chrono::minutes kSweepEvery{1};

  UsageMeter(store::Database& db, const core::Clock& clock);
  UsageMeter(const UsageMeter&) = delete;
  UsageMeter& operator=(const UsageMeter&) = delete;

  // Counts one request of `key_id` under `plan` and says whether it may pass. Fails only when
  // the first load of the (key, plan)'s quota from the store fails (the caller decides whether
  // to fail open or closed), and with kInvalidArgument for negative or non-finite rates.
  core::Result<Admission> Admit(std::string_view key_id, std::string_view plan,
                                const PlanLimits& limits, std::string_view scope = "");
  // Writes the quota counts changed since the last flush, in one durable transaction. On failure
  // nothing is lost from memory: the next Flush tries again.
  core::Status Flush();
  // Forgets the in-memory state of a key (after it is deleted or moved to another plan),
  // including counts not flushed yet. Waits for a running Flush. A Flush that ran between the
  // key's deletion from the store and this call may have written its row again; such a row is
  // inert (key ids are never reused).
  void Forget(std::string_view key_id);

 private:
  struct Bucket {
    double tokens = 0;
    core::MonoTime last;  // when tokens was computed
    double rate = 0;      // the limits last applied, for the sweep
    double burst = 0;
  };
  struct Quota {
    std::string key_id;
    std::string plan;
    std::int64_t period_start_ms = 0;
    std::uint64_t used = 0;       // in the period, as far as this process knows
    std::uint64_t unflushed = 0;  // requests counted since the last flush, in the period
    std::uint64_t offset = 0;     // counted into a row that does not exist yet
    bool dirty = false;           // to be written by the next Flush
    core::MonoTime last_used;
  };

  core::Result<Quota> LoadQuota(std::string_view key_id, std::string_view plan,
                                const PlanLimits& limits, std::int64_t period_start_ms);
  void MaybeSweepLocked(core::MonoTime now);

  store::Database& db_;
  const core::Clock& clock_;

  std::mutex flush_mu_;  // serialises Flush and Forget; taken before mu_
  std::mutex mu_;
  // By key_id '\x1f' plan '\x1f' scope, and by key_id '\x1f' plan. Guarded by mu_.
  std::unordered_map<std::string, Bucket> buckets_;
  std::unordered_map<std::string, Quota> quotas_;
  core::MonoTime last_sweep_;  // guarded by mu_
};

}  // namespace moatless::gateway
